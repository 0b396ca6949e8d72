"""What the scheduler does when a run of an export DAG starts: its window in its Dag Run note, and
two corrections that keep dry runs out of the way of real exports.

**The note** (seen in the run list and on the run page, without the conf). Scheduled and backfill run
ids name their day (``timetable.py``). A manual run's id is Airflow's ``manual__<trigger time>`` (or
the caller's ``--run-id``) and its logical date and data interval say nothing about a
``date_from``/``date_to`` range. Airflow 3.3 offers no way for a task to set the run's note (the
Execution API has no such call; the public REST API would need credentials in the task), so this
Airflow *listener*, registered by the plugin, writes it when the scheduler starts the run
(``on_dag_run_running``, in the scheduler's own transaction):

* ``Exports 2026-03-05..2026-03-07 (UTC, manual range)``
* ``Exports 2026-03-06 (UTC)`` for a manual run without dates;
* either followed by `` (dry run: writes nothing)`` when the ``dry_run`` param is ticked;
* ``Not exported: <the one-line cause>`` for a run ``resolve_window`` will refuse (e.g. a day that
  is not over yet, or a backfill given ``date_from``/``date_to``).

**A dry run holds no logical date** (``release_dry_run_slot``). Airflow allows one run per DAG and
logical date: a dry run triggered with the logical date of day D would otherwise make the real
trigger of D fail (409), make the scheduler skip D's scheduled run ("run already exists"), and be
picked up by a backfill of D, which clears runs in place and keeps their conf, i.e. re-runs the dry
run. Airflow 3.3 has no hook when a run is created, so when the dry run starts its logical date is
cleared (logical dates are nullable in Airflow 3) and the day it named is kept as its data
interval (``windows.manual_day`` reads it from there). Until it starts (queued), it holds the date.

**A backfill run does what its backfill asked** (``backfill_dry_run``). A backfill that reprocesses
an existing run clears it in place and keeps its conf unless the backfill sends its own
(``dag_run_conf``: the Backfill form's "Override parameters on existing runs"), so a day whose run
was a dry backfill would be re-run as a dry run by a later real backfill. The run's ``dry_run`` is
set to its backfill's request (false when the backfill sent no conf), and the note says so.

A note the user typed on the trigger form is kept, below ours. Only runs of DAGs on
``CalendarDayTimetable`` are touched; a failure here is logged by Airflow and never stops the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.listeners import hookimpl

from subscription_exports import windows

MAX_NOTE = 1000  # dag_run_note.content is String(1000)
RELEASED = " (dry run: writes nothing; holds no logical date, so the real run of the day is not blocked)"
OURS = ("Exports ", "Not exported: ")
DRY = " (dry run: writes nothing)"


def _value(run_type: Any) -> str:
    return str(getattr(run_type, "value", run_type))


def window_note(
    *,
    run_type: str,
    conf: dict[str, Any] | None,
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
    data_interval: tuple[dt.datetime, dt.datetime] | None,
    now: dt.datetime,
    run_at: dt.time = windows.DEFAULT_RUN_AT,
) -> str | None:
    """The note of a run (None: no note, a scheduled or backfill run named by its day, unless it is a dry run)."""
    params = conf or {}
    try:
        window = windows.resolve(
            run_type=run_type,
            params=params,
            logical_date=logical_date,
            run_after=run_after,
            data_interval=data_interval,
            now=now,
            run_at=run_at,
        )
    except windows.WindowError as exc:
        return f"Not exported: {exc}"
    dry = DRY if params.get("dry_run") else ""
    if run_type != windows.MANUAL and not dry:
        return None
    if window.kind == "range":
        return f"Exports {window.label} (UTC, manual range){dry}"
    return f"Exports {window.label} (UTC){dry}"


def merged_note(ours: str, existing: str | None) -> str:
    """Ours first, the user's own note kept below it. When the run starts again (cleared), our previous
    first paragraph is replaced, not repeated."""
    user = existing or ""
    first, _, rest = user.partition("\n\n")
    if first.startswith(OURS):
        user = rest
    return f"{ours}\n\n{user}"[:MAX_NOTE] if user else ours[:MAX_NOTE]


def release_dry_run_slot(dag_run: Any) -> bool:
    """A manual dry run gives up its logical date, keeping the day it named as its data interval.

    True when it did (the caller flushes). The day is the logical date's UTC day, as
    ``windows.manual_day`` reads it; a range (``date_from``/``date_to``) does not depend on it.
    """
    if _value(dag_run.run_type) != windows.MANUAL or dag_run.logical_date is None:
        return False
    if not (isinstance(dag_run.conf, dict) and dag_run.conf.get("dry_run")):
        return False
    day = windows.day_window(dag_run.logical_date.astimezone(dt.UTC).date())
    dag_run.data_interval_start, dag_run.data_interval_end = day.start, day.end
    dag_run.logical_date = None
    return True


def backfill_dry_run(dag_run: Any) -> str | None:
    """Set a backfill run's ``dry_run`` to what its backfill asked; the sentence for its note, or None
    when the run already matched. Only a run reprocessed in place can differ (Airflow keeps its conf)."""
    if _value(dag_run.run_type) != windows.BACKFILL or dag_run.backfill_id is None:
        return None
    from airflow.models.backfill import Backfill
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    backfill = session.get(Backfill, dag_run.backfill_id) if session is not None else None
    if backfill is None:
        return None
    asked = bool((backfill.dag_run_conf or {}).get("dry_run"))
    conf = dict(dag_run.conf) if isinstance(dag_run.conf, dict) else {}
    if bool(conf.get("dry_run")) == asked:
        return None
    dag_run.conf = {**conf, "dry_run": asked}
    if asked:
        return f"dry_run set to true, as backfill {backfill.id} asked"
    return (
        f"backfill {backfill.id} sent no dry_run, so this day's earlier dry run is now a real export "
        "(dry_run set to false)"
    )


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    from subscription_exports.timetable import CalendarDayTimetable

    timetable = getattr(getattr(dag_run, "dag", None), "timetable", None)
    if not isinstance(timetable, CalendarDayTimetable):
        return
    released = release_dry_run_slot(dag_run)
    changed = backfill_dry_run(dag_run)
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    note = window_note(
        run_type=_value(dag_run.run_type),
        conf=dag_run.conf if isinstance(dag_run.conf, dict) else None,
        logical_date=dag_run.logical_date,
        run_after=dag_run.run_after,
        data_interval=(start, end) if start is not None and end is not None else None,
        now=dt.datetime.now(dt.UTC),
        run_at=timetable.run_at,
    )
    if released and note and note.endswith(DRY):
        note = note[: -len(DRY)] + RELEASED
    if changed and start is not None and end is not None:
        note = f"{note or 'Exports ' + windows.day_window(start.astimezone(dt.UTC).date()).label + ' (UTC)'}; {changed}"
    if note:
        dag_run.note = merged_note(note, dag_run.note)
