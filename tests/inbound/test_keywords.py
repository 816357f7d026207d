"""SPEC 6.5: a keyword is the whole message (case, surrounding spaces and punctuation aside);
a message that merely contains one is a reply."""

from __future__ import annotations

import pytest

from app.inbound.keywords import HELP, OPT_IN, OPT_OUT, classify
from app.models import Keyword


@pytest.mark.parametrize("word", sorted(OPT_OUT))
def test_every_opt_out_word_is_stop_in_any_case_with_spaces_and_punctuation(word):
    for text in (
        word,
        word.lower(),
        word.title(),
        f" {word} ",
        f"{word}.",
        f" {word}! ",
        f"¡{word}!",
    ):
        assert classify(text) == Keyword.STOP, text


@pytest.mark.parametrize("word", sorted(OPT_IN))
def test_every_opt_in_word_is_start(word):
    for text in (word, word.lower(), f"  {word.title()}!!", f'"{word}"'):
        assert classify(text) == Keyword.START, text


@pytest.mark.parametrize("word", sorted(HELP))
def test_every_help_word_is_help(word):
    for text in (word, word.lower(), f"{word}?", f"\n{word}\n"):
        assert classify(text) == Keyword.HELP, text


@pytest.mark.parametrize(
    "text",
    [
        "STOP!",
        " stop ",
        "Stop.",
        "stop\n",
        "...STOP...",
        "ＳＴＯＰ",  # full-width letters, as some phones send them
        "\u200bstop\u200b",  # zero-width spaces around it
    ],
)
def test_near_forms_of_stop_are_stop(text):
    assert classify(text) == Keyword.STOP


@pytest.mark.parametrize(
    "text",
    [
        "stop by later",
        "Stop please",
        "please stop",
        "don't stop",
        "STOP STOP",
        "S T O P",
        "stopp",
        "nonstop",
        "unsubscribe me",
        "I want to end this",
        "yes please",
        "Yes, I'll come",
        "help me find the article",
        "Detroit",
        "stop 🛑",
        "",
        "   ",
        "!!!",
    ],
)
def test_messages_that_merely_contain_a_keyword_are_replies(text):
    assert classify(text) is None
