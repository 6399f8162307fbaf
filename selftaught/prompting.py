"""The exact text a model is conditioned on: data-set prompts and the chat-template decision.

Training (`episodes`), Absolute Zero (`azr.prompts.wrap_prompt`), `selftaught eval`
and `selftaught diagnose` all decide the same way whether a prompt goes through the
tokenizer's chat template (`uses_chat_template`): "never" never does, "auto" does
when the tokenizer has one, and "always" does and is an error without one.
"""

from __future__ import annotations

from .errors import UserError

DATA_CHAT_TEMPLATE_KEY = "data.use_chat_template"


def uses_chat_template(tokenizer, mode: str, key: str) -> bool:
    """Whether prompts go through `tokenizer`'s chat template under `mode` ("auto",
    "always", "never"). `key` names the setting (a config key or a command-line flag)
    in the one-line error for "always" with a tokenizer that has no template."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if mode == "always" and not has_template:
        setting = f"{key} always," if key.startswith("--") else f"{key} is 'always'"
        raise UserError(f"{setting} but the tokenizer has no chat template")
    return has_template and mode != "never"


def fill_template(template: str, text: str) -> str:
    """The user message a prompt template makes of a data-set prompt (`{prompt}` is replaced)."""
    return template.replace("{prompt}", text)


def format_prompt(tokenizer, text: str, template: str = "{prompt}", system_prompt: str | None = None,
                  use_chat_template: str = "auto") -> str:
    """A data-set prompt as the exact text the model is conditioned on."""
    user = fill_template(template, text)
    if uses_chat_template(tokenizer, use_chat_template, DATA_CHAT_TEMPLATE_KEY):
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return (f"{system_prompt}\n\n" if system_prompt else "") + user


def format_described_prompt(tokenizer, text: str, data) -> str:
    """`format_prompt` in a data-set description's format (`config.DataConfig`: prompt template,
    system prompt, chat-template choice): how train and diagnose ask a data set's prompts."""
    return format_prompt(tokenizer, text, data.prompt_template, data.system_prompt, data.use_chat_template)
