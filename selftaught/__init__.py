"""selftaught: language models that teach themselves to reason.

Two published methods on one RL core:
- Intuitor: GRPO whose reward is the policy's own self-certainty (no labels).
- Absolute Zero: proposer/solver self-play validated by a sandboxed executor.
"""

__version__ = "0.1.0"
