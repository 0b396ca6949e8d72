"""System test: the destination check on a RUNNING Airflow (api-server, scheduler, dag-processor).

An unreachable or busy store at the destination check fails the try and Airflow retries it, with
exponential backoff; a wrong secret fails at once, with one try. What a user sees is read where
the user reads it: run and task states, try numbers and task logs from the REST API the UI calls,
and the objects in the bucket, compared with the reference bytes (tests/reference.py).

The store is a SeaweedFS of this module's own (it is stopped and restarted here, which must not
disturb other modules' store), reached directly or through devtools/faultproxy.py. Retries are
few and short (``SUBSCRIPTION_EXPORTS_RETRIES=3``, ``SUBSCRIPTION_EXPORTS_RETRY_DELAY_SECONDS=5``:
5-10 s, then 10-20 s, 20-40 s); each S3 request gets 2 attempts from botocore first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import reference as ref
from airflow_cluster import Airflow, running_airflow
from conftest import EXPORTER, ROOT, list_keys, source_connection

from devtools import airflow_env
from devtools.bench_scale import TIMINGS
from devtools.faultproxy import FaultProxy
from devtools.seaweedfs import SeaweedFS
from subscription_exports.integrations import S3_EXPORT

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
TASK = "destination.export_tables"
IOS = "com.retry.ios"
DAY = dt.date(2026, 3, 7)
SEED_ARGS = {"apps": [IOS], "start": DAY, "days": 1, "rows_per_day": 60, "seed": 31}
BUCKET = "exports"
TABLES = ("events", "paywall_visits")
RANGE = {"date_from": str(DAY), "date_to": str(DAY)}
RETRIES = 3
ATTEMPTS = {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard", "total_max_attempts": 2}}


def dest(name: str, conn_id: str) -> dict[str, Any]:
    return {"name": name, "conn_id": conn_id, "bucket": BUCKET, "folder": f"retry/{name}", "app_id": IOS}


def key(name: str, table: str) -> str:
    return f"retry/{name}/{table}/manual/{DAY}_{DAY}/{table}_{DAY}_{DAY}.csv"


def where(name: str, conn_id: str) -> str:
    return f"destination '{name}' (connection '{conn_id}', bucket '{BUCKET}')"


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[SeaweedFS]:
    """This module's own SeaweedFS, started from the main thread (its process dies with that thread)."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs-retries"), [EXPORTER], buckets=[BUCKET])
    try:
        server.start()
    except Exception as exc:
        pytest.fail(f"SeaweedFS could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(store) -> Iterator[FaultProxy]:
    with FaultProxy(store.endpoint_url) as p:
        yield p


@pytest.fixture(scope="module")
def source_url(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def expected(source_url) -> dict[str, bytes]:
    src = ref.load_source(source_url)
    window = {
        "app_id": IOS,
        "start": dt.datetime(2026, 3, 7, tzinfo=dt.UTC),
        "end": dt.datetime(2026, 3, 8, tzinfo=dt.UTC),
    }
    return {
        "events": ref.expected_events(src, event_types=set(S3_EXPORT.all_event_types), **window),
        "paywall_visits": ref.expected_paywall_visits(src, **window),
    }


BROKEN_TRANSFORM = "retry_test_transforms:drop_a_column"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, store, proxy, source_url) -> Iterator[Airflow]:
    # A destination's transform that breaks the file's shape, importable by every component.
    modules = tmp_path_factory.mktemp("transforms")
    (modules / "retry_test_transforms.py").write_text("def drop_a_column(frame):\n    return frame.iloc[:, 1:]\n")

    def conn(endpoint_url: str, secret: str = EXPORTER.secret_key) -> str:
        return airflow_env.aws_connection_json(endpoint_url, EXPORTER.access_key, secret, config_kwargs=ATTEMPTS)

    with running_airflow(
        tmp_path_factory.mktemp("airflow-check-retries"),
        pg_database_factory(),
        expect_dags=[DAG_ID],
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the runs this test triggers
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT), str(modules)]),
        SUBSCRIPTION_EXPORTS_RETRIES=str(RETRIES),
        SUBSCRIPTION_EXPORTS_RETRY_DELAY_SECONDS="5",
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_VIA_PROXY=conn(proxy.endpoint_url),
        AIRFLOW_CONN_DIRECT=conn(store.endpoint_url),
        AIRFLOW_CONN_WRONG_SECRET=conn(store.endpoint_url, secret="not-the-exporter-secret"),
    ) as af:
        af.cli("dags", "unpause", DAG_ID)
        yield af


