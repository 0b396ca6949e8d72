"""System test of the deliveries page in a real browser (headless Debian chromium through selenium) against
a RUNNING Airflow (api-server, scheduler, dag-processor) with the simple auth manager and real logins.

Four destinations, a three-day backfill, one destination failing every day (its bucket does not exist):

* the page (inside Airflow's UI and on its own) shows every destination against every day: delivered
  cells with rows and the key, the failed ones with their one-line cause, "N of M delivered" per day,
  a day without a run as not run; the manifest link shows the manifest's content;
* the operator fixes the Variable, selects the failed cells and the missing day, confirms: the page
  clears those map indexes and backfills the day through Airflow's REST API as the signed-in user (the
  audit log names that user), and the cells turn delivered with the right rows and keys;
* a user without access to the DAG (and an anonymous request) gets 401/403 and no data; a viewer may
  look but not re-export;
* ``python -m subscription_exports deliveries`` prints the same matrix from the metadata database.

The auth manager is the simple one with one user hidden from the DAG (tests/deliveries_auth.py says
why). Screenshots go to $SUBSCRIPTION_EXPORTS_SCREENSHOTS when set (docs/deliveries.md uses them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_cluster import Airflow, running_airflow
from conftest import MISSING_BUCKET, ROOT, aws_connection, list_keys, source_connection

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
IOS, ANDROID = "com.deliveries.ios", "com.deliveries.android"
DAYS = [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8)]
MISSING_DAY = dt.date(2026, 3, 9)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": DAYS[0], "days": 4, "rows_per_day": 30, "seed": 11}
BUCKET = "adapty-events"
TABLES = ("events", "paywall_visits")
PASSWORDS = {"admin": "admin-pw-3x9", "viewer": "viewer-pw-7q2", "outsider": "outsider-pw-5k1"}


def dest(name: str, app: str, bucket: str = BUCKET) -> dict[str, Any]:
    return {"name": name, "conn_id": "exports_s3", "bucket": bucket, "folder": f"dl/{name}", "app_id": app}


GOOD = [dest("acme-ios", IOS), dest("acme-android", ANDROID), dest("beta-ios", IOS)]
BROKEN = dest("broken-bucket", ANDROID, MISSING_BUCKET)
FIXED = dest("broken-bucket", ANDROID)
BROKEN_CAUSE = (
    f"destination 'broken-bucket' (connection 'exports_s3', bucket '{MISSING_BUCKET}'): check failed: NoSuchBucket"
)


def daily_key(name: str, table: str, day: dt.date) -> str:
    return f"dl/{name}/{table}/dt={day}/{table}_{day}.csv"


def set_destinations(airflow: Airflow, *dests: dict[str, Any]) -> None:
    value = json.dumps({"source_conn_id": "subscription_source", "destinations": list(dests)})
    airflow.cli("variables", "set", "s3_export_destinations", value)


def token(airflow: Airflow, user: str) -> str:
    body = json.dumps({"username": user, "password": PASSWORDS[user]}).encode()
    request = urllib.request.Request(
        f"{airflow.base_url}/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def get(airflow: Airflow, path: str, bearer: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    request = urllib.request.Request(f"{airflow.base_url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, admin) -> Iterator[Airflow]:
    source_url = pg_database_factory(**SEED_ARGS)
    home = tmp_path_factory.mktemp("airflow-deliveries")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    with running_airflow(
        home,
        pg_database_factory(),
        expect_dags=[DAG_ID],
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the runs this test starts
        AIRFLOW__CORE__AUTH_MANAGER="tests.deliveries_auth.OneDagHiddenAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer,outsider:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        set_destinations(af, *GOOD, BROKEN)
        af.cli("dags", "unpause", DAG_ID)
        af.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", str(DAYS[0]), "--to-date", str(DAYS[-1]))
        af.wait_runs_terminal("the backfill", lambda r: r["run_type"] == "backfill", len(DAYS))
        af.wait_backfills_completed()
        yield af


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are needed: apt-get install chromium chromium-driver", pytrace=False)
    profile = tempfile.mkdtemp(prefix="deliveries-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1500,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(browser: Any, airflow: Airflow, user: str) -> None:
    """The session cookie Airflow's login sets (``_token``), with a token of that user's login."""
    browser.get(f"{airflow.base_url}/api/v2/monitor/health")
    browser.delete_all_cookies()
    browser.add_cookie({"name": "_token", "value": token(airflow, user), "path": "/"})


def screenshot(browser: Any, name: str) -> None:
    target = os.environ.get("SUBSCRIPTION_EXPORTS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(target) / f"{name}.png"))


def page_path(last: dt.date = MISSING_DAY) -> str:
    return f"/deliveries/dags/{DAG_ID}?from={DAYS[0]}&to={last}"


def page_url(airflow: Airflow, last: dt.date = MISSING_DAY) -> str:
    return f"{airflow.base_url}{page_path(last)}"


def cell(browser: Any, name: str, day: dt.date) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f"td.cell[data-destination='{name}'][data-day='{day}']")


def wait_for(browser: Any, airflow: Airflow, what: str, done: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        browser.get(page_url(airflow))
        if done():
            return
        airflow.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; page:\n{browser.page_source[:6000]}")
        time.sleep(3)


# -- tests (in file order; each builds on the previous state) ------------------------------------------


def test_the_page_shows_every_destination_against_every_day(airflow, browser, admin):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, airflow, "admin")
    browser.get(page_url(airflow))
    rows = [r.get_attribute("data-row") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-row]")]
    assert rows == ["acme-ios", "acme-android", "beta-ios", "broken-bucket"]
    screenshot(browser, "deliveries-failed")
    for day in DAYS:
        header = browser.find_element(By.CSS_SELECTOR, f"th[data-day-header='{day}']").text
        assert "3 of 4 delivered" in header, header
        failed = cell(browser, "broken-bucket", day)
        assert failed.get_attribute("data-state") == "failed"
        assert BROKEN_CAUSE in failed.text and "try 1" in failed.text, failed.text
        assert failed.find_element(By.LINK_TEXT, "log").get_attribute("href").endswith("?try_number=1")
        for good in GOOD:
            shown = cell(browser, good["name"], day)
            assert shown.get_attribute("data-state") == "delivered", shown.text
            total = 0
            for table in TABLES:
                key = daily_key(good["name"], table, day)
                manifest = json.loads(admin.get_object(Bucket=BUCKET, Key=key + ".manifest.json")["Body"].read())
                details = shown.get_attribute("textContent")  # the keys are in a closed <details>
                assert f"s3://{BUCKET}/{key}" in details and f"{table}: {manifest['rows']:,} rows" in details, details
                total += manifest["rows"]
            assert f"{total:,} rows" in shown.text and "try 1" in shown.text, shown.text
    missing = cell(browser, "acme-ios", MISSING_DAY)
    assert missing.get_attribute("data-state") == "not_run" and "no run exported this day" in missing.text
    assert "0 of 4 delivered" in browser.find_element(By.CSS_SELECTOR, f"th[data-day-header='{MISSING_DAY}']").text

    # the manifest link shows the manifest's content, read from the store
    first = cell(browser, "acme-ios", DAYS[0])
    first.find_element(By.TAG_NAME, "summary").click()
    first.find_element(By.LINK_TEXT, "manifest").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "manifest"))
    shown = json.loads(browser.find_element(By.ID, "manifest").text)
    stored = admin.get_object(Bucket=BUCKET, Key=daily_key("acme-ios", "events", DAYS[0]) + ".manifest.json")
    assert shown == json.loads(stored["Body"].read())

    # filters: failed only; an app; a name
    browser.get(page_url(airflow) + "&failed=1")
    assert [r.get_attribute("data-row") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-row]")] == [
        "broken-bucket"
    ]
    browser.get(page_url(airflow) + f"&app={IOS}&name=beta")
    assert [r.get_attribute("data-row") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-row]")] == ["beta-ios"]


def test_the_page_is_in_airflows_ui(airflow, browser):
    """Reached from the navigation and from the DAG's page: Airflow shows it in an iframe."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, airflow, "admin")
    for path in (f"/dags/{DAG_ID}/plugin/deliveries-of-dag", "/plugin/deliveries"):
        browser.get(f"{airflow.base_url}{path}")
        frame = WebDriverWait(browser, 60).until(
            expected_conditions.presence_of_element_located((By.TAG_NAME, "iframe"))
        )
        if path.startswith("/dags"):  # the tab shows the last 14 days: the test's days are in March 2026
            browser.execute_script("arguments[0].src = arguments[1]", frame, page_path())
            time.sleep(3)
            screenshot(browser, "deliveries-in-airflow-ui")
        browser.switch_to.frame(frame)
        WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.TAG_NAME, "h1")))
        text = browser.find_element(By.TAG_NAME, "body").text
        if path.startswith("/dags"):
            assert f"Deliveries: {DAG_ID}" in text and "broken-bucket" in text, text[:2000]
        else:
            assert DAG_ID in text, text[:2000]
        browser.switch_to.default_content()


