"""Export windows: whole UTC days, scheduled or manual, validated with one-line messages."""

from __future__ import annotations

import datetime as dt

import pytest

from subscription_exports.windows import (
    MAX_RANGE_DAYS,
    UTC,
    Window,
    WindowError,
    day_window,
    latest_complete_day,
    latest_due_day,
    manual_day,
    range_window,
    resolve,
    window_from_interval,
)

TODAY = dt.date(2026, 3, 10)
# The moment the run resolves its window: 2026-03-10 is over, 2026-03-11 is not.
NOW = dt.datetime(2026, 3, 11, 9, 30, tzinfo=dt.UTC)
DAY = dt.date(2026, 3, 7)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def contains(window: Window, moment: dt.datetime) -> bool:
    return window.start <= moment < window.end


def one_line_error(func, *args, **kwargs) -> str:
    with pytest.raises(WindowError) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


# -- day_window ---------------------------------------------------------------------------------


def test_day_window_bounds() -> None:
    w = day_window(DAY)
    assert (w.start, w.end, w.kind) == (utc(2026, 3, 7), utc(2026, 3, 8), "daily")
    assert w.start.tzinfo is not None and w.start.utcoffset() == dt.timedelta(0)
    assert (w.date_from, w.date_to, w.days) == (DAY, DAY, 1)
    assert contains(w, utc(2026, 3, 7))
    assert contains(w, utc(2026, 3, 7, 23, 59, 59, 999999))
    assert not contains(w, utc(2026, 3, 8))
    assert not contains(w, utc(2026, 3, 6, 23, 59, 59, 999999))


@pytest.mark.parametrize("day", [dt.date(2024, 2, 29), dt.date(2026, 12, 31), dt.date(2026, 3, 29)])
def test_day_window_is_24_hours_whatever_the_day(day: dt.date) -> None:
    # 2026-03-29 is a DST change in Europe; UTC days are always 24 h.
    w = day_window(day)
    assert w.end - w.start == dt.timedelta(days=1)
    assert w.label == day.isoformat()


# -- window_from_interval ----------------------------------------------------------------------


def test_window_from_interval_one_utc_day() -> None:
    assert window_from_interval(utc(2026, 3, 7), utc(2026, 3, 8)) == day_window(DAY)


def test_window_from_interval_in_another_timezone_is_the_same_utc_day() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    start = dt.datetime(2026, 3, 7, 2, tzinfo=plus2)
    assert window_from_interval(start, start + dt.timedelta(days=1)) == day_window(DAY)


def test_window_from_interval_accepts_pendulum() -> None:
    import pendulum

    start = pendulum.datetime(2026, 3, 7, tz="UTC")
    assert window_from_interval(start, start.add(days=1)) == day_window(DAY)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2026, 3, 7, 4), utc(2026, 3, 8, 4)),  # a cron tick interval, not a calendar day
        (utc(2026, 3, 7), utc(2026, 3, 9)),  # two days
        (utc(2026, 3, 7), utc(2026, 3, 7)),  # empty
        (utc(2026, 3, 7), utc(2026, 3, 7, 23)),  # short
        (utc(2026, 3, 8), utc(2026, 3, 7)),  # inverted
        (
            dt.datetime(2026, 3, 7, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2026, 3, 8, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),  # local midnight, not UTC midnight
    ],
)
def test_window_from_interval_rejects_other_intervals(start: dt.datetime, end: dt.datetime) -> None:
    msg = one_line_error(window_from_interval, start, end)
    assert "not one UTC calendar day" in msg
    assert "CalendarDayTimetable" in msg


# -- range_window ------------------------------------------------------------------------------


def test_range_window_bounds() -> None:
    w = range_window("2026-03-01", "2026-03-07", now=NOW)
    assert (w.start, w.end, w.kind) == (utc(2026, 3, 1), utc(2026, 3, 8), "range")
    assert (w.date_from, w.date_to, w.days) == (dt.date(2026, 3, 1), dt.date(2026, 3, 7), 7)
    assert contains(w, utc(2026, 3, 1))
    assert contains(w, utc(2026, 3, 7, 23, 59, 59, 999999))
    assert not contains(w, utc(2026, 3, 8))
    assert not contains(w, utc(2026, 2, 28, 23, 59, 59, 999999))


def test_range_window_single_day_that_is_over() -> None:
    w = range_window("2026-03-10", "2026-03-10", now=NOW)
    assert (w.start, w.end, w.days) == (utc(2026, 3, 10), utc(2026, 3, 11), 1)
    # Over from the first microsecond of the next day on.
    assert range_window("2026-03-10", "2026-03-10", now=utc(2026, 3, 11)).days == 1


