"""The note a manual run gets when it starts (plugins/subscription_exports/notes.py)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from subscription_exports.notes import MAX_NOTE, merged_note, release_dry_run_slot, window_note


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


NOW = utc(2026, 3, 11, 9, 30)


def note(run_type: str = "manual", conf: dict | None = None, **kwargs) -> str | None:
    args = {"logical_date": None, "run_after": utc(2026, 3, 11, 9), "data_interval": None, "now": NOW}
    args.update(kwargs)
    return window_note(run_type=run_type, conf=conf, **args)


def test_manual_range_run_note_names_the_range() -> None:
    conf = {"date_from": "2026-03-01", "date_to": "2026-03-07"}
    assert note(conf=conf) == "Exports 2026-03-01..2026-03-07 (UTC, manual range)"


def test_plain_manual_run_note_names_its_day() -> None:
    assert note() == "Exports 2026-03-10 (UTC)"
    assert note(logical_date=utc(2026, 3, 2)) == "Exports 2026-03-02 (UTC)"


def test_dry_run_says_so() -> None:
    assert note(conf={"dry_run": True}) == "Exports 2026-03-10 (UTC) (dry run: writes nothing)"


def test_refused_runs_say_why() -> None:
    assert note(conf={"date_from": "2026-03-01", "date_to": "2026-03-11"}) == (
        "Not exported: param 'date_to': 2026-03-11 is not over yet (now 2026-03-11 09:30 UTC): only complete UTC "
        "days are exported; the latest complete day is 2026-03-10"
    )
    backfill = note(
        "backfill",
        conf={"date_from": "2026-03-01", "date_to": "2026-03-07"},
        logical_date=utc(2026, 3, 7),
        data_interval=(utc(2026, 3, 7), utc(2026, 3, 8)),
    )
    assert backfill is not None and backfill.startswith("Not exported: params 'date_from'/'date_to'")


def test_scheduled_and_backfill_runs_get_no_note_their_run_id_names_the_day() -> None:
    for run_type in ("scheduled", "backfill"):
        assert note(run_type, logical_date=utc(2026, 3, 7), data_interval=(utc(2026, 3, 7), utc(2026, 3, 8))) is None


def test_user_note_is_kept_below_and_a_restart_adds_nothing() -> None:
    ours = "Exports 2026-03-10 (UTC)"
    assert merged_note(ours, None) == ours
    assert merged_note(ours, "re-run for ticket 42") == f"{ours}\n\nre-run for ticket 42"
    assert merged_note(ours, merged_note(ours, "re-run for ticket 42")) == f"{ours}\n\nre-run for ticket 42"
    assert merged_note(ours, ours) == ours
    # Cleared after a refusal: the new window replaces the old first paragraph.
    refused = "Not exported: day 2026-03-11 is not over yet"
    assert merged_note(ours, f"{refused}\n\nre-run for ticket 42") == f"{ours}\n\nre-run for ticket 42"
    assert len(merged_note(ours, "x" * 2000)) == MAX_NOTE


def test_a_dry_backfill_run_says_it_writes_nothing() -> None:
    dry = note(
        "backfill",
        conf={"dry_run": True},
        logical_date=utc(2026, 3, 7),
        data_interval=(utc(2026, 3, 7), utc(2026, 3, 8)),
    )
    assert dry == "Exports 2026-03-07 (UTC) (dry run: writes nothing)"


def test_a_manual_dry_run_releases_its_logical_date_and_keeps_its_day() -> None:
    """notes.release_dry_run_slot on a stand-in for the DagRun row (the system test
    tests/test_dry_runs_system.py shows it on a running Airflow)."""
    run = SimpleNamespace(
        run_type="manual", logical_date=utc(2026, 3, 7, 22), conf={"dry_run": True},
        data_interval_start=utc(2026, 3, 7), data_interval_end=utc(2026, 3, 8),
    )  # fmt: skip
    assert release_dry_run_slot(run)
    assert run.logical_date is None
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 7), utc(2026, 3, 8))
    assert note(conf=run.conf, data_interval=(run.data_interval_start, run.data_interval_end)) == (
        "Exports 2026-03-07 (UTC) (dry run: writes nothing)"
    )
    assert not release_dry_run_slot(run), "released once"
    # Real runs, dry runs without a logical date and other run types keep theirs.
    for kept in (
        SimpleNamespace(run_type="manual", logical_date=utc(2026, 3, 7), conf={"dry_run": False}),
        SimpleNamespace(run_type="manual", logical_date=utc(2026, 3, 7), conf={}),
        SimpleNamespace(run_type="backfill", logical_date=utc(2026, 3, 7), conf={"dry_run": True}),
    ):
        assert not release_dry_run_slot(kept)
        assert kept.logical_date == utc(2026, 3, 7)
