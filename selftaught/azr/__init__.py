"""Absolute Zero self-play (docs/reference.md §3): proposer and solver on deduction,
abduction and induction, trained jointly by the shared trainer.

- `tasks.py`: tasks and the three task types, described once as data;
- `prompts.py` / `parsing.py`: rendering prompts, reading responses (no code runs);
- `checking.py`: answers checked by the sandboxed executor;
- `buffers.py`: task buffers and their capacity policy;
- `rewards.py`: learnability, solve and format-aware rewards;
- `episodes.py`: `AZREpisodes`, the episode source (`method: azr`);
- `scripted.py`: a stand-in policy with canned responses, for tests.
"""