def test_range_window_accepts_date_objects_and_padding() -> None:
    assert range_window(dt.date(2026, 3, 1), dt.date(2026, 3, 7), now=NOW) == range_window(
        " 2026-03-01 ", "2026-03-07", now=NOW
    )


def test_inverted_range() -> None:
    msg = one_line_error(range_window, "2026-03-07", "2026-03-01", now=NOW)
    assert "inverted" in msg and "2026-03-07" in msg and "2026-03-01" in msg


@pytest.mark.parametrize("date_to", ["2026-03-11", "2026-03-12", "2027-01-01"])
def test_date_to_today_or_later_is_refused_naming_the_latest_complete_day(date_to: str) -> None:
    msg = one_line_error(range_window, "2026-03-01", date_to, now=NOW)
    assert msg == (
        f"param 'date_to': {date_to} is not over yet (now 2026-03-11 09:30 UTC): only complete UTC days are "
        "exported; the latest complete day is 2026-03-10"
    )


def test_today_is_refused_up_to_its_last_microsecond() -> None:
    one_line_error(range_window, "2026-03-11", "2026-03-11", now=utc(2026, 3, 11, 23, 59, 59, 999999))
    assert range_window("2026-03-11", "2026-03-11", now=utc(2026, 3, 12)).days == 1


def test_now_in_another_timezone_is_the_same_utc_moment() -> None:
    # 2026-03-11 01:00 at +02:00 is 2026-03-10 23:00 UTC: 2026-03-10 is not over yet.
    plus2 = dt.timezone(dt.timedelta(hours=2))
    msg = one_line_error(range_window, "2026-03-10", "2026-03-10", now=dt.datetime(2026, 3, 11, 1, tzinfo=plus2))
    assert "the latest complete day is 2026-03-09" in msg


def test_366_days_accepted_367_rejected() -> None:
    assert MAX_RANGE_DAYS == 366
    w = range_window("2025-03-10", "2026-03-10", now=NOW)
    assert w.days == 366
    msg = one_line_error(range_window, "2025-03-09", "2026-03-10", now=NOW)
    assert "367" in msg and "366" in msg


@pytest.mark.parametrize("bad", ["2026-13-01", "03/07/2026", "2026-3-7", "yesterday", "2026-02-30", "2026-03-01T00:00"])
@pytest.mark.parametrize("param", ["date_from", "date_to"])
def test_malformed_dates_name_the_param(bad: str, param: str) -> None:
    args = {"date_from": "2026-03-01", "date_to": "2026-03-07", param: bad}
    msg = one_line_error(range_window, args["date_from"], args["date_to"], now=NOW)
    assert f"'{param}'" in msg
    assert repr(bad) in msg


@pytest.mark.parametrize("empty", ["", None])
@pytest.mark.parametrize("param", ["date_from", "date_to"])
def test_missing_dates_name_the_param(empty: str | None, param: str) -> None:
    args = {"date_from": "2026-03-01", "date_to": "2026-03-07", param: empty}
    msg = one_line_error(range_window, args["date_from"], args["date_to"], now=NOW)
    assert f"'{param}'" in msg and "missing" in msg


@pytest.mark.parametrize("bad", ["20260301xx", "2026030100", "20260301T0", "2026-W09-1"])
def test_ten_character_non_dates_rejected(bad: str) -> None:
    msg = one_line_error(range_window, bad, "2026-03-07", now=NOW)
    assert "'date_from'" in msg


# -- serialisation and label -------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [day_window(DAY), range_window("2026-01-01", "2026-03-07", now=NOW)],
)
def test_to_dict_from_dict_round_trip(window: Window) -> None:
    data = window.to_dict()
    assert all(isinstance(v, str) for v in data.values())
    again = Window.from_dict(data)
    assert again == window
    assert again.start.utcoffset() == dt.timedelta(0)


def test_to_dict_shape() -> None:
    assert day_window(DAY).to_dict() == {
        "start": "2026-03-07T00:00:00+00:00",
        "end": "2026-03-08T00:00:00+00:00",
        "kind": "daily",
    }


def test_label() -> None:
    assert day_window(DAY).label == "2026-03-07"
    assert range_window("2026-03-01", "2026-03-07", now=NOW).label == "2026-03-01..2026-03-07"
    assert range_window("2026-03-07", "2026-03-07", now=NOW).label == "2026-03-07..2026-03-07"


# -- which day: latest complete, latest due, manual runs -----------------------------------------