# -- helpers ---------------------------------------------------------------------------------------


def set_destinations(airflow: Airflow, *dests: dict[str, Any]) -> None:
    value = json.dumps({"source_conn_id": "subscription_source", "destinations": list(dests)})
    airflow.cli("variables", "set", "s3_export_destinations", value)


def api(airflow: Airflow, path: str, **query: Any) -> Any:
    return airflow.api("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))


def export_tis(airflow: Airflow, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's export_tables map indexes as the UI lists them (REST API), by destination name
    (the label, without an index suffix such as " (#2)")."""
    listed = api(airflow, f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    return {(ti["rendered_map_index"] or "").split(" (#")[0]: ti for ti in listed if ti["task_id"] == TASK}


def log_lines(airflow: Airflow, run_id: str, map_index: int, try_number: int) -> list[dict[str, Any]]:
    """One try's task log as the UI shows it (REST API): structured lines with `event` and `level`."""
    path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK}/logs/{try_number}"
    content = api(airflow, path, map_index=map_index, full_content="true")["content"]
    return [line for line in content if isinstance(line, dict) and "event" in line]


def errors(lines: list[dict[str, Any]]) -> list[str]:
    return [line["event"] for line in lines if line.get("level") == "error"]


def ours(lines: list[dict[str, Any]]) -> list[str]:
    return [line["event"] for line in lines if str(line.get("logger", "")).startswith("subscription_exports")]


def trigger(airflow: Airflow, run_id: str) -> None:
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(RANGE))


def wait_run(airflow: Airflow, run_id: str) -> str:
    return airflow.wait_runs_terminal(run_id, lambda r: r["run_id"] == run_id, 1)[run_id]


def objects(store: SeaweedFS, name: str) -> dict[str, bytes]:
    client = store.admin_client()
    return {
        k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in list_keys(client, BUCKET, f"retry/{name}/")
    }


def assert_exact(store: SeaweedFS, name: str, expected: dict[str, bytes]) -> None:
    stored = objects(store, name)
    assert sorted(stored) == sorted(key(name, t) + s for t in TABLES for s in ("", ".manifest.json")), sorted(stored)
    for table in TABLES:
        assert stored[key(name, table)] == expected[table], f"{name}/{table}: not the reference bytes"


# -- tests -----------------------------------------------------------------------------------------


def test_dry_run_switch_is_an_optional_checkbox_in_the_trigger_form(airflow):
    """What the trigger form reads (REST `/api/v2/dags/{dag_id}/details`, as the UI does). Airflow 3.3's
    form marks a param required (asterisk) when its schema has a type that does not include "null",
    and renders the first non-null type: a checkbox for "boolean"."""
    param = api(airflow, f"dags/{DAG_ID}/details")["params"]["dry_run"]
    schema = param["schema"]
    assert param["value"] is False
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    assert "null" in types, f"the form marks dry_run required: {schema}"
    assert [t for t in types if t != "null"] == ["boolean"], f"not rendered as a checkbox: {schema}"


def test_store_busy_at_the_check_is_retried_and_a_wrong_secret_fails_at_once(airflow, store, proxy, expected):
    """`flaky` meets 503 SlowDown at its check for two tries (both of botocore's attempts each time),
    then the store answers: the map index succeeds on its third try with the exact bytes. `wrong`
    (wrong secret) fails on its first try, with one ERROR line, and is not retried."""
    reshaped = {**dest("reshaped", "direct"), "transform": BROKEN_TRANSFORM}
    set_destinations(airflow, dest("flaky", "via_proxy"), dest("wrong", "wrong_secret"), reshaped)
    busy = proxy.fail(503, times=4, method="GET", query="list-type=2")  # the check's first request
    trigger(airflow, "busy_store")
    assert wait_run(airflow, "busy_store") == "failed"  # because of `wrong`; `flaky` recovered

    tis = export_tis(airflow, "busy_store")
    assert {name: (ti["state"], ti["try_number"]) for name, ti in tis.items() if name != "reshaped"} == {
        "flaky": ("success", 3),
        "wrong": ("failed", 1),
    }, airflow.explain_runs(["busy_store"])
    assert tis["reshaped"]["state"] == "failed"
    assert busy.applied == 4
    assert_exact(store, "flaky", expected)
    assert objects(store, "wrong") == {}

    flaky = tis["flaky"]["map_index"]
    cause = f"{where('flaky', 'via_proxy')}: check failed: SlowDown: Please reduce your request rate."
    for try_number in (1, 2):
        line = (
            f"{cause}; the store is unreachable or busy, Airflow retries this task (try {try_number} of {RETRIES + 1})"
        )
        assert errors(log_lines(airflow, "busy_store", flaky, try_number))[0] == line
    third = log_lines(airflow, "busy_store", flaky, 3)
    assert errors(third) == []
    assert f"{where('flaky', 'via_proxy')}: bucket reachable, prefix 'retry/flaky' writable" in ours(third)

    wrong = log_lines(airflow, "busy_store", tis["wrong"]["map_index"], 1)
    first_error = errors(wrong)[0]
    assert first_error.startswith(f"{where('wrong', 'wrong_secret')}: check failed: SignatureDoesNotMatch"), wrong
    assert "retries" not in first_error and "\n" not in first_error


