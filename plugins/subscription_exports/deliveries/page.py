"""The deliveries page as HTML, rendered on the server.

Airflow shows a plugin page in a sandboxed iframe (``allow-scripts allow-same-origin allow-forms``, no
popups, no top navigation), so everything works with links and forms inside the frame: the filters are a
GET form, the cells to re-export are checkboxes of a POST form, and a confirmation page lists what will
run before anything does. A few lines of script only add "select this row / day" and reload the page
every few seconds while a cell can still change state.
"""

from __future__ import annotations

import datetime as dt
import functools
from html import escape
from typing import Any
from urllib.parse import quote

from subscription_exports.deliveries import matrix as m

STYLE = """
body{font-family:system-ui,sans-serif;font-size:13px;margin:12px;color:#1a202c}
h1{font-size:18px;margin:0 0 6px} .origin{color:#555;margin-bottom:8px}
form.filters{margin:6px 0 10px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
table.matrix{border-collapse:collapse} .matrix th,.matrix td{border:1px solid #d0d7de;padding:3px 5px;
vertical-align:top} .matrix th{background:#f6f8fa;position:sticky;top:0} .dest{min-width:190px}
.dest small{color:#555;display:block} td.cell{width:150px;max-width:190px;font-size:12px;word-break:break-word}
.delivered{background:#e6f4ea} .failed{background:#fde2e1} .running,.queued,.up_for_retry{background:#fff4d6}
.dry_run{background:#e8eefc} .not_run{background:#f3f3f3;color:#666} .problem{color:#b42318;font-weight:600}
.cause{color:#7a1d12;font-family:ui-monospace,monospace;font-size:11px} .key{font-family:ui-monospace,monospace;
font-size:11px;color:#333} .count{font-weight:400;color:#333;display:block} .banner{background:#e8eefc;
padding:6px 10px;margin:6px 0;border-left:4px solid #3b5bdb} .error{background:#fde2e1;border-color:#b42318}
button{font-size:13px} .sel{font-size:11px} .when{color:#555;font-size:11px}
summary{cursor:pointer;color:#1f5fbf;font-size:11px}
"""

SCRIPT = """
document.querySelectorAll('[data-select-row]').forEach(function(b){b.addEventListener('click',function(e){
 e.preventDefault();document.querySelectorAll('input[data-row="'+b.dataset.selectRow+'"]').forEach(function(c){
 c.checked=!c.checked;});});});
document.querySelectorAll('[data-select-day]').forEach(function(b){b.addEventListener('click',function(e){
 e.preventDefault();document.querySelectorAll('input[data-day="'+b.dataset.selectDay+'"]').forEach(function(c){
 c.checked=!c.checked;});});});
if(document.body.dataset.pending==='1'){setTimeout(function(){
 if(!document.querySelector('input[name=cell]:checked')){location.reload();}},5000);}
"""


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def document(title: str, body: str, *, pending: bool = False) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
        f"</head><body data-pending='{int(pending)}'>{body}<script>{SCRIPT}</script></body></html>"
    )


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """A path or query part (run ids repeat in every cell of a day: quoted once)."""
    return quote(text, safe="")


@functools.lru_cache(maxsize=4096)
def _escaped(text: str) -> str:
    return escape(text)


def log_url(ui_base: str, dag_id: str, cell: m.Cell) -> str:
    return (
        f"{ui_base}/dags/{_quoted(dag_id)}/runs/{_quoted(cell.run_id or '')}/tasks/destination.export_tables"
        f"/mapped/{cell.map_index}?try_number={cell.try_number}"
    )


