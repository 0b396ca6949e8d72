"""Deterministic synthetic source data for tests, the demo and the benchmark.

Fills the six reference tables (``include/sql/<dialect>/schema.sql``) of a PostgreSQL or SQLite
database with seeded, realistic-looking and deliberately hostile rows::

    python -m devtools.synthetic \\
        --target postgresql://postgres@127.0.0.1:5432/db --apps com.acme.ios,com.acme.android \\
        --start 2026-03-01 --days 3 --rows-per-day 1000 --seed 7 [--recreate] [--tables events,...]

Determinism: the same arguments give the same rows, value for value, in both dialects. Every
(table, app, day) has its own ``random.Random`` seeded from a string, so a table's rows do not
depend on which other tables are generated. The wall clock is never read for data.

Value formats (identical in both dialects):

* timestamps: UTC; SQLite text ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL timestamptz (loaded from
  the same text with the session time zone set to UTC);
* money: multiples of 0.0001 below 1e7, sent as the Python float ``m / 10000`` whose ``repr`` is
  the exact decimal (``9.99``, ``0.1``, ``1234.5``, ``0.0``, ``0.0001``); numeric(18,4) in PostgreSQL;
* JSON: the text PostgreSQL's ``jsonb::text`` prints (keys ordered by byte length then bytes,
  ``", "``/``": "`` separators, non-ASCII unescaped), so SQLite's TEXT equals the jsonb output;
* dates: ``YYYY-MM-DD``.

Every day of every app carries fixed "fixture" rows (ids ending ``-0000000`` upwards, see
``EVENT_FIXTURES`` and friends) with the edge cases: boundary instants, late arrivals, NULL and
empty values, hostile text, every event type, mixed-case types, money edge values. The remaining
rows are random. Loading uses ``COPY FROM STDIN`` (PostgreSQL, streamed in chunks from a producer
thread) or ``executemany`` (SQLite), so memory stays bounded by the chunk size.

Modules, one per seam: ``schema`` (tables, columns), ``vocabulary`` (event types, stores, hostile
texts), ``values`` (time, money, JSON text, seeded RNGs), ``context`` (per-app profile pool,
campaigns, JSON pools), the row generators per table (``profiles``, ``events``, ``visits``, ``ua``:
each yields lists in ``COLUMNS[table]`` order, fixtures first), ``writers`` (COPY / executemany) and
``generate`` (targets, ``generate``, the command line). Development only: the runtime package
``plugins/subscription_exports`` does not import it.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The generator reads the event-type vocabulary from the product (subscription_exports.integrations).
_PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")
if _PLUGINS not in sys.path:
    sys.path.append(_PLUGINS)

from devtools.synthetic.context import build_campaigns  # noqa: E402
from devtools.synthetic.events import EVENT_FIXTURES  # noqa: E402
from devtools.synthetic.generate import generate, main, parse_target, schema_sql, table_rows  # noqa: E402
from devtools.synthetic.schema import ALL_TABLES, COLUMNS, JSON_COLUMNS, NOT_NULL  # noqa: E402
from devtools.synthetic.ua import METRIC_FIXTURES, UA_EVENT_FIXTURES  # noqa: E402
from devtools.synthetic.visits import VISIT_FIXTURES  # noqa: E402
from devtools.synthetic.vocabulary import CURRENCIES, EVENT_TYPES, HOSTILE_TEXT, UA_EVENT_TYPES  # noqa: E402
from devtools.synthetic.writers import csv_line  # noqa: E402

__all__ = [
    "ALL_TABLES",
    "COLUMNS",
    "CURRENCIES",
    "EVENT_FIXTURES",
    "EVENT_TYPES",
    "HOSTILE_TEXT",
    "JSON_COLUMNS",
    "METRIC_FIXTURES",
    "NOT_NULL",
    "UA_EVENT_FIXTURES",
    "UA_EVENT_TYPES",
    "VISIT_FIXTURES",
    "build_campaigns",
    "csv_line",
    "generate",
    "main",
    "parse_target",
    "schema_sql",
    "table_rows",
]