def test_a_broken_transform_names_its_destination_once(airflow):
    """Point 6 of issue 20: the ERROR line of a failed transform named the destination twice."""
    ti = export_tis(airflow, "busy_store")["reshaped"]
    line = errors(log_lines(airflow, "busy_store", ti["map_index"], 1))[0]
    assert line.startswith(
        f"transform '{BROKEN_TRANSFORM}' of destination 'reshaped' must return the same columns in the same order"
    ), line
    assert line.count("reshaped") == 1, "the destination is named once"


def test_the_export_log_reads_credentials_once_and_ends_with_a_sentence(airflow):
    """Point 6 of issue 20, in the task log of the run above: "credentials retrieved" once per try
    (one S3 client), and the phase timings as a sentence, not `timings ... body=`."""
    flaky = export_tis(airflow, "busy_store")["flaky"]["map_index"]
    lines = log_lines(airflow, "busy_store", flaky, 3)
    events = [line["event"] for line in lines]
    assert [e for e in events if "credentials retrieved" in e] == [
        "AWS Connection (conn_id='via_proxy', conn_type='aws') credentials retrieved from login and password."
    ], events
    done = [e for e in ours(lines) if e.startswith("destination flaky done in ")]
    assert len(done) == 1, ours(lines)
    assert not [e for e in events if "timings" in e or "body=" in e], events
    # `make bench-scale` still reads the phases, from the task log files as it does.
    match = TIMINGS.search(airflow.task_log("busy_store", TASK))
    assert match and match["destination"] == "flaky", done
    phases = sum(float(match[k]) for k in ("imports", "config", "check", "export"))
    assert abs(phases - float(match["body"])) < 0.01, done


def test_store_stopped_and_restarted_during_a_run_the_run_succeeds(airflow, store, expected):
    """SeaweedFS is stopped; a run of two destinations starts: both checks meet a refused
    connection (EndpointConnectionError) and fail their first try, saying they are retried. The store
    is started again (same data, same port): the retries succeed, the run ends `success` and every
    object holds the reference bytes."""
    set_destinations(airflow, dest("outage-a", "direct"), dest("outage-b", "direct"))
    endpoint = store.endpoint_url
    store.stop()
    try:
        trigger(airflow, "store_outage")

        def both_failed_once() -> bool:
            tis = export_tis(airflow, "store_outage")
            return len(tis) == 2 and all(ti["try_number"] >= 1 and ti["state"] == "up_for_retry" for ti in tis.values())

        airflow.wait("both checks to fail while the store is down", both_failed_once)
    finally:
        store.start()
    assert store.endpoint_url == endpoint, "SeaweedFS came back on another port (taken meanwhile); rerun the test"

    assert wait_run(airflow, "store_outage") == "success", airflow.explain_runs(["store_outage"])
    tis = export_tis(airflow, "store_outage")
    for name in ("outage-a", "outage-b"):
        assert tis[name]["state"] == "success" and tis[name]["try_number"] >= 2, tis[name]
        assert_exact(store, name, expected)
        first = errors(log_lines(airflow, "store_outage", tis[name]["map_index"], 1))[0]
        assert first.startswith(
            f"{where(name, 'direct')}: check failed: EndpointConnectionError: Could not connect to the endpoint URL: "
            f'"{endpoint}/{BUCKET}'
        ), first
        assert first.endswith(f"; the store is unreachable or busy, Airflow retries this task (try 1 of {RETRIES + 1})")
