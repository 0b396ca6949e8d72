"""Allocator settings for an export task, so its peak memory stays flat however large the day.

An export's buffers come from two allocators: glibc's ``malloc`` (Python objects, ``bytes``,
numpy) and Arrow's memory pool (parsed and shaped columns).

* glibc gives a request of at least ``M_MMAP_THRESHOLD`` bytes its own mapping, which goes back
  to the OS when freed. The threshold starts at 128 KiB, but glibc raises it to the size of every
  mapped block freed (up to 32 MiB): after the first 5 MiB upload part, every part, chunk and
  encoded group comes from the heap, whose free space is not returned while a small object lives
  above it. Fixing the threshold (which also stops it moving) keeps those buffers in mappings.
* Arrow's pool is the system allocator, so its buffers follow the same rule: jemalloc and
  mimalloc keep arenas of their own.

``SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR`` (the worker's environment, read when an export starts) picks
Arrow's pool: ``system`` (the default, for the memory bound above), or ``jemalloc`` / ``mimalloc``,
which reuse their own pages: less CPU, a higher peak (docs/performance.md has both measured).

Measured on one export of 1M ``events`` rows (RSS sampled per stage): about 20 MB less peak RSS.
The price is a page fault per 4 KiB of every large buffer, so the exporter's hot loops reuse their
large buffers instead of allocating one per block (``parsing.RowAlignedReader`` fills one buffer
per read, ``ByteCounts``, ``ParseAudit`` and ``transform.columns_to_quote`` keep scratch arrays,
the encoded lines go to the upload as Arrow buffers, not copied). Arrow on jemalloc (its default
here) saves about 10% more CPU but peaks about 10 MB higher at 1M rows, decay 0 or not: over the
280 MB bar (docs/performance.md). Both settings are per process; Airflow runs each task in a process
of its own. On a C library other than glibc the first is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

import pyarrow as pa

log = logging.getLogger(__name__)

ALLOCATOR_VARIABLE = "SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR"
ARROW_ALLOCATORS = ("system", "jemalloc", "mimalloc")
MMAP_THRESHOLD = 256 << 10  # smaller than a parse block (512 KiB), larger than most Python objects
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


class AllocatorError(ValueError):
    """``SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR`` names no allocator this pyarrow has."""


def arrow_pool(name: str) -> pa.MemoryPool:
    """Arrow's memory pool called ``name`` (one of ARROW_ALLOCATORS), or AllocatorError in one line."""
    if name not in ARROW_ALLOCATORS:
        choices = ", ".join(ARROW_ALLOCATORS)
        raise AllocatorError(f"{ALLOCATOR_VARIABLE}={name!r} is not an allocator: use one of {choices}")
    try:
        return getattr(pa, f"{name}_memory_pool")()
    except NotImplementedError:  # a pyarrow build without it (jemalloc is absent on some platforms)
        raise AllocatorError(
            f"{ALLOCATOR_VARIABLE}={name!r}: this pyarrow is built without {name}; use system"
        ) from None


@functools.cache
def bound_process_memory() -> None:
    """Apply both settings, once per process."""
    pool = arrow_pool(os.environ.get(ALLOCATOR_VARIABLE, "").strip().lower() or "system")
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: the allocator decides
        log.debug("mallopt not available (%s); the C library's defaults apply", name)
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; the C library's defaults apply")
