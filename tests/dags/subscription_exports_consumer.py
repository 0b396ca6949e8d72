"""
### Downstream of the exports: runs when `s3_export` has written a fresh `events` or `paywall_visits` file

A test DAG (tests/dags/), and the pattern for users' own downstream DAGs: each export task emits
one event of the Asset `subscription_exports/<dag_id>/<table>` per table it exported for its
destination; the event's extra holds `destination`, `app_id`, `bucket`, `key`, `rows`, `bytes`,
`sha256` and `window`. To follow one destination, filter the events on `extra["destination"]`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

EXPORT_DAG_ID = "s3_export"
ASSETS = [Asset(f"subscription_exports/{EXPORT_DAG_ID}/{table}") for table in ("events", "paywall_visits")]


@dag(
    dag_id="subscription_exports_consumer",
    schedule=ASSETS[0] | ASSETS[1],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["export", "downstream", "example"],
    doc_md=__doc__,
)
def subscription_exports_consumer():
    @task
    def fresh_exports() -> list[dict]:
        """The asset events that triggered this run: one per table and destination exported."""
        received = []
        triggering = get_current_context()["triggering_asset_events"]
        for asset in ASSETS:
            for event in triggering.get(asset, []):
                received.append(
                    {
                        "asset": event.asset.uri,
                        "source_dag_id": event.source_dag_id,
                        "source_run_id": event.source_run_id,
                        "source_map_index": event.source_map_index,
                        "extra": dict(event.extra or {}),
                    }
                )
                print(f"fresh export {event.asset.uri}: {event.extra.get('key')} rows={event.extra.get('rows')}")
        return received

    fresh_exports()


subscription_exports_consumer()