def cell_html(prefix: str, ui_base: str, dag_id: str, row_id: str, day: str, cell: m.Cell) -> str:
    """One cell; `row_id` is the destination's name, `day` an ISO date (no escaping needed)."""
    row = _escaped(row_id)
    parts = []
    if cell.map_index is not None and cell.run_id:
        value = f"{_escaped(cell.run_id)}|{cell.map_index}"
    elif cell.run_id is None:
        value = f"missing|{day}"
    else:
        value = ""
    if value:
        parts.append(
            f"<input type='checkbox' name='cell' value='{value}' data-row='{row}' "
            f"data-day='{day}' title='select to re-export'>"
        )
    if cell.state == m.DELIVERED:
        parts.append(f"<b>delivered</b><div>{sum(cell.rows.values()):,} rows · {_size(cell.bytes)}</div>")
        if cell.when:
            parts.append(f"<div class='when'>{cell.when[:16].replace('T', ' ')} UTC · try {cell.try_number}</div>")
        keys = []
        manifest = (
            f"{prefix}/dags/{_quoted(dag_id)}/manifest?run_id={_quoted(cell.run_id or '')}&amp;"
            f"map_index={cell.map_index}&amp;table="
        )
        for table, ref in cell.objects.items():
            keys.append(
                f"<div class='key'>{_escaped(table)}: {cell.rows.get(table, 0):,} rows, "
                f"<a href='{manifest}{_quoted(table)}'>manifest</a><br>s3://{_escaped(str(ref.get('bucket')))}/"
                f"{escape(str(ref.get('key')))}</div>"
            )
        if keys:
            parts.append(f"<details><summary>keys</summary>{''.join(keys)}</details>")
    elif cell.state in (m.FAILED, m.UP_FOR_RETRY):
        label = "failed" if cell.state == m.FAILED else "up for retry"
        parts.append(f"<b>{label}</b> (try {cell.try_number})")
        parts.append(f"<div class='cause'>{escape(cell.cause or '')}</div>")
        parts.append(f"<a href='{escape(log_url(ui_base, dag_id, cell))}'>log</a>")
    elif cell.state == m.DRY_RUN:
        parts.append(f"<b>dry run only</b> {sum(cell.rows.values()):,} rows")
    elif cell.state in m.PENDING:
        parts.append(f"<b>{escape(cell.state.replace('_', ' '))}</b>")
        if cell.map_index is not None:
            parts.append(f" (try {cell.try_number}) <a href='{escape(log_url(ui_base, dag_id, cell))}'>log</a>")
    else:
        parts.append(f"<b>not run</b><div>{escape(cell.note or '')}</div>")
    return (
        f"<td class='cell {cell.state}' data-destination='{row}' data-day='{day}' "
        f"data-state='{cell.state}'>{''.join(parts)}</td>"
    )


def matrix_page(
    mx: m.Matrix,
    *,
    prefix: str,
    ui_base: str,
    rows: list[m.Row],
    filters: dict[str, Any],
    apps: list[str],
    banner: str = "",
) -> str:
    dag = mx.dag_id
    days = [d.isoformat() for d in mx.days]
    head = [f"<h1>Deliveries: {escape(dag)}</h1>"]
    head.append(
        f"<div class='origin'>Destinations in effect from {escape(mx.origin)}; days {days[0]} .. {days[-1]} UTC"
    )
    head.append(f" · <a href='{prefix}/'>all export DAGs</a> · <a href='{ui_base}/dags/{quote(dag)}'>DAG</a></div>")
    if banner:
        head.append(banner)
    if mx.problem:
        head.append(f"<div class='banner error problem'>The configuration cannot be read: {escape(mx.problem)}</div>")
    options = "".join(
        f"<option value='{escape(a)}'{' selected' if a == filters.get('app') else ''}>{escape(a)}</option>"
        for a in apps
    )
    head.append(
        f"<form class='filters' method='get' action='{prefix}/dags/{quote(dag)}'>"
        f"<label>from <input type='date' name='from' value='{days[0]}'></label>"
        f"<label>to <input type='date' name='to' value='{days[-1]}'></label>"
        f"<label><input type='checkbox' name='failed' value='1'{' checked' if filters.get('failed') else ''}>"
        " failed only</label>"
        f"<label>app <select name='app'><option value=''>all</option>{options}</select></label>"
        f"<label>name <input type='search' name='name' value='{escape(filters.get('name') or '')}'></label>"
        "<button type='submit'>Show</button></form>"
    )
    table = [f"<form method='post' action='{prefix}/dags/{quote(dag)}/reexport'>"]
    table.append(
        "<div><button type='submit' id='reexport'>Re-export selected…</button> "
        "<span class='sel'>select cells (or a whole row / day), then confirm on the next page</span></div>"
    )
    table.append("<table class='matrix'><thead><tr><th class='dest'>destination</th>")
    for day in mx.days:
        delivered, total = mx.delivered(day)
        table.append(
            f"<th data-day-header='{day.isoformat()}'>{day.isoformat()}<span class='count'>{delivered} of {total} "
            f"delivered</span><a href='#' class='sel' data-select-day='{day.isoformat()}'>select day</a></th>"
        )
    table.append("</tr></thead><tbody>")
    for row in rows:
        d = row.destination
        where = "/".join(p for p in (d.bucket, d.prefix) if p)
        problem = f"<div class='problem'>{escape(d.problem)}</div>" if d.problem else ""
        table.append(
            f"<tr data-row='{escape(d.name)}'><td class='dest'><b>{escape(d.name)}</b><small>app {escape(d.app_id)}"
            f"</small><small>{escape(where)}</small>{problem}"
            f"<a href='#' class='sel' data-select-row='{escape(d.name)}'>select row</a></td>"
        )
        for day in days:
            table.append(cell_html(prefix, ui_base, dag, d.name, day, row.cells[day]))
        table.append("</tr>")
    table.append("</tbody></table></form>")
    if not rows:
        table.append("<p>No destination matches the filters.</p>")
    ranges = []
    if mx.ranges:
        ranges.append("<h2>Manual range runs</h2><table class='matrix'><thead><tr><th>run</th><th>range</th>")
        ranges.append("<th>state</th><th>destinations</th></tr></thead><tbody>")
        for group in mx.ranges:
            states: dict[str, int] = {}
            for cell in group.cells.values():
                states[cell.state] = states.get(cell.state, 0) + 1
            failed = [f"{escape(n)}: <span class='cause'>{escape(c.cause or '')}</span>"
                      for n, c in group.cells.items() if c.state == m.FAILED]  # fmt: skip
            summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(states.items()))
            dry = " (dry run)" if group.run.dry_run else ""
            ranges.append(
                f"<tr data-range-run='{escape(group.run.run_id)}'><td>{escape(group.run.run_id)}</td>"
                f"<td>{escape(group.run.label)}{dry}</td><td>{escape(str(group.run.state))}</td>"
                f"<td>{escape(summary)}<br>{'<br>'.join(failed)}</td></tr>"
            )
        ranges.append("</tbody></table>")
    return document(f"Deliveries: {dag}", "".join(head + table + ranges), pending=mx.pending)


