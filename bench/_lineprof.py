"""A tiny line-level profiler for NumPy-heavy code: where does the time of one call go?

``cProfile`` cannot see individual ufunc calls (``np.log(x)`` is not a Python function), but in
vectorised code each source line is roughly one NumPy operation, so timing lines tells which
operations cost. ``sys.settrace`` delivers an event per executed line of the traced files; the time
between consecutive events is charged to the line that was running (exclusive time: a call into
another traced function is charged to that function's lines). Overhead is about a microsecond per
line event, negligible next to millisecond array operations.
"""

from __future__ import annotations

import linecache
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

Key = tuple[str, int]


class LineProfiler:
    def __init__(self, root: Path, traced: str = "service") -> None:
        self.root = root
        self.prefix = str(root / traced)
        self.times: dict[Key, float] = defaultdict(float)
        self.hits: dict[Key, int] = defaultdict(int)
        self.total = 0.0
        self.runs = 0
        self._current: Key | None = None
        self._last = 0.0

    def _traced(self, code) -> bool:
        return code.co_filename.startswith(self.prefix)

    def _switch(self, key: Key | None, count: bool = True) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.times[self._current] += now - self._last
        self._current = key
        if count and key is not None:
            self.hits[key] += 1
        self._last = time.perf_counter()

    def _global(self, frame, event: str, arg: Any):
        if event != "call" or not self._traced(frame.f_code):
            return None
        self._switch((frame.f_code.co_filename, frame.f_lineno), count=False)
        return self._local

    def _local(self, frame, event: str, arg: Any):
        if event == "line":
            self._switch((frame.f_code.co_filename, frame.f_lineno))
        elif event == "return":
            parent = frame.f_back
            key = (parent.f_code.co_filename, parent.f_lineno) if parent and self._traced(parent.f_code) else None
            self._switch(key, count=False)
        return self._local

    def run(self, fn: Callable[[], Any]) -> Any:
        self._current = None
        start = time.perf_counter()
        self._last = start
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            return fn()
        finally:
            sys.settrace(previous)
            self._switch(None, count=False)
            self.total += time.perf_counter() - start
            self.runs += 1

    def top(self, n: int = 12) -> list[dict[str, Any]]:
        """The ``n`` costliest lines, averaged per run: location, source, ms, share of the call, hits."""
        rows = []
        runs = max(self.runs, 1)
        for (filename, lineno), seconds in sorted(self.times.items(), key=lambda kv: -kv[1])[:n]:
            try:
                where = str(Path(filename).relative_to(self.root))
            except ValueError:
                where = Path(filename).name
            rows.append({"where": f"{where}:{lineno}", "source": linecache.getline(filename, lineno).strip(),
                         "ms": seconds / runs * 1e3, "share": seconds / self.total if self.total else 0.0,
                         "hits": self.hits.get((filename, lineno), 0) // runs})
        return rows

    def total_ms(self) -> float:
        return self.total / max(self.runs, 1) * 1e3
