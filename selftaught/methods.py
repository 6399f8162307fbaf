"""Which episode source each `method:` trains with.

`intuitor` and `grpo` are the same source (`PromptEpisodes`: data-set prompts, group
advantages) with different default rewards (`config.reward_specs`); `azr` is
Absolute Zero self-play. A new method is an `episodes.EpisodeSource` subclass: pass
it as `Trainer(config, episodes=MySource)`, or name it here to give it a `method:`.
"""

from __future__ import annotations

from .azr.episodes import AZREpisodes
from .config import TrainConfig
from .episodes import EpisodeSource, PromptEpisodes
from .errors import UserError


def build_episodes(config: TrainConfig, tokenizer, rewards=None) -> EpisodeSource:
    """The episode source for `config.method`; `rewards`: extra reward callables (prompt methods)."""
    if config.method == "azr":
        if rewards:
            raise UserError("user reward functions apply to method intuitor / grpo, not azr")
        return AZREpisodes(config, tokenizer)
    return PromptEpisodes(config, tokenizer, rewards=rewards)
