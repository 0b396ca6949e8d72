"""Rows of ``profiles``: fixtures per pool day, then random profiles."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from devtools.synthetic.context import (
    N_PROFILE_FIXTURES,
    NULL_INSTALL_MOD,
    PROFILE_FIX_EMPTY,
    PROFILE_FIX_HOSTILE,
    PROFILE_FIX_NULL,
    _AppContext,
    _attributes_pool,
    hostile_json,
)
from devtools.synthetic.schema import COLUMNS, NOT_NULL
from devtools.synthetic.values import SEC, _rng, _uuid, ts
from devtools.synthetic.vocabulary import (
    ANDROID_DEVICES,
    ATTRIBUTION_CHANNELS,
    ATTRIBUTION_SOURCES,
    COUNTRIES,
    HOSTILE_TEXT,
    IOS_DEVICES,
)

_PROFILE_TEXT_COLS = (
    "customer_user_id",
    "profile_country",
    "store_country",
    "idfv",
    "idfa",
    "advertising_id",
    "android_id",
    "android_app_set_id",
    "device",
    "ip_address",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
)
_PROFILE_HOSTILE_COLS = (
    "customer_user_id",
    "device",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
)


def _idx(table: str, names: Iterable[str]) -> tuple[int, ...]:
    cols = COLUMNS[table]
    return tuple(cols.index(n) for n in names)


def _nullable_idx(table: str) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(COLUMNS[table]) if c not in NOT_NULL[table])


def _ip(rnd: Callable[[], float]) -> str:
    x = int(rnd() * 4294967296)
    if x & 7 == 0:
        return f"2001:db8:{(x >> 8) & 0xFFFF:x}:{(x >> 16) & 0xFFFF:x}::{x & 0xFFF:x}"
    return f"{x >> 24 | 1}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255 or 1}"


def _profile_rows(ctx: _AppContext, k: int) -> Iterator[list]:
    rng = _rng(ctx.seed, "profiles", ctx.app, ctx.labels[k])
    rnd = rng.random
    app, android, step, day0 = ctx.app, ctx.android, ctx.step, ctx.day0[k]
    pool = _attributes_pool(rng)
    npool = len(pool)
    devices = ANDROID_DEVICES if android else IOS_DEVICES
    ncountries = len(COUNTRIES)
    prefix = ctx.prefixes[k]
    for n in range(ctx.per_day):
        created = day0 + n * step + int(rnd() * step)
        r = rnd()
        if r < 0.05:
            created -= created % SEC  # whole second
        install = created - int(rnd() * 600) * SEC if r < 0.3 else created - int(rnd() * 600 * SEC)
        country = COUNTRIES[int(rnd() * ncountries)]
        r = rnd()
        cuid = (
            None
            if r < 0.4
            else (f"user_{int(rnd() * 4294967296):08x}" if r < 0.8 else f"u{int(rnd() * 10**6)}@example.com")
        )
        if android:
            idfv = idfa = None
            adid = _uuid(rng) if rnd() < 0.8 else None
            android_id = f"{rng.getrandbits(64):016x}"
            app_set = _uuid(rng) if rnd() < 0.9 else None
        else:
            idfv = _uuid(rng)
            r = rnd()
            idfa = "00000000-0000-0000-0000-000000000000" if r < 0.5 else (_uuid(rng) if r < 0.8 else None)
            adid = android_id = app_set = None
        r = rnd()
        if r < 0.45:
            attr = (None, None, "organic", None, None, None, None, None)
        elif r < 0.5:
            attr = (None, None, "unknown", None, None, None, None, None)
        else:
            src = ATTRIBUTION_SOURCES[int(rnd() * len(ATTRIBUTION_SOURCES))]
            attr = (
                src,
                str(int(rnd() * 10**12)),
                "non_organic",
                ATTRIBUTION_CHANNELS[int(rnd() * 5)],
                f"campaign_{int(rnd() * 20)}",
                f"group {int(rnd() * 5)}",
                f"set_{int(rnd() * 9)}",
                f"creative-{int(rnd() * 50)}" if rnd() < 0.8 else None,
            )
        row = [
            f"{prefix}{n:06d}",
            app,
            cuid,
            None if n % 50 == NULL_INSTALL_MOD else ts(install),
            country,
            country if rnd() < 0.9 else (None if rnd() < 0.5 else COUNTRIES[int(rnd() * ncountries)]),
            idfv,
            idfa,
            adid,
            android_id,
            app_set,
            devices[int(rnd() * len(devices))],
            _ip(rnd),
            *attr,
            pool[int(rnd() * npool)],
            ts(created),
        ]
        if n < N_PROFILE_FIXTURES:
            _profile_fixture(row, n, created)
        yield row


_P_NULLABLE = _nullable_idx("profiles")
_P_TEXT = _idx("profiles", _PROFILE_TEXT_COLS)
_P_HOSTILE = _idx("profiles", _PROFILE_HOSTILE_COLS)
_P_ATTR = COLUMNS["profiles"].index("attributes")
_P_INSTALL = COLUMNS["profiles"].index("install_date")


def _profile_fixture(row: list, n: int, created: int) -> None:
    if n == PROFILE_FIX_NULL:
        for i in _P_NULLABLE:
            row[i] = None
    elif n == PROFILE_FIX_EMPTY:
        for i in _P_TEXT:
            row[i] = ""
        row[_P_ATTR] = "{}"
        row[_P_INSTALL] = ts(created)  # install_date == created_at
    else:
        text = HOSTILE_TEXT[n - PROFILE_FIX_HOSTILE]
        for i in _P_HOSTILE:
            row[i] = text
        row[_P_ATTR] = hostile_json(text)
