"""Factorial's two ways to page a list (docs/factorial-api.md §6).

- Offset: ``?page=N`` (1-based) and ``limit``; factorialhr fetches pages 2..ceil(total/limit)
  concurrently, so ``meta.limit`` is the page size used and ``meta.total`` the size of the
  whole filtered set.
- Cursor: ``?after_id=<meta.end_cursor>``; factorial-api-client stops when
  ``has_next_page`` is false or ``end_cursor`` is empty.

The default and largest page is 100 items. Cursors are the id in decimal ("17"): both SDKs
treat them as opaque strings, and unlike Factorial's base64 of the id, the OpenAPI description
can state exactly which strings are cursors (``CURSOR_PATTERN``).
"""

from __future__ import annotations

CURSOR_PATTERN = r"^[0-9]{1,20}$"

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
# Larger cursors point past every id: kept within the ids' column type (32-bit on PostgreSQL).
_CURSOR_CEILING = 2**31 - 1


def page_size(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)


def encode_cursor(item_id: int) -> str:
    return str(item_id)


def decode_cursor(value: str) -> int:
    """The id a cursor names (``CURSOR_PATTERN`` was checked with the query)."""
    return min(int(value), _CURSOR_CEILING)
