"""Run the real Airflow CLI against this project with a private AIRFLOW_HOME (demo, tests, benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for an Airflow process using this project's dags/ and plugins/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        }
    )
    env.update(extra)
    return env


def migrate(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"], env=airflow_env(home), capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stderr[-3000:]}")


def aws_connection_json(
    endpoint_url: str, access_key: str, secret_key: str, *, region: str = "us-east-1", **extra: Any
) -> str:
    """An Airflow `aws` connection for an S3-compatible endpoint, path-style addressing."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": access_key,
            "password": secret_key,
            "extra": {
                "endpoint_url": endpoint_url,
                "region_name": region,
                "config_kwargs": {"s3": {"addressing_style": "path"}},
                **extra,
            },
        }
    )


def source_connection(url: str) -> str:
    """An Airflow connection for a postgresql:// URL, or a SQLite file path."""
    if url.startswith("postgresql://"):
        return url
    return json.dumps({"conn_type": "sqlite", "host": str(url)})


def dags_test(
    home: Path,
    dag_id: str,
    *,
    logical_date: str | None = None,
    conf: dict[str, Any] | None = None,
    connections: dict[str, str],
    variables: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 900,
) -> subprocess.CompletedProcess[str]:
    """`airflow dags test DAG [DATE] [--conf JSON]`, connections and variables passed as AIRFLOW_CONN_/VAR_;
    `env` adds other environment variables (e.g. SUBSCRIPTION_EXPORTS_RETRIES)."""
    extra = {f"AIRFLOW_CONN_{k.upper()}": v for k, v in connections.items()}
    extra.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in (variables or {}).items()})
    cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf is not None:
        cmd += ["--conf", json.dumps(conf)]
    extra.update(env or {})
    process_env = airflow_env(home, **extra)
    process_env.setdefault("SUBSCRIPTION_EXPORTS_RETRIES", os.environ.get("SUBSCRIPTION_EXPORTS_RETRIES", "3"))
    return subprocess.run(cmd, env=process_env, capture_output=True, text=True, timeout=timeout)
