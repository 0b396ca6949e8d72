"""CalendarDayTimetable: the data interval is one UTC calendar day, the run comes after it.

A run for day D has data interval ``[D 00:00, D+1 00:00)`` UTC, logical date D, and
runs at D+1 ``run_at`` (04:00 by default). So ``airflow backfill create --from-date A
--to-date B`` means "export days A..B", and a run's dates read as the day it exports.
Airflow's built-in timetables tie the data interval to the cron tick (04:00..04:00), which
is why this one exists; it must live in ``plugins/`` so the scheduler can deserialize it.

Run ids name the exported day (what Airflow 3.3 lets a timetable decide):

* scheduled runs: the scheduler asks ``generate_run_id``, which returns
  ``scheduled__<D>T00:00:00+00:00`` (the day's start, i.e. its logical date) instead of Airflow's
  ``scheduled__<run_after>`` (which named D+1 04:00);
* backfill runs: ``airflow backfill create`` does not ask the timetable (airflow-core 3.3
  ``models/backfill.py`` calls ``DagRun.generate_run_id``, i.e. ``backfill__<run_after>``). So a day
  whose scheduled run time has already passed gets ``run_after`` = D 00:00 (the run may start at
  once either way), and its backfill run id is ``backfill__<D>T00:00:00+00:00``. The scheduler
  still creates no run before D+1 ``run_at``: a ``run_after`` in the past only ever belongs to a
  day whose run time has passed. One exception: a backfill of yesterday created before today's
  ``run_at`` gets ``run_after`` = today ``run_at``, waits for it, and is named by it.
* manual runs: Airflow 3.3 asks ``generate_run_id`` for REST/UI triggers, with the data interval
  inferred from the logical date (or given with it) but without the conf. A trigger whose logical
  date names a day that is over is ``manual__<D>_triggered_<trigger time>`` (the grid shows run ids,
  not notes); ``windows.resolve`` refuses such a run if its ``date_from``/``date_to`` or data interval
  says otherwise, so the id never lies. Other manual runs keep Airflow's ids
  (``manual__<trigger time>``, or the caller's ``--run-id``): without a logical date, and for
  ``airflow dags trigger --logical-date``, whose data interval Airflow infers from the trigger time.
  The listener in ``notes.py`` writes every manual run's window into its note.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.utils.types import DagRunType
from pendulum import UTC, DateTime, Time

from subscription_exports.compat import dag_run_info


def _day_start(moment: DateTime) -> DateTime:
    return DateTime.combine(moment.in_timezone(UTC).date(), Time.min).replace(tzinfo=UTC)


class CalendarDayTimetable(Timetable):
    """One run per UTC day D, data interval [D, D+1), run at D+1 + ``run_at``."""

    def __init__(self, run_at: dt.time = dt.time(4, 0)) -> None:
        self.run_at = run_at
        self._delay = dt.timedelta(hours=run_at.hour, minutes=run_at.minute)
        self.description = f"daily at {run_at:%H:%M} UTC, exporting the previous UTC day"

    @property
    def summary(self) -> str:
        return f"Daily {self.run_at:%H:%M} UTC (previous day)"

    def serialize(self) -> dict[str, Any]:
        return {"run_at": self.run_at.strftime("%H:%M")}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        hour, minute = (int(x) for x in data["run_at"].split(":"))
        return cls(dt.time(hour, minute))

    @staticmethod
    def _now() -> DateTime:
        return DateTime.utcnow().replace(tzinfo=UTC)

    def _latest_due_day(self) -> DateTime:
        return _day_start(self._now() - self._delay).subtract(days=1)

    def _info(self, day_start: DateTime) -> DagRunInfo:
        end = day_start.add(days=1)
        run_at = end + self._delay
        # A day whose run time has passed (catch-up, backfill) can run at once: run_after is then the
        # day's own start, so that a backfill's run id (backfill__<run_after>) names the day.
        run_after = day_start if run_at <= self._now() else run_at
        return dag_run_info(run_after=run_after, data_interval=DataInterval(day_start, end))

    def generate_run_id(
        self, *, run_type: DagRunType, run_after: DateTime, data_interval: DataInterval | None, **extra: Any
    ) -> str:
        """Scheduled (and backfill) runs are named by the day they export: ``scheduled__2026-03-07T00:00:00+00:00``
        exports 2026-03-07. A manual REST/UI trigger whose logical date names a complete day is named by
        that day and its trigger time (``manual__2026-03-07_triggered_2026-03-08T10:15:00+00:00``), since
        Airflow's grid shows only the run id. Other runs keep Airflow's ids (unique per trigger)."""
        if run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB) and data_interval is not None:
            return run_type.generate_run_id(suffix=_day_start(data_interval.start).isoformat())
        if run_type == DagRunType.MANUAL and (day := self._complete_day(data_interval, run_after)) is not None:
            return run_type.generate_run_id(suffix=f"{day}_triggered_{run_after.isoformat()}")
        return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)

    @staticmethod
    def _complete_day(data_interval: DataInterval | None, run_after: DateTime) -> str | None:
        """The day (``YYYY-MM-DD``) a manual trigger's data interval names, when it is one UTC day that is
        over at trigger time. Airflow 3.3 passes the interval it inferred from the logical date for
        REST/UI triggers (or the one given with it), but one inferred from the trigger time for
        ``airflow dags trigger --logical-date`` (today: not over, so never named) and none without a
        logical date. The id cannot see the conf: ``windows.resolve`` refuses a manual run whose
        ``date_from``/``date_to`` or data interval contradicts a named day, so a named id never lies."""
        if data_interval is None:
            return None
        start = data_interval.start.in_timezone(UTC)
        if start != _day_start(start) or data_interval.end != start.add(days=1) or data_interval.end > run_after:
            return None
        return start.date().isoformat()

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """The UTC day of a manual run's logical date, whatever its time of day: the UI's date picker
        keeps the current time, so picking November 22 gives ``2026-11-22T22:00Z``, which means the
        22nd (``windows.manual_day`` decides the exported day the same way, from the logical date).

        Airflow 3.3 passes the logical date here for REST/UI triggers and ``airflow dags test``, but the
        trigger time for ``airflow dags trigger --logical-date`` (``api/common/trigger_dag.py``): the
        export never relies on this interval for a manual run that has a logical date."""
        day = _day_start(run_after)
        return DataInterval(day, day.add(days=1))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            next_start = _day_start(last_automated_data_interval.start).add(days=1)
        elif restriction.earliest is None:
            return None
        else:
            next_start = _day_start(restriction.earliest)
            if next_start < restriction.earliest:
                next_start = next_start.add(days=1)
        if not restriction.catchup:
            # Without catch-up (also after downtime) only the latest day whose run time has passed runs;
            # missed days are exported with `airflow backfill create`.
            next_start = max(next_start, self._latest_due_day())
        if restriction.latest is not None and next_start > restriction.latest:
            return None
        return self._info(next_start)
