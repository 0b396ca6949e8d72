"""Deploying into an existing Airflow (docs/deploy.md), checked on the Airflow these tests run on.

* Managed service: ``make plugins-zip``'s archive unpacked into a fresh plugins folder, next to a fresh
  dags folder holding only the DAG files, and nothing of this repository on the Python path: one
  ``airflow dags test`` of ``s3_export`` reads its destinations file and SQL from the include/ the zip
  carries, and writes the reference bytes. CI runs this on the oldest supported Airflow (.ci/run).
* Official image: the Dockerfile's ``pip install`` (build arguments expanded, the image's paths mapped
  to the files it copies there) run with ``--dry-run`` against the tested environment resolves to
  nothing to install: the image gets the set the tests ran with, and keeps its Airflow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import reference as ref
from conftest import AIRFLOW_HOME, assert_ok, aws_connection, snapshot_and_empty, source_connection
from test_docker_compose import dockerfile_copies, dockerfile_pip_install

from devtools import airflow_env, plugins_zip
from subscription_exports.integrations import S3_EXPORT

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]
IOS, ANDROID = "com.acme.ios", "com.acme.android"
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": dt.date(2026, 3, 6), "days": 3, "rows_per_day": 60, "seed": 5}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Path:
    """A fresh dags/ (the DAG files only) and plugins/ (plugins.zip unpacked), as a managed service has them."""
    base = tmp_path_factory.mktemp("managed-service")
    archive = plugins_zip.build(base / "plugins.zip")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(base / "plugins")
    (base / "dags").mkdir()
    for dag_file in (ROOT / "dags").glob("*.py"):
        shutil.copy(dag_file, base / "dags" / dag_file.name)
    return base


def deployment_env(base: Path, **extra: str) -> dict[str, str]:
    # PYTHONPATH empty: the package can only come from the unpacked plugins folder (Airflow puts the
    # plugins folder on sys.path), never from this repository.
    return airflow_env.airflow_env(
        AIRFLOW_HOME,
        AIRFLOW__CORE__DAGS_FOLDER=str(base / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(base / "plugins"),
        PYTHONPATH="",
        SUBSCRIPTION_EXPORTS_RETRIES="0",
        **extra,
    )


def test_plugins_zip_holds_the_package_the_plugin_and_include() -> None:
    names = set(plugins_zip.entries())
    assert "subscription_exports_plugin.py" in names
    assert "subscription_exports/compat.py" in names
    assert f"subscription_exports/include/{S3_EXPORT.config_file}" in names
    assert "subscription_exports/include/sql/postgres/events.sql" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_unpacked_package_reads_include_from_itself(deployment: Path) -> None:
    probe = "import json, subscription_exports as p; print(json.dumps([p.__file__, str(p.INCLUDE_DIR)]))"
    env = {**os.environ, "PYTHONPATH": str(deployment / "plugins")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=deployment)
    assert result.returncode == 0, result.stderr[-2000:]
    module_file, include_dir = json.loads(result.stdout.strip().splitlines()[-1])
    assert module_file == str(deployment / "plugins" / "subscription_exports" / "__init__.py")
    assert include_dir == str(deployment / "plugins" / "subscription_exports" / "include")


def test_dag_from_the_unpacked_plugins_zip_exports_the_reference_bytes(
    deployment, airflow_db, seaweedfs, pg_database_factory
) -> None:
    source_url = pg_database_factory(**SEED_ARGS)
    src = ref.load_source(source_url)
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    env = deployment_env(
        deployment,
        # No Variable: the destinations come from the shipped file inside the unpacked package.
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    )
    result = subprocess.run(
        [str(airflow_env.AIRFLOW_BIN), "dags", "test", S3_EXPORT.dag_id, DAY.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=deployment,
    )
    assert_ok(result)
    objects = {k: v for k, v in snapshot_and_empty(admin).items() if not k.endswith(".manifest.json")}
    window = {"start": START, "end": START + dt.timedelta(days=1)}
    ios = f"adapty-events/com.acme.ios/subscriptions/{{t}}/dt={DAY}/{{t}}_{DAY}.csv"
    android = f"adapty-events/com.acme.android/subscriptions/{{t}}/dt={DAY}/{{t}}_{DAY}.csv"
    tables = ("events", "paywall_visits")
    assert sorted(objects) == sorted([ios.format(t=t) for t in tables] + [android.format(t=t) for t in tables])
    assert objects[ios.format(t="events")] == ref.expected_events(
        src, app_id=IOS, event_types=set(S3_EXPORT.all_event_types), **window
    )
    assert objects[ios.format(t="paywall_visits")] == ref.expected_paywall_visits(src, app_id=IOS, **window)


def test_dockerfile_install_resolves_to_the_tested_environment(tmp_path: Path) -> None:
    """The Dockerfile's pip command, for the Airflow installed here, changes nothing in this environment."""
    airflow_version = version("apache-airflow")
    words = dockerfile_pip_install()
    image_default = next(w for w in words if w.startswith("apache-airflow==")).split("==", 1)[1]
    copies = {image: ROOT / source for image, source in dockerfile_copies().items()}
    # The image path of the constraints holds locks/airflow-<image default>.txt: use the constraints this
    # environment was built from (`make venv` records them: this Airflow's lock, or its platform set).
    built_from = Path(sys.prefix) / ".constraints"
    constraints = (
        ROOT / built_from.read_text().strip() if built_from.is_file() else ROOT / f"locks/airflow-{airflow_version}.txt"
    )
    copies = {
        image: constraints if path.name == f"airflow-{image_default}.txt" else path for image, path in copies.items()
    }
    command = [
        str(copies.get(w, w)) if w in copies else w.replace(f"=={image_default}", f"=={airflow_version}")
        for w in words[words.index("install") + 1 :]
    ]
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report), *command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"pip {' '.join(command)}\n{result.stderr[-3000:]}"
    would_install = [
        f"{i['metadata']['name']}=={i['metadata']['version']}" for i in json.loads(report.read_text())["install"]
    ]
    assert would_install == [], f"the image would install other versions than the tests ran with: {would_install}"
