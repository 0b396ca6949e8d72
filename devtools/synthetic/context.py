"""Per-app context (profile pool, campaigns) and the JSON pools rows draw from."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.synthetic.values import DAY_US, HOUR, MINUTE, SEC, _rng, _uuid, day_us, jsonb_text
from devtools.synthetic.vocabulary import CURRENCIES, HOSTILE_TEXT


@dataclass(frozen=True)
class Ad:
    ad_id: str
    ad_name: str | None


@dataclass(frozen=True)
class AdSet:
    adset_id: str
    adset_name: str | None
    ads: tuple[Ad, ...]


@dataclass(frozen=True)
class Campaign:
    index: int
    campaign_id: str
    campaign_name: str | None
    platform: str | None
    created_us: int
    currency: str
    adsets: tuple[AdSet, ...]


_ADSET_NAMES: tuple[str | None, ...] = (
    "Lookalike 1%, US",
    "NA",
    None,
    'Interests: "fitness"',
    "Retargeting\r\n7d",
    "",
    "Zoë 🎉 adset",
    " spaced ",
    "Broad – all",
    "null",
)
_AD_NAMES: tuple[str | None, ...] = (
    "Video 15s, v2",
    '=HYPERLINK("x")',
    None,
    'UGC "testimonial"',
    "Static\nbanner",
    "NaN",
    "広告クリエイティブ",
    "",
    "Carousel 🎠",
    "  padded  ",
    "null",
    "Ad – plain",
)
# (platform, name, days relative to start (or "mid"/"last"), time of day in µs)
_CAMPAIGN_SPECS: tuple[tuple[str | None, str | None, object, int], ...] = (
    ("Meta", 'Spring Sale, US "Broad" — Zoë 🎉', -60, 9 * HOUR + 15 * MINUTE),
    ("TikTok", '=HYPERLINK("http://example.com","TikTok")', -3, 14 * HOUR + 22 * MINUTE + 31 * SEC + 123456),
    ("Google Ads", "Brand Search\nJP 日本", -1, DAY_US - 1),
    ("Apple Search Ads", "  ASA exact match  ", "mid", 12 * HOUR),
    ("Snapchat", None, "last", 18 * HOUR + 30 * MINUTE + 15 * SEC + 500000),
    (None, "", -10, 3 * HOUR + 7 * SEC),
)


def build_campaigns(seed: int, app: str, start: dt.date, days: int) -> tuple[Campaign, ...]:
    """The app's UA campaigns (6), ad sets (2 each) and ads (3 each), deterministic."""
    rng = _rng(seed, "ua_campaigns", app, start.isoformat())
    out = []
    for k, (platform, name, when, tod) in enumerate(_CAMPAIGN_SPECS):
        if when == "mid":
            offset = days // 2
        elif when == "last":
            offset = days - 1
        else:
            offset = int(when)  # type: ignore[call-overload]
        created = day_us(start) + offset * DAY_US + tod
        if platform == "Meta":
            cid = f"1202{rng.randrange(10**14):014d}"
        elif platform == "TikTok":
            cid = f"17{rng.randrange(10**17):017d}"
        elif platform == "Google Ads":
            cid = str(rng.randrange(10**10, 10**11))
        elif platform == "Apple Search Ads":
            cid = str(rng.randrange(10**8, 10**9))
        elif platform == "Snapchat":
            cid = _uuid(rng)
        else:
            cid = f"000{rng.randrange(10**12):012d}"  # leading zeros: must stay text
        adsets = []
        for j in range(2):
            ads = tuple(
                Ad(
                    ad_id=f"{cid}{j + 1:02d}{a + 1:03d}" if k % 2 else str(rng.randrange(10**17, 10**18)),
                    ad_name=_AD_NAMES[(k * 6 + j * 3 + a) % len(_AD_NAMES)],
                )
                for a in range(3)
            )
            adsets.append(
                AdSet(
                    adset_id=f"{cid}{j + 1:02d}" if k % 2 else str(rng.randrange(10**17, 10**18)),
                    adset_name=_ADSET_NAMES[(k * 2 + j) % len(_ADSET_NAMES)],
                    ads=ads,
                )
            )
        currency = CURRENCIES[k % len(CURRENCIES)]
        out.append(Campaign(k, cid, name, platform, created, currency, tuple(adsets)))
    return tuple(out)


