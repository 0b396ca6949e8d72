"""Lineage without a running DAG: the declared source tables match the SQL, and without a lineage
reader (OpenLineage provider absent or not configured) nothing is reported and nothing of
OpenLineage is imported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from subscription_exports import source
from subscription_exports.integrations import INTEGRATIONS

ROOT = Path(__file__).resolve().parents[1]
SPECS = {spec.name: spec for integration in INTEGRATIONS.values() for spec in integration.tables}


def tables_read(sql: str) -> set[str]:
    """Table names after FROM/JOIN, comments removed; SQLite's json_each(...) is a function, not a table."""
    text = re.sub(r"--[^\n]*", "", sql)
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)", text, flags=re.I)) - {"json_each"}


@pytest.mark.parametrize("dialect", source.DIALECTS)
@pytest.mark.parametrize("table", sorted(SPECS))
def test_declared_source_tables_are_what_the_sql_reads(dialect, table):
    assert set(SPECS[table].source_tables) == tables_read(source.read_sql(dialect, table))
    assert len(SPECS[table].source_tables) == len(set(SPECS[table].source_tables))


# The one function that imports OpenLineage: the converter compat registers for the OpenLineage
# provider where the postgres provider has none; only that provider calls it, OpenLineage loaded.
CALLED_BY_OPENLINEAGE = re.compile(r"\ndef _postgres_asset_to_openlineage\(.*?(?=\ndef |\Z)", flags=re.S)


def test_runtime_package_never_imports_openlineage():
    for path in (ROOT / "plugins" / "subscription_exports").rglob("*.py"):
        text = path.read_text()
        if path.name == "compat.py":
            text, converters = CALLED_BY_OPENLINEAGE.subn("\n", text)
            assert converters == 1, "compat's postgres converter moved: say again which code imports OpenLineage"
        assert not re.search(r"^\s*(from|import)\s+\S*openlineage", text, flags=re.M), path


def test_without_a_lineage_reader_nothing_is_reported_or_imported():
    """A fresh interpreter without OpenLineage configuration (the provider is then disabled and registers
    no lineage reader, as if it were not installed): no reporter, no OpenLineage client module."""
    code = (
        "import json, sys\n"
        "from subscription_exports import exporter, lineage, tasks\n"
        "reporter = lineage.for_export('d', 'sqlite', None)\n"
        "print(json.dumps([reporter is None, sorted(m for m in sys.modules if m.split('.')[0] == 'openlineage')]))\n"
    )
    env = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    no_reporter, imported = json.loads(result.stdout.splitlines()[-1])
    assert no_reporter
    assert imported == []


def test_postgres_tables_convert_to_openlineage_datasets_on_every_provider():
    """The postgres provider's own converter where it has one (6.7.0+), compat's where not (6.6.0): same dataset."""
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk import Asset

    from subscription_exports.compat import postgres_openlineage_converter

    converters = ProvidersManager().asset_to_openlineage_converters
    own = converters.get("postgres")
    postgres_openlineage_converter()
    assert own is None or converters["postgres"] is own
    dataset = converters["postgres"](Asset(uri="postgres://db.internal:5433/shop/public/events"), None)
    assert (dataset.namespace, dataset.name) == ("postgres://db.internal:5433", "shop.public.events")
