"""What the settings page shows about how the app is configured (no secrets, only whether they are
set), and the settings kept in the database (staff test numbers, quiet hours): every read and
write of them lives here. Configuration comes in as plain arguments (`config`, `default`), never
from `current_app`; writes are audited and the caller commits."""

from __future__ import annotations

import re
from typing import Any

from app.audit.services import record_audit
from app.contacts.phones import normalize_phone
from app.extensions import db
from app.inbound.keywords import (
    BUILTIN_HELP,
    BUILTIN_OPT_IN,
    BUILTIN_OPT_OUT,
    MAX_KEYWORD_LENGTH,
    KeywordLists,
    clean_keyword,
    compact,
)
from app.models import Keyword, Setting, User
from app.validation import ValidationError

MAX_STAFF_NUMBERS = 20
MAX_EXTRA_KEYWORDS = 30
MAX_REPLY_LENGTH = 320  # two SMS segments of GSM-7
KEYWORDS_SETTING = "keywords"  # {"opt_out": [...], "opt_in": [...], "help": [...]}: extra words
HELP_REPLY_SETTING = "help_reply"  # overrides HELP_REPLY; "" for no reply
OPT_OUT_REPLY_SETTING = "opt_out_reply"  # the optional confirmation of an opt-out
STAFF_NUMBERS_SETTING = "staff_test_numbers"
# Overrides QUIET_HOURS when present: ["09:00", "20:00"], or null for "off".
QUIET_HOURS_SETTING = "quiet_hours"


def staff_numbers() -> list[str]:
    """The staff test numbers (E.164), in the order they were saved."""
    setting = db.session.get(Setting, STAFF_NUMBERS_SETTING)
    return list(setting.value or []) if setting is not None else []


def quiet_hours(default: tuple[str, str] | None) -> tuple[str, str] | None:
    """The sending window ("09:00", "20:00") in force, or None when quiet hours are off: the
    setting saved by an admin, else `default` (QUIET_HOURS)."""
    setting = db.session.get(Setting, QUIET_HOURS_SETTING)
    raw = setting.value if setting is not None else default
    return (str(raw[0]), str(raw[1])) if raw else None


_CLOCK_TIME = re.compile(r"^([0-9]{2}):([0-9]{2})$", re.ASCII)


def parse_quiet_hours_form(form: dict[str, str]) -> tuple[str, str] | None:
    """The Settings form's values (`enabled`, `start`, `end`, HH:MM in 15-minute steps) as a
    window, or None for off. The window runs from start to end on the same day (an end of
    24:00 is midnight). ValidationError names the field."""
    if not form.get("enabled"):
        return None
    minutes = {}
    for field, label in (("start", "The start"), ("end", "The end")):
        match = _CLOCK_TIME.match((form.get(field) or "").strip())
        if match is None:
            raise ValidationError(f"{label} must be a time from the list.", field)
        hours, mins = int(match.group(1)), int(match.group(2))
        value = hours * 60 + mins
        if mins % 15 or value > 24 * 60 or (field == "start" and value == 24 * 60):
            raise ValidationError(f"{label} must be a time from the list (15-minute steps).", field)
        minutes[field] = value
    if minutes["start"] == minutes["end"]:
        raise ValidationError(
            "The start and the end are the same time: turn quiet hours off instead.", "end"
        )
    if minutes["start"] > minutes["end"]:
        raise ValidationError(
            "The end must come after the start: texts go out from the start to the end of the "
            "same day, recipients' time.",
            "end",
        )
    return tuple(f"{minutes[f] // 60:02d}:{minutes[f] % 60:02d}" for f in ("start", "end"))


def save_quiet_hours(window: tuple[str, str] | None, *, user: User | None) -> None:
    """Store the sending window (or None: off); audited, the caller commits. The engine reads it
    at every claim, so it applies to the next batch."""
    _store(
        QUIET_HOURS_SETTING,
        list(window) if window else None,
        action="settings.quiet_hours",
        user=user,
        summary="Quiet hours: " + (f"send only {window[0]}–{window[1]}" if window else "off"),
    )


def _store(key: str, value: Any, *, action: str, user: User | None, summary: str) -> None:
    """Write one setting and audit it with its value before and after."""
    setting = db.session.get(Setting, key)
    before = setting.value if setting is not None else None
    if setting is None:
        setting = Setting(key=key)
        db.session.add(setting)
    setting.value = value
    setting.updated_by_id = user.id if user is not None else None
    record_audit(
        action,
        user=user,
        object_type="setting",
        object_id=key,
        summary=summary,
        details={"before": before, "after": value},
    )


