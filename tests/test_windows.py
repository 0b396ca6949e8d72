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
    range_window,
    window_from_interval,
)

TODAY = dt.date(2026, 3, 10)
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
    w = range_window("2026-03-01", "2026-03-07", today=TODAY)
    assert (w.start, w.end, w.kind) == (utc(2026, 3, 1), utc(2026, 3, 8), "range")
    assert (w.date_from, w.date_to, w.days) == (dt.date(2026, 3, 1), dt.date(2026, 3, 7), 7)
    assert contains(w, utc(2026, 3, 1))
    assert contains(w, utc(2026, 3, 7, 23, 59, 59, 999999))
    assert not contains(w, utc(2026, 3, 8))
    assert not contains(w, utc(2026, 2, 28, 23, 59, 59, 999999))


def test_range_window_single_day_and_today() -> None:
    w = range_window("2026-03-10", "2026-03-10", today=TODAY)
    assert (w.start, w.end, w.days) == (utc(2026, 3, 10), utc(2026, 3, 11), 1)


def test_range_window_accepts_date_objects_and_padding() -> None:
    assert range_window(dt.date(2026, 3, 1), dt.date(2026, 3, 7), today=TODAY) == range_window(
        " 2026-03-01 ", "2026-03-07", today=TODAY
    )


def test_inverted_range() -> None:
    msg = one_line_error(range_window, "2026-03-07", "2026-03-01", today=TODAY)
    assert "inverted" in msg and "2026-03-07" in msg and "2026-03-01" in msg


def test_future_date_to_is_relative_to_today_argument() -> None:
    msg = one_line_error(range_window, "2026-03-01", "2026-03-11", today=TODAY)
    assert "date_to" in msg and "future" in msg and "2026-03-10" in msg
    # The same range is fine when the run was triggered a day later: no wall clock involved.
    assert range_window("2026-03-01", "2026-03-11", today=dt.date(2026, 3, 11)).days == 11


def test_366_days_accepted_367_rejected() -> None:
    assert MAX_RANGE_DAYS == 366
    w = range_window("2025-03-10", "2026-03-10", today=TODAY)
    assert w.days == 366
    msg = one_line_error(range_window, "2025-03-09", "2026-03-10", today=TODAY)
    assert "367" in msg and "366" in msg


@pytest.mark.parametrize("bad", ["2026-13-01", "03/07/2026", "2026-3-7", "yesterday", "2026-02-30", "2026-03-01T00:00"])
@pytest.mark.parametrize("param", ["date_from", "date_to"])
def test_malformed_dates_name_the_param(bad: str, param: str) -> None:
    args = {"date_from": "2026-03-01", "date_to": "2026-03-07", param: bad}
    msg = one_line_error(range_window, args["date_from"], args["date_to"], today=TODAY)
    assert f"'{param}'" in msg
    assert repr(bad) in msg


@pytest.mark.parametrize("empty", ["", None])
@pytest.mark.parametrize("param", ["date_from", "date_to"])
def test_missing_dates_name_the_param(empty: str | None, param: str) -> None:
    args = {"date_from": "2026-03-01", "date_to": "2026-03-07", param: empty}
    msg = one_line_error(range_window, args["date_from"], args["date_to"], today=TODAY)
    assert f"'{param}'" in msg and "missing" in msg


@pytest.mark.parametrize("bad", ["20260301xx", "2026030100", "20260301T0", "2026-W09-1"])
def test_ten_character_non_dates_rejected(bad: str) -> None:
    msg = one_line_error(range_window, bad, "2026-03-07", today=TODAY)
    assert "'date_from'" in msg


# -- serialisation and label -------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [day_window(DAY), range_window("2026-01-01", "2026-03-07", today=TODAY)],
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
    assert range_window("2026-03-01", "2026-03-07", today=TODAY).label == "2026-03-01..2026-03-07"
    assert range_window("2026-03-07", "2026-03-07", today=TODAY).label == "2026-03-07..2026-03-07"
