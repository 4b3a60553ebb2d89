"""A small progress bar for transfers: bytes, percent, rate and ETA, on stderr.

On a terminal the line is redrawn in place at most ten times a second; otherwise (a log, a
pipe) a plain line is written at most every few seconds, so captured output stays short.
Thread-safe: parallel transfers report into one bar.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Bytes done of ``total`` (and files done of ``files``), rendered on ``stream``."""

    def __init__(
        self,
        total: int,
        *,
        files: int = 0,
        label: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        width: int = 24,
    ) -> None:
        self.total = max(0, total)
        self.files = files
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.width = width
        self.done = 0
        self.files_done = 0
        self._lock = threading.Lock()
        self._start = clock()
        self._last_draw = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._interval = 0.1 if self._tty else 5.0
        # (time, bytes) samples of the last few seconds, for the current rate.
        self._samples: list[tuple[float, int]] = [(self._start, 0)]

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` more transferred."""
        with self._lock:
            self.done += nbytes
            self._maybe_draw()

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1
            self._maybe_draw()

    def rate(self) -> float:
        """Bytes per second over the last few seconds (the whole run at first)."""
        now = self.clock()
        cutoff = now - 5.0
        samples = [s for s in self._samples if s[0] >= cutoff] or self._samples[-1:]
        first_t, first_b = samples[0]
        if now - first_t < 0.5:
            first_t, first_b = self._start, 0
        elapsed = now - first_t
        return (self.done - first_b) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """The current status line."""
        rate = self.rate()
        parts = []
        if self.label:
            parts.append(self.label)
        if self.total:
            fraction = min(1.0, self.done / self.total)
            filled = int(fraction * self.width)
            parts.append(f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}%")
            parts.append(f"{human_bytes(self.done)} / {human_bytes(self.total)}")
        else:
            parts.append(human_bytes(self.done))
        parts.append(f"{human_bytes(rate)}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {human_duration((self.total - self.done) / rate)}")
        elif self.done >= self.total:
            parts.append(f"in {human_duration(self.clock() - self._start)}")
        if self.files:
            parts.append(f"files {self.files_done}/{self.files}")
        return "  ".join(parts)

    def _maybe_draw(self, *, force: bool = False) -> None:
        now = self.clock()
        if now - self._samples[-1][0] >= 0.5:
            self._samples.append((now, self.done))
            if len(self._samples) > 40:
                del self._samples[:20]
        if not self.enabled or (not force and now - self._last_draw < self._interval):
            return
        self._last_draw = now
        if self._tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            self._maybe_draw(force=True)
            if self.enabled and self._tty:
                self.stream.write("\n")
                self.stream.flush()
