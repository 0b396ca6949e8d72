"""Export windows: which rows a run exports.

The window comes from the run (its params, data interval, logical date or trigger time), never from
the clock; the clock only decides whether the requested days are over yet (only complete UTC days
are exported: a file of a day that is not over would be incomplete while its manifest says complete).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_RANGE_DAYS = 366
UTC = dt.UTC
DEFAULT_RUN_AT = dt.time(4, 0)
MANUAL = "manual"
BACKFILL = "backfill"
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


def latest_complete_day(now: dt.datetime) -> dt.date:
    """The last UTC day that is over at ``now`` (yesterday, UTC)."""
    return now.astimezone(UTC).date() - dt.timedelta(days=1)


def latest_due_day(moment: dt.datetime, run_at: dt.time = DEFAULT_RUN_AT) -> dt.date:
    """The last day D whose scheduled run time (D+1 at ``run_at`` UTC) is at or before ``moment``:
    the day the most recent scheduled run exported (at 2026-03-08 05:00 UTC: 2026-03-07; at
    03:00: 2026-03-06)."""
    delay = dt.timedelta(hours=run_at.hour, minutes=run_at.minute)
    return (moment.astimezone(UTC) - delay).date() - dt.timedelta(days=1)


def require_complete(window: Window, now: dt.datetime) -> Window:
    """``window`` if its last day is over at ``now``; else a one-line refusal naming the latest complete day."""
    if window.end > now.astimezone(UTC):
        what = f"param 'date_to': {window.date_to}" if window.kind == "range" else f"day {window.date_to}"
        raise WindowError(
            f"{what} is not over yet (now {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC): only complete UTC days are "
            f"exported; the latest complete day is {latest_complete_day(now)}"
        )
    return window


def range_window(date_from: object, date_to: object, *, now: dt.datetime) -> Window:
    """A manual export of ``date_from 00:00:00`` .. ``date_to 23:59:59.999999`` UTC, validated.

    ``now`` is the moment the run resolves its window: ``date_to`` must be a day that is over then.
    """
    if date_from in (None, "") or date_to in (None, ""):
        missing = "date_from" if date_from in (None, "") else "date_to"
        raise WindowError(f"param '{missing}' is missing: a range export needs both date_from and date_to")
    first, last = _parse_day(date_from, "date_from"), _parse_day(date_to, "date_to")
    if first > last:
        raise WindowError(f"date range is inverted: date_from {first} is after date_to {last}")
    window = require_complete(Window(_midnight(first), _midnight(last + dt.timedelta(days=1)), "range"), now)
    if window.days > MAX_RANGE_DAYS:
        raise WindowError(f"date range {first}..{last} spans {window.days} days; the maximum is {MAX_RANGE_DAYS}")
    return window


def manual_day(
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
    run_at: dt.time = DEFAULT_RUN_AT,
    data_interval: tuple[dt.datetime, dt.datetime] | None = None,
) -> dt.date:
    """The day a manual run without ``date_from``/``date_to`` exports.

    * a logical date means its UTC day, whatever its time of day: the UI's date picker keeps the
      current time, so picking November 22 gives e.g. ``2026-11-22T22:00Z``, and the person means
      the 22nd (so do ``airflow dags trigger --logical-date 2026-11-22`` and REST ``logical_date``);
    * no logical date but a data interval: a dry run whose logical date was released when it started
      (``notes.release_dry_run_slot``) exports the day its logical date named, kept as its data interval;
    * neither (a plain trigger): the latest due day at the run's trigger time (``run_after``, see
      ``latest_due_day``), so clearing the run later re-exports the same day.
    """
    if logical_date is not None:
        return logical_date.astimezone(UTC).date()
    if data_interval is not None and None not in data_interval:
        return data_interval[0].astimezone(UTC).date()
    return latest_due_day(run_after, run_at)


def has_dates(params: Mapping[str, Any]) -> bool:
    return any(params.get(k) not in (None, "") for k in ("date_from", "date_to"))


def _refuse_contradictions(
    params: Mapping[str, Any],
    logical_date: dt.datetime | None,
    data_interval: tuple[dt.datetime, dt.datetime] | None,
    run_after: dt.datetime,
) -> None:
    """A manual run whose logical date names a day that was over when it was triggered (its run id
    names that day, see ``CalendarDayTimetable.generate_run_id``) must not export anything else: refuse
    ``date_from``/``date_to`` with it, and a data interval (given by hand) that is another day over
    at trigger time. A logical date of a day not over then (the UI form's default *now*) names
    nothing and is ignored by a range; ``airflow dags trigger --logical-date`` gets a data interval
    of its trigger time's day from Airflow, which is never over then. Decided on the trigger time,
    not the clock, so clearing the run later decides the same."""
    if logical_date is not None:
        day = day_window(logical_date.astimezone(UTC).date())
        named = f"the logical date {logical_date.astimezone(UTC):%Y-%m-%d %H:%M} UTC names day {day.date_from}"
    elif data_interval is not None and None not in data_interval:
        # A dry run that gave up its logical date (notes.release_dry_run_slot): its day is its data interval.
        day = day_window(data_interval[0].astimezone(UTC).date())
        named = f"this dry run's logical date named day {day.date_from}"
    else:
        return
    if day.end > run_after.astimezone(UTC):
        return
    if has_dates(params):
        raise WindowError(
            f"{named}, but params 'date_from'/'date_to' ask for {params.get('date_from')} .. {params.get('date_to')}: "
            "clear the logical date for a range export, or the dates to export that day"
        )
    if data_interval is None or None in data_interval:
        return
    start, end = (moment.astimezone(UTC) for moment in data_interval)
    if start.time() == dt.time.min and end - start == dt.timedelta(days=1) and end <= run_after and start != day.start:
        raise WindowError(
            f"{named}, but the data interval given with it is day {start.date()}: "
            "leave the data interval to be inferred from the logical date"
        )


def resolve(
    *,
    run_type: str,
    params: Mapping[str, Any],
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
    data_interval: tuple[dt.datetime, dt.datetime] | None,
    now: dt.datetime,
    run_at: dt.time = DEFAULT_RUN_AT,
) -> Window:
    """The window of any run, or a one-line ``WindowError``; what ``resolve_window`` does.

    * ``date_from``/``date_to`` set: a range (manual runs only: a backfill or scheduled run that
      receives them fails, since Airflow would otherwise silently export the run's own day);
    * other manual runs: one day, see ``manual_day`` (the logical date's UTC day, if it has one);
    * scheduled and backfill runs: their data interval (one UTC day).

    Whatever the source, the last day must be over at ``now``.
    """
    if run_type == MANUAL:
        _refuse_contradictions(params, logical_date, data_interval, run_after)
    if has_dates(params):
        if run_type != MANUAL:
            raise WindowError(
                f"params 'date_from'/'date_to' ({params.get('date_from')} .. {params.get('date_to')}) apply to "
                f"single manual runs only, but this is a {run_type} run: a backfill exports each day of its "
                "own --from-date/--to-date range; trigger a manual run for a range export"
            )
        return range_window(params.get("date_from"), params.get("date_to"), now=now)
    if run_type == MANUAL:
        window = day_window(manual_day(logical_date, run_after, run_at, data_interval))
        try:
            return require_complete(window, now)
        except WindowError as exc:
            if logical_date is None:
                raise
            raise WindowError(
                f"{exc} (the logical date {logical_date.astimezone(UTC):%Y-%m-%d %H:%M} UTC names day "
                f"{window.date_from}: pick a day that is over, or leave the logical date empty)"
            ) from None
    if data_interval is None or None in data_interval:
        raise WindowError(f"this {run_type} run has no data interval, so it names no day to export")
    return require_complete(window_from_interval(*data_interval), now)
