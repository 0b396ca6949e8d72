"""Many destinations without a running Airflow: the max_map_length cause, and the configuration digest
that lets each export_tables map index skip the key collision analysis load_destinations already did."""

from __future__ import annotations

import json

from subscription_exports import config
from subscription_exports.integrations import S3_EXPORT
from subscription_exports.tasks import configuration_digest, map_length_problem


def document(count: int, **change) -> str:
    dests = [
        {"name": f"d{i}", "conn_id": "exports_s3", "bucket": "exports", "folder": f"f/{i}", "app_id": "com.x"}
        for i in range(count)
    ]
    dests[0].update(change)
    return json.dumps({"source_conn_id": "src", "destinations": dests})


def test_up_to_the_limit_is_fine_one_more_is_one_line_naming_the_setting():
    assert map_length_problem(1024, 1024, "Airflow Variable 's3_export_destinations'") is None
    cause = map_length_problem(1025, 1024, "Airflow Variable 's3_export_destinations'")
    assert cause == (
        "Airflow Variable 's3_export_destinations': 1025 destinations, but Airflow maps export_tables over at most "
        "[core] max_map_length = 1024 items; set AIRFLOW__CORE__MAX_MAP_LENGTH to at least 1025 on every Airflow "
        "component (the api-server enforces it), then clear this task"
    )
    assert "\n" not in cause


def test_digest_is_equal_for_the_same_documents_and_changes_with_any_setting():
    def digest(text: str) -> str:
        return configuration_digest([config.load_configuration(S3_EXPORT, variable_text=text)])

    assert digest(document(5)) == digest(document(5))
    assert digest(document(5)) != digest(document(5, folder="f/1"))  # now collides with d1
    assert digest(document(5)) != digest(document(6))
