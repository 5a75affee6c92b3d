"""Time comes from an injected clock, so every expiry rule is testable without sleeping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


@dataclass
class FrozenClock:
    """A clock for tests: stands still until moved."""

    current: int = field(default=1_700_000_000)

    def now(self) -> int:
        return self.current

    def advance(self, seconds: int) -> None:
        self.current += seconds
