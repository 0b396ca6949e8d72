"""Rows of ``paywall_visits``: the named fixtures (``VISIT_FIXTURES``) first, then random rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from devtools.synthetic.context import (
    N_HOSTILE,
    N_PROFILE_FIXTURES,
    PROFILE_FIX_EMPTY,
    PROFILE_FIX_HOSTILE,
    PROFILE_FIX_NULL,
    _AppContext,
)
from devtools.synthetic.profiles import _idx, _nullable_idx
from devtools.synthetic.schema import COLUMNS
from devtools.synthetic.values import DAY_US, HOUR, MAX_LAG, MINUTE, SEC, _rng, ts
from devtools.synthetic.vocabulary import AB_TESTS, HOSTILE_TEXT, PAYWALLS, PLACEMENTS, STORES

# Paywall visits -----------------------------------------------------------------------------

_V = {c: i for i, c in enumerate(COLUMNS["paywall_visits"])}
_V_NULLABLE = _nullable_idx("paywall_visits")
_V_HOSTILE = _idx("paywall_visits", ("developer_id", "ab_test_name", "paywall_name"))
_V_TEXT_NULLABLE = _idx("paywall_visits", ("store", "developer_id", "ab_test_name", "paywall_name"))
VISIT_FIXTURES: tuple[str, ...] = (
    "boundary_start",
    "boundary_end",
    "late_arrival",
    "late_arrival_edge",
    "whole_second",
    "no_profile",
    "all_null",
    "empty_strings",
    "store_app_store",
    "store_play_store",
    "store_stripe",
    *(f"hostile_{i}" for i in range(N_HOSTILE)),
)


def _visit_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "paywall_visits", ctx.app, day.isoformat())
    rnd = rng.random
    app, day0 = ctx.app, ctx.day0[k]
    id_prefix = f"pwv-{app}-{day:%Y%m%d}-"
    home_store = "play_store" if ctx.android else "app_store"
    pick_profile = ctx.pick_profile
    n_fix = len(VISIT_FIXTURES)
    for n in range(max(n_rows, n_fix)):
        pid: str | None
        if n < n_fix:
            name = VISIT_FIXTURES[n]
            created = day0 + 7 * HOUR + n * MINUTE + 234567 * (n % 5)
            shown = created - 2000 * n
            pid = ctx.profile_id(k - 1, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
            store = STORES[n % 3]
            if name == "boundary_start":
                created = shown = day0
                pid = ctx.profile_id(k - 1, PROFILE_FIX_NULL)
            elif name == "boundary_end":
                created, shown = day0 + DAY_US - 1, day0 + DAY_US - 1 - 999999
            elif name == "late_arrival":
                shown, created = day0 - 3 * MINUTE - 141421, day0 + 2 * MINUTE + 271828
                pid = ctx.profile_id(k - 2, N_PROFILE_FIXTURES) if k >= 2 else pick_profile(rnd, shown)
            elif name == "late_arrival_edge":
                shown, created = day0 - 1, day0
                pid = ctx.profile_id(k - 2, N_PROFILE_FIXTURES + 1) if k >= 2 else pick_profile(rnd, shown)
            elif name == "whole_second":
                created, shown = day0 + 13 * HOUR, day0 + 13 * HOUR - 5 * SEC
            elif name in ("no_profile", "all_null"):
                pid = None
            elif name == "empty_strings":
                pid = ctx.profile_id(k - 1, PROFILE_FIX_EMPTY)
            elif name.startswith("store_"):
                store = name[6:]
            elif name.startswith("hostile_"):
                pid = ctx.profile_id(k - 1, PROFILE_FIX_HOSTILE + int(name[8:]))
        else:
            created = day0 + int(rnd() * DAY_US)
            if rnd() < 0.1:
                created -= created % SEC
            shown = created - (int(rnd() * 3 * SEC) if rnd() < 0.9 else int(rnd() * MAX_LAG))
            pid = None if rnd() < 0.03 else pick_profile(rnd, shown)
            store = home_store if rnd() < 0.92 else "stripe"
        r = rnd()
        ab_name, ab_rev = (None, None) if r < 0.4 else (AB_TESTS[int(rnd() * 4)], int(rnd() * 5) + 1)
        r = rnd()
        if r < 0.1:
            pw_name = pw_rev = dev_id = None
        else:
            pw_name, pw_rev, dev_id = PAYWALLS[int(rnd() * 5)], int(rnd() * 9), PLACEMENTS[int(rnd() * 5)]
        row = [f"{id_prefix}{n:07d}", app, pid, store, ts(shown), dev_id, ab_name, ab_rev, pw_name, pw_rev, ts(created)]
        if n < n_fix:
            name = VISIT_FIXTURES[n]
            if name == "all_null":
                for i in _V_NULLABLE:
                    row[i] = None
            elif name == "empty_strings":
                for i in _V_TEXT_NULLABLE:
                    row[i] = ""
            elif name.startswith("hostile_"):
                for i in _V_HOSTILE:
                    row[i] = HOSTILE_TEXT[int(name[8:])]
        yield row
