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
* manual runs keep Airflow's ids (``manual__<trigger time>``, or the caller's ``--run-id``); the
  listener in ``notes.py`` writes their window into the run's note.
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
        exports 2026-03-07. Other runs keep Airflow's ids (unique per trigger)."""
        if run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB) and data_interval is not None:
            return run_type.generate_run_id(suffix=_day_start(data_interval.start).isoformat())
        return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A logical date at midnight means that day (``airflow dags test s3_export 2026-03-07``
        exports 2026-03-07); any other moment means the last day whose scheduled run time has passed."""
        moment = run_after.in_timezone(UTC)
        if moment == _day_start(moment):
            day = moment
        else:
            day = _day_start(moment - self._delay).subtract(days=1)
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
