"""Operation timing for the storage latency metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class OperationTimer:
    """How many operations ran and the seconds they took, in total.

    Updated on a store's single worker thread and read by the metrics page;
    Prometheus derives the mean latency from the two counters.
    """

    count: int = 0
    seconds: float = 0.0

    def timed(self, work: Callable[..., T], *args: Any) -> T:
        """Run *work* and account for it."""
        start = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1
