"""CalendarDayTimetable: data interval = one UTC calendar day, run at D+1 04:00 UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pendulum
import pytest
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from pendulum import DateTime

from subscription_exports.timetable import CalendarDayTimetable

UTC = pendulum.UTC
TT = CalendarDayTimetable()


def day(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> DateTime:
    return pendulum.datetime(y, m, d, h, mi, tz=UTC)


def interval(y: int, m: int, d: int) -> DataInterval:
    return DataInterval(day(y, m, d), day(y, m, d).add(days=1))


def restriction(earliest: DateTime | None, *, catchup: bool, latest: DateTime | None = None) -> TimeRestriction:
    return TimeRestriction(earliest=earliest, latest=latest, catchup=catchup)


@contextmanager
def clock(now: DateTime) -> Iterator[None]:
    """Freeze the timetable's notion of "now".

    The clock is mocked because a real clock cannot show this behaviour: which day is "latest due"
    without catch-up depends on the wall-clock time relative to 04:00 UTC. The module reads it with
    ``DateTime.utcnow()`` in ``_latest_due_day``; that one method is patched (returning naive UTC, as
    pendulum's utcnow does).
    """
    with mock.patch.object(DateTime, "utcnow", return_value=now.in_timezone(UTC).naive()):
        yield


@pytest.fixture(autouse=True)
def before_every_test_day() -> Iterator[None]:
    """Unless a test sets its own `clock`, "now" is 2020-01-01: every day of these tests is still to come,
    so its run waits for D+1 04:00 (a day whose run time has passed runs at once, see
    `test_run_after_of_a_day_whose_run_time_has_passed`)."""
    with clock(day(2020, 1, 1)):
        yield


def assert_run_for(info: DagRunInfo | None, y: int, m: int, d: int, *, run_at: dt.time = dt.time(4, 0)) -> None:
    assert info is not None
    start = day(y, m, d)
    assert info.data_interval == DataInterval(start, start.add(days=1))
    assert info.logical_date == start
    run_time = start.add(days=1, hours=run_at.hour, minutes=run_at.minute)
    now = DateTime.utcnow().replace(tzinfo=UTC)  # the (mocked) clock
    # Before its run time a day's run waits for it; after it, it may run at once, named by the day.
    assert info.run_after == (run_time if run_time > now else start)


# -- the shape of one run ----------------------------------------------------------------------


def test_run_for_day_d() -> None:
    info = TT.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(day(2026, 3, 7), catchup=True)
    )
    assert_run_for(info, 2026, 3, 7)
    assert info.data_interval.start == pendulum.datetime(2026, 3, 7, tz="UTC")
    assert info.data_interval.end == pendulum.datetime(2026, 3, 8, tz="UTC")
    assert info.run_after == pendulum.datetime(2026, 3, 8, 4, 0, tz="UTC")
    assert info.logical_date.date() == dt.date(2026, 3, 7)
    assert info.data_interval.start.utcoffset() == dt.timedelta(0)


def test_next_run_after_previous_interval_is_next_day() -> None:
    r = restriction(day(2026, 1, 1), catchup=True)
    info = TT.next_dagrun_info(last_automated_data_interval=interval(2026, 3, 7), restriction=r)
    assert_run_for(info, 2026, 3, 8)
    # month and year boundaries, leap day
    assert_run_for(TT.next_dagrun_info(last_automated_data_interval=interval(2026, 3, 31), restriction=r), 2026, 4, 1)
    assert_run_for(TT.next_dagrun_info(last_automated_data_interval=interval(2026, 12, 31), restriction=r), 2027, 1, 1)
    leap = restriction(day(2024, 1, 1), catchup=True)
    assert_run_for(
        TT.next_dagrun_info(last_automated_data_interval=interval(2024, 2, 28), restriction=leap), 2024, 2, 29
    )


def test_consecutive_runs_tile_the_calendar() -> None:
    r = restriction(day(2026, 3, 1), catchup=True)
    last, seen = None, []
    for _ in range(40):
        info = TT.next_dagrun_info(last_automated_data_interval=last, restriction=r)
        assert info is not None
        if seen:
            assert info.data_interval.start == seen[-1].data_interval.end
        seen.append(info)
        last = info.data_interval
    assert seen[0].data_interval.start == day(2026, 3, 1)
    assert seen[-1].data_interval.end == day(2026, 4, 10)
    # 2026-03-29 is a DST change in Europe: UTC days stay 24 hours.
    assert all(i.data_interval.end - i.data_interval.start == dt.timedelta(days=1) for i in seen)


# -- run_after and run ids: named by the exported day -------------------------------------------


@pytest.mark.parametrize(
    ("now", "run_after"),
    [
        (day(2026, 3, 8, 3, 59), day(2026, 3, 8, 4)),  # the day is over, its run time is not: wait for it
        (day(2026, 3, 8, 4), day(2026, 3, 7)),  # run time reached: at once, named by the day
        (day(2026, 11, 29, 12), day(2026, 3, 7)),  # long past (a backfill, catch-up)
    ],
)
def test_run_after_of_a_day_whose_run_time_has_passed(now: DateTime, run_after: DateTime) -> None:
    # Clock mocked (see `clock`): which branch applies depends on "now" relative to D+1 04:00.
    with clock(now):
        info = TT.next_dagrun_info(
            last_automated_data_interval=interval(2026, 3, 6), restriction=restriction(day(2026, 1, 1), catchup=True)
        )
    assert info is not None and info.data_interval == interval(2026, 3, 7)
    assert info.run_after == run_after
    # Never earlier than the day's run time unless that time has passed: the scheduler creates no early run.
    assert info.run_after >= day(2026, 3, 8, 4) or info.run_after <= now


def test_scheduled_run_id_names_the_exported_day() -> None:
    from airflow.utils.types import DagRunType

    run_id = TT.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=day(2026, 3, 8, 4), data_interval=interval(2026, 3, 7)
    )
    assert run_id == "scheduled__2026-03-07T00:00:00+00:00"


def test_backfill_run_id_names_the_exported_day() -> None:
    """`airflow backfill create` names its runs `backfill__<run_after>` without asking the timetable
    (airflow-core 3.3 models/backfill.py, DagRun.generate_run_id): run_after of a past day is the day."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    with clock(day(2026, 11, 29, 12)):
        info = TT.next_dagrun_info(
            last_automated_data_interval=interval(2026, 3, 6), restriction=restriction(day(2026, 3, 6), catchup=True)
        )
    run_id = DagRun.generate_run_id(
        run_type=DagRunType.BACKFILL_JOB, logical_date=info.logical_date, run_after=info.run_after
    )
    assert run_id == "backfill__2026-03-07T00:00:00+00:00"
    assert (
        TT.generate_run_id(run_type=DagRunType.BACKFILL_JOB, run_after=info.run_after, data_interval=info.data_interval)
        == run_id
    )


def test_manual_run_ids_stay_unique_per_trigger() -> None:
    from airflow.utils.types import DagRunType

    # Without a logical date (no data interval): Airflow's id, the trigger time.
    run_id = TT.generate_run_id(run_type=DagRunType.MANUAL, run_after=day(2026, 3, 8, 10, 15), data_interval=None)
    assert run_id == "manual__2026-03-08T10:15:00+00:00"
    # `airflow dags trigger --logical-date`: Airflow passes an interval of the trigger time's day, not over.
    run_id = TT.generate_run_id(
        run_type=DagRunType.MANUAL, run_after=day(2026, 3, 8, 10, 15), data_interval=interval(2026, 3, 8)
    )
    assert run_id == "manual__2026-03-08T10:15:00+00:00"


def test_manual_run_id_names_the_day_its_logical_date_names() -> None:
    """REST/UI triggers: Airflow passes the interval inferred from the logical date; the grid shows the run
    id (not the note), so it names the exported day, and the trigger time keeps it unique."""
    from airflow.utils.types import DagRunType

    run_after = pendulum.datetime(2026, 3, 8, 10, 15, 0, 123456, tz="UTC")
    picked = TT.infer_manual_data_interval(run_after=day(2026, 3, 7, 22))
    run_id = TT.generate_run_id(run_type=DagRunType.MANUAL, run_after=run_after, data_interval=picked)
    assert run_id == "manual__2026-03-07_triggered_2026-03-08T10:15:00.123456+00:00"
    from airflow.models.dagrun import DagRun

    assert DagRun(run_id=run_id).run_id == run_id, "Airflow's run id validation accepts it"
    # An interval that is not one whole UTC day (given by hand): Airflow's id.
    odd = DataInterval(day(2026, 3, 6), day(2026, 3, 8))
    assert TT.generate_run_id(run_type=DagRunType.MANUAL, run_after=run_after, data_interval=odd) == (
        "manual__2026-03-08T10:15:00.123456+00:00"
    )


# -- first run -----------------------------------------------------------------------------


def test_first_run_with_catchup_starts_at_start_date_day() -> None:
    info = TT.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(day(2026, 1, 1), catchup=True)
    )
    assert_run_for(info, 2026, 1, 1)


