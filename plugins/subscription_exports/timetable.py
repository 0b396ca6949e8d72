"""CalendarDayTimetable: the data interval is one UTC calendar day, the run comes after it.

A run for day D has data interval ``[D 00:00, D+1 00:00)`` UTC, logical date D, and
runs at D+1 ``run_at`` (04:00 by default). So ``airflow backfill create --from-date A
--to-date B`` means "export days A..B", and a run's dates read as the day it exports.
Airflow's built-in timetables tie the data interval to the cron tick (04:00..04:00), which
is why this one exists; it must live in ``plugins/`` so the scheduler can deserialize it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import UTC, DateTime, Time


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

    def _latest_due_day(self) -> DateTime:
        now = DateTime.utcnow().replace(tzinfo=UTC)
        return _day_start(now - self._delay).subtract(days=1)

    def _info(self, day_start: DateTime) -> DagRunInfo:
        end = day_start.add(days=1)
        return DagRunInfo(run_after=end + self._delay, data_interval=DataInterval(day_start, end))

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
