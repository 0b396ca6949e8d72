"""What the deliveries page reads: the destinations in effect and a bounded set of metadata rows.

The matrix of one DAG over N days takes five queries whatever the number of destinations: the DAG's runs
that can have exported a shown day, the windows and the destination lists those runs computed (XComs
of resolve_window and load_destinations), their export_tables task instances and those map indexes'
XComs (the outcome each try kept: rows, bytes, keys; or the one-line cause). No S3 call and no log is
read. Runs in the api-server (the plugin's app) or a CLI process with Airflow's configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
from typing import Any

from subscription_exports import config, keys
from subscription_exports.deliveries import matrix
from subscription_exports.integrations import INTEGRATIONS, Integration

EXPORT_TASK = "destination.export_tables"
LOAD_TASK = "load_destinations"
WINDOW_TASK = "resolve_window"
DELIVERY_KEY = "delivery"  # tasks.DELIVERY_KEY (not imported: tasks loads the Task SDK's task API)
_cache_lock = threading.Lock()
_in_effect_cache: dict[str, tuple[list[matrix.DestinationInEffect], str]] = {}


def variable_text(key: str) -> str | None:
    """An Airflow Variable as the api-server reads it (secrets backends, environment, database).

    Airflow's own model, not the Task SDK's ``Variable``: that one asks a task's supervisor, which the
    api-server and a CLI process do not have (Airflow 3.1-3.3; the api-server's own routes use the model)."""
    from airflow.models import Variable

    return Variable.get(key, default_var=None)  # noqa: AIR311


def destinations_in_effect(
    integration: Integration, texts: dict[str, str | None]
) -> tuple[list[matrix.DestinationInEffect], str]:
    """(the destinations a run would export now, with what `config check` reports for each; the origin).

    ``texts``: each DAG's Variable text (None: the shipped file). ConfigError when the configuration
    itself cannot be read (a run would fail). Validated once per configuration text (thousands of
    destinations take a second): the result is kept until a Variable or file changes."""
    # What a run would read: each DAG's Variable text, else its shipped file's text (read, not parsed).
    files = {i.dag_id: _file_text(i) for i in INTEGRATIONS.values() if not texts.get(i.dag_id)}
    digest = hashlib.sha256(json.dumps([integration.dag_id, texts, files], sort_keys=True).encode()).hexdigest()
    with _cache_lock:
        if digest in _in_effect_cache:
            return _in_effect_cache[digest]
    own = config.load_configuration(integration, variable_text=texts.get(integration.dag_id))
    others = []
    for other in INTEGRATIONS.values():
        if other.dag_id != integration.dag_id:
            with contextlib.suppress(config.ConfigError):  # that DAG's own problem (its page shows it)
                others.append(config.load_configuration(other, variable_text=texts.get(other.dag_id)))
    valid, invalid = own.valid_destinations()
    clashes: dict[str, str] = {}
    for clash in keys.configuration_collisions([own, *others], limit=10_000):
        for owner in (clash.a.owner, clash.b.owner):
            if owner.dag_id == integration.dag_id:
                clashes.setdefault(owner.name, clash.message())
    by_name = {d.name: d for d in valid}
    found = []
    for name, entry in own.entries.items():
        dest = by_name.get(name)
        if dest is not None:
            found.append(
                matrix.DestinationInEffect(name, dest.app_id, dest.bucket_name, dest.prefix, clashes.get(name))
            )
        else:
            raw = entry if isinstance(entry, dict) else {}
            bucket, _, nested = str(raw.get("bucket", "")).partition("/")
            prefix = "/".join(p for p in (nested, str(raw.get("folder") or "")) if p)
            problem = invalid.get(name) or clashes.get(name)
            found.append(matrix.DestinationInEffect(name, str(raw.get("app_id", "")), bucket, prefix, problem))
    result = (found, own.origin)
    with _cache_lock:
        if len(_in_effect_cache) > 16:
            _in_effect_cache.clear()
        _in_effect_cache[digest] = result
    return result


def _file_text(integration: Integration) -> str | None:
    try:
        return (config.INCLUDE_DIR / integration.config_file).read_text(encoding="utf-8")
    except OSError:
        return None


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _json(value: Any) -> Any:
    """An XCom value as stored (JSON column: decoded by the driver, or text on some databases)."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def read_runs(session: Any, dag_id: str, first: dt.date, last: dt.date) -> list[matrix.Run]:
    """The runs that can have exported a day of first..last: a data interval meeting those days, or a
    run after `first` (manual runs without a logical date, range runs)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import and_, or_, select

    t = DagRun.__table__.c
    start, end = _midnight(first), _midnight(last + dt.timedelta(days=1))
    rows = session.execute(
        select(t.run_id, t.state, t.run_type, t.data_interval_start, t.data_interval_end, t.conf, t.run_after).where(
            t.dag_id == dag_id,
            or_(and_(t.data_interval_start < end, t.data_interval_end > start), t.run_after >= start),
        )
    ).all()
    if not rows:
        return []
    run_ids = [r.run_id for r in rows]
    windows = _xcoms(session, dag_id, WINDOW_TASK, run_ids, -1)
    names = _xcoms(session, dag_id, LOAD_TASK, run_ids, -1)
    runs = []
    for r in rows:
        conf = _json(r.conf) if r.conf is not None else {}
        window = windows.get(r.run_id)
        if isinstance(window, dict) and {"start", "end", "kind"} <= set(window):
            w_start, w_end, kind = _aware(window["start"]), _aware(window["end"]), str(window["kind"])
        elif isinstance(conf, dict) and conf.get("date_from") and conf.get("date_to"):
            w_start = _midnight(dt.date.fromisoformat(conf["date_from"]))
            w_end = _midnight(dt.date.fromisoformat(conf["date_to"]) + dt.timedelta(days=1))
            kind = "range"
        else:  # not resolved yet: the data interval is the day a daily run exports
            w_start, w_end = _aware(r.data_interval_start), _aware(r.data_interval_end)
            kind = "daily" if w_start and w_end and w_end - w_start == dt.timedelta(days=1) else ""
        listed = names.get(r.run_id)
        runs.append(
            matrix.Run(
                run_id=r.run_id,
                state=str(getattr(r.state, "value", r.state)) if r.state is not None else None,
                run_type=str(getattr(r.run_type, "value", r.run_type)),
                start=w_start,
                end=w_end,
                kind=kind,
                dry_run=bool(isinstance(conf, dict) and conf.get("dry_run")),
                run_after=_aware(r.run_after),
                names=[str(n) for n in listed] if isinstance(listed, list) else None,
            )
        )
    return runs


def _xcoms(session: Any, dag_id: str, task_id: str, run_ids: list[str], map_index: int) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    t = XComModel.__table__.c
    rows = session.execute(
        select(t.run_id, t.value).where(
            t.dag_id == dag_id,
            t.task_id == task_id,
            t.key == "return_value",
            t.map_index == map_index,
            t.run_id.in_(run_ids),
        )
    ).all()
    return {r.run_id: _json(r.value) for r in rows}


def read_outcomes(session: Any, dag_id: str, run_ids: list[str]) -> dict[str, dict[int, matrix.TaskOutcome]]:
    """Every map index of export_tables in `run_ids`, with the outcome its try kept."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not run_ids:
        return {}
    ti = TaskInstance.__table__.c
    tis = session.execute(
        select(ti.run_id, ti.map_index, ti.state, ti.try_number, ti.end_date, ti.rendered_map_index).where(
            ti.dag_id == dag_id, ti.task_id == EXPORT_TASK, ti.run_id.in_(run_ids)
        )
    ).all()
    x = XComModel.__table__.c
    kept = session.execute(
        select(x.run_id, x.map_index, x.key, x.value).where(
            x.dag_id == dag_id,
            x.task_id == EXPORT_TASK,
            x.key == DELIVERY_KEY,  # rows, objects or the cause: one value per map index to decode
            x.run_id.in_(run_ids),
        )
    ).all()
    values: dict[tuple[str, int, str], Any] = {(r.run_id, r.map_index, r.key): _json(r.value) for r in kept}
    found: dict[str, dict[int, matrix.TaskOutcome]] = {}
    for r in tis:
        found.setdefault(r.run_id, {})[r.map_index] = matrix.TaskOutcome(
            map_index=r.map_index,
            state=str(getattr(r.state, "value", r.state)) if r.state is not None else None,
            try_number=int(r.try_number or 0),
            end_date=_aware(r.end_date),
            label=r.rendered_map_index,
            delivery=values.get((r.run_id, r.map_index, DELIVERY_KEY)),
        )
    return found


def read_matrix(dag_id: str, days: list[dt.date], session: Any = None) -> matrix.Matrix:
    """The matrix of `dag_id` over `days` (oldest first) from the metadata database."""
    from airflow.utils.session import create_session

    integration = INTEGRATIONS[dag_id]
    texts = {i.dag_id: variable_text(i.variable_key) for i in INTEGRATIONS.values()}
    problem = None
    try:
        destinations, origin = destinations_in_effect(integration, texts)
    except config.ConfigError as exc:
        destinations, origin, problem = [], str(exc).split(":", 1)[0], str(exc)
    if session is None:
        with create_session() as own_session:
            return _read(own_session, dag_id, days, destinations, origin, problem)
    return _read(session, dag_id, days, destinations, origin, problem)


def _read(session, dag_id, days, destinations, origin, problem) -> matrix.Matrix:
    runs = read_runs(session, dag_id, days[0], days[-1])
    outcomes = read_outcomes(session, dag_id, [r.run_id for r in runs])
    return matrix.build(
        dag_id=dag_id, days=days, destinations=destinations, origin=origin, runs=runs, outcomes=outcomes,
        problem=problem,
    )  # fmt: skip


def read_object_ref(session: Any, dag_id: str, run_id: str, map_index: int, table: str) -> dict[str, Any] | None:
    """The object a map index wrote for `table` (bucket, key, manifest_key, bytes, destination), from its XComs."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    x = XComModel.__table__.c
    rows = session.execute(
        select(x.key, x.value).where(
            x.dag_id == dag_id, x.task_id == EXPORT_TASK, x.run_id == run_id, x.map_index == map_index,
            x.key.in_(("return_value", DELIVERY_KEY)),
        )
    ).all()  # fmt: skip
    values = {r.key: _json(r.value) for r in rows}
    result, delivery = values.get("return_value"), values.get(DELIVERY_KEY)
    objects = delivery.get("objects") if isinstance(delivery, dict) else None
    ref = objects.get(table) if isinstance(objects, dict) else None
    if isinstance(ref, dict) and isinstance(result, dict):
        return {**ref, "destination": result.get("destination")}
    return None
