"""Rows of ``campaigns``, ``ua_events`` and ``ua_ad_metrics_daily``: fixtures first, then random rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from devtools.synthetic.context import (
    N_HOSTILE,
    N_PROFILE_FIXTURES,
    PROFILE_FIX_EMPTY,
    PROFILE_FIX_HOSTILE,
    PROFILE_FIX_NULL,
    Campaign,
    _AppContext,
    _custom_params_pool,
    hostile_json,
)
from devtools.synthetic.profiles import _idx, _ip, _nullable_idx
from devtools.synthetic.schema import COLUMNS, NOT_NULL
from devtools.synthetic.values import (
    _CURRENCY_PICK,
    _MONEY_TABLE,
    _UA_PICK,
    DAY_US,
    HOUR,
    MAX_LAG,
    MINUTE,
    SEC,
    _m,
    _rng,
    _uuid,
    money,
    random_arrival,
    ts,
)
from devtools.synthetic.vocabulary import (
    _USD_RATE,
    ANDROID_DEVICES,
    ANDROID_UA,
    ATTRIBUTION_CHANNELS,
    COUNTRIES,
    HOSTILE_TEXT,
    IOS_DEVICES,
    IOS_UA,
    UA_CONVERSION_TYPES,
    UA_EVENT_TYPES,
)

# UA -----------------------------------------------------------------------------------------


def _campaign_rows(ctx: _AppContext) -> Iterator[list]:
    for c in ctx.campaigns:
        yield [ctx.app, c.campaign_id, c.campaign_name, c.platform, ts(c.created_us)]


_U = {c: i for i, c in enumerate(COLUMNS["ua_events"])}
_U_NULLABLE = _nullable_idx("ua_events")
_U_HOSTILE = _idx(
    "ua_events",
    (
        "adset_name",
        "ad_name",
        "attribution_source",
        "attribution_network_user_id",
        "attribution_status",
        "attribution_channel",
        "attribution_campaign",
        "attribution_ad_group",
        "attribution_ad_set",
        "attribution_creative",
        "user_agent",
        "device",
        "app_version",
    ),
)
_U_TEXT_NULLABLE = tuple(
    i
    for i, c in enumerate(COLUMNS["ua_events"])
    if c not in NOT_NULL["ua_events"]
    and c != "profile_id"
    and not c.endswith("_datetime")
    and c not in ("conversion_value_usd", "conversion_value_local", "custom_parameters")
)
UA_EVENT_FIXTURES: tuple[str, ...] = (
    "boundary_start",
    "boundary_end",
    "late_arrival",
    "late_arrival_edge",
    "whole_second",
    "no_profile",
    "before_campaign",  # event_datetime before its campaign's created_at (campaign index 1, created start-3d)
    "all_null",
    "empty_strings",
    "mixed_case",
    "organic",
    *(f"type_{t}" for t in UA_EVENT_TYPES),
    *(f"hostile_{i}" for i in range(N_HOSTILE)),
)


def _ua_event_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "ua_events", ctx.app, day.isoformat())
    rnd = rng.random
    app, android, day0 = ctx.app, ctx.android, ctx.day0[k]
    id_prefix = f"uae-{app}-{day:%Y%m%d}-"
    params = _custom_params_pool(rng)
    nparams = len(params)
    active = [c for c in ctx.campaigns if c.created_us < day0 - MAX_LAG]
    pick_types = _UA_PICK
    pick_cur = _CURRENCY_PICK
    ncur = len(pick_cur)
    pick_profile = ctx.pick_profile
    uas = ANDROID_UA if android else IOS_UA
    devices = ANDROID_DEVICES if android else IOS_DEVICES
    device_type = "Android" if android else "iOS"
    os_versions = ("14", "13", "12", "15") if android else ("17.4.1", "18.1", "16.7.10", "18.3")
    n_fix = len(UA_EVENT_FIXTURES)

    def build(n: int, created: int, ev: int, et: str, pid: str | None, camp: Campaign | None) -> list:
        base_type = et.lower()
        if camp is not None:
            adset = camp.adsets[int(rnd() * 2)]
            ad = adset.ads[int(rnd() * 3)]
            click = ev - int(rnd() * 2 * HOUR) - SEC
            install = click + int(rnd() * (ev - click))
            src = camp.platform
            attrs = (
                camp.campaign_id,
                adset.adset_id,
                adset.adset_name,
                ad.ad_id,
                ad.ad_name,
                src,
                str(int(rnd() * 10**15)),
                "non_organic",
                ATTRIBUTION_CHANNELS[int(rnd() * 5)],
                camp.campaign_name,
                adset.adset_name,
                adset.adset_name,
                ad.ad_name,
            )
        else:
            click = install = None
            attrs = (None, None, None, None, None, None, None, "organic", None, None, None, None, None)
        if base_type in ("impression", "click"):
            install = None
            if base_type == "click" and click is not None:
                click = ev
        elif base_type in ("install", "reinstall"):
            install = ev
        conv_type = base_type if base_type in UA_CONVERSION_TYPES else None
        if conv_type is not None and base_type != "trial_started":
            currency = pick_cur[int(rnd() * ncur)]
            mt = _MONEY_TABLE[currency]
            amounts = mt[int(rnd() * len(mt))]
            cv_usd, cv_local = amounts[0], amounts[4]
        elif conv_type is not None:
            currency, cv_usd, cv_local = "USD", 0.0, 0.0
        else:
            currency = cv_usd = cv_local = None
        if android:
            ids = (None, None, _uuid(rng) if rnd() < 0.8 else None, f"{rng.getrandbits(64):016x}", _uuid(rng))
        else:
            r = rnd()
            ids = (
                "00000000-0000-0000-0000-000000000000" if r < 0.5 else _uuid(rng) if r < 0.8 else None,
                _uuid(rng),
                None,
                None,
                None,
            )
        return [
            f"{id_prefix}{n:07d}",
            app,
            pid,
            et,
            ts(ev),
            *attrs,
            ts(click) if click is not None else None,
            ts(install) if install is not None else None,
            ts(ev) if conv_type is not None else None,
            conv_type,
            cv_usd,
            cv_local,
            currency,
            COUNTRIES[int(rnd() * len(COUNTRIES))],
            device_type,
            os_versions[int(rnd() * 4)],
            f"3.{int(rnd() * 14)}.{int(rnd() * 5)}",
            uas[int(rnd() * len(uas))] if rnd() < 0.9 else None,
            _ip(rnd),
            *ids,
            devices[int(rnd() * len(devices))],
            params[int(rnd() * nparams)],
            ts(created),
        ]

    for n in range(max(n_rows, n_fix)):
        if n < n_fix:
            yield _ua_fixture(ctx, k, n, build, rnd, active)
            continue
        created, ev, et = random_arrival(rnd, day0, pick_types)
        camp = None if rnd() < 0.1 else active[int(rnd() * len(active))]
        r = rnd()
        if camp is not None and r < 0.03:  # before the campaign existed
            ev = camp.created_us - HOUR - int(rnd() * 5 * DAY_US)
            pid = None if rnd() < 0.5 else ctx.pick_old_profile(rnd, k)[0]
        elif r < 0.07:
            pid = None
        else:
            pid = pick_profile(rnd, ev)
        yield build(n, created, ev, et, pid, camp)


def _ua_fixture(
    ctx: _AppContext, k: int, n: int, build: Callable[..., list], rnd: Callable[[], float], active: list[Campaign]
) -> list:
    name = UA_EVENT_FIXTURES[n]
    day0 = ctx.day0[k]
    prev = k - 1
    created = day0 + 8 * HOUR + n * MINUTE + 345679 * (n % 6)
    ev = created - 2500 * n
    pid: str | None = ctx.profile_id(prev, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
    camp: Campaign | None = active[n % len(active)]
    et = "install"
    if name == "boundary_start":
        created = ev = day0
        pid = ctx.profile_id(prev, PROFILE_FIX_NULL)
    elif name == "boundary_end":
        created = day0 + DAY_US - 1
        ev = created - 7654321
    elif name == "late_arrival":
        ev, created = day0 - 8 * MINUTE - 333333, day0 + 4 * MINUTE + 444444
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "late_arrival_edge":
        ev, created = day0 - 1, day0 + 1
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES + 1) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "whole_second":
        created, ev = day0 + 14 * HOUR, day0 + 14 * HOUR - 60 * SEC
    elif name in ("no_profile", "all_null"):
        pid = None
    elif name == "before_campaign":
        camp = ctx.campaigns[1]
        ev = camp.created_us - DAY_US - int(rnd() * DAY_US)
    elif name == "empty_strings":
        pid = ctx.profile_id(prev, PROFILE_FIX_EMPTY)
    elif name == "mixed_case":
        et = "Install"
    elif name == "organic":
        camp = None
    elif name.startswith("type_"):
        et = name[5:]
    elif name.startswith("hostile_"):
        pid = ctx.profile_id(prev, PROFILE_FIX_HOSTILE + int(name[8:]))
    row = build(n, created, ev, et, pid, camp)
    if name == "all_null":
        for i in _U_NULLABLE:
            row[i] = None
    elif name == "empty_strings":
        for i in _U_TEXT_NULLABLE:
            row[i] = ""
        row[_U["custom_parameters"]] = "{}"
    elif name.startswith("hostile_"):
        text = HOSTILE_TEXT[int(name[8:])]
        for i in _U_HOSTILE:
            row[i] = text
        row[_U["custom_parameters"]] = hostile_json(text)
    return row


# Edge cases of ua_ad_metrics_daily, on campaign 0's six ads (created start-60d: active every day).
# (impressions, clicks, installs, conversions, spend_usd, spend_local, ltv_usd); "r" = random.
METRIC_FIXTURES: tuple[tuple[object, ...], ...] = (
    (0, 0, 0, 0, "0", "0", "0"),  # ad 0: everything zero
    ("r", 0, 0, 0, "r", "r", None),  # ad 1: impressions > 0, clicks 0, installs 0
    ("r", "r", 0, 0, "r", "r", "r"),  # ad 2: clicks > 0, installs 0
    ("r", "r", "r", "r", None, None, "r"),  # ad 3: spend NULL
    (None, "r", "r", None, "r", "r", "r"),  # ad 4: impressions NULL, conversions NULL
    (None, None, None, None, None, None, None),  # ad 5: every metric NULL
)


def _metric_rows(ctx: _AppContext, k: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "ua_ad_metrics_daily", ctx.app, day.isoformat())
    rnd = rng.random
    end = ctx.day0[k] + DAY_US
    date = day.isoformat()
    for camp in ctx.campaigns:
        if camp.created_us >= end:
            continue
        rate = _USD_RATE[camp.currency]
        for j, adset in enumerate(camp.adsets):
            for a, ad in enumerate(adset.ads):
                imps = int(rnd() * 50000) + 1
                clicks = int(imps * rnd() * 0.05) + 1
                installs = int(clicks * rnd() * 0.4) + 1
                conv = int(installs * rnd() * 0.3)
                spend_u = int(rnd() * 500 * 10000)  # 0.0001 units
                if rnd() < 0.3:
                    spend_u -= spend_u % 100  # 2 decimals
                spend_l = round(spend_u / rate)
                ltv_u = int(spend_u * rnd() * 1.5)
                vals: list = [imps, clicks, installs, conv, _m(spend_u), _m(spend_l), _m(ltv_u)]
                if camp.index == 0:
                    fixture = METRIC_FIXTURES[j * 3 + a]
                    vals = [
                        v if f == "r" else (None if f is None else money(f) if isinstance(f, str) else f)
                        for v, f in zip(vals, fixture, strict=False)
                    ]
                elif camp.index == 1 and j == 0 and a == 0:
                    vals[4:7] = [money("0.0001"), money("9999999.9999"), money("1234.5")]
                yield [ctx.app, camp.campaign_id, adset.adset_id, adset.adset_name, ad.ad_id, ad.ad_name, date, *vals]
