"""Destination steps the system tests name in ``transform: "transform_steps:..."`` (tests/ is on the path).

``planned`` does what the running hypothesis example says (``PLAN``) and records, as plain Python
values, every row it returns, so a test can write the same rows with Python's ``csv`` module.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# Set by the test before each export: kind, columns to rewrite with their dtypes, cells, keep mask.
PLAN: dict[str, Any] = {}
CALLS: list[int] = []  # rows of the frame each call of `padded_then_numbers` received


def _cell(cells: list[Any], row: int, column: int) -> Any:
    return cells[(row * 7 + column) % len(cells)]


def planned(frame: pd.DataFrame) -> pd.DataFrame:
    kind, rewrite, cells, keep = PLAN["kind"], PLAN["rewrite"], PLAN["cells"], PLAN["keep"]
    if kind == "numbers":
        return frame.assign(revenue_usd=pd.to_numeric(frame["revenue_usd"], errors="coerce"))
    start = PLAN.setdefault("rows_seen", 0)
    PLAN["rows_seen"] = start + len(frame)
    out = frame.copy()
    for j, (name, dtype) in enumerate(rewrite):
        values = [_cell(cells, start + r, j) for r in range(len(frame))]
        if dtype is object:
            out[name] = pd.Series(values, index=frame.index, dtype=object)
        else:
            missing = [v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) for v in values]
            out[name] = pd.Series([None if m else v for v, m in zip(values, missing, strict=True)], index=frame.index,
                                  dtype=dtype)  # fmt: skip
    if kind == "filter rows":
        out = out.iloc[[r for r in range(len(frame)) if keep[(start + r) % len(keep)]]]
    elif kind == "empty frame":
        out = out.iloc[0:0]
    PLAN.setdefault("written", []).extend(python_rows(out))
    return out


def python_rows(frame: pd.DataFrame) -> list[list[str | None]]:
    """The frame's rows as plain Python values, every missing value as None."""
    columns = [[None if pd.isna(v) else v for v in frame[name].astype(object)] for name in frame.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def money_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """The step of issue 19: money as numbers, which pandas would write as 1.23456789011234e+10."""
    return frame.assign(revenue_usd=pd.to_numeric(frame["revenue_usd"], errors="coerce"))


PAD = 8192


def padded_then_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """First chunk: text, padded so that more than a 5 MiB part is uploaded; next chunk: numbers."""
    CALLS.append(len(frame))
    if len(CALLS) == 1:
        return frame.assign(device=frame["device"].fillna("") + "x" * PAD)
    return money_as_numbers(frame)