# -- keywords and automatic replies -------------------------------------------------------------
KEYWORD_KINDS = {"opt_out": "opt-out", "opt_in": "opt-in", "help": "help"}
_BUILTIN = {"opt_out": BUILTIN_OPT_OUT, "opt_in": BUILTIN_OPT_IN, "help": BUILTIN_HELP}
BUILTIN_WORDS = _BUILTIN  # shown on the Settings page: always on, never removable


_NOT_READ: Any = object()


def extra_keywords(stored: Any = _NOT_READ) -> dict[str, list[str]]:
    """The admin's extra words per list (the built-in ones are not in it); `stored` is the
    setting's value when the caller has read it already (the inbound webhook reads it in the
    same statement as the sender; None when there is no such setting)."""
    if stored is _NOT_READ:
        setting = db.session.get(Setting, KEYWORDS_SETTING)
        stored = setting.value if setting is not None else None
    value = stored if isinstance(stored, dict) else {}
    return {kind: [str(w) for w in value.get(kind) or []] for kind in KEYWORD_KINDS}


def keyword_lists(stored: Any = _NOT_READ) -> KeywordLists:
    """The lists inbound messages are classified with: built-in words plus the extra ones."""
    extra = extra_keywords(stored)
    return KeywordLists.build(tuple(extra["opt_out"]), tuple(extra["opt_in"]), tuple(extra["help"]))


def save_keywords(raw: dict[str, str], *, user: User | None) -> dict[str, list[str]]:
    """The extra opt-out, opt-in and help words (one per line or comma-separated); all saved or
    none. A word may stand in one list only, built-in words included (built-in opt-out words
    cannot be removed or reused). Audited; the caller commits."""
    lists: dict[str, list[str]] = {}
    owner = {compact(w): (kind, True) for kind, words in _BUILTIN.items() for w in words}
    for kind, label in KEYWORD_KINDS.items():
        entries = [e.strip() for e in (raw.get(kind) or "").replace(",", "\n").splitlines()]
        entries = [e for e in entries if e]
        if len(entries) > MAX_EXTRA_KEYWORDS:
            raise ValidationError(f"At most {MAX_EXTRA_KEYWORDS} extra {label} words.", kind)
        words: list[str] = []
        for entry in entries:
            word = clean_keyword(entry)
            if word is None:
                raise ValidationError(
                    f"“{entry[:30]}” cannot be a keyword: letters and digits, up to four words "
                    f"and {MAX_KEYWORD_LENGTH} characters. Nothing was saved.",
                    kind,
                )
            key = compact(word)
            if key in owner:
                kind_of, builtin = owner[key]
                if kind_of == kind and not builtin:
                    continue  # the same word twice in one list
                where = (
                    f"a built-in {KEYWORD_KINDS[kind_of]} word"
                    if builtin
                    else f"already in the {KEYWORD_KINDS[kind_of]} list"
                )
                raise ValidationError(
                    f"“{word}” is {where}: a word can stand in one list only. Nothing was saved.",
                    kind,
                )
            owner[key] = (kind, False)
            words.append(word)
        lists[kind] = words
    summary = "; ".join(
        f"{label}: {', '.join(lists[kind]) or 'none'}" for kind, label in KEYWORD_KINDS.items()
    )
    _store(
        KEYWORDS_SETTING,
        lists,
        action="settings.keywords",
        user=user,
        summary=f"Extra keywords: {summary}",
    )
    return lists


def help_reply(default: str | None) -> str | None:
    """The answer to HELP/INFO: the saved text ("" for none), else `default` (HELP_REPLY)."""
    setting = db.session.get(Setting, HELP_REPLY_SETTING)
    text = setting.value if setting is not None else default
    return str(text).strip() or None if text else None


def opt_out_reply() -> str | None:
    """The optional confirmation sent to someone who has just opted out, or None."""
    setting = db.session.get(Setting, OPT_OUT_REPLY_SETTING)
    text = setting.value if setting is not None else None
    return str(text).strip() or None if text else None


def keyword_reply(keyword: Keyword | None, *, subscription_changed: bool, default_help: str | None):
    """What to text back to a keyword, or None: the HELP reply, or the opt-out confirmation
    (only when the message did unsubscribe someone)."""
    if keyword == Keyword.HELP:
        return help_reply(default_help)
    if keyword == Keyword.STOP and subscription_changed:
        return opt_out_reply()
    return None


