"""Time and value helpers: microsecond timestamps, money, PostgreSQL jsonb text, seeded RNGs."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from devtools.synthetic.vocabulary import (
    _CURRENCY_WEIGHTS,
    _EVENT_WEIGHTS,
    _LOCAL_PRICES,
    _TAX_RATE,
    _UA_WEIGHTS,
    _USD_RATE,
    mixed_case,
)

SEC = 1_000_000
MINUTE = 60 * SEC
HOUR = 3600 * SEC
DAY_US = 86_400 * SEC
MAX_LAG = 6 * HOUR  # ordinary rows: event_datetime is at most this long before created_at
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_PREFIX: dict[int, str] = {}


def day_us(day: dt.date) -> int:
    """Microseconds since the epoch at ``day`` 00:00:00 UTC."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_US


def ts(u: int) -> str:
    """Microseconds since the epoch -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)."""
    d, r = divmod(u, DAY_US)
    p = _DAY_PREFIX.get(d)
    if p is None:
        p = _DAY_PREFIX[d] = dt.date.fromordinal(d + _EPOCH_ORDINAL).isoformat() + " "
    s, f = divmod(r, SEC)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{p}{h:02d}:{m:02d}:{s:02d}.{f:06d}"


def random_arrival(rnd: Callable[[], float], day0: int, types: Sequence[str]) -> tuple[int, int, str]:
    """An ordinary row's created_at in the day (10% on a whole second), its event time (lag: 70% within
    seconds, 25% within minutes, 5% up to MAX_LAG) and its event type (1% in mixed case)."""
    created = day0 + int(rnd() * DAY_US)
    if rnd() < 0.1:
        created -= created % SEC
    r = rnd()
    lag = int(rnd() * 5 * SEC) if r < 0.7 else int(rnd() * 10 * MINUTE) if r < 0.95 else int(rnd() * MAX_LAG)
    event_type = types[int(rnd() * len(types))]
    if rnd() < 0.01:
        event_type = mixed_case(event_type)
    return created, created - lag, event_type


def money(value: str | int) -> float:
    """A decimal with at most 4 places as the float whose repr is exactly that decimal."""
    m = int(Decimal(value).scaleb(4))
    if Decimal(m).scaleb(-4) != Decimal(value) or abs(m) >= 10**11:
        raise ValueError(f"money value {value!r} needs more than 4 decimals or is >= 1e7")
    return m / 10000


def _m(units: int) -> float:
    return units / 10000


def jsonb_text(value: Any) -> str:
    """JSON text exactly as PostgreSQL prints ``jsonb::text`` (for the values this module makes)."""
    return json.dumps(_jsonb_order(value), ensure_ascii=False)


def _jsonb_order(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("JSON numbers must be finite")
    return value


def _money_tuple(currency: str, local_units: int, commission: float) -> tuple[float, ...]:
    """(revenue, proceeds, net_revenue, tax) in USD then local currency, consistent-ish."""
    t = _TAX_RATE[currency]
    rate = _USD_RATE[currency]
    rev_l = local_units
    tax_l = round(rev_l * t / (1 + t))
    proc_l = rev_l - round(rev_l * commission)
    net_l = round((rev_l - tax_l) * (1 - commission))
    loc = (rev_l, proc_l, net_l, tax_l)
    usd = tuple(round(x * rate) for x in loc)
    return tuple(_m(x) for x in usd + loc)


_MONEY_TABLE: dict[str, tuple[tuple[float, ...], ...]] = {
    cur: tuple(_money_tuple(cur, int(Decimal(p).scaleb(4)), c) for p in prices for c in (0.15, 0.30))
    for cur, prices in _LOCAL_PRICES.items()
}
_NULL_MONEY = (None,) * 8
_ZERO_MONEY = (0.0,) * 8


def _weighted(weights: dict[str, int]) -> tuple[str, ...]:
    return tuple(k for k, w in weights.items() for _ in range(w))


_EVENT_PICK = _weighted(_EVENT_WEIGHTS)
_UA_PICK = _weighted(_UA_WEIGHTS)
_CURRENCY_PICK = _weighted(_CURRENCY_WEIGHTS)


def _uuid(rng: random.Random) -> str:
    x = f"{rng.getrandbits(128):032x}"
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{x[16:20]}-{x[20:]}"


def _rng(seed: int, *parts: object) -> random.Random:
    # A str seed is hashed with SHA-512 (random.seed version 2): stable across runs and platforms.
    return random.Random("|".join(str(p) for p in (seed, *parts)))
