"""Which object keys a destination can write, and whether two destinations can write the same key.

A destination's key is its prefix, then its key template (daily runs) or range key template (manual
ranges) with every placeholder but the dates filled in: ``table``, ``ext``, ``app_id`` and
``destination`` are known from the configuration; ``date`` / ``date_from`` / ``date_to`` take any
day (``YYYY-MM-DD``: ten characters, digits and two dashes). Two destinations *collide* when one
choice of days makes a key (or manifest key) of one equal to a key of the other in the same bucket.

That is decided exactly, without enumerating days: keys are compared position by position (a
date is ten positions), literal characters must be equal, a date's digit position can only equal a
digit and its dash positions only a dash, and positions of the same date must agree with each
other (union-find). Calendar validity (month 13) is not modelled, so the answer errs on the safe
side. Patterns are grouped by bucket, length and date positions, then hashed on the literal
positions two groups share, so thousands of destinations cost milliseconds, not pairs.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from subscription_exports.config import Configuration, Destination

DATE_LEN = 10
DASH_OFFSETS = (4, 7)
MANIFEST_SUFFIX = ".manifest.json"  # the exporter's (exporter.MANIFEST_SUFFIX), without importing pandas
DATE_FIELDS = ("date", "date_from", "date_to")

# A cell is one character of a key: a literal character, or (date variable, offset in the date).
Cell = str | tuple[str, int]


@dataclass(frozen=True)
class Owner:
    dag_id: str
    name: str
    origin: str


@dataclass(frozen=True)
class KeyPattern:
    owner: Owner
    bucket: str
    text: str  # the key as the user reads it, dates as placeholders
    cells: tuple[Cell, ...] = field(repr=False)

    @property
    def date_positions(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.cells) if not isinstance(c, str))


def _pattern(owner: Owner, dest: Destination, template: str, table: str, kind: str, suffix: str) -> KeyPattern:
    known = {
        "table": table,
        "ext": dest.extension,
        "app_id": dest.app_id,
        "destination": dest.name,
    }
    # Daily runs render date = date_from = date_to = the day; ranges render date = date_from.
    variable = {"date": "D", "date_from": "D", "date_to": "D"} if kind == "daily" else {
        "date": "F", "date_from": "F", "date_to": "T",
    }  # fmt: skip
    text = [f"{dest.prefix}/" if dest.prefix else ""]
    cells: list[Cell] = list(text[0])
    for literal, name, _, _ in string.Formatter().parse(template):
        text.append(literal)
        cells.extend(literal)
        if name is None:
            continue
        if name in DATE_FIELDS:
            text.append("{" + name + "}")
            cells.extend((variable[name], offset) for offset in range(DATE_LEN))
        else:
            text.append(known[name])
            cells.extend(known[name])
    text.append(suffix)
    cells.extend(suffix)
    return KeyPattern(owner, dest.bucket_name, "".join(text), tuple(cells))


def key_patterns(dest: Destination, *, dag_id: str, origin: str) -> list[KeyPattern]:
    """Every key pattern `dest` can write: data files and manifests, daily and range, per table."""
    owner = Owner(dag_id, dest.name, origin)
    return [
        _pattern(owner, dest, template, table, kind, suffix)
        for suffix in ("", MANIFEST_SUFFIX)
        for kind, template in (("daily", dest.key_template), ("range", dest.range_key_template))
        for table in dest.tables
    ]


def _date_kind(offset: int) -> str:
    return "-" if offset in DASH_OFFSETS else "digit"


def _fits(char: str, offset: int) -> bool:
    return char == "-" if offset in DASH_OFFSETS else char in "0123456789"


def can_be_equal(a: KeyPattern, b: KeyPattern) -> bool:
    """Is there a choice of days (one per date variable of each side) that renders both keys equal?"""
    if len(a.cells) != len(b.cells):
        return False
    parent: dict[tuple[str, str, int], tuple[str, str, int]] = {}

    def find(node: tuple[str, str, int]) -> tuple[str, str, int]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    pinned: list[tuple[tuple[str, str, int], str]] = []
    for ca, cb in zip(a.cells, b.cells, strict=True):
        if isinstance(ca, str) and isinstance(cb, str):
            if ca != cb:
                return False
            continue
        if isinstance(ca, str) or isinstance(cb, str):
            char, (var, offset), side = (ca, cb, "b") if isinstance(ca, str) else (cb, ca, "a")
            if not _fits(char, offset):
                return False
            pinned.append(((side, var, offset), char))
            continue
        na, nb = ("a", *ca), ("b", *cb)
        if _date_kind(ca[1]) != _date_kind(cb[1]):
            return False
        parent[find(na)] = find(nb)
    chars: dict[tuple[str, str, int], str] = {}
    for node, char in pinned:
        root = find(node)
        if chars.setdefault(root, char) != char:
            return False
    return True


@dataclass(frozen=True)
class Collision:
    a: KeyPattern
    b: KeyPattern

    def message(self) -> str:
        a, b = self.a.owner, self.b.owner
        if a.origin == b.origin:
            who = f"{a.origin}: destinations {a.name!r} and {b.name!r}"
        else:
            who = f"destination {a.name!r} ({a.origin}) and destination {b.name!r} ({b.origin})"
        key = f"s3://{self.a.bucket}/{self.a.text}"
        if self.b.text != self.a.text:
            key += f" (as s3://{self.b.bucket}/{self.b.text})"
        return (
            f"{who} can write the same key {key}, so one would overwrite the other's files; give them "
            "different folders, or put {app_id} or {destination} in both key templates"
        )


def collisions(patterns: Iterable[KeyPattern], *, involving: Owner | None = None, limit: int = 100) -> list[Collision]:
    """One collision per pair of destinations that can write the same key (data or manifest), at
    most `limit` of them. With `involving`, only pairs that include that destination."""
    groups: dict[tuple[str, int, tuple[int, ...]], list[KeyPattern]] = defaultdict(list)
    for pattern in patterns:
        groups[(pattern.bucket, len(pattern.cells), pattern.date_positions)].append(pattern)
    by_size: dict[tuple[str, int], list[tuple[int, ...]]] = defaultdict(list)
    for bucket, size, dates in groups:
        by_size[(bucket, size)].append(dates)

    found: dict[frozenset[Owner], Collision] = {}
    for (bucket, size), shapes in sorted(by_size.items()):
        shapes.sort()
        for i, shape_a in enumerate(shapes):
            for shape_b in shapes[i:]:
                group_a, group_b = groups[(bucket, size, shape_a)], groups[(bucket, size, shape_b)]
                dated = set(shape_a) | set(shape_b)
                shared = [p for p in range(size) if p not in dated]
                index: dict[str, list[KeyPattern]] = defaultdict(list)
                for pattern in group_b:
                    index["".join(pattern.cells[p] for p in shared)].append(pattern)  # type: ignore[misc]
                for pa in group_a:
                    for pb in index.get("".join(pa.cells[p] for p in shared), ()):  # type: ignore[misc]
                        if pa.owner == pb.owner:
                            continue
                        if involving is not None and involving not in (pa.owner, pb.owner):
                            continue
                        pair = frozenset((pa.owner, pb.owner))
                        if pair in found or not can_be_equal(pa, pb):
                            continue
                        first, second = sorted((pa, pb), key=lambda p: (p.owner.dag_id, p.owner.name))
                        found[pair] = Collision(first, second)
                        if len(found) >= limit:
                            return _ordered(found)
    return _ordered(found)


def _ordered(found: dict[frozenset[Owner], Collision]) -> list[Collision]:
    return sorted(found.values(), key=lambda c: (c.a.owner.dag_id, c.a.owner.name, c.b.owner.dag_id, c.b.owner.name))


def configuration_collisions(
    configurations: Iterable[Configuration], *, involving: tuple[str, str] | None = None, limit: int = 100
) -> list[Collision]:
    """Collisions between the valid destinations of `configurations` (one per DAG); an invalid
    destination fails on its own and is compared again once fixed. `involving` = (dag_id, name)."""
    valid = [(c, dest) for c in configurations for dest in c.valid_destinations()[0]]
    owner = None
    if involving is not None:
        mine = [(c, d) for c, d in valid if (c.integration.dag_id, d.name) == involving]
        if not mine:
            return []
        owner = Owner(involving[0], involving[1], mine[0][0].origin)
        valid = [(c, d) for c, d in valid if d.bucket_name == mine[0][1].bucket_name]  # other buckets cannot meet
    patterns = [p for c, d in valid for p in key_patterns(d, dag_id=c.integration.dag_id, origin=c.origin)]
    return collisions(patterns, involving=owner, limit=limit)
