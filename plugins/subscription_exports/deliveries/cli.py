"""``python -m subscription_exports deliveries --dag-id DAG [--days N | --from A --to B] [--json] [--failed]``.

The deliveries page's matrix for terminals and scripts, read from the metadata database this process's
Airflow configuration points at (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``; the same queries as the page).
Text: one line per day ("2026-03-07: 3 of 4 delivered"), then one line per destination and day that is
not delivered, with its state and cause; ``--all`` lists delivered cells too (rows, bytes, key). Exit 0,
or 1 when a shown cell failed or a destination has a configuration problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import warnings

from subscription_exports.integrations import INTEGRATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dag-id", required=True, choices=sorted(INTEGRATIONS))
    parser.add_argument("--days", type=int, default=14, help="the last N complete UTC days (default 14)")
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, help="last day (default: yesterday, UTC)")
    parser.add_argument("--json", action="store_true", help="the page's matrix as JSON")
    parser.add_argument("--failed", action="store_true", help="only destinations with a failure or a problem")
    parser.add_argument("--app", default="", help="only destinations of this app_id")
    parser.add_argument("--name", default="", help="only destinations whose name contains this")
    parser.add_argument("--all", action="store_true", help="also list delivered cells")


def lines(mx, rows, *, show_all: bool) -> list[str]:
    from subscription_exports.deliveries import matrix as m

    out = [f"{mx.dag_id}: destinations from {mx.origin}"]
    if mx.problem:
        out.append(f"configuration problem: {mx.problem}")
    for day in mx.days:
        delivered, total = mx.delivered(day)
        out.append(f"{day.isoformat()}: {delivered} of {total} delivered")
    for row in rows:
        d = row.destination
        if d.problem:
            out.append(f"{d.name}: configuration problem: {d.problem}")
        for day, cell in row.cells.items():
            if cell.state == m.DELIVERED and show_all:
                keys = ", ".join(f"s3://{o.get('bucket')}/{o.get('key')}" for o in cell.objects.values())
                out.append(f"{d.name} {day}: delivered {sum(cell.rows.values())} rows, {cell.bytes} bytes: {keys}")
            elif cell.state != m.DELIVERED:
                detail = cell.cause or cell.note or ""
                tried = f" (try {cell.try_number}, run {cell.run_id})" if cell.try_number else ""
                out.append(f"{d.name} {day}: {cell.state.replace('_', ' ')}{tried}{': ' + detail if detail else ''}")
    for group in mx.ranges:
        failed = sum(1 for c in group.cells.values() if c.state == m.FAILED)
        out.append(f"range run {group.run.run_id} ({group.run.label}): {group.run.state}, {failed} failed")
    return out


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    warnings.simplefilter("ignore")
    import airflow.settings  # noqa: F401  (Airflow adds its warning filters on import: silenced again below)

    from subscription_exports.deliveries import matrix as m
    from subscription_exports.deliveries import store

    warnings.simplefilter("ignore")
    last = args.last or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    count = (last - args.first).days + 1 if args.first else args.days
    if count < 1:
        print("deliveries: --from must not be after --to", file=sys.stderr)
        return 2
    mx = store.read_matrix(args.dag_id, m.day_range(last, count))
    rows = mx.filtered(failed_only=args.failed, app=args.app, name=args.name)
    if args.json:
        print(json.dumps(mx.to_dict(rows), indent=1))
    else:
        print("\n".join(lines(mx, rows, show_all=args.all)))
    bad = any(r.destination.problem or any(c.state == m.FAILED for c in r.cells.values()) for r in rows)
    return 1 if bad or mx.problem else 0
