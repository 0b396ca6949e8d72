"""Destinations x days: what was delivered, what failed and why, from rows of the metadata database.

Pure functions over plain values (``store`` reads them): one column per UTC day, one row per
destination in effect (plus any destination a shown run exported that is no longer configured); a
manual range run is listed apart with its range. Each cell comes from the latest run that exported
that day (a dry run counts only when no real run did) and that destination's map index in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

DELIVERED, FAILED, RUNNING, QUEUED, UP_FOR_RETRY = "delivered", "failed", "running", "queued", "up_for_retry"
DRY_RUN, NOT_RUN = "dry_run", "not_run"
STATES = (DELIVERED, FAILED, RUNNING, QUEUED, UP_FOR_RETRY, DRY_RUN, NOT_RUN)
# Airflow task-instance states, as the page names them.
_TI_STATES = {
    "success": DELIVERED,
    "failed": FAILED,
    "upstream_failed": FAILED,
    "running": RUNNING,
    "restarting": RUNNING,
    "deferred": RUNNING,
    "up_for_retry": UP_FOR_RETRY,
    "up_for_reschedule": UP_FOR_RETRY,
    "queued": QUEUED,
    "scheduled": QUEUED,
    None: QUEUED,  # created, not scheduled yet
}
# States a cell can still leave on its own (the page refreshes while one is shown).
PENDING = frozenset({RUNNING, QUEUED, UP_FOR_RETRY})


@dataclass(frozen=True)
class Run:
    """A run of the DAG with the window its resolve_window computed (or will: from its data interval)."""

    run_id: str
    state: str | None
    run_type: str
    start: dt.datetime | None  # window [start, end), UTC
    end: dt.datetime | None
    kind: str  # "daily" | "range" | "" (window unknown)
    dry_run: bool
    run_after: dt.datetime | None
    names: list[str] | None  # load_destinations' return value: the map indexes' destinations

    @property
    def days(self) -> list[dt.date]:
        if self.start is None or self.end is None:
            return []
        first, last = self.start.date(), (self.end - dt.timedelta(days=1)).date()
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    @property
    def label(self) -> str:
        days = self.days
        if not days:
            return "(window not resolved)"
        return days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}..{days[-1].isoformat()}"


@dataclass(frozen=True)
class TaskOutcome:
    """One map index of export_tables: its task instance and its XComs."""

    map_index: int
    state: str | None
    try_number: int
    end_date: dt.datetime | None
    label: str | None  # rendered_map_index: "<name> (#<i>)"
    result: dict[str, Any] | None = None  # return_value: destination, window, rows (dry_run)
    delivery: dict[str, Any] | None = None  # tasks.DELIVERY_KEY: objects, or cause, table, try_number


@dataclass(frozen=True)
class DestinationInEffect:
    name: str
    app_id: str
    bucket: str
    prefix: str
    problem: str | None = None  # what `config check` reports for it


@dataclass
class Cell:
    state: str = NOT_RUN
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    bytes: int | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> bucket, key, manifest_key, bytes
    when: str | None = None  # end of the task instance, ISO 8601 UTC
    cause: str | None = None
    table: str | None = None
    note: str | None = None  # why a cell is not run, or what else is known

    def to_dict(self) -> dict[str, Any]:
        # vars(), not asdict(): asdict deep-copies every nested value (15,400 cells at 1,100 x 14).
        return {k: v for k, v in vars(self).items() if v is not None and v != {}}


@dataclass
class Row:
    destination: DestinationInEffect
    configured: bool
    cells: dict[str, Cell]  # by day (ISO date)


@dataclass
class RangeRun:
    run: Run
    cells: dict[str, Cell]  # by destination name


@dataclass
class Matrix:
    dag_id: str
    days: list[dt.date]
    rows: list[Row]
    ranges: list[RangeRun]
    origin: str  # where the destinations in effect come from
    problem: str | None = None  # the configuration cannot be read at all

    def delivered(self, day: dt.date) -> tuple[int, int]:
        """(destinations delivered, destinations configured) for `day`."""
        key = day.isoformat()
        configured = [r for r in self.rows if r.configured]
        return sum(1 for r in configured if r.cells[key].state == DELIVERED), len(configured)

    @property
    def pending(self) -> bool:
        cells = [c for r in self.rows for c in r.cells.values()] + [c for g in self.ranges for c in g.cells.values()]
        return any(c.state in PENDING for c in cells)

    def filtered(self, *, failed_only: bool = False, app: str = "", name: str = "") -> list[Row]:
        rows = self.rows
        if failed_only:
            rows = [r for r in rows if r.destination.problem or any(c.state == FAILED for c in r.cells.values())]
        if app:
            rows = [r for r in rows if r.destination.app_id == app]
        if name:
            rows = [r for r in rows if name.lower() in r.destination.name.lower()]
        return rows

    def to_dict(self, rows: list[Row] | None = None) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "origin": self.origin,
            "problem": self.problem,
            "days": [
                {"day": d.isoformat(), "delivered": self.delivered(d)[0], "destinations": self.delivered(d)[1]}
                for d in self.days
            ],
            "destinations": [
                {
                    **asdict(r.destination),
                    "configured": r.configured,
                    "cells": {day: c.to_dict() for day, c in r.cells.items()},
                }
                for r in (self.rows if rows is None else rows)
            ],
            "ranges": [
                {
                    "run_id": g.run.run_id,
                    "range": g.run.label,
                    "state": g.run.state,
                    "dry_run": g.run.dry_run,
                    "cells": {name: c.to_dict() for name, c in g.cells.items()},
                }
                for g in self.ranges
            ],
        }


def cell_of(run: Run, outcome: TaskOutcome | None) -> Cell:
    """The cell of one destination in one run."""
    if outcome is None:
        if run.state in ("queued", "running"):
            return Cell(QUEUED, run.run_id, note=f"run {run.state}, this destination not started yet")
        return Cell(NOT_RUN, run.run_id, note=f"not in run {run.run_id} ({run.state})")
    state = _TI_STATES.get(outcome.state, outcome.state or QUEUED)
    cell = Cell(state, run.run_id, outcome.map_index, outcome.try_number)
    cell.when = outcome.end_date.astimezone(dt.UTC).isoformat() if outcome.end_date else None
    result = outcome.result if isinstance(outcome.result, dict) else {}
    delivery = outcome.delivery if isinstance(outcome.delivery, dict) else {}
    rows = delivery.get("rows", result.get("rows"))
    if isinstance(rows, dict):
        cell.rows = rows
    if isinstance(delivery.get("objects"), dict):
        cell.objects = delivery["objects"]
        cell.bytes = sum(int(o.get("bytes") or 0) for o in cell.objects.values())
    if run.dry_run and state == DELIVERED:
        cell.state, cell.note = DRY_RUN, "dry run: checked and encoded, nothing written"
    if state in (FAILED, UP_FOR_RETRY):
        cell.cause = delivery.get("cause") or (
            "upstream failed: see the run's first failed task"
            if outcome.state == "upstream_failed"
            else "no cause recorded (the task process died or was killed): see the log"
        )
        cell.table = delivery.get("table")
    return cell


def _latest(runs: list[Run]) -> Run | None:
    """The run that decides a day: the latest real run, else the latest dry run."""
    if not runs:
        return None
    real = [r for r in runs if not r.dry_run] or runs
    return max(real, key=lambda r: (r.run_after or dt.datetime.min.replace(tzinfo=dt.UTC), r.run_id))


def _outcome_by_name(run: Run, outcomes: dict[int, TaskOutcome]) -> dict[str, TaskOutcome]:
    found: dict[str, TaskOutcome] = {}
    for index, outcome in outcomes.items():
        name = None
        if run.names is not None and 0 <= index < len(run.names):
            name = run.names[index]
        elif outcome.label and outcome.label.endswith(f" (#{index})"):
            name = outcome.label[: -len(f" (#{index})")]
        if name is not None:
            found[name] = outcome
    return found


def build(
    *,
    dag_id: str,
    days: list[dt.date],
    destinations: list[DestinationInEffect],
    origin: str,
    runs: list[Run],
    outcomes: dict[str, dict[int, TaskOutcome]],  # run_id -> map_index -> outcome
    problem: str | None = None,
) -> Matrix:
    shown = {d.isoformat() for d in days}
    by_day: dict[str, list[Run]] = {}
    ranges = []
    for run in runs:
        run_days = run.days
        if len(run_days) == 1 and run.kind != "range":
            if run_days[0].isoformat() in shown:
                by_day.setdefault(run_days[0].isoformat(), []).append(run)
        elif run_days and any(d.isoformat() in shown for d in run_days):
            ranges.append(run)
    rows = {d.name: Row(d, True, {}) for d in destinations}
    deciding = {day: _latest(found) for day, found in by_day.items()}
    named = {
        run.run_id: _outcome_by_name(run, outcomes.get(run.run_id, {})) for run in [*deciding.values(), *ranges] if run
    }
    for run in deciding.values():
        for name in named[run.run_id]:
            if name not in rows:
                gone = DestinationInEffect(name, "", "", "", problem="no longer configured")
                rows[name] = Row(gone, False, {})
    for row in rows.values():
        for day in days:
            run = deciding.get(day.isoformat())
            if run is None:
                row.cells[day.isoformat()] = Cell(NOT_RUN, note="no run exported this day")
            elif run.names is not None and row.destination.name not in run.names:
                note = "not configured when this run started" if run.state not in ("queued",) else None
                row.cells[day.isoformat()] = Cell(NOT_RUN, run.run_id, note=note) if note else cell_of(run, None)
            else:
                row.cells[day.isoformat()] = cell_of(run, named[run.run_id].get(row.destination.name))
    range_runs = sorted(ranges, key=lambda r: (r.start or dt.datetime.min.replace(tzinfo=dt.UTC), r.run_id))
    range_rows = [
        RangeRun(run, {name: cell_of(run, outcome) for name, outcome in named[run.run_id].items()})
        for run in range_runs
    ]
    return Matrix(dag_id, days, list(rows.values()), range_rows, origin, problem)


def day_range(last: dt.date, count: int) -> list[dt.date]:
    """`count` days ending with `last`, oldest first."""
    return [last - dt.timedelta(days=count - 1 - i) for i in range(count)]
