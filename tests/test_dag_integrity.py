"""The DAG files parse cleanly, are cheap to parse, and carry the settings production needs."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import airflow
import pytest

from subscription_exports.tasks import MAP_INDEX_TEMPLATE
from subscription_exports.timetable import CalendarDayTimetable

AIRFLOW_MINOR = tuple(int(part) for part in airflow.__version__.split(".")[:2])

ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = ROOT / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))
DAG_IDS = {"s3_export", "custom_s3_ua_export"}
HEAVY_MODULES = ("pandas", "pyarrow", "boto3", "botocore", "psycopg2")


@pytest.fixture(scope="module")
def dagbag() -> Iterator[object]:
    from subscription_exports.compat import dag_bag_class

    DagBag = dag_bag_class()

    # conftest sets SUBSCRIPTION_EXPORTS_RETRIES=0 for the system tests; parse with the production default.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SUBSCRIPTION_EXPORTS_RETRIES", raising=False)
        yield DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_exactly_the_two_dags(dagbag) -> None:
    assert set(dagbag.dag_ids) == DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_settings(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag is not None
    assert dag.tags, "tags make the DAG findable in the UI"
    assert dag.doc_md and dag.doc_md.strip()
    assert dag.catchup is False
    assert isinstance(dag.timetable, CalendarDayTimetable)
    assert dag.timetable.run_at == dt.time(4, 0)
    assert {"date_from", "date_to"} <= set(dag.params.keys())
    for name in ("date_from", "date_to"):
        param = dag.params.get_param(name)
        assert param.value is None, "scheduled runs leave the range empty"
        assert param.schema.get("format") == "date"
        assert "Single manual runs (Trigger) only" in param.description, "the Backfill form shows it too"
    assert dag.tasks
    # resolve_window only computes: any error is a bad request or a bug, never transient, so it fails at
    # once; load_destinations gets one quick retry (a transient failure reading the Variable).
    fail_fast = {"resolve_window": (0, None), "load_destinations": (1, dt.timedelta(seconds=15))}
    for task in dag.tasks:
        if task.task_id in fail_fast:
            retries, delay = fail_fast[task.task_id]
            assert (task.retries, task.retry_delay if retries else None) == (retries, delay), task.task_id
            assert not (retries and task.retry_exponential_backoff), task.task_id
            continue
        assert task.retries >= 1, f"{task.task_id}: retries={task.retries}"
        # Airflow 3.3 reads it as a multiplier: True (1.0) would be a constant delay.
        # Doubling delays: a multiplier of 2.0 on Airflow 3.2+ (True is 1.0 there: constant), True on 3.1.
        doubling = 2.0 if AIRFLOW_MINOR >= (3, 2) else True
        assert task.retry_exponential_backoff == doubling, f"{task.task_id}: no exponential backoff"
        assert type(task.retry_exponential_backoff) is type(doubling), task.retry_exponential_backoff


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_explicit(path: Path) -> None:
    dag_calls = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and _name(node.func) in {"dag", "DAG"}
    ]
    assert dag_calls, f"{path.name}: no @dag(...) / DAG(...) call"
    for call in dag_calls:
        catchup = [kw for kw in call.keywords if kw.arg == "catchup"]
        assert catchup, f"{path.name}: catchup is not set explicitly"
        assert isinstance(catchup[0].value, ast.Constant) and catchup[0].value.value is False


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_serializes_with_its_timetable(dagbag, dag_id: str) -> None:
    # What the dag processor stores and the scheduler reads back: needs the timetable registered as a plugin.
    from subscription_exports.compat import dag_serialization

    DagSerialization = dag_serialization()

    data = DagSerialization.to_dict(dagbag.dags[dag_id])
    back = DagSerialization.from_dict(json.loads(json.dumps(data, default=str)))
    assert isinstance(back.timetable, CalendarDayTimetable)
    assert back.timetable.run_at == dt.time(4, 0)


# -- parse-time hygiene (static) -----------------------------------------------------------------

# Calls that reach a database, the metadata DB or a secrets backend.
FORBIDDEN_CALLS = {"connect", "get_connection", "get_hook", "get_conn", "get_records", "get_first", "get_pandas_df"}
SQL = re.compile(r"\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|copy\s*\()", re.I | re.S)


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return _name(node)


def _parse_time_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node that runs when the file is parsed. Bodies of @task functions run only in a worker;
    everything else in a DAG file (module level, the @dag function body, task groups) runs at parse time."""
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            _dotted(d.func if isinstance(d, ast.Call) else d).split(".")[0] == "task" for d in node.decorator_list
        ):
            stack.extend(node.decorator_list)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_database_variable_or_sql_at_parse_time(path: Path) -> None:
    problems = []
    for node in _parse_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted.endswith("Variable.get") or dotted.split(".")[-1] in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: call to {dotted}")
        if isinstance(node, ast.Name | ast.Attribute) and _name(node) == "BaseHook":
            problems.append(f"line {node.lineno}: BaseHook")
        if isinstance(node, ast.alias) and node.name.split(".")[-1] in {"BaseHook", "Variable"}:
            problems.append(f"imports {node.name}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            problems.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
    assert not problems, f"{path.name} does work at parse time: {problems}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_do_not_import_each_other(path: Path) -> None:
    others = {p.stem for p in DAG_FILES} | {"dags"}
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    bad = {m for m in imported if m.startswith(".") or m.split(".")[0] in others}
    assert not bad, f"{path.name} imports {bad}"


def test_parse_guard_finds_a_variable_get() -> None:
    # The static check above must actually see these; a guard that finds nothing proves nothing.
    source = (
        "from airflow.sdk import Variable, dag, task\n"
        "X = Variable.get('x')\n"
        "@dag()\n"
        "def d():\n"
        "    conn = BaseHook.get_connection('c')\n"
        "    @task\n"
        "    def t():\n"
        "        return Variable.get('fine_in_a_task')\n"
        "    q = 'SELECT * FROM events'\n"
    )
    nodes = list(_parse_time_nodes(ast.parse(source)))
    calls = {_dotted(n.func) for n in nodes if isinstance(n, ast.Call)}
    assert "Variable.get" in calls and "BaseHook.get_connection" in calls
    assert sum(1 for n in nodes if isinstance(n, ast.Call) and _dotted(n.func) == "Variable.get") == 1
    assert any(isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.search(n.value) for n in nodes)


def test_importing_dag_files_loads_no_heavy_modules() -> None:
    # A fresh interpreter, as the dag processor has: parsing must not pull in pandas/pyarrow/boto3.
    # Counted beyond what Airflow's own DAG-authoring imports load (Airflow 3.1's core imports psycopg2
    # through sqlalchemy_utils; 3.2+ does not).
    code = (
        "import importlib.util, json, sys\n"
        "from airflow.sdk import Asset, Param, dag, get_current_context, task, task_group\n"
        "import airflow.timetables.base\n"
        "airflow_own = set(sys.modules)\n"
        f"for i, path in enumerate({[str(p) for p in DAG_FILES]!r}):\n"
        "    spec = importlib.util.spec_from_file_location(f'dag_under_test_{i}', path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY_MODULES)!r} if m in set(sys.modules) - airflow_own)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=str(ROOT)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the DAG files imports {loaded}"


# -- Assets, task docs, concurrency --------------------------------------------------------------

TEST_DAGS_DIR = ROOT / "tests" / "dags"


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_export_task_outlets_docs_and_concurrency(dagbag, dag_id: str) -> None:
    from subscription_exports.integrations import INTEGRATIONS
    from subscription_exports.tasks import table_asset

    dag = dagbag.dags[dag_id]
    export = dag.get_task("destination.export_tables")
    tables = INTEGRATIONS[dag_id].table_names
    assert export.outlets == [table_asset(dag_id, t) for t in tables]
    assert export.max_active_tis_per_dag == 16
    assert export.pool == "default_pool", "no pool unless SUBSCRIPTION_EXPORTS_POOL names one"
    assert export.map_index_template == MAP_INDEX_TEMPLATE
    for task in dag.tasks:
        assert task.doc_md and "**Triage**" in task.doc_md, f"{task.task_id}: no triage docs"


def test_map_index_label_is_the_name_and_its_index() -> None:
    """`acme-ios (#2)`: the number Airflow shows where it shows no label (Clear dialog, CLI) is findable
    from the name; nothing (Airflow shows the number) before the task has named its destination."""
    import jinja2

    template = jinja2.Environment().from_string(MAP_INDEX_TEMPLATE)
    ti = types.SimpleNamespace(map_index=2)
    assert template.render(destination_name="acme-ios", ti=ti) == "acme-ios (#2)"
    assert template.render(ti=ti) == ""


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_one_task_per_destination_after_the_window_and_the_names(dagbag, dag_id: str) -> None:
    """Each destination is one map index of one task (check and export in it), expanded over the names
    load_destinations returns after the window resolved: no per-destination task waits for another, so
    no map index can be upstream_failed (Airflow labels a map index only when it runs)."""
    dag = dagbag.dags[dag_id]
    assert sorted(dag.task_ids) == ["destination.export_tables", "load_destinations", "resolve_window"]
    assert dag.get_task("load_destinations").upstream_task_ids == {"resolve_window"}
    assert dag.get_task("destination.export_tables").upstream_task_ids == {"load_destinations", "resolve_window"}
    assert "fix the cause, then clear this map index" in dag.get_task("destination.export_tables").doc_md.lower()


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dry_run_is_a_checkbox_off_by_default(dagbag, dag_id: str) -> None:
    param = dagbag.dags[dag_id].params.get_param("dry_run")
    assert param.value is False
    # Airflow 3.3's trigger form renders the first non-null type (a checkbox) and marks a param
    # "required" unless its type allows null (the REST check: tests/test_check_retries_system.py).
    assert param.schema["type"] == ["boolean", "null"]
    assert "write" in (param.description or "").lower()


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_docs_list_the_shipped_destinations(dagbag, dag_id: str) -> None:
    from subscription_exports.config import load_destinations
    from subscription_exports.integrations import INTEGRATIONS

    _, shipped = load_destinations(INTEGRATIONS[dag_id], variable_text=None)
    doc = dagbag.dags[dag_id].doc_md
    assert f"include/destinations/{dag_id}.yaml" in doc
    for dest in shipped:
        row = f"| {dest.name} | {dest.app_id} | `{dest.bucket_name}/{dest.prefix}` | {', '.join(dest.tables)} |"
        assert row in doc, doc


def test_dag_docs_describe_a_broken_shipped_file_without_failing(tmp_path) -> None:
    from subscription_exports.config import shipped_destinations_doc
    from subscription_exports.integrations import S3_EXPORT

    (tmp_path / "destinations").mkdir()
    (tmp_path / "destinations" / "s3_export.yaml").write_text("destinations:\n  - name: [\n", encoding="utf-8")
    assert "**The file has a problem**: destinations file" in shipped_destinations_doc(S3_EXPORT, tmp_path)
    (tmp_path / "destinations" / "s3_export.yaml").write_text(
        "destinations:\n  - {name: a, conn_id: c, bucket: exports, app_id: x, gzipp: 1}\n", encoding="utf-8"
    )
    assert "| a | **invalid**: " in shipped_destinations_doc(S3_EXPORT, tmp_path)


def test_dag_docs_say_which_destinations_are_in_effect(monkeypatch) -> None:
    """The docs say the Variable overrides the listed file, how to list the effective destinations,
    and "Not in effect here" when the Variable is set in the environment (cheap: no Variable read)."""
    from subscription_exports.config import shipped_destinations_doc
    from subscription_exports.integrations import S3_EXPORT

    monkeypatch.delenv("AIRFLOW_VAR_S3_EXPORT_DESTINATIONS", raising=False)
    doc = shipped_destinations_doc(S3_EXPORT)
    assert "In effect unless the Airflow Variable `s3_export_destinations` is set" in doc
    monkeypatch.setenv("AIRFLOW_VAR_S3_EXPORT_DESTINATIONS", '{"destinations": []}')
    assert "**Not in effect here**: `AIRFLOW_VAR_S3_EXPORT_DESTINATIONS` is set" in shipped_destinations_doc(S3_EXPORT)


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_docs_say_first_what_a_backfill_does_with_dry_run(dagbag, dag_id: str) -> None:
    doc = dagbag.dags[dag_id].doc_md
    assert f"airflow variables get {dag_id}_destinations" in doc
    assert "only when *Override parameters on existing runs* is ticked; **without it the backfill\n  writes**" in doc
    param = dagbag.dags[dag_id].params.get_param("dry_run")
    assert param.description.startswith('Backfill form: honoured only with "Override parameters on existing runs"')


def test_export_pool_and_limit_come_from_the_environment(monkeypatch) -> None:
    from subscription_exports.tasks import export_task_settings

    monkeypatch.delenv("SUBSCRIPTION_EXPORTS_POOL", raising=False)
    monkeypatch.delenv("SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS", raising=False)
    assert export_task_settings() == {"max_active_tis_per_dag": 16}
    monkeypatch.setenv("SUBSCRIPTION_EXPORTS_POOL", " subscription_source ")
    monkeypatch.setenv("SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS", "0")
    assert export_task_settings() == {"pool": "subscription_source"}


def test_downstream_test_dag_schedules_on_the_export_assets() -> None:
    from subscription_exports.compat import dag_bag_class

    DagBag = dag_bag_class()

    from subscription_exports.integrations import S3_EXPORT
    from subscription_exports.tasks import table_asset

    bag = DagBag(dag_folder=str(TEST_DAGS_DIR))
    assert bag.import_errors == {}
    dag = bag.dags["subscription_exports_consumer"]
    condition = dag.timetable.asset_condition  # asset | asset: an AssetAny of the two assets
    assert {a.uri for a in condition.objects} == {table_asset(S3_EXPORT.dag_id, t).uri for t in S3_EXPORT.table_names}
