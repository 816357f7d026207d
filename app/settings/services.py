"""What the settings page shows about how the app is configured (no secrets, only whether they are
set), and the settings kept in the database (staff test numbers, quiet hours): every read and
write of them lives here. Configuration comes in as plain arguments (`config`, `default`), never
from `current_app`; writes are audited and the caller commits."""

from __future__ import annotations

from typing import Any

from app.audit.services import record_audit
from app.contacts.phones import normalize_phone
from app.extensions import db
from app.models import Setting, User
from app.validation import ValidationError

MAX_STAFF_NUMBERS = 20
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


def save_quiet_hours(window: tuple[str, str] | None, *, user: User | None) -> None:
    """Store the sending window (or None: off); audited, the caller commits."""
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
