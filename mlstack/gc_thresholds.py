"""Garbage-collector settings for running the Pulumi program, in the engine or under the recorder.

The provider SDKs define tens of thousands of classes when their modules load, and a program run allocates a
few dozen container objects (tasks, futures, Outputs) per resource. With CPython's default thresholds
(700, 10, 10) the collector runs a full collection dozens of times during a plan, each walking every object the
SDKs created: about a third of a prod plan's CPU time (see docs/benchmarks.md). Collecting less often keeps
the same safety, cycles are still freed, at the cost of a few megabytes held a little longer.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects before a first-generation collection, then collections of each generation before the next.
PROGRAM_THRESHOLDS = (100_000, 50, 100)


def raise_thresholds() -> tuple[int, int, int]:
    """Set :data:`PROGRAM_THRESHOLDS` for this process; returns the thresholds it replaced."""
    previous = gc.get_threshold()
    gc.set_threshold(*PROGRAM_THRESHOLDS)
    return previous


@contextmanager
def raised_thresholds() -> Iterator[None]:
    """:data:`PROGRAM_THRESHOLDS` for the duration of the block, the process's own thresholds after it."""
    previous = raise_thresholds()
    try:
        yield
    finally:
        gc.set_threshold(*previous)


_exit_arranged = False


def skip_final_collection() -> None:
    """Spare this process the full collection the interpreter runs as it exits.

    That walk visits every object the provider SDKs and the run left behind, about a second after a prod plan.
    Freezing them first (from an exit hook, so after everything else has run) takes them out of its reach;
    reference counting still frees them, and the other exit hooks and stream flushes run as usual.
    """
    global _exit_arranged
    if not _exit_arranged:
        atexit.register(gc.freeze)
        _exit_arranged = True
