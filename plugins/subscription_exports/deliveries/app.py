"""The FastAPI app of the deliveries page, mounted by the plugin at ``/deliveries`` in Airflow's api-server.

Every route goes through Airflow's auth manager with Airflow's own dependencies
(``airflow.api_fastapi.core_api.security``: ``get_user``, ``requires_access_dag``; the same in 3.1, 3.2 and
3.3): the signed-in user's JWT, from the UI's ``_token`` cookie (the page is shown in the UI's iframe, same
origin) or an ``Authorization: Bearer`` header. Reading a DAG's deliveries needs read access to that DAG's
task instances; a re-export needs edit access to them, and is itself done by Airflow's REST API with the
same user's token (``POST /api/v2/dags/{dag_id}/clearTaskInstances``, ``POST /api/v2/backfills``), so
Airflow checks the permissions again and writes its audit log. Anonymous requests get 401, a user without
access 403, and neither gets any data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from subscription_exports.deliveries import matrix as m
from subscription_exports.deliveries import page, store
from subscription_exports.integrations import INTEGRATIONS

log = logging.getLogger(__name__)

MAX_DAYS = 62
READ = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))
EDIT = Depends(requires_access_dag("PUT", DagAccessEntity.TASK_INSTANCE))


def _prefix(request: Request) -> str:
    """The path the app is mounted at (``/deliveries``, behind any base path of the api-server)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _ui_base(request: Request) -> str:
    """The path of Airflow's UI (``[api] base_url``'s path): links to task pages and logs."""
    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _integration(dag_id: str) -> Any:
    if dag_id not in INTEGRATIONS:
        raise HTTPException(404, f"{dag_id!r} is not an export DAG of this package ({', '.join(INTEGRATIONS)})")
    return INTEGRATIONS[dag_id]


def _days(first: str | None, last: str | None) -> list[dt.date]:
    try:
        if not first and not last:
            return page.default_days(dt.datetime.now(dt.UTC).date())
        end = dt.date.fromisoformat(last) if last else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        start = dt.date.fromisoformat(first) if first else end - dt.timedelta(days=13)
    except ValueError as exc:
        raise HTTPException(400, f"from/to: expected YYYY-MM-DD: {exc}") from None
    if start > end or (end - start).days >= MAX_DAYS:
        raise HTTPException(400, f"from/to: from must not be after to, at most {MAX_DAYS} days")
    return m.day_range(end, (end - start).days + 1)


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


def _same_origin(request: Request) -> None:
    """A re-export is a POST authenticated by a cookie: refused from another site's page (CSRF)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "cross-site request refused")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        from airflow.configuration import conf

        # The api-server's own host, or the public one of [api] base_url (behind a proxy that rewrites Host).
        allowed = {request.headers.get("host"), urlparse(conf.get("api", "base_url", fallback="") or "").netloc}
        if urlparse(origin).netloc not in allowed:
            raise HTTPException(403, "cross-origin request refused")


def _api(request: Request, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Airflow's REST API, as the signed-in user (their token)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or str(request.base_url)).rstrip("/")
    call = urllib.request.Request(
        f"{base}/api/v2/{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 "Authorization": f"Bearer {_token(request)}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(call, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:2000].decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        return exc.code, detail


def _parse_cells(values: list[str]) -> tuple[dict[str, list[int]], list[str]]:
    """{run_id: [map_index, ...]} and the missing days of the submitted cells."""
    runs: dict[str, list[int]] = {}
    missing = []
    for value in values:
        run_id, _, index = value.rpartition("|")
        if run_id == "missing":
            dt.date.fromisoformat(index)
            missing.append(index)
        elif run_id and index.lstrip("-").isdigit():
            runs.setdefault(run_id, []).append(int(index))
        else:
            raise HTTPException(400, f"not a cell: {value!r}")
    return runs, sorted(set(missing))


def create_app() -> FastAPI:
    app = FastAPI(title="Deliveries (subscription_exports)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Any:
        """A browser gets the refusal as a page (nothing else on it); a script keeps Airflow's JSON."""
        if "text/html" not in request.headers.get("accept", "") or request.url.path.endswith(".json"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        title = {401: "Not signed in", 403: "Forbidden", 404: "Not found"}.get(exc.status_code, "Refused")
        text = f"{exc.status_code}: {exc.detail}"
        if exc.status_code == 401:
            text += ". Sign in to Airflow, then open this page again."
        return HTMLResponse(page.message_page(title, text), status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: GetUserDep) -> HTMLResponse:
        from airflow.api_fastapi.app import get_auth_manager

        manager = get_auth_manager()
        readable = [
            d for d in INTEGRATIONS
            if manager.is_authorized_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE,
                                         details=DagDetails(id=d), user=user)
        ]  # fmt: skip
        if not readable:
            raise HTTPException(403, "you may read no export DAG")
        return HTMLResponse(page.index_page(_prefix(request), readable))

    @app.get("/dags/{dag_id}", response_class=HTMLResponse, dependencies=[READ])
    def deliveries(
        request: Request,
        dag_id: str,
        failed: str = "",
        app: str = "",
        name: str = "",
        requested: str = "",
    ) -> HTMLResponse:
        """The matrix; ``from``/``to`` (default the last 14 complete days), filters ``failed``, ``app``, ``name``;
        ``requested``: the outcome of a re-export just made (shown as text)."""
        _integration(dag_id)
        q = request.query_params
        mx = store.read_matrix(dag_id, _days(q.get("from"), q.get("to")))
        rows = mx.filtered(failed_only=bool(failed), app=app, name=name)
        apps = sorted({r.destination.app_id for r in mx.rows if r.destination.app_id})
        banner = f"<div class='banner' id='requested'>{escape(requested)}</div>" if requested else ""
        html = page.matrix_page(
            mx, prefix=_prefix(request), ui_base=_ui_base(request), rows=rows,
            filters={"failed": failed, "app": app, "name": name}, apps=apps,
            banner=banner,
        )  # fmt: skip
        return HTMLResponse(html)

    @app.get("/dags/{dag_id}/matrix.json", dependencies=[READ])
    def deliveries_json(request: Request, dag_id: str, failed: str = "", app: str = "", name: str = "") -> JSONResponse:
        _integration(dag_id)
        q = request.query_params
        mx = store.read_matrix(dag_id, _days(q.get("from"), q.get("to")))
        return JSONResponse(mx.to_dict(mx.filtered(failed_only=bool(failed), app=app, name=name)))

    @app.get("/dags/{dag_id}/manifest", response_class=HTMLResponse, dependencies=[READ])
    def manifest(request: Request, dag_id: str, run_id: str, map_index: int, table: str) -> HTMLResponse:
        """The manifest a map index wrote beside its data file, read from the store (one GET)."""
        from airflow.utils.session import create_session

        integration = _integration(dag_id)
        with create_session() as session:
            ref = store.read_object_ref(session, dag_id, run_id, map_index, table)
        if ref is None:
            raise HTTPException(404, f"no delivered {table!r} in {run_id} map index {map_index}")
        from subscription_exports import config, s3

        texts = store.variable_text(integration.variable_key)
        try:
            dest = config.load_configuration(integration, variable_text=texts).destination(str(ref["destination"]))
            client = s3.s3_client(dest.conn_id)
            body = client.get_object(Bucket=ref["bucket"], Key=ref["manifest_key"])["Body"].read()
            content = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except Exception as exc:
            content = f"cannot read the manifest: {' '.join(f'{type(exc).__name__}: {exc}'.split())[:500]}"
        where = f"s3://{ref['bucket']}/{ref['manifest_key']}"
        return HTMLResponse(page.manifest_page(_prefix(request), dag_id, where, content))

    @app.post("/dags/{dag_id}/reexport", response_class=HTMLResponse, dependencies=[EDIT])
    async def reexport(request: Request, dag_id: str) -> Any:
        _integration(dag_id)
        _same_origin(request)
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        runs, missing = _parse_cells(form.get("cell", []))
        prefix = _prefix(request)
        if not runs and not missing:
            return HTMLResponse(page.message_page("Nothing selected", "Select cells to re-export.", prefix), 400)
        if not form.get("confirm"):
            return HTMLResponse(page.confirm_page(prefix, dag_id, _describe(dag_id, runs), missing))
        return await _run_reexport(request, dag_id, runs, missing)

    return app


