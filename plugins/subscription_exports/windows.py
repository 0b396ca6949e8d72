"""Export windows: which rows a run exports, derived from the run, never from ``now()``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_RANGE_DAYS = 366
UTC = dt.UTC
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class WindowError(ValueError):
    """A bad date or range, phrased as one line for the user."""


@dataclass(frozen=True)
class Window:
    """Half-open UTC interval ``[start, end)`` of whole days.

    ``kind`` is ``daily`` for scheduled/backfilled days (the day's own key, overwritten on
    re-runs) and ``range`` for manual range exports (their own keys).
    """

    start: dt.datetime
    end: dt.datetime
    kind: str

    @property
    def date_from(self) -> dt.date:
        return self.start.date()

    @property
    def date_to(self) -> dt.date:
        """Last day included (inclusive)."""
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.date_from.isoformat()
        return f"{self.date_from.isoformat()}..{self.date_to.isoformat()}"

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "kind": self.kind}

    def describe(self) -> dict[str, str]:
        """The window as manifests and Asset events state it (bounds and both inclusive days)."""
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        return cls(dt.datetime.fromisoformat(data["start"]), dt.datetime.fromisoformat(data["end"]), data["kind"])


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=UTC)


def day_window(day: dt.date) -> Window:
    return Window(_midnight(day), _midnight(day + dt.timedelta(days=1)), "daily")


def window_from_interval(start: dt.datetime, end: dt.datetime) -> Window:
    """The window of a scheduled or backfilled run: its data interval, which must be one UTC day."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start.time() != dt.time.min or end - start != dt.timedelta(days=1):
        raise WindowError(
            f"data interval {start.isoformat()} .. {end.isoformat()} is not one UTC calendar day; "
            "the DAG's timetable must be CalendarDayTimetable"
        )
    return day_window(start.date())


def _parse_day(value: object, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise WindowError(f"param '{field}': {value!r} is not a date in YYYY-MM-DD form") from None


def range_window(date_from: object, date_to: object, *, today: dt.date) -> Window:
    """A manual export of ``date_from 00:00:00`` .. ``date_to 23:59:59.999999`` UTC, validated.

    ``today`` is the UTC date the run was triggered (from the run, not the clock).
    """
    if date_from in (None, "") or date_to in (None, ""):
        missing = "date_from" if date_from in (None, "") else "date_to"
        raise WindowError(f"param '{missing}' is missing: a range export needs both date_from and date_to")
    first, last = _parse_day(date_from, "date_from"), _parse_day(date_to, "date_to")
    if first > last:
        raise WindowError(f"date range is inverted: date_from {first} is after date_to {last}")
    if last > today:
        raise WindowError(f"param 'date_to': {last} is in the future (today is {today} UTC)")
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise WindowError(f"date range {first}..{last} spans {days} days; the maximum is {MAX_RANGE_DAYS}")
    return Window(_midnight(first), _midnight(last + dt.timedelta(days=1)), "range")