def test_latest_complete_day_is_yesterday_utc() -> None:
    assert latest_complete_day(utc(2026, 3, 11)) == dt.date(2026, 3, 10)
    assert latest_complete_day(utc(2026, 3, 11, 23, 59)) == dt.date(2026, 3, 10)
    assert latest_complete_day(dt.datetime(2026, 3, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == dt.date(
        2026, 3, 9
    )


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 3, 8, 5), dt.date(2026, 3, 7)),
        (utc(2026, 3, 8, 4), dt.date(2026, 3, 7)),  # exactly at the 04:00 run time
        (utc(2026, 3, 8, 3, 59, 59), dt.date(2026, 3, 6)),  # March 7 is over but not yet due
        (utc(2026, 3, 8), dt.date(2026, 3, 6)),
    ],
)
def test_latest_due_day(moment: dt.datetime, expected: dt.date) -> None:
    assert latest_due_day(moment) == expected


def test_latest_due_day_follows_run_at() -> None:
    assert latest_due_day(utc(2026, 3, 8, 6, 29), dt.time(6, 30)) == dt.date(2026, 3, 6)
    assert latest_due_day(utc(2026, 3, 8, 6, 30), dt.time(6, 30)) == dt.date(2026, 3, 7)


def test_manual_day() -> None:
    trigger = utc(2026, 3, 8, 5)
    # no logical date: the latest due day at trigger time
    assert manual_day(None, trigger) == dt.date(2026, 3, 7)
    assert manual_day(None, utc(2026, 3, 8, 3)) == dt.date(2026, 3, 6)
    # a logical date: its UTC day, whatever its time of day and the trigger time (the UI's date
    # picker keeps the current time: picking the 22nd at 22:00 means the 22nd)
    assert manual_day(utc(2026, 3, 2), trigger) == dt.date(2026, 3, 2)
    assert manual_day(utc(2026, 3, 5, 10), trigger) == dt.date(2026, 3, 5)
    assert manual_day(utc(2026, 3, 5, 3), trigger) == dt.date(2026, 3, 5)
    assert manual_day(utc(2026, 3, 5, 23, 59, 59), trigger) == dt.date(2026, 3, 5)
    # an offset other than UTC: the UTC day of that moment
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert manual_day(dt.datetime(2026, 3, 6, 0, 30, tzinfo=berlin), trigger) == dt.date(2026, 3, 5)
    # a logical date wins over any data interval (the CLI's is inferred from the trigger time)
    assert manual_day(utc(2026, 3, 5, 10), trigger, data_interval=(utc(2026, 3, 8), utc(2026, 3, 9))) == dt.date(
        2026, 3, 5
    )
    # no logical date but a data interval: a dry run that released its logical date keeps the day there
    assert manual_day(None, trigger, data_interval=(utc(2026, 3, 2), utc(2026, 3, 3))) == dt.date(2026, 3, 2)


# -- resolve: every way a run starts -------------------------------------------------------------


def run(run_type: str = "manual", **kwargs):
    args = {
        "run_type": run_type,
        "params": {"date_from": None, "date_to": None},
        "logical_date": None,
        "run_after": utc(2026, 3, 11, 9),
        "data_interval": None,
        "now": NOW,
    }
    args.update(kwargs)
    return resolve(**args)


def test_resolve_scheduled_and_backfill_runs_export_their_data_interval() -> None:
    for run_type in ("scheduled", "backfill"):
        w = run(run_type, logical_date=utc(2026, 3, 7), data_interval=(utc(2026, 3, 7), utc(2026, 3, 8)))
        assert w == day_window(DAY)


def test_resolve_plain_trigger_without_logical_date_or_interval() -> None:
    # `airflow dags trigger DAG` in Airflow 3.3: no logical date, no data interval.
    assert run() == day_window(dt.date(2026, 3, 10))
    assert run(run_after=utc(2026, 3, 11, 3)) == day_window(dt.date(2026, 3, 9))
    # Cleared and re-run two days later: still the day of its trigger time.
    assert run(now=utc(2026, 3, 13, 12)) == day_window(dt.date(2026, 3, 10))


def test_resolve_manual_run_with_logical_date_ignores_its_data_interval() -> None:
    # `airflow dags trigger --logical-date 2026-03-07` infers the data interval from the trigger time
    # (airflow-core 3.3 api/common/trigger_dag.py), the REST API from the logical date: the day comes
    # from the logical date in both cases.
    trigger_day = (utc(2026, 3, 11), utc(2026, 3, 12))  # the CLI's: the day of its trigger time
    assert run(logical_date=utc(2026, 3, 7), data_interval=trigger_day) == day_window(DAY)
    # Cleared days later: decided on the trigger time, so the same.
    assert run(logical_date=utc(2026, 3, 7), data_interval=trigger_day, now=utc(2026, 3, 20)) == day_window(DAY)
    other_day = trigger_day
    assert run(logical_date=utc(2026, 3, 7, 10), data_interval=other_day) == day_window(DAY)
    assert run(logical_date=utc(2026, 3, 7, 22), data_interval=other_day) == day_window(DAY)


