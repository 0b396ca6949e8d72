"""Destination steps (``transform: "parquet_steps:..."``) for tests/test_parquet_system.py: what a
step may write into a typed column, and what it may not."""

from __future__ import annotations

import pandas as pd


def revenue_abc(frame: pd.DataFrame) -> pd.DataFrame:
    """Writes text that is no number into ``revenue_usd`` of the third row (still a text column)."""
    frame = frame.copy()
    if len(frame) > 2:
        frame.loc[frame.index[2], "revenue_usd"] = "abc"
    return frame


def revenue_five_places(frame: pd.DataFrame) -> pd.DataFrame:
    """Writes a decimal with more places than ``revenue_usd`` (numeric(18, 4)) holds into every row."""
    frame = frame.copy()
    frame["revenue_usd"] = pd.Series(["1.23456"] * len(frame), index=frame.index, dtype=frame["revenue_usd"].dtype)
    return frame


def as_seen(frame: pd.DataFrame) -> pd.DataFrame:
    """Returns the frame as it came, after checking it is the text frame a CSV destination's step sees."""
    assert all(str(dtype) == "string[pyarrow]" for dtype in frame.dtypes), dict(frame.dtypes)
    return frame
