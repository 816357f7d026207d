"""What the settings page shows about how the app is configured (no secrets, only whether they are set)."""

from __future__ import annotations

from typing import Any


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
    quiet = config["QUIET_HOURS"]
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