def test_resolve_refuses_a_named_day_contradicted_by_dates_or_a_data_interval() -> None:
    """A logical date of a day over at trigger time names the run (manual__<D>_triggered_...): a range or a
    hand-given data interval of another day is refused, in one line, rather than exported under that name."""
    msg = one_line_error(
        run, logical_date=utc(2026, 3, 7, 22), params={"date_from": "2026-03-01", "date_to": "2026-03-02"}
    )
    assert msg == (
        "the logical date 2026-03-07 22:00 UTC names day 2026-03-07, but params 'date_from'/'date_to' ask for "
        "2026-03-01 .. 2026-03-02: clear the logical date for a range export, or the dates to export that day"
    )
    msg = one_line_error(run, logical_date=utc(2026, 3, 7), data_interval=(utc(2026, 3, 5), utc(2026, 3, 6)))
    assert "but the data interval given with it is day 2026-03-05" in msg
    # The UI form's default logical date (the trigger moment) names no day: a range goes ahead.
    w = run(logical_date=utc(2026, 3, 11, 8, 59), params={"date_from": "2026-03-01", "date_to": "2026-03-02"})
    assert w.label == "2026-03-01..2026-03-02"
    # A dry run that gave up its logical date is held to the day it named (its run id names it).
    params = {"date_from": "2026-03-01", "date_to": "2026-03-02", "dry_run": True}
    msg = one_line_error(run, params=params, data_interval=(utc(2026, 3, 7), utc(2026, 3, 8)))
    assert msg.startswith("this dry run's logical date named day 2026-03-07, but params 'date_from'/'date_to'")
    # The same day given as data interval is no contradiction.
    assert run(logical_date=utc(2026, 3, 7, 22), data_interval=(utc(2026, 3, 7), utc(2026, 3, 8))) == day_window(DAY)


def test_resolve_released_dry_run_exports_the_day_its_logical_date_named() -> None:
    # notes.release_dry_run_slot: logical date cleared when the dry run starts, day kept as data interval
    params = {"date_from": None, "date_to": None, "dry_run": True}
    assert run(params=params, data_interval=(utc(2026, 3, 7), utc(2026, 3, 8))) == day_window(DAY)


def test_resolve_manual_logical_date_of_a_day_not_over_is_refused() -> None:
    with pytest.raises(WindowError) as info:
        run(logical_date=utc(2026, 3, 11), data_interval=(utc(2026, 3, 11), utc(2026, 3, 12)))
    assert str(info.value) == (
        "day 2026-03-11 is not over yet (now 2026-03-11 09:30 UTC): only complete UTC days are exported; "
        "the latest complete day is 2026-03-10 (the logical date 2026-03-11 00:00 UTC names day 2026-03-11: "
        "pick a day that is over, or leave the logical date empty)"
    )
    # The UI's trigger form fills in the current moment: today, refused the same way, in one line.
    msg = one_line_error(run, logical_date=utc(2026, 3, 11, 9, 29))
    assert msg.startswith("day 2026-03-11 is not over yet") and "leave the logical date empty" in msg


def test_resolve_manual_range() -> None:
    w = run(params={"date_from": "2026-03-01", "date_to": "2026-03-07"}, logical_date=utc(2026, 3, 11, 9))
    assert (w.kind, w.label) == ("range", "2026-03-01..2026-03-07")
    msg = one_line_error(run, params={"date_from": "2026-03-01", "date_to": "2026-03-11"})
    assert "the latest complete day is 2026-03-10" in msg


@pytest.mark.parametrize("run_type", ["backfill", "scheduled"])
@pytest.mark.parametrize("params", [{"date_from": "2026-03-01", "date_to": "2026-03-07"}, {"date_to": "2026-03-07"}])
def test_resolve_refuses_dates_outside_manual_runs(run_type: str, params: dict) -> None:
    msg = one_line_error(
        run, run_type, params=params, logical_date=utc(2026, 3, 7), data_interval=(utc(2026, 3, 7), utc(2026, 3, 8))
    )
    assert "'date_from'/'date_to'" in msg and "single manual runs only" in msg and f"{run_type} run" in msg


def test_resolve_non_manual_run_without_data_interval() -> None:
    msg = one_line_error(run, "asset_triggered")
    assert msg == "this asset_triggered run has no data interval, so it names no day to export"


def test_a_day_not_over_is_named_before_the_length_of_the_range() -> None:
    msg = one_line_error(range_window, "2026-03-06", "2999-01-01", now=NOW)
    assert msg.startswith("param 'date_to': 2999-01-01 is not over yet")
