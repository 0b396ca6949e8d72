"""source.connect: a postgres connection opened with PostgresHook's arguments, on a real PostgreSQL."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from subscription_exports import source


def postgres_connection(monkeypatch: pytest.MonkeyPatch, url: str, extra: dict) -> str:
    parts = urlsplit(url)
    conn = {
        "conn_type": "postgres",
        "host": parts.hostname,
        "port": parts.port,
        "login": parts.username,
        "schema": "postgres",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_SOURCE_UNDER_TEST", json.dumps(conn))
    return "source_under_test"


def test_extras_reach_libpq_and_hook_only_extras_do_not(monkeypatch: pytest.MonkeyPatch, postgres: str) -> None:
    # `cursor` and `sqlalchemy_scheme` are the hook's own: passed to libpq they would fail the connect
    # ("invalid connection option"); every other extra is a libpq option, as with PostgresHook.
    conn_id = postgres_connection(
        monkeypatch,
        postgres,
        {"application_name": "se-connect-test", "sslmode": "disable", "cursor": "dictcursor", "sqlalchemy_scheme": "x"},
    )
    dialect, connection = source.connect(conn_id)
    try:
        assert dialect == "postgres"
        assert type(connection).__module__.startswith("psycopg2")
        with connection.cursor() as cur:
            cur.execute("SELECT current_setting('application_name'), current_database()")
            assert cur.fetchone() == ("se-connect-test", "postgres")
    finally:
        connection.close()


def test_an_unknown_option_fails_with_libpqs_line(monkeypatch: pytest.MonkeyPatch, postgres: str) -> None:
    conn_id = postgres_connection(monkeypatch, postgres, {"not_a_libpq_option": "1"})
    with pytest.raises(Exception, match='invalid connection option "not_a_libpq_option"'):
        source.connect(conn_id)


def test_the_hooks_own_extras_are_all_left_out() -> None:
    # source.HOOK_EXTRAS copies PostgresHook's list so the export need not import the hook; a provider
    # release that adds one must not see it passed to libpq.
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    assert set(PostgresHook.ignored_extra_options) <= source.HOOK_EXTRAS
