"""Pausing Python's cyclic garbage collector while a bulk step builds many objects that hold no cycles.

CPython starts a collection every 700 net container allocations, and its older generations are traversed again
as the objects survive. Parsing a 100,000-case dataset creates millions of dicts, lists and strings that all
survive until the step ends, so the collector kept walking the growing heap: it was 60% of the parse and made
the import superlinear (0.7 s for 10,000 cases, 8.7 s for 100,000; docs/benchmarks.md). Parsed JSON, rows
and value objects form no reference cycles, so nothing waits for the collector meanwhile: plain reference
counting frees them as before.

The collector is process-wide, so a pause in one thread pauses it for all. A pause lasts one bulk step, and
the collector is only enabled again on leaving if it was enabled on entering: nested or concurrent pauses
leave it as it was when the outermost began (one that ends early re-enables it for the others, which only
costs them the speed-up).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
