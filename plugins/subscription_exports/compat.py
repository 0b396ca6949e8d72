"""What differs between the supported Airflow minors (3.1.x, 3.2.x, 3.3.x), and between the provider
versions their platform sets pin (locks/platform-<version>.txt, docs/deploy.md): the one place that knows.

The rest of the package (and the tests) import these names from here instead of from Airflow. Each
shim detects the API it needs (no version numbers compared) and says which Airflow it serves and when
it can go. When 3.1 support ends, the 3.1 branches below go and most names become plain re-exports.

Airflow 3.0.x is not supported: docs/deploy.md ("Airflow 3.0") says what fails there and why.
"""

from __future__ import annotations

from typing import Any

# AirflowFailException moved to the Task SDK in 3.2 (airflow.exceptions still re-exports it there,
# with a deprecation warning). Serves 3.1.x; remove the fallback when 3.1 is no longer supported.
try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException

# Airflow's settings as a task reads them: the Task SDK's `conf` (3.2+); 3.1 has only the core one
# (same file, same environment variables). Serves 3.1.x; remove the fallback with 3.1.
try:
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf


def _backoff_takes_a_multiplier() -> bool:
    from airflow.sdk.bases.operator import BaseOperator

    return "float" in str(BaseOperator.__init__.__annotations__.get("retry_exponential_backoff", ""))


# Exponential backoff between retries, doubling the delay each try. 3.2+ take a multiplier (True is
# 1.0 there: a constant delay); 3.1 takes a bool (True doubles). Serves 3.1.x; becomes plain 2.0 with 3.1.
EXPONENTIAL_BACKOFF: float | bool = 2.0 if _backoff_takes_a_multiplier() else True


def connection_undefined(exc: BaseException) -> bool:
    """Airflow's "connection not found": ``AirflowNotFoundException`` or a subclass, matched by name
    because the class lives in ``airflow.exceptions`` or the Task SDK depending on the version and the
    process (task, dag-processor, CLI)."""
    return "NotFound" in type(exc).__name__


def run_deadlines_supported() -> bool:
    """Whether the DAGs may carry a Deadline Alert (the delivery deadline, alerts.py).

    Airflow 3.1 evaluates a DAG's deadline when it creates a run and raises when the run has no
    logical date (``models/deadline.py`` ``_fetch_from_db``: "No matching record found"), so every
    trigger without a logical date (UI, REST, ``airflow dags trigger`` of a range) would be refused;
    3.2+ create the run without a deadline instead. Detected by 3.2's serialized deadline module.
    Serves 3.1.x (no late-delivery alert there); remove with 3.1."""
    import importlib.util

    return importlib.util.find_spec("airflow.serialization.definitions.deadline") is not None


def hook_lineage_collector() -> tuple[Any, type]:
    """Airflow's hook lineage collector and its no-op class (a no-op collector: no lineage reader installed).

    In the Task SDK (``airflow.sdk.lineage``) since 3.2; 3.1 has it in ``airflow.lineage.hook`` (the
    same collector the providers' hooks report to). Imported on use: nothing of lineage loads at DAG
    parse time. Serves 3.1.x; remove the fallback with 3.1."""
    try:
        from airflow.sdk.lineage import NoOpCollector, get_hook_lineage_collector
    except ImportError:  # Airflow 3.1
        from airflow.lineage.hook import NoOpCollector, get_hook_lineage_collector
    return get_hook_lineage_collector(), NoOpCollector


def exception_for_callbacks(context: Any, exc: BaseException) -> None:
    """Put the task's exception into its context, where its failure callback reads it.

    A task process puts it there itself before the callbacks run, but Airflow 3.1's in-process runner
    (``InProcessTestSupervisor.run_task``: ``airflow dags test``, ``dag.test()``) calls them without it,
    so the failure alert blamed a killed worker ("failed without an exception") for a one-line
    configuration error; 3.3's sets ``context["exception"] = error`` first. Serves 3.1.x (its own value,
    where it has one, is kept); remove with 3.1."""
    context.setdefault("exception", exc)


def postgres_openlineage_converter() -> None:
    """Give the OpenLineage provider a converter of ``postgres://`` assets where the postgres provider has none.

    The OpenLineage provider turns a collected asset into a dataset only through the converter the
    asset's provider registers for its scheme, and drops it otherwise. apache-airflow-providers-postgres
    6.6.0 (Airflow 3.1.8's platform set) registers ``postgres://`` URIs without one (6.7.0 added
    ``convert_asset_to_openlineage``), so every source table vanished from the COMPLETE events there and
    only the S3 outputs remained. This registers the same conversion (naming spec: namespace
    ``postgres://host:port``, name ``database.schema.table``) for this process; a provider that has its
    own keeps it. Serves postgres provider < 6.7.0; remove when requirements.txt's lower bound reaches it."""
    try:
        from airflow.providers_manager import ProvidersManager

        converters = ProvidersManager().asset_to_openlineage_converters
    except (ImportError, AttributeError):  # no provider manager of this shape: nothing to complete
        return
    for scheme in ("postgres", "postgresql"):
        converters.setdefault(scheme, _postgres_asset_to_openlineage)


def _postgres_asset_to_openlineage(asset: Any, lineage_context: Any) -> Any:
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.openlineage.facet import Dataset

    parsed = urlsplit(asset.uri)
    _, database, schema, table = parsed.path.split("/")
    return Dataset(namespace=f"postgres://{parsed.netloc}", name=f"{database}.{schema}.{table}")


def dag_run_info(*, run_after: Any, data_interval: Any) -> Any:
    """A timetable's ``DagRunInfo`` for a run without a partition.

    3.2 added ``partition_date`` and ``partition_key`` as *required* fields (3.3 gives them defaults;
    3.1 does not have them). Serves 3.2.x; when 3.2 is no longer supported, call
    ``DagRunInfo(run_after=..., data_interval=...)`` directly."""
    from airflow.timetables.base import DagRunInfo

    if "partition_key" in DagRunInfo._fields:  # Airflow 3.2+
        return DagRunInfo(run_after=run_after, data_interval=data_interval, partition_date=None, partition_key=None)
    return DagRunInfo(run_after=run_after, data_interval=data_interval)


def dag_bag_class() -> type:
    """Airflow's ``DagBag`` (the DAG-integrity tests parse the dags/ folder with it; not used at run time).

    ``airflow.dag_processing.dagbag`` since 3.2, ``airflow.models.dagbag`` in 3.1 (deprecated from 3.2).
    Serves 3.1.x; remove with 3.1."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def dag_serialization() -> type:
    """The class that turns a DAG into its serialized (JSON) form and back (DAG-integrity tests only).

    ``DagSerialization`` since 3.2; 3.1 has the same ``to_dict``/``from_dict`` on ``SerializedDAG``.
    Serves 3.1.x; remove with 3.1."""
    try:
        from airflow.serialization.serialized_objects import DagSerialization
    except ImportError:  # Airflow 3.1
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization
    return DagSerialization


__all__ = [
    "AirflowFailException",
    "conf",
    "dag_bag_class",
    "dag_run_info",
    "dag_serialization",
    "exception_for_callbacks",
    "hook_lineage_collector",
    "postgres_openlineage_converter",
]