def test_first_run_with_catchup_and_start_date_mid_day_starts_next_day() -> None:
    info = TT.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(day(2026, 1, 1, 10), catchup=True)
    )
    assert_run_for(info, 2026, 1, 2)


def test_no_start_date_no_run() -> None:
    assert TT.next_dagrun_info(last_automated_data_interval=None, restriction=restriction(None, catchup=True)) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (day(2026, 5, 10, 3, 59), (2026, 5, 8)),  # today's 04:00 run (for May 9) not due yet
        (day(2026, 5, 10, 4, 0), (2026, 5, 9)),  # exactly due
        (day(2026, 5, 10, 23, 0), (2026, 5, 9)),
        (day(2026, 5, 11, 0, 30), (2026, 5, 9)),  # after midnight, before 04:00
    ],
)
def test_first_run_without_catchup_is_latest_due_day(now: DateTime, expected: tuple[int, int, int]) -> None:
    # Clock mocked (see `clock`): only a frozen "now" shows which day is the latest due.
    with clock(now):
        info = TT.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction(day(2026, 1, 1), catchup=False)
        )
        assert_run_for(info, *expected)
    assert info.run_after <= now


def test_without_catchup_a_future_start_date_still_wins() -> None:
    with clock(day(2026, 5, 10, 12)):
        info = TT.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction(day(2026, 6, 1), catchup=False)
        )
        assert_run_for(info, 2026, 6, 1)


