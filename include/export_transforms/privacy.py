"""Pseudonymise device identifiers before they leave: a destination transform.

In a destination: ``transform: "export_transforms.privacy:hash_device_ids"``. ``ip_address`` and
``idfa`` become the hex SHA-256 of their text; empty values stay empty. Plain SHA-256 of an IPv4
address can be reversed by trying all 2**32 addresses: for real privacy use a keyed hash (HMAC)
with a secret kept out of the code.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HASHED_COLUMNS = ("ip_address", "idfa")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else text


def hash_device_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The chunk with ``ip_address`` and ``idfa`` hashed (tables without them pass unchanged)."""
    hashed = {name: frame[name].map(sha256_hex, na_action="ignore") for name in HASHED_COLUMNS if name in frame}
    return frame.assign(**hashed)
