"""Observability of one export: progress lines on long exports, from the exporter loop.

A real export (SQLite source, SeaweedFS) with the progress thresholds lowered to zero, so every
chunk counts as "long"; and with the defaults (30 s / 256 MiB), where a small export logs none.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from conftest import export_events_from_sqlite, snapshot_and_empty

from subscription_exports import exporter

pytestmark = pytest.mark.system

DAY = dt.date(2026, 3, 7)
PROGRESS = re.compile(
    r"progress destination=(?P<destination>\S+) table=(?P<table>\S+) window=(?P<window>\S+) rows=(?P<rows>\d+) "
    r"bytes=(?P<bytes>\d+) seconds=(?P<seconds>[\d.]+) rows_per_s=(?P<rate>\d+)"
)


@pytest.fixture(scope="module")
def sqlite_path(sqlite_database_factory) -> str:
    return str(sqlite_database_factory(apps=["com.acme.ios"], start=DAY, days=1, rows_per_day=3000, seed=5))


def export(sqlite_path: str, client) -> exporter.ExportResult:
    destination = {
        "name": "ios",
        "conn_id": "unused",
        "bucket": "exports",
        "folder": "progress",
        "app_id": "com.acme.ios",
    }
    return export_events_from_sqlite(sqlite_path, client, destination, day=DAY, run_id="progress-test")[0]


def progress_lines(caplog) -> list[dict[str, str]]:
    return [m.groupdict() for r in caplog.records if (m := PROGRESS.search(r.getMessage()))]


def test_long_exports_log_progress_lines(seaweedfs, sqlite_path, caplog, monkeypatch):
    client = seaweedfs.admin_client()
    monkeypatch.setattr(exporter, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(exporter, "PROGRESS_BYTES", 0)
    with caplog.at_level(logging.INFO, logger=exporter.__name__):
        result = export(sqlite_path, client)
    snapshot_and_empty(client)
    lines = progress_lines(caplog)
    assert lines, caplog.text[-3000:]
    assert result.rows > 0
    for line in lines:
        assert (line["destination"], line["table"], line["window"]) == ("ios", "events", str(DAY))
        assert 0 < int(line["rows"]) <= result.rows
        assert 0 < int(line["bytes"]) <= result.bytes
    rows = [int(line["rows"]) for line in lines]
    assert rows == sorted(rows) and rows[-1] == result.rows
    # Every chunk is logged here, so the last line counts every byte of the stored (uncompressed) object.
    assert int(lines[-1]["bytes"]) == result.bytes


def test_short_exports_log_no_progress(seaweedfs, sqlite_path, caplog):
    client = seaweedfs.admin_client()
    with caplog.at_level(logging.INFO, logger=exporter.__name__):
        export(sqlite_path, client)
    snapshot_and_empty(client)
    assert progress_lines(caplog) == []
