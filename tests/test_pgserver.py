"""devtools.pgserver: the embedded PostgreSQL from the pinned wheel starts beside the suite's server.

The PostgreSQL system tests themselves run against the embedded server in CI
(`SUBSCRIPTION_EXPORTS_PG=embedded`, see .ci/run); this checks the fallback on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from urllib.parse import urlsplit

from devtools import pgserver
from devtools.synthetic import generate


def test_embedded_server_runs_beside_the_suite_server(postgres: str) -> None:
    suite = urlsplit(postgres)
    server = pgserver.start_embedded()
    work = server._data_dir
    try:
        assert server.kind == "embedded"
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}"
        assert server.port != suite.port
        conn = server.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            assert cur.fetchone()[0].startswith("18.")
            cur.execute("CREATE DATABASE seeded")
        conn.close()
        counts = generate(
            f"{server.url}/seeded",
            apps=["com.a"],
            start=dt.date(2026, 3, 1),
            days=1,
            rows_per_day=20,
            seed=1,
            recreate=True,
        )
        assert counts["events"] > 0
    finally:
        server.stop()
    assert work is not None and not work.exists(), "stop() deletes the embedded server's directory"
    # The suite's server is untouched and still answers.
    suite_server = pgserver.Postgres(suite.hostname or "", suite.port or 5432, "system")
    with contextlib.closing(suite_server.connect()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