def test_anonymous_and_a_user_without_access_get_nothing(airflow, browser):
    from selenium.webdriver.common.by import By

    for path in ("/deliveries/", f"/deliveries/dags/{DAG_ID}", f"/deliveries/dags/{DAG_ID}/matrix.json"):
        status, body = get(airflow, path)
        assert status == 401 and "broken-bucket" not in body, (path, status, body[:300])
        status, body = get(airflow, path if path != "/deliveries/" else f"/deliveries/dags/{DAG_ID}",
                           token(airflow, "outsider"))  # fmt: skip
        assert status == 403 and "broken-bucket" not in body and "acme" not in body, (path, status, body[:300])
    sign_in(browser, airflow, "outsider")
    browser.get(page_url(airflow))
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Forbidden" in text or "403" in text or "access" in text.lower(), text
    assert "broken-bucket" not in browser.page_source and "acme" not in browser.page_source
    screenshot(browser, "deliveries-no-access")

    # a viewer may read, and is refused a re-export (Airflow's own check; nothing is cleared)
    status, body = get(airflow, f"/deliveries/dags/{DAG_ID}/matrix.json?from={DAYS[0]}&to={DAYS[-1]}",
                       token(airflow, "viewer"))  # fmt: skip
    assert status == 200 and json.loads(body)["destinations"][3]["name"] == "broken-bucket"
    request = urllib.request.Request(
        f"{airflow.base_url}/deliveries/dags/{DAG_ID}/reexport",
        data=b"cell=x%7C3&confirm=1",
        method="POST",
        headers={"Authorization": f"Bearer {token(airflow, 'viewer')}",
                 "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 403

    # the admin's session used by another site's page (the cookie goes with a cross-site form): refused
    cell_value = f"backfill__{DAYS[0]}T00:00:00+00:00|3".replace("+", "%2B").replace("|", "%7C")
    forged = urllib.request.Request(
        f"{airflow.base_url}/deliveries/dags/{DAG_ID}/reexport",
        data=f"cell={cell_value}&confirm=1".encode(),
        method="POST",
        headers={"Cookie": f"_token={token(airflow, 'admin')}", "Origin": "http://attacker.example",
                 "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=60)
    assert refused.value.code == 403 and "cross-origin request refused" in refused.value.read().decode()


def test_the_cli_prints_the_same_matrix(airflow):
    env = {**airflow.env, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    args = ["--dag-id", DAG_ID, "--from", str(DAYS[0]), "--to", str(MISSING_DAY)]
    result = subprocess.run(
        [sys.executable, "-m", "subscription_exports", "deliveries", *args, "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # a shown cell failed
    shown = json.loads(result.stdout)
    assert [d["delivered"] for d in shown["days"]] == [3, 3, 3, 0]
    broken = next(d for d in shown["destinations"] if d["name"] == "broken-bucket")
    assert {day: c["state"] for day, c in broken["cells"].items()} == {
        **{str(d): "failed" for d in DAYS},
        str(MISSING_DAY): "not_run",
    }
    causes = [c.get("cause", "") for day, c in broken["cells"].items() if day != str(MISSING_DAY)]
    assert all(cause.startswith(BROKEN_CAUSE) for cause in causes), causes
    text = subprocess.run(
        [sys.executable, "-m", "subscription_exports", "deliveries", *args],
        env=env, capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    assert f"{DAYS[0]}: 3 of 4 delivered" in text
    assert f"broken-bucket {DAYS[0]}: failed (try 1, run " in text and BROKEN_CAUSE in text


def test_fix_then_re_export_failed_cells_and_a_missing_day_from_the_page(airflow, browser, admin):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    set_destinations(airflow, *GOOD, FIXED)
    sign_in(browser, airflow, "admin")
    browser.get(page_url(airflow))
    for day in DAYS:
        cell(browser, "broken-bucket", day).find_element(By.CSS_SELECTOR, "input[name=cell]").click()
    cell(browser, "acme-ios", MISSING_DAY).find_element(By.CSS_SELECTOR, "input[name=cell]").click()
    browser.find_element(By.ID, "reexport").click()
    # confirm what will run before it runs (click() may return before the next page is there)
    WebDriverWait(browser, 120).until(lambda d: d.find_elements(By.ID, "confirm"))
    confirm = browser.find_element(By.TAG_NAME, "body").text
    for day in DAYS:
        assert f"broken-bucket · {day}" in confirm, confirm
    assert f"{MISSING_DAY} (no run yet" in confirm, confirm
    screenshot(browser, "deliveries-confirm")
    browser.find_element(By.ID, "confirm").click()
    # the clears and the backfill through the REST API, then back to the page (or a refusal page)
    WebDriverWait(browser, 180).until(lambda d: "requested=" in d.current_url or "refused" in d.title.lower())
    banner = browser.find_elements(By.ID, "requested")
    assert banner, browser.find_element(By.TAG_NAME, "body").text
    assert "cleared" in banner[0].text and "backfill" in banner[0].text, banner[0].text

    def delivered() -> bool:
        cells = [cell(browser, "broken-bucket", d) for d in [*DAYS, MISSING_DAY]]
        cells += [cell(browser, g["name"], MISSING_DAY) for g in GOOD]
        return all(c.get_attribute("data-state") == "delivered" for c in cells)

    wait_for(browser, airflow, "the re-exported cells to turn delivered", delivered)
    screenshot(browser, "deliveries-re-exported")
    for day in [*DAYS, MISSING_DAY]:
        assert "4 of 4 delivered" in browser.find_element(By.CSS_SELECTOR, f"th[data-day-header='{day}']").text
        shown = cell(browser, "broken-bucket", day)
        for table in TABLES:
            key = daily_key("broken-bucket", table, day)
            manifest = json.loads(admin.get_object(Bucket=BUCKET, Key=key + ".manifest.json")["Body"].read())
            assert manifest["app_id"] == ANDROID
            details = shown.get_attribute("textContent")
            assert f"s3://{BUCKET}/{key}" in details and f"{table}: {manifest['rows']:,} rows" in details, details
        if day in DAYS:
            assert "try 2" in shown.text, shown.text  # the same map index, cleared and run again
    assert sorted(k for k in list_keys(admin, BUCKET, "dl/broken-bucket/") if k.endswith(".csv")) == sorted(
        daily_key("broken-bucket", t, d) for t in TABLES for d in [*DAYS, MISSING_DAY]
    )
    # as the signed-in user, through Airflow's REST API: its audit log names the user and the clear
    audit = airflow.query("SELECT event, owner FROM log WHERE dag_id = %s AND event LIKE %s", DAG_ID, "%clear%")
    assert audit and {row["owner"] for row in audit} == {"admin"}, audit