# -- after downtime ------------------------------------------------------------------------------


def test_catch_up_after_downtime_with_catchup() -> None:
    # Clock mocked (see `clock`) to prove "now" is ignored with catch-up: the day after the last run.
    with clock(day(2026, 5, 10, 12)):
        info = TT.next_dagrun_info(
            last_automated_data_interval=interval(2026, 5, 1), restriction=restriction(day(2026, 1, 1), catchup=True)
        )
        assert_run_for(info, 2026, 5, 2)


def test_downtime_without_catchup_jumps_to_latest_due_day() -> None:
    # Clock mocked (see `clock`): the scheduler came back on May 10 at 12:00 after being down since May 2.
    with clock(day(2026, 5, 10, 12)):
        info = TT.next_dagrun_info(
            last_automated_data_interval=interval(2026, 5, 1), restriction=restriction(day(2026, 1, 1), catchup=False)
        )
        assert_run_for(info, 2026, 5, 9)


def test_without_catchup_no_downtime_is_just_the_next_day() -> None:
    # Clock mocked (see `clock`): on schedule, the next run is the next day even if not due yet.
    with clock(day(2026, 5, 10, 4, 30)):
        info = TT.next_dagrun_info(
            last_automated_data_interval=interval(2026, 5, 9), restriction=restriction(day(2026, 1, 1), catchup=False)
        )
        assert_run_for(info, 2026, 5, 10)
    assert info.run_after == day(2026, 5, 11, 4)


# -- end date ----------------------------------------------------------------------------------


def test_restriction_latest_stops() -> None:
    r = restriction(day(2026, 1, 1), catchup=True, latest=day(2026, 3, 7))
    assert_run_for(TT.next_dagrun_info(last_automated_data_interval=interval(2026, 3, 6), restriction=r), 2026, 3, 7)
    assert TT.next_dagrun_info(last_automated_data_interval=interval(2026, 3, 7), restriction=r) is None


