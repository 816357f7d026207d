"""What the broadcast pages show beyond the services' figures: the org time zone's label, the
15-minute time choices, and the trend chart's geometry (server-rendered SVG, no script)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from app.models import Broadcast, utcnow

TIME_STEP_MINUTES = 15


def zone_label(zone: str, at: datetime | None = None) -> str:
    """`America/Detroit (UTC−04:00)`: the zone's name and its offset now (or at `at`)."""
    offset = (at or utcnow()).astimezone(ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"{zone} (UTC{sign}{hours:02d}:{rest:02d})"


def time_choices() -> list[tuple[str, str]]:
    """Every 15 minutes of a day: ("09:30", "9:30 AM")."""
    choices = []
    for minutes in range(0, 24 * 60, TIME_STEP_MINUTES):
        at = time(minutes // 60, minutes % 60)
        choices.append((at.strftime("%H:%M"), at.strftime("%-I:%M %p")))
    return choices


def local_parts(value: datetime | None, zone: str) -> tuple[str, str]:
    """A UTC time as the reschedule inputs' values: ("2026-03-05", "09:30") in the org zone."""
    if value is None:
        return "", ""
    local = value.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M")


# -- the trend chart ---------------------------------------------------------------------------
WIDTH, HEIGHT = 320, 96
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 38, 6, 8, 18


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the tooltip: which broadcast and its value


@dataclass(frozen=True)
class Series:
    key: str  # CSS modifier: delivery, reply, unsubscribes
    title: str
    latest: str  # the newest value, as shown beside the title
    points: list[Point]
    top_label: str  # the y axis' top value
    bottom_label: str

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    series: list[Series]
    first_label: str
    last_label: str
    count: int
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _short_percent(value: float) -> str:
    percent = value * 100
    return f"{percent:.0f} %" if percent >= 10 or percent == int(percent) else f"{percent:.1f} %"


def trend_chart(broadcasts: list[Broadcast], date_label) -> TrendChart | None:
    """Three small line charts over the broadcasts (oldest first), from their stored figures.

    Each series has its own scale (reply rates are a few percent, delivery rates near 100 %),
    so a change shows in each. None when fewer than two broadcasts have figures.
    """
    rows = [b for b in broadcasts if b.stats]
    if len(rows) < 2:
        return None
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / (len(rows) - 1)

    def build(key: str, title: str, value_of, fmt, ceiling_floor: float, tick=None) -> Series:
        values = [value_of(b.stats) for b in rows]
        known = [v for v in values if v is not None]
        top = max(max(known, default=0), ceiling_floor)
        points = []
        for i, (b, v) in enumerate(zip(rows, values, strict=True)):
            if v is None:
                continue
            y = PAD_TOP + inner_h - (v / top * inner_h if top else 0)
            points.append(Point(PAD_LEFT + i * step, y, f"#{b.id} · {date_label(b)}: {fmt(v)}"))
        latest = fmt(values[-1]) if values[-1] is not None else "—"
        tick = tick or fmt
        return Series(key, title, latest, points, tick(top), tick(0))

    def rate(name: str):
        return lambda stats: stats.get(name)

    series = [
        build("delivery", "Delivery rate", rate("delivery_rate"), _percent, 0.01, _short_percent),
        build("reply", "Reply rate", rate("reply_rate"), _percent, 0.01, _short_percent),
        build(
            "unsubscribes",
            "Unsubscribes",
            lambda stats: stats.get("unsubscribes") or 0,
            lambda v: f"{int(v):,}",
            1,
        ),
    ]
    return TrendChart(
        WIDTH,
        HEIGHT,
        series,
        first_label=date_label(rows[0]),
        last_label=date_label(rows[-1]),
        count=len(rows),
    )


def stats_or_empty(broadcast: Broadcast) -> dict[str, Any]:
    """The stored figures, or zeros for a broadcast whose figures were never computed."""
    return broadcast.stats or {}