def _describe(dag_id: str, runs: dict[str, list[int]]) -> list[tuple[str, str, str]]:
    """(destination, day, cell value) of each selected map index, as the matrix names them."""
    from airflow.utils.session import create_session

    with create_session() as session:
        outcomes = store.read_outcomes(session, dag_id, list(runs))
        windows = store._xcoms(session, dag_id, store.WINDOW_TASK, list(runs), -1)
        names = store._xcoms(session, dag_id, store.LOAD_TASK, list(runs), -1)
    described = []
    for run_id, indexes in runs.items():
        window = windows.get(run_id) or {}
        day = str(window.get("start", run_id))[:10]
        for i in indexes:
            listed = names.get(run_id)
            label = listed[i] if isinstance(listed, list) and 0 <= i < len(listed) else None
            label = label or (outcomes.get(run_id, {}).get(i).label if outcomes.get(run_id, {}).get(i) else f"#{i}")
            described.append((str(label), f"{day} ({run_id})", f"{run_id}|{i}"))
    return described


async def _run_reexport(request: Request, dag_id: str, runs: dict[str, list[int]], missing: list[str]) -> Any:
    import asyncio

    done, errors = [], []
    for run_id, indexes in runs.items():
        body = {
            "dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True,
            "task_ids": [[store.EXPORT_TASK, i] for i in sorted(set(indexes))],
            "include_upstream": False, "include_downstream": False,
        }  # fmt: skip
        status, answer = await asyncio.to_thread(
            _api, request, "POST", f"dags/{quote(dag_id)}/clearTaskInstances", body
        )
        if status == 200:
            done.append(f"{len(indexes)} cleared in {run_id}")
        else:
            errors.append(f"clear in {run_id}: {status} {answer}")
    if missing:
        # One backfill over the missing days (Airflow runs one backfill of a DAG at a time); "none": only
        # days without a run get one, the days between that have runs are left alone.
        first, last = missing[0], missing[-1]
        body = {"dag_id": dag_id, "from_date": f"{first}T00:00:00Z", "to_date": f"{last}T00:00:00Z",
                "reprocess_behavior": "none", "max_active_runs": 4}  # fmt: skip
        status, answer = await asyncio.to_thread(_api, request, "POST", "backfills", body)
        if status == 200:
            done.append(f"backfill of {', '.join(missing)} created")
        else:
            errors.append(f"backfill {first}..{last}: {status} {answer}")
    log.info("deliveries page: re-export of %s: %s; refused: %s", dag_id, done, errors)
    if errors and not done:
        text = "; ".join(errors)
        return HTMLResponse(
            page.message_page("Re-export refused", text, _prefix(request)), 403 if "403" in text else 400
        )
    summary = "Re-export requested: " + "; ".join(done) + (f". Refused: {'; '.join(errors)}" if errors else "")
    from urllib.parse import urlencode

    return RedirectResponse(
        f"{_prefix(request)}/dags/{quote(dag_id)}?" + urlencode({"requested": summary[:500]}), status_code=303
    )