def test_restriction_latest_before_start() -> None:
    r = restriction(day(2026, 3, 8), catchup=True, latest=day(2026, 3, 7))
    assert TT.next_dagrun_info(last_automated_data_interval=None, restriction=r) is None


# -- manual runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_after", "expected"),
    [
        (day(2026, 3, 7), (2026, 3, 7)),  # midnight: that day (`airflow dags test DAG 2026-03-07`)
        (day(2026, 3, 7, 10), (2026, 3, 7)),  # any time of day: that UTC day (the UI keeps the time)
        (day(2026, 3, 7, 22), (2026, 3, 7)),
        (pendulum.datetime(2026, 3, 7, 23, 59, 59, tz="UTC"), (2026, 3, 7)),
        (pendulum.datetime(2026, 3, 7, 1, tz="Europe/Berlin"), (2026, 3, 7)),  # = 2026-03-07 00:00 UTC
        (pendulum.datetime(2026, 3, 7, 0, 30, tz="Europe/Berlin"), (2026, 3, 6)),  # = 2026-03-06 23:30 UTC
        (pendulum.datetime(2026, 3, 7, 8, tz="America/New_York"), (2026, 3, 7)),  # = 13:00 UTC
    ],
)
def test_infer_manual_data_interval(run_after: DateTime, expected: tuple[int, int, int]) -> None:
    got = TT.infer_manual_data_interval(run_after=run_after)
    assert got == interval(*expected)
    assert got.start.utcoffset() == dt.timedelta(0)


# -- serialisation and run_at ------------------------------------------------------------------


@pytest.mark.parametrize("run_at", [dt.time(4, 0), dt.time(0, 0), dt.time(6, 30), dt.time(23, 59)])
def test_serialize_round_trip(run_at: dt.time) -> None:
    tt = CalendarDayTimetable(run_at=run_at)
    data = tt.serialize()
    assert data == {"run_at": run_at.strftime("%H:%M")}
    back = CalendarDayTimetable.deserialize(data)
    assert isinstance(back, CalendarDayTimetable)
    assert back.run_at == run_at
    assert back.serialize() == data
    assert back.summary == tt.summary
    r = restriction(day(2026, 3, 7), catchup=True)
    assert back.next_dagrun_info(last_automated_data_interval=None, restriction=r) == tt.next_dagrun_info(
        last_automated_data_interval=None, restriction=r
    )


def test_default_run_at_is_0400() -> None:
    assert TT.run_at == dt.time(4, 0)
    assert "04:00 UTC" in TT.summary
    assert "04:00 UTC" in TT.description


def test_run_at_other_than_0400() -> None:
    tt = CalendarDayTimetable(run_at=dt.time(6, 30))
    info = tt.next_dagrun_info(
        last_automated_data_interval=interval(2026, 3, 6), restriction=restriction(day(2026, 1, 1), catchup=True)
    )
    assert_run_for(info, 2026, 3, 7, run_at=dt.time(6, 30))
    assert info.run_after == day(2026, 3, 8, 6, 30)
    assert "06:30" in tt.summary
    # Its "latest due day" moves with it; a manual logical date names its own day whatever run_at is.
    assert tt.infer_manual_data_interval(run_after=day(2026, 3, 8, 6, 0)) == interval(2026, 3, 8)
    # Clock mocked (see `clock`): 06:29 is before the 06:30 run time, 06:30 is not.
    for now, expected in ((day(2026, 5, 10, 6, 29), (2026, 5, 8)), (day(2026, 5, 10, 6, 30), (2026, 5, 9))):
        with clock(now):
            info = tt.next_dagrun_info(
                last_automated_data_interval=None, restriction=restriction(day(2026, 1, 1), catchup=False)
            )
            assert_run_for(info, *expected, run_at=dt.time(6, 30))


def test_midnight_run_at() -> None:
    tt = CalendarDayTimetable(run_at=dt.time(0, 0))
    info = tt.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(day(2026, 3, 7), catchup=True)
    )
    assert info is not None
    assert info.run_after == info.data_interval.end == day(2026, 3, 8)
