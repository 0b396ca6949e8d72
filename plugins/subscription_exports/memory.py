"""Allocator settings for an export task: flat peak memory however large the day, without paying
a page fault for every large buffer.

An export's buffers come from two allocators: glibc's ``malloc`` (Python objects, ``bytes``,
numpy) and Arrow's memory pool (parsed, shaped and encoded columns: most of the bytes).

* glibc gives a request of at least ``M_MMAP_THRESHOLD`` bytes its own mapping, which goes back
  to the OS when freed. The threshold starts at 128 KiB, but glibc raises it to the size of every
  mapped block freed (up to 32 MiB): after the first 5 MiB upload part, every part, chunk and
  encoded group would come from the heap, whose free space is not returned while a small object
  lives above it. Fixing the threshold (which also stops it moving) keeps those buffers in
  mappings. The price is a page fault per 4 KiB of each such buffer, so the exporter's own large
  buffers are reused instead of allocated per block (``parsing.RowAlignedReader``'s read buffers,
  ``s3.AtomicUpload``'s parts, the scratch arrays of ``ByteCounts`` and ``special_bytes``, the
  values buffer of ``parsing.ChunkValues``).
* Arrow's pool is jemalloc, configured (``JEMALLOC_CONF``, set by the package's ``__init__``
  before pyarrow is loaded, as jemalloc reads it only then) to keep freed pages for the next
  blocks, as a cache, but to hold no more than that: one arena (Arrow allocates from its parse
  threads and from the main thread), no thread caches, unused pages returned after 250 ms, and
  returned with ``MADV_DONTNEED`` at once (``muzzy_decay_ms:0``) rather than ``MADV_FREE``, whose
  pages count in RSS until the kernel wants them. Measured on 1M ``events`` rows
  (docs/performance.md): the peak RSS of the system allocator, about 13% less CPU; Arrow's own
  jemalloc settings (1 s decays, ``MADV_FREE``) peak about 15 MB higher.

``SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR`` (the worker's environment, read when an export starts)
picks another pool: ``system`` or ``mimalloc``. The package also makes that pool Arrow's default
(``ARROW_DEFAULT_MEMORY_POOL``, unless the worker sets it) before pyarrow loads, so no other pool
is started for the Arrow objects created before an export sets its pool. ``JE_ARROW_MALLOC_CONF``
in the worker's environment replaces ``JEMALLOC_CONF``. These settings are per process; Airflow runs
each task in a process of its own. On a C library other than glibc the threshold is left alone.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

import pyarrow as pa

from subscription_exports import (
    ALLOCATOR_VARIABLE,
    ARROW_ALLOCATORS,
    DEFAULT_ALLOCATOR,
    JEMALLOC_CONF,
    JEMALLOC_CONF_VARIABLE,
)

log = logging.getLogger(__name__)

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
    chosen = os.environ.get(ALLOCATOR_VARIABLE, "").strip().lower()
    try:
        pool = arrow_pool(chosen or DEFAULT_ALLOCATOR)
    except AllocatorError:
        if chosen:
            raise
        pool = arrow_pool("system")  # a pyarrow build without jemalloc (not Linux wheels): the default still works
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
    if pool.backend_name == "jemalloc" and JEMALLOC_CONF_VARIABLE not in os.environ:
        log.warning(
            "pyarrow was loaded before subscription_exports could configure its jemalloc: the export may peak "
            "about 15 MB higher; set %s=%s in the worker's environment",
            JEMALLOC_CONF_VARIABLE,
            JEMALLOC_CONF,
        )
    # The process's own symbols (dlopen(NULL)), where the C library's are: ctypes.util.find_library("c")
    # would run `ldconfig -p` in a child process, a fork of the whole task (which `make bench`, summing
    # the process tree, once caught as a 450 MB peak).
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: the allocator decides
        log.debug("mallopt not available; the C library's defaults apply")
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; the C library's defaults apply")
