"""A manual run's window in its Dag Run note: seen in the run list and on the run page, without the conf.

Scheduled and backfill run ids name their day (``timetable.py``). A manual run's id is Airflow's
``manual__<trigger time>`` (or the caller's ``--run-id``) and its logical date and data interval say
nothing about a ``date_from``/``date_to`` range. Airflow 3.3 offers no way for a task to set the
run's note (the Execution API has no such call; the public REST API would need credentials in the
task), so this Airflow *listener*, registered by the plugin, writes it when the scheduler starts
the run (``on_dag_run_running``, in the scheduler's own transaction):

* ``Exports 2026-03-05..2026-03-07 (UTC, manual range)``
* ``Exports 2026-03-06 (UTC)`` for a manual run without dates;
* either followed by `` (dry run: writes nothing)`` when the ``dry_run`` param is ticked;
* ``Not exported: <the one-line cause>`` for a run ``resolve_window`` will refuse (e.g. a day that
  is not over yet, or a backfill given ``date_from``/``date_to``).

A note the user typed on the trigger form is kept, below ours. Only runs of DAGs on
``CalendarDayTimetable`` get a note; a failure here is logged by Airflow and never stops the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.listeners import hookimpl

from subscription_exports import windows

MAX_NOTE = 1000  # dag_run_note.content is String(1000)


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
    """The note of a run (None: no note, a scheduled or backfill run named by its day)."""
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
    if run_type != windows.MANUAL:
        return None
    dry = " (dry run: writes nothing)" if params.get("dry_run") else ""
    if window.kind == "range":
        return f"Exports {window.label} (UTC, manual range){dry}"
    return f"Exports {window.label} (UTC){dry}"


def merged_note(ours: str, existing: str | None) -> str:
    """Ours first, the user's own note kept below it. When the run starts again (cleared), our previous
    first paragraph is replaced, not repeated."""
    user = existing or ""
    first, _, rest = user.partition("\n\n")
    if first.startswith(("Exports ", "Not exported: ")):
        user = rest
    return f"{ours}\n\n{user}"[:MAX_NOTE] if user else ours[:MAX_NOTE]


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    from subscription_exports.timetable import CalendarDayTimetable

    timetable = getattr(getattr(dag_run, "dag", None), "timetable", None)
    if not isinstance(timetable, CalendarDayTimetable):
        return
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
    if note:
        dag_run.note = merged_note(note, dag_run.note)
