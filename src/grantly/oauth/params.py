"""Reading OAuth parameters from a request, as RFC 6749 §3.1 and §3.2 require.

"Parameters sent without a value MUST be treated as if they were omitted from the request" and
"Request and response parameters MUST NOT be included more than once." Values are bounded in
length so that no parameter can make the server do unbounded work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import InvalidRequest

Params = Mapping[str, Sequence[str]]

# The most values a repeatable parameter may have: each one may cost a lookup.
MAX_REPEATS = 10

# C0 controls and DEL: never part of a valid OAuth parameter (RFC 6749 Appendix A's syntax).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ParamReader:
    params: Params
    max_length: int = 2048

    def get(self, name: str) -> str | None:
        values = [v for v in self.params.get(name, ()) if v != ""]
        if len(values) > 1 or (len(self.params.get(name, ())) > 1 and values):
            raise InvalidRequest(
                f"the '{name}' parameter is repeated; send it once (RFC 6749 §3.1)."
            )
        if not values:
            return None
        value = values[0]
        if len(value) > self.max_length:
            raise InvalidRequest(
                f"the '{name}' parameter is too long ({len(value)} characters; "
                f"at most {self.max_length})."
            )
        if _CONTROL.search(value):
            raise InvalidRequest(f"the '{name}' parameter contains control characters.")
        return value

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of a parameter that may be repeated (RFC 8707 §2's ``resource``), each
        bounded and checked as ``get`` checks one; empty values are omitted (§3.1)."""
        values = tuple(v for v in self.params.get(name, ()) if v != "")
        if len(values) > MAX_REPEATS:
            raise InvalidRequest(
                f"the '{name}' parameter is repeated more than {MAX_REPEATS} times."
            )
        for value in values:
            if len(value) > self.max_length:
                raise InvalidRequest(
                    f"a '{name}' parameter is too long ({len(value)} characters; "
                    f"at most {self.max_length})."
                )
            if _CONTROL.search(value):
                raise InvalidRequest(f"a '{name}' parameter contains control characters.")
        return values

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise InvalidRequest(f"the '{name}' parameter is missing.")
        return value
