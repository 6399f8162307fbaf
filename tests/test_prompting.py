"""The one chat-template decision, and every prompt builder that goes through it."""

import pytest

from selftaught.azr.prompts import R1_PREAMBLE, wrap_prompt
from selftaught.diagnose import default_prompt_template
from selftaught.errors import UserError
from selftaught.evaluate.benchmarks import Item
from selftaught.evaluate.runner import _prompt
from selftaught.prompting import format_prompt, uses_chat_template

MODES = ("auto", "always", "never")


class ChatTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class PlainTokenizer:
    chat_template = None


def expected(has_template: bool, mode: str) -> bool | None:
    """The rule, as a table: None where the setting is an error."""
    return {(True, "auto"): True, (True, "always"): True, (True, "never"): False,
            (False, "auto"): False, (False, "always"): None, (False, "never"): False}[(has_template, mode)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tokenizer", [ChatTokenizer(), PlainTokenizer(), None], ids=["chat", "plain", "none"])
def test_the_decision_and_every_builder_agree(tokenizer, mode):
    has_template = isinstance(tokenizer, ChatTokenizer)
    want = expected(has_template, mode)
    item = Item(id="0", kind="math", chat_prompt="CHAT", plain_prompt="PLAIN", gold="1")
    builders = {  # each builder's verdict, read off its output
        "data": lambda: format_prompt(tokenizer, "Q", "T {prompt}", "S", mode) == "<system>S<user>T Q<assistant>",
        "azr": lambda: wrap_prompt("B", tokenizer, mode) == f"<user>{R1_PREAMBLE}\n\nB<assistant>",
        "eval": lambda: _prompt(tokenizer, item, mode) == "<user>CHAT<assistant>",
        "diagnose": lambda: "boxed" in default_prompt_template(tokenizer, mode),
    }
    if want is None:
        with pytest.raises(UserError):
            uses_chat_template(tokenizer, mode, "data.use_chat_template")
        for name, verdict in builders.items():
            with pytest.raises(UserError):
                verdict()
        return
    assert uses_chat_template(tokenizer, mode, "data.use_chat_template") is want
    assert {name: verdict() for name, verdict in builders.items()} == dict.fromkeys(builders, want)
    if not want:  # the plain texts, unchanged
        assert format_prompt(tokenizer, "Q", "T {prompt}", "S", mode) == "S\n\nT Q"
        assert format_prompt(tokenizer, "Q", "T {prompt}", None, mode) == "T Q"
        assert wrap_prompt("B", tokenizer, mode) == f"{R1_PREAMBLE}\n\nUser: B\n\nAssistant: <think>"
        assert _prompt(tokenizer, item, mode) == "PLAIN"
        assert default_prompt_template(tokenizer, mode) == "Question: {prompt}\nAnswer:"


def test_always_without_a_template_names_the_setting_in_one_line():
    tokenizer = PlainTokenizer()
    item = Item(id="0", kind="math", chat_prompt="CHAT", plain_prompt="PLAIN", gold="1")
    cases = {
        "data.use_chat_template is 'always' but the tokenizer has no chat template":
            lambda: format_prompt(tokenizer, "Q", use_chat_template="always"),
        "azr.use_chat_template is 'always' but the tokenizer has no chat template":
            lambda: wrap_prompt("B", tokenizer, "always"),
        "--chat-template always, but the tokenizer has no chat template":
            lambda: _prompt(tokenizer, item, "always"),
    }
    for message, build in cases.items():
        with pytest.raises(UserError) as caught:
            build()
        assert str(caught.value) == message
    with pytest.raises(UserError, match=r"^data\.use_chat_template is 'always'"):
        default_prompt_template(tokenizer, "always")
