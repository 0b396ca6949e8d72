"""Allocator settings for an export task, so its peak memory stays flat however large the day.

An export's buffers come from two allocators: glibc's ``malloc`` (Python objects, ``bytes``,
numpy) and Arrow's memory pool (parsed and shaped columns).

* glibc gives a request of at least ``M_MMAP_THRESHOLD`` bytes its own mapping, which goes back
  to the OS when freed. The threshold starts at 128 KiB, but glibc raises it to the size of every
  mapped block freed (up to 32 MiB): after the first 5 MiB upload part, every part, chunk and
  encoded group comes from the heap, whose free space is not returned while a small object lives
  above it. Fixing the threshold (which also stops it moving) keeps those buffers in mappings.
  The price is a page fault per 4 KiB of every such buffer, so the exporter's own hot loops reuse
  their large buffers (parse reads, the audit's and the encoder's scratch arrays) instead of
  allocating one per block.
* Arrow's pool is jemalloc (when this pyarrow has it): it keeps freed extents for reuse and
  returns them to the OS after its decay time, so the parse and the kernels do not fault in
  fresh pages for every chunk, and its memory stays bounded by the chunks in flight. The system
  pool under the fixed threshold cost about a third of the export's CPU in page faults
  (docs/performance.md has the figures).

Both settings are per process; Airflow runs each task in a process of its own. On a C library
other than glibc the first is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

import pyarrow as pa

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 256 << 10  # smaller than a parse block (512 KiB), larger than most Python objects
ARROW_POOL = "jemalloc"  # Arrow's pool; "system" where this pyarrow was built without it
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


@functools.cache
def bound_process_memory() -> None:
    """Apply both settings, once per process."""
    pool = ARROW_POOL if ARROW_POOL in pa.supported_memory_backends() else "system"
    if pa.default_memory_pool().backend_name != pool:
        pa.set_memory_pool(getattr(pa, f"{pool}_memory_pool")())
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
