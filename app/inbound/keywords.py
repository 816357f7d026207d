"""Keyword classification (SPEC 6.5): only a whole message that *is* a keyword counts, and the
small list of phrases that make a reply a *possible* opt-out for a person to decide.

Pure functions: the lists come in as arguments (built-ins plus an admin's extra words, read by
`app.settings.services.keyword_lists`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from app.models import Keyword

# Twilio's default opt-out words and the FCC's 2025 per-se revocation words ("stop, quit, end,
# revoke, opt out, cancel, unsubscribe"). They can never be removed.
BUILTIN_OPT_OUT = (
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
)
BUILTIN_OPT_IN = ("START", "YES", "UNSTOP")
BUILTIN_HELP = ("HELP", "INFO")
MAX_KEYWORD_LENGTH = 20
# Inside a keyword, runs of spaces, hyphens, dots and underscores are one space: "OPT OUT",
# "Opt-Out", "OPT_OUT" and "opt  out" are the same words ("S T O P" stays five letters).
_JOINERS = re.compile(r"[\s\-_.·]+")
_WORD = re.compile(r"^[A-Z0-9]+(?: [A-Z0-9]+){0,3}$")


def _is_edge_noise(char: str) -> bool:
    # Whitespace (including no-break and zero-width spaces) and punctuation: "Stop.", " STOP! ".
    category = unicodedata.category(char)
    return char.isspace() or category.startswith("P") or category == "Cf"


def normalize_keyword_text(body: str) -> str:
    """The message as compared with the keyword lists: NFKC (full-width letters become plain),
    upper case, surrounding whitespace and punctuation removed; the inside is left alone."""
    text = unicodedata.normalize("NFKC", body or "")
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end].upper()


def keyword_form(text: str) -> str:
    """The form keywords are matched in: normalised, inner joiners folded to single spaces."""
    return " ".join(_JOINERS.sub(" ", normalize_keyword_text(text)).split())


def compact(word: str) -> str:
    """A keyword without any joiner: two words that differ only in spacing overlap."""
    return keyword_form(word).replace(" ", "")


@dataclass(frozen=True)
class KeywordLists:
    """Every word of each list, in the form messages are matched in (`keyword_form`)."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]
    help: frozenset[str]

    @classmethod
    def build(
        cls, opt_out: tuple[str, ...] = (), opt_in: tuple[str, ...] = (), help: tuple[str, ...] = ()
    ) -> KeywordLists:
        """The built-in words plus these extra ones."""
        return cls(
            frozenset(keyword_form(w) for w in (*BUILTIN_OPT_OUT, *opt_out)),
            frozenset(keyword_form(w) for w in (*BUILTIN_OPT_IN, *opt_in)),
            frozenset(keyword_form(w) for w in (*BUILTIN_HELP, *help)),
        )


DEFAULT_LISTS = KeywordLists.build()


def classify(body: str, lists: KeywordLists = DEFAULT_LISTS) -> Keyword | None:
    """STOP, START or HELP when the whole message is one of their words, else None (a reply).

    "stop by later", "Stop please" and "don't stop" are replies: a message that merely contains
    a keyword never unsubscribes anyone (the predecessor's mistake, SPEC 9).
    """
    if len(body or "") > 2_000:  # no SMS is longer (Twilio's limit is 1,600 characters)
        return None
    word = keyword_form(body)
    if len(word) > MAX_KEYWORD_LENGTH:  # longer than any keyword: skip the set lookups
        return None
    if word in lists.opt_out:
        return Keyword.STOP
    if word in lists.opt_in:
        return Keyword.START
    if word in lists.help:
        return Keyword.HELP
    return None


def clean_keyword(raw: str) -> str | None:
    """An admin's extra keyword as stored ("OPT ME OUT"), or None when it cannot be one: letters
    and digits, at most four words and MAX_KEYWORD_LENGTH characters."""
    word = keyword_form(raw)
    if not word or len(word) > MAX_KEYWORD_LENGTH or not _WORD.match(word):
        return None
    return word


# -- possible opt-outs ---------------------------------------------------------------------------
# A reply that reads like an opt-out without being a keyword: stored as a reply, and listed for a
# person to decide. Never acted on by itself. Each pattern is matched against the reply in lower
# case with its spacing folded; keep them specific ("stop by later" must not match).
POSSIBLE_OPT_OUT_PATTERNS = (
    r"\bstop (?:texting|messaging|sending|contacting|emailing|calling|bothering)\b",
    r"\bstop (?:the|these|this|your|all|ur) (?:texts?|messages?|msgs?|sms|spam)\b",
    r"\b(?:no|don'?t send|do not send) (?:more|any more|anymore) (?:texts?|messages?|msgs?)\b",
    r"\bno more (?:texts?|messages?|msgs?|sms)\b",
    r"\b(?:don'?t|do not|never) (?:text|message|contact|sms) me\b",
    r"\bremove me\b",
    r"\btake me off\b",
    r"\b(?:unsubscribe|unsub) me\b",
    r"\bplease unsubscribe\b",
    r"\bwant to unsubscribe\b",
    r"\bhow (?:do i|can i|to) (?:unsubscribe|opt out|stop (?:these|this|the))\b",
    r"\bopt me out\b",
    r"\b(?:leave me alone|lose my number)\b",
    r"\b(?:wrong number|who is this)\b.*\bstop\b",
    r"^(?:please |pls |plz )?stop(?: it)?(?: please| pls| plz)?[.!]*$",
    r"^stop[.!]* (?:please|pls|plz|now|thanks|thank you)\b",
    r"\b(?:stop|quit|cease) (?:texting|messaging|sending|contacting)\b",
    r"\brevoke (?:my )?(?:consent|permission)\b",
    r"\bunsub\b",
    # An opt-out word with only courtesy or emphasis around it: "unsubscribe please",
    # "cancel pls", "END NOW", "stop stop", "STOP 🛑".
    r"^(?:please |pls |plz )?(?:stop|stopall|unsubscribe|unsub|cancel|end|quit|revoke|opt ?-?out)"
    r"(?: (?:please|pls|plz|now|thanks|thank you|asap|immediately|already|all|it|me|stop|"
    r"unsubscribe|cancel|end|quit|revoke|this|these|texts?|messages?|consent))+$",
)
_POSSIBLE = re.compile("|".join(f"(?:{p})" for p in POSSIBLE_OPT_OUT_PATTERNS))


def looks_like_opt_out(body: str) -> bool:
    """Whether a reply (not a keyword) reads like someone asking not to be texted any more."""
    text = " ".join(unicodedata.normalize("NFKC", body or "").lower().replace("’", "'").split())
    if not text or len(text) > 500:
        return False
    # Emoji, symbols and punctuation between words count as spaces ("STOP 🛑", "stop!!! stop").
    words = " ".join("".join(c if c.isalnum() or c in "'-" else " " for c in text).split())
    return _POSSIBLE.search(text) is not None or _POSSIBLE.search(words) is not None
