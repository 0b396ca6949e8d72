"""Rows of ``events``: the named fixtures (``EVENT_FIXTURES``) first, then random rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

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
from devtools.synthetic.values import (
    _CURRENCY_PICK,
    _EVENT_PICK,
    _MONEY_TABLE,
    _NULL_MONEY,
    _ZERO_MONEY,
    DAY_US,
    HOUR,
    MINUTE,
    SEC,
    _rng,
    money,
    random_arrival,
    ts,
)
from devtools.synthetic.vocabulary import (
    AB_TESTS,
    CANCEL_TYPES,
    CANCELLATION_REASONS,
    CURRENCIES,
    EVENT_TYPES,
    HOSTILE_TEXT,
    MONETARY_TYPES,
    ONE_TIME_TYPES,
    PAYWALLS,
    PLACEMENTS,
    STARTING_TYPES,
    STORES,
)

# Events -------------------------------------------------------------------------------------

_E = {c: i for i, c in enumerate(COLUMNS["events"])}
_E_NULLABLE = _nullable_idx("events")
_E_HOSTILE = _idx(
    "events",
    (
        "transaction_id",
        "product_id",
        "base_plan_id",
        "developer_id",
        "ab_test_name",
        "paywall_name",
        "cancellation_reason",
    ),
)
_E_TEXT_NULLABLE = _idx(
    "events",
    (
        "profile_id",
        "transaction_id",
        "original_transaction_id",
        "environment",
        "store",
        "product_id",
        "base_plan_id",
        "developer_id",
        "ab_test_name",
        "paywall_name",
        "currency",
        "cancellation_reason",
    ),
)
_E_MONEY = _E["revenue_usd"]

# Named fixtures of the events table: row n of each (app, day) for n < len(EVENT_FIXTURES).
EVENT_FIXTURES: tuple[str, ...] = (
    "boundary_start",  # created_at = D 00:00:00.000000 (event_datetime the same); profile = NULL-profile fixture
    "boundary_end",  # created_at = D 23:59:59.999999
    "late_arrival",  # event_datetime D-1 23:5x:xx.xxxxxx, created_at D 00:0x:xx.xxxxxx
    "late_arrival_edge",  # event_datetime D-1 23:59:59.999999, created_at D 00:00:00.500000
    "whole_second",  # created_at D 12:00:00.000000, event_datetime D 11:59:59.000000
    "no_profile",  # profile_id NULL
    "before_install",  # event_datetime days before the profile's install_date
    "all_null",  # every nullable column NULL (so also no profile)
    "empty_strings",  # every nullable text column '' except profile_id; profile = empty-string fixture
    "mixed_case_trial",  # event_type 'Trial_Started'
    "mixed_case_upper",  # event_type 'SUBSCRIPTION_RENEWED'
    "money_9.99",
    "money_0.1",
    "money_4.495",
    "money_1234.5",
    "money_0",
    "money_0.0001",
    "money_9999999.9999",
    *(f"type_{t}" for t in EVENT_TYPES),  # one row per event type, stores/currencies/envs rotating
    *(f"hostile_{i}" for i in range(N_HOSTILE)),  # HOSTILE_TEXT[i] in text columns; profile = hostile fixture i
)
_MONEY_FIXTURES = {
    "money_9.99": "9.99",
    "money_0.1": "0.1",
    "money_4.495": "4.495",
    "money_1234.5": "1234.5",
    "money_0": "0",
    "money_0.0001": "0.0001",
    "money_9999999.9999": "9999999.9999",
}


def _period(product: str) -> int:
    if "weekly" in product:
        return 7 * DAY_US
    if "annual" in product:
        return 365 * DAY_US
    return 30 * DAY_US


def _event_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "events", ctx.app, day.isoformat())
    rnd = rng.random
    app, android = ctx.app, ctx.android
    day0 = ctx.day0[k]
    id_prefix = f"evt-{app}-{day:%Y%m%d}-"
    home_store = "play_store" if android else "app_store"
    base = app.replace("-", "_")
    sub_products = (f"{base}.premium.weekly", f"{base}.premium.monthly", f"{base}.premium.annual")
    one_time = (f"{base}.coins.100", f"{base}.lifetime")
    money_table = _MONEY_TABLE
    pick_types = _EVENT_PICK
    pick_cur = _CURRENCY_PICK
    ncur = len(pick_cur)
    pick_profile = ctx.pick_profile

    def build(n: int, created: int, ev: int, et: str, pid: str | None, store: str, currency: str) -> list:
        base_type = et.lower()
        if store == "app_store":
            txn = str(200000000000000 + int(rnd() * 10**15))
        elif store == "play_store":
            s = f"{int(rnd() * 10**17):017d}"
            txn = f"GPA.{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"
        else:
            txn = f"pi_{rng.getrandbits(96):024x}"
        if base_type in STARTING_TYPES:
            otxn = txn
        elif store == "play_store":
            otxn = txn + f"..{int(rnd() * 12)}"
        else:
            otxn = (
                str(200000000000000 + int(rnd() * 10**15)) if store == "app_store" else f"pi_{rng.getrandbits(96):024x}"
            )
        if base_type in ONE_TIME_TYPES:
            product = one_time[int(rnd() * 2)]
            expires = None
        else:
            product = sub_products[int(rnd() * 3)]
            expires = ts(ev + (3 * DAY_US if base_type.startswith("trial") else _period(product)))
        if base_type in MONETARY_TYPES:
            mt = money_table[currency]
            amounts = mt[int(rnd() * len(mt))] if rnd() > 0.02 else _NULL_MONEY
        else:
            amounts = _NULL_MONEY if rnd() < 0.8 else _ZERO_MONEY
        r = rnd()
        if r < 0.5:
            ab_name = ab_rev = None
        else:
            ab_name, ab_rev = AB_TESTS[int(rnd() * 4)], int(rnd() * 5) + 1
        r = rnd()
        if r < 0.3:
            pw_name = pw_rev = dev_id = None
        else:
            pw_name, pw_rev, dev_id = PAYWALLS[int(rnd() * 5)], int(rnd() * 9), PLACEMENTS[int(rnd() * 5)]
        return [
            f"{id_prefix}{n:07d}",
            app,
            pid,
            et,
            ts(ev),
            txn if rnd() > 0.02 else None,
            otxn,
            expires,
            "Production" if rnd() > 0.03 else "Sandbox",
            *amounts,
            store,
            product,
            (
                "monthly-base"
                if store == "play_store"
                else f"price_{int(rnd() * 2**40):010x}"
                if store == "stripe"
                else None
            ),
            dev_id,
            ab_name,
            ab_rev,
            pw_name,
            pw_rev,
            currency,
            CANCELLATION_REASONS[int(rnd() * 7)] if base_type in CANCEL_TYPES else None,
            ts(created),
        ]

    n_fix = len(EVENT_FIXTURES)
    for n in range(max(n_rows, n_fix)):
        if n < n_fix:
            yield _event_fixture(ctx, k, n, build, rnd)
            continue
        created, ev, et = random_arrival(rnd, day0, pick_types)
        r = rnd()
        if r < 0.03:
            pid = None
        elif r < 0.06:  # history: happened before the profile installed the SDK
            pid, pday0 = ctx.pick_old_profile(rnd, k)
            ev = pday0 - DAY_US - int(rnd() * 30 * DAY_US)
        else:
            pid = pick_profile(rnd, ev)
        r = rnd()
        store = home_store if r < 0.92 else "stripe"
        yield build(n, created, ev, et, pid, store, pick_cur[int(rnd() * ncur)])


def _event_fixture(ctx: _AppContext, k: int, n: int, build: Callable[..., list], rnd: Callable[[], float]) -> list:
    name = EVENT_FIXTURES[n]
    day0 = ctx.day0[k]
    prev = k - 1  # pool day before this day: all its profiles exist before D 00:00
    store = STORES[n % 3]
    currency = CURRENCIES[n % len(CURRENCIES)]
    created = day0 + 6 * HOUR + n * MINUTE + 123457 * (n % 7)
    ev = created - 1500 * n
    pid: str | None = ctx.profile_id(prev, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
    et = "subscription_renewed"
    if name == "boundary_start":
        created = ev = day0
        pid = ctx.profile_id(prev, PROFILE_FIX_NULL)
    elif name == "boundary_end":
        created = day0 + DAY_US - 1
        ev = created - 1234567
    elif name == "late_arrival":
        ev = day0 - 10 * MINUTE + int(rnd() * 10 * MINUTE)
        created = day0 + 1 + int(rnd() * 10 * MINUTE - 1)
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "late_arrival_edge":
        ev, created = day0 - 1, day0 + 500000
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES + 1) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "whole_second":
        created, ev = day0 + 12 * HOUR, day0 + 12 * HOUR - SEC
    elif name == "no_profile":
        pid = None
    elif name == "before_install":
        pid, pday0 = ctx.pick_old_profile(rnd, k)
        ev = pday0 - 2 * DAY_US - int(rnd() * DAY_US)
    elif name == "empty_strings":
        pid = ctx.profile_id(prev, PROFILE_FIX_EMPTY)
    elif name == "mixed_case_trial":
        et = "Trial_Started"
    elif name == "mixed_case_upper":
        et = "SUBSCRIPTION_RENEWED"
    elif name.startswith("type_"):
        et = name[5:]
    elif name.startswith("hostile_"):
        pid = ctx.profile_id(prev, PROFILE_FIX_HOSTILE + int(name[8:]))
    row = build(n, created, ev, et, pid, store, currency)
    row[_E["environment"]] = "Sandbox" if n % 4 == 0 else "Production"
    if name == "all_null":
        for i in _E_NULLABLE:
            row[i] = None
    elif name == "empty_strings":
        for i in _E_TEXT_NULLABLE[1:]:
            row[i] = ""
    elif name.startswith("hostile_"):
        text = HOSTILE_TEXT[int(name[8:])]
        for i in _E_HOSTILE:
            row[i] = text
        row[_E["cancellation_reason"]] = text
    elif name in _MONEY_FIXTURES:
        row[_E["event_type"]] = "subscription_started"
        row[_E["currency"]] = "USD"
        v = money(_MONEY_FIXTURES[name])
        row[_E_MONEY : _E_MONEY + 8] = [v, v, v, 0.0, v, v, v, 0.0]
        row[_E["transaction_id"]] = row[_E["original_transaction_id"]]
    return row