def confirm_page(prefix: str, dag_id: str, cells: list[tuple[str, str, str]], missing: list[str]) -> str:
    """What a re-export will run, before it runs: (destination, day, value) per cell, and missing days."""
    items = "".join(
        f"<li>{escape(name)} · {escape(day)}<input type='hidden' name='cell' value='{escape(value)}'></li>"
        for name, day, value in cells
    )
    days = "".join(
        f"<li>{escape(day)} (no run yet: a backfill of that day exports every destination)"
        f"<input type='hidden' name='cell' value='missing|{escape(day)}'></li>"
        for day in missing
    )
    body = (
        f"<h1>Re-export from {escape(dag_id)}?</h1>"
        f"<form method='post' action='{prefix}/dags/{quote(dag_id)}/reexport'><input type='hidden' name='confirm' "
        f"value='1'><p>{len(cells)} destination-day(s) will be cleared and exported again, as you, through "
        "Airflow's REST API (your permissions apply; the audit log records it):</p>"
        f"<ul>{items}</ul>{'<p>Missing days backfilled:</p><ul>' + days + '</ul>' if missing else ''}"
        f"<button type='submit' id='confirm'>Re-export {len(cells) + len(missing)}</button> "
        f"<a href='{prefix}/dags/{quote(dag_id)}'>cancel</a></form>"
    )
    return document("Confirm re-export", body)


def message_page(title: str, text: str, prefix: str = "") -> str:
    back = f"<p><a href='{prefix}/'>back</a></p>" if prefix else ""
    return document(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{back}")


def index_page(prefix: str, dags: list[str]) -> str:
    items = "".join(f"<li><a href='{prefix}/dags/{quote(d)}'>{escape(d)}</a></li>" for d in dags)
    return document("Deliveries", f"<h1>Deliveries</h1><p>Export DAGs you may read:</p><ul>{items}</ul>")


def manifest_page(prefix: str, dag_id: str, where: str, content: str) -> str:
    return document(
        "Manifest",
        f"<h1>Manifest</h1><p class='key'>{escape(where)}</p><pre id='manifest'>{escape(content)}</pre>"
        f"<p><a href='{prefix}/dags/{quote(dag_id)}'>back to the deliveries of {escape(dag_id)}</a></p>",
    )


def default_days(today: dt.date, count: int = 14) -> list[dt.date]:
    """The last `count` complete UTC days."""
    return m.day_range(today - dt.timedelta(days=1), count)
