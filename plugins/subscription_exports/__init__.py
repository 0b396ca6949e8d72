"""Daily subscription-data exports to S3: the package behind the export DAGs."""

import os
import sys
from pathlib import Path

# Arrow's bundled jemalloc (the exports' memory pool) reads its settings once, when pyarrow is loaded,
# so they are set here, before any module of the package imports it; memory.py says what they do and
# why. A worker's own JE_ARROW_MALLOC_CONF is kept.
JEMALLOC_CONF_VARIABLE = "JE_ARROW_MALLOC_CONF"
JEMALLOC_CONF = "narenas:1,tcache:false,dirty_decay_ms:250,muzzy_decay_ms:0"
# Arrow's default pool, read when pyarrow first allocates (the package's modules create Arrow scalars
# on import), is set to the pool the export will use: otherwise mimalloc starts first, reserves its
# arena and keeps about 6 MB of a task's memory (huge pages) for a few scalars. Linux only: pyarrow's
# wheels for other systems have no jemalloc, and Arrow warns about a pool it lacks.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
ALLOCATOR_VARIABLE = "SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR"
ARROW_ALLOCATORS = ("system", "jemalloc", "mimalloc")
DEFAULT_ALLOCATOR = "jemalloc"
# The variables this import set (a worker's own values are kept). They are inherited by the
# processes this one starts; ``make bench`` removes them for the paths that are not ours.
ENVIRONMENT_SET_ON_IMPORT: list[str] = []


def _set_default(name: str, value: str) -> None:
    if name not in os.environ:
        os.environ[name] = value
        ENVIRONMENT_SET_ON_IMPORT.append(name)


if "pyarrow" not in sys.modules:
    _set_default(JEMALLOC_CONF_VARIABLE, JEMALLOC_CONF)
    _chosen = os.environ.get(ALLOCATOR_VARIABLE, "").strip().lower() or DEFAULT_ALLOCATOR
    if sys.platform == "linux" and _chosen in ARROW_ALLOCATORS:
        _set_default(ARROW_POOL_VARIABLE, _chosen)

# numpy's OpenBLAS starts a thread per core when numpy loads, and they spin before they sleep: about
# 0.06 CPU-s of an idle process here, 0.15-0.24 CPU-s of a 1M-row export task (docs/performance.md).
# The exports do no linear algebra. Read once, when numpy loads.
OPENBLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"
if "numpy" not in sys.modules:
    _set_default(OPENBLAS_THREADS_VARIABLE, "1")

_PACKAGE_DIR = Path(__file__).resolve().parent

# The project's include/ (SQL, shipped destination files, example transforms). In this repository's
# layout (Astro-style project, Docker image, development) it is the include/ beside plugins/; a
# plugins.zip for a managed service (`make plugins-zip`, docs/deploy.md) carries a copy inside the
# package, since such services take only dags/, plugins.zip and requirements.txt.
INCLUDE_DIR = _PACKAGE_DIR / "include" if (_PACKAGE_DIR / "include").is_dir() else _PACKAGE_DIR.parents[1] / "include"
