"""The auth manager of the deliveries page's system test: Airflow's simple auth manager, plus one user who
may not see the ``s3_export`` DAG at all.

The simple auth manager gives permissions by role only (every role may read every DAG), so on its own it
cannot show a user without access to one DAG. This subclass changes nothing else: the test's admin and
viewer users get exactly what the simple auth manager gives them; ``outsider`` (role viewer) is refused
every DAG but ``custom_s3_ua_export``. Loaded by the api-server from ``[core] auth_manager``.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

OUTSIDER = "outsider"
OUTSIDER_MAY_READ = {"custom_s3_ua_export"}


class OneDagHiddenAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == OUTSIDER and (details is None or details.id not in OUTSIDER_MAY_READ):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
