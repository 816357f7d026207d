"""SPEC 6.5: a keyword is the whole message (case, surrounding spaces and punctuation aside);
a message that merely contains one is a reply. The FCC's 2025 per-se revocation words, an
admin's extra words, and the phrases that make a reply a possible opt-out."""

from __future__ import annotations

import pytest

from app.inbound.keywords import (
    BUILTIN_HELP,
    BUILTIN_OPT_IN,
    BUILTIN_OPT_OUT,
    KeywordLists,
    classify,
    clean_keyword,
    looks_like_opt_out,
)
from app.models import Keyword


@pytest.mark.parametrize("word", sorted(BUILTIN_OPT_OUT))
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


@pytest.mark.parametrize("word", sorted(BUILTIN_OPT_IN))
def test_every_opt_in_word_is_start(word):
    for text in (word, word.lower(), f"  {word.title()}!!", f'"{word}"'):
        assert classify(text) == Keyword.START, text


@pytest.mark.parametrize("word", sorted(BUILTIN_HELP))
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


@pytest.mark.parametrize(
    "text",
    [
        "opt out",
        "Opt-Out",
        "OPT OUT.",
        "opt  out",
        "OPT_OUT",
        "optout",
        "Opt out!",
        "revoke",
        "Quit.",
        "end",
        "cancel",
        "Unsubscribe",
        "stop all",
    ],
)
def test_the_fcc_revocation_words_and_their_spacing_variants_unsubscribe(text):
    assert classify(text) == Keyword.STOP


def test_an_admins_extra_words_count_in_their_own_list():
    lists = KeywordLists.build(opt_out=("REMOVE ME",), opt_in=("SUBSCRIBE",), help=("AIDE",))
    assert classify("Remove me!", lists) == Keyword.STOP
    assert classify("remove-me", lists) == Keyword.STOP
    assert classify("subscribe", lists) == Keyword.START
    assert classify("Aide?", lists) == Keyword.HELP
    assert classify("please remove me", lists) is None  # still a whole-message rule
    assert classify("remove me") is None  # not a keyword without the extra word
    assert classify("STOP", lists) == Keyword.STOP  # the built-ins stay


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("remove me", "REMOVE ME"), (" Opt-Me-Out ", "OPT ME OUT"), ("aide", "AIDE"), ("", None)],
)
def test_extra_words_are_stored_upper_case_with_single_spaces(raw, stored):
    assert clean_keyword(raw) == stored


@pytest.mark.parametrize("raw", ["a" * 21, "one two three four five", "🛑", "stop?!stop", "x;y"])
def test_what_cannot_be_a_keyword_is_refused(raw):
    assert clean_keyword(raw) is None


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Stop texting me!",
        "stop sending these",
        "stop the texts",
        "remove me from this list",
        "Please remove me",
        "take me off your list",
        "unsubscribe me",
        "please unsubscribe",
        "how do I unsubscribe?",
        "no more texts",
        "No more messages please",
        "don't text me",
        "Don’t text me again",
        "do not contact me",
        "opt me out",
        "leave me alone",
        "Stop please",
        "please stop",
        "STOP IT",
        "stop. thanks",
        "wrong number, stop",
        "unsubscribe please",
        "cancel please",
        "End please",
        "opt-out please",
        "Revoke consent",
        "quit texting me",
        "stop stop",
        "STOP 🛑",
        "🛑 STOP",
        "UNSUB",
    ],
)
def test_replies_that_read_like_an_opt_out_are_possible_opt_outs(text):
    assert classify(text) is None  # a reply: nobody is unsubscribed on a guess
    assert looks_like_opt_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "stop by later",
        "I'll stop by the office",
        "don't stop",
        "can't stop reading your stories",
        "the bus stop on Main is closed",
        "Thanks! Keep the texts coming",
        "more texts like this please",
        "remember me?",
        "take me to the meeting",
        "who is this?",
        "Great story",
        "",
        "nonstop coverage",
        "the end of the article was great",
        "the end",
        "cancel the meeting?",
        "Can I cancel my RSVP",
        "I quit my job",
    ],
)
def test_near_misses_are_plain_replies(text):
    assert classify(text) is None
    assert not looks_like_opt_out(text)


@pytest.mark.parametrize("tail", [" " * 100, "!" * 80, "?" * 300, "\n" * 50])
def test_a_keyword_with_a_long_tail_of_spaces_or_punctuation_is_still_the_keyword(tail):
    assert classify("STOP" + tail) == Keyword.STOP