class _AppContext:
    """Profile pool of one app: pool day 0 is the day before ``start`` ("pre"), then one per day.

    Pool day k holds ``per_day`` profiles; profile n is created at ``day0 + n*step + jitter``
    (jitter < step), so an event at offset t into pool day k may use any n < t // step.
    Profile ids: ``prf-<app>-<YYYYMMDD>-<n:06d>`` and ``prf-<app>-pre<start YYYYMMDD>-<n:06d>``.
    """

    def __init__(self, seed: int, app: str, start: dt.date, days: int, rows_per_day: int):
        self.seed = seed
        self.app = app
        self.android = "android" in app.lower()
        self.start = start
        self.days = days
        self.rows_per_day = rows_per_day
        self.per_day = max(rows_per_day // 5, N_PROFILE_FIXTURES + 16)
        self.step = DAY_US // self.per_day
        self.labels = [f"pre{start:%Y%m%d}"] + [f"{start + dt.timedelta(days=i):%Y%m%d}" for i in range(days)]
        self.day0 = [day_us(start) + (i - 1) * DAY_US for i in range(days + 1)]
        self.prefixes = [f"prf-{app}-{label}-" for label in self.labels]
        self.campaigns = build_campaigns(seed, app, start, days)

    def profile_id(self, k: int, n: int) -> str:
        return f"{self.prefixes[k]}{n:06d}"

    def pick_profile(self, rnd: Callable[[], float], ev: int) -> str | None:
        """A profile created (and installed) before the instant ``ev``; None if none exists."""
        k = (ev - self.day0[0]) // DAY_US
        if k < 0:
            return None
        if k > self.days:
            k = self.days
        lim = (ev - self.day0[k]) // self.step  # profiles 0..lim-1 of pool day k exist at ev
        if k == 0 or (lim >= 1 and rnd() < 0.5):
            if lim < 1:
                return None
            return f"{self.prefixes[k]}{int(rnd() * min(lim, self.per_day)):06d}"
        return f"{self.prefixes[int(rnd() * k)]}{int(rnd() * self.per_day):06d}"

    def pick_old_profile(self, rnd: Callable[[], float], k: int) -> tuple[str, int]:
        """A non-fixture profile from a pool day before k, and that pool day's start."""
        j = int(rnd() * k)
        n = N_PROFILE_FIXTURES + int(rnd() * (self.per_day - N_PROFILE_FIXTURES))
        if n % 50 == NULL_INSTALL_MOD:  # that profile has no install_date
            n = n + 1 if n + 1 < self.per_day else n - 1
        return f"{self.prefixes[j]}{n:06d}", self.day0[j]


# ---------------------------------------------------------------------------------------------
# JSON pools
# ---------------------------------------------------------------------------------------------


def _attributes_pool(rng: random.Random) -> list[str | None]:
    pool: list[str | None] = [None] * 10 + ["{}"] * 5
    langs = ("en", "de", "ja", "pt-BR", "tr", "hi")
    for _ in range(49):
        obj: dict[str, Any] = {}
        if rng.random() < 0.8:
            obj["language"] = rng.choice(langs)
        if rng.random() < 0.5:
            obj["level"] = rng.randrange(0, 100)
        if rng.random() < 0.4:
            obj["premium_user"] = rng.random() < 0.5
        if rng.random() < 0.3:
            obj["score"] = rng.choice((9.99, 0.5, 12, -3, 1234.5))
        if rng.random() < 0.3:
            obj["nickname"] = rng.choice(("Zoë 🎉", "たろう", 'Bob "the builder"', "a,b", "NA", "null", " x "))
        if rng.random() < 0.3:
            obj["prefs"] = {
                "theme": rng.choice(("dark", "light")),
                "notifications": {"email": rng.random() < 0.5, "push": None},
            }
        if rng.random() < 0.2:
            obj["tags"] = rng.sample(["fitness", "yoga", "日本", "a\nb", "=1+1"], 2)
        if rng.random() < 0.1:
            obj["last_screen"] = "settings\r\nbilling"
        pool.append(jsonb_text(obj))
    return pool


def _custom_params_pool(rng: random.Random) -> list[str | None]:
    pool: list[str | None] = [None] * 15 + ["{}"] * 3
    for _ in range(46):
        obj: dict[str, Any] = {"utm_source": rng.choice(("meta", "tiktok", "google", "asa"))}
        if rng.random() < 0.7:
            obj["utm_campaign"] = rng.choice(("spring_sale", "brand", "retarget 7d", "Zoë 🎉"))
        if rng.random() < 0.5:
            obj["sub1"] = str(rng.randrange(10**6))
        if rng.random() < 0.3:
            obj["deeplink"] = "myapp://promo?code=SPRING&ref=a,b"
        if rng.random() < 0.2:
            obj["extra"] = {"ab": rng.choice(("A", "B")), "weights": [0.5, 0.25, 1], "note": 'say "hi"\n'}
        pool.append(jsonb_text(obj))
    return pool


def hostile_json(text: str) -> str:
    return jsonb_text(
        {
            "hostile": text,
            "nested": {"value": text, "list": [text, 1, None, True, 9.99]},
            "": "empty key",
            'key "q",\n': text,
            "ключ": "значение",
        }
    )


N_HOSTILE = len(HOSTILE_TEXT)
# Profiles, per pool day: 0 = every nullable column NULL; 1 = empty strings / {} attributes;
# 2 + i = HOSTILE_TEXT[i] in every text column; the rest random.
PROFILE_FIX_NULL, PROFILE_FIX_EMPTY, PROFILE_FIX_HOSTILE = 0, 1, 2
N_PROFILE_FIXTURES = 2 + N_HOSTILE
NULL_INSTALL_MOD = 7  # random profiles with n % 50 == 7 have install_date NULL