def save_replies(help_text: str, opt_out_text: str, *, user: User | None) -> None:
    """The HELP reply and the opt-out confirmation (empty: none); audited, the caller commits."""
    texts = {"help_reply": help_text.strip(), "opt_out_reply": opt_out_text.strip()}
    for field, text in texts.items():
        if len(text) > MAX_REPLY_LENGTH:
            raise ValidationError(
                f"A reply can be at most {MAX_REPLY_LENGTH} characters ({len(text)} now).", field
            )
    _store(
        HELP_REPLY_SETTING,
        texts["help_reply"],
        action="settings.help_reply",
        user=user,
        summary="HELP reply: "
        + (f"“{texts['help_reply'][:60]}”" if texts["help_reply"] else "none"),
    )
    _store(
        OPT_OUT_REPLY_SETTING,
        texts["opt_out_reply"],
        action="settings.opt_out_reply",
        user=user,
        summary="Opt-out confirmation: "
        + (f"“{texts['opt_out_reply'][:60]}”" if texts["opt_out_reply"] else "none"),
    )


def transport_status(config: dict[str, Any]) -> dict[str, Any]:
    transport = config["TRANSPORT"]
    twilio_ready = bool(
        config["TWILIO_ACCOUNT_SID"]
        and config["TWILIO_AUTH_TOKEN"]
        and (config["TWILIO_FROM_NUMBER"] or config["TWILIO_MESSAGING_SERVICE_SID"])
    )
    missive_ready = bool(config["MISSIVE_API_TOKEN"] and config["MISSIVE_FROM_NUMBER"])
    problems = []
    if transport == "twilio" and not twilio_ready:
        problems.append(
            "TRANSPORT is twilio but TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
            "TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) are not all set."
        )
    if transport == "missive" and not missive_ready:
        problems.append(
            "TRANSPORT is missive but MISSIVE_API_TOKEN and MISSIVE_FROM_NUMBER are not set."
        )
    return {
        "transport": transport,
        "twilio_ready": twilio_ready,
        "missive_ready": missive_ready,
        "missive_webhooks_ready": bool(config["MISSIVE_WEBHOOK_SECRET"]),
        "problems": problems,
        "simulated": transport == "simulator",
    }


def sending_rules(config: dict[str, Any]) -> list[tuple[str, str]]:
    quiet = quiet_hours(config["QUIET_HOURS"])
    rate = config["SEND_RATE_MPS"]
    return [
        ("Organisation time zone", config["APP_TIMEZONE"]),
        ("Send rate", f"{rate:g} SMS segment{'' if rate == 1 else 's'} per second"),
        ("Quiet hours", f"sends only {quiet[0]}–{quiet[1]} recipient time" if quiet else "off"),
        ("Reply window", f"{config['REPLY_WINDOW_HOURS']} hours"),
        ("Broadcast catch-up", f"{config['BROADCAST_CATCHUP_MINUTES']} minutes"),
        ("Data retention", f"{config['RETENTION_DAYS']} days"),
        ("Upload limit", f"{config['UPLOAD_MAX_ROWS']:,} rows"),
        ("Public base URL", config["PUBLIC_BASE_URL"]),
    ]


def save_staff_numbers(raw: str, *, user: User | None) -> list[str]:
    """The staff test numbers (one per line or comma-separated), normalised to E.164; the
    caller commits. ValidationError names every number that is not one, and saves nothing."""
    entries = [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]
    if len(entries) > MAX_STAFF_NUMBERS:
        raise ValidationError(
            f"At most {MAX_STAFF_NUMBERS} staff numbers ({len(entries)} given).", "staff_numbers"
        )
    numbers, bad = [], []
    for entry in entries:
        phone = normalize_phone(entry)
        if phone is None:
            bad.append(entry[:40])
        elif phone not in numbers:
            numbers.append(phone)
    if bad:
        raise ValidationError(
            "Not phone numbers: " + ", ".join(bad) + ". Nothing was saved.", "staff_numbers"
        )
    _store(
        STAFF_NUMBERS_SETTING,
        numbers,
        action="settings.staff_numbers",
        user=user,
        summary=f"Staff test numbers: {', '.join(numbers) or 'none'}",
    )
    return numbers
