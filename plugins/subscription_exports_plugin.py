"""Registers the package with Airflow: its timetable and run-note listener (the scheduler deserializes the
timetable from here and calls the listener when it starts a run), and the deliveries page (a FastAPI app
mounted in the api-server at ``/deliveries``, shown in the UI's navigation and as a tab of each DAG).

Any Airflow component may load this file, a task process too: the page's app is built on its first
request (``LazyApp``), so only the api-server ever imports FastAPI or ``subscription_exports.deliveries``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from subscription_exports import notes
from subscription_exports.timetable import CalendarDayTimetable

DELIVERIES_PREFIX = "/deliveries"


class LazyApp:
    """An ASGI app that builds ``subscription_exports.deliveries.app`` when the api-server first calls it."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from subscription_exports.deliveries.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return "subscription_exports.deliveries.app"


class SubscriptionExportsPlugin(AirflowPlugin):
    name = "subscription_exports"
    timetables = [CalendarDayTimetable]
    listeners = [notes]
    fastapi_apps = [{"app": LazyApp(), "url_prefix": DELIVERIES_PREFIX, "name": "Deliveries"}]
    # Airflow 3.1-3.3: a view with a url_route is shown inside the UI (an iframe); "dag" adds a tab to
    # every DAG's page, with {DAG_ID} filled in (the page answers 404 for DAGs that are not exports).
    external_views = [
        {"name": "Deliveries", "href": f"{DELIVERIES_PREFIX}/", "destination": "nav", "url_route": "deliveries"},
        {
            "name": "Deliveries",
            "href": f"{DELIVERIES_PREFIX}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "deliveries-of-dag",
        },
    ]
