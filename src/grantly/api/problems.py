"""Errors of the resource API that are not about the credential: JSON in the shape RFC 6749
§5.2 uses (``error``, ``error_description``), never cached.

Credential errors (missing, invalid, expired token; insufficient scope) are RFC 6750 §3
challenges and go through ``grantly.http.bearer_error`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.responses import JSONResponse

from ..http import NO_STORE
from ..oauth.errors import OAuthError


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """Every error the API answers. ``error`` is absent only from the bare challenge to a
    request that sent no credential at all (RFC 6750 §3.1)."""

    error: str | None = None
    error_description: str
    errors: list[ValidationIssue] | None = None


class ApiProblem(Exception):
    """An answer other than success, decided by a handler."""

    def __init__(
        self, status: int, error: str, description: str, issues: Sequence[ValidationIssue] = ()
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        # The same safe characters as OAuth error descriptions (RFC 6749 §5.2).
        self.description = OAuthError(description).public_description
        self.issues = list(issues)

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.error, "error_description": self.description}
        if self.issues:
            body["errors"] = [issue.model_dump() for issue in self.issues]
        return JSONResponse(body, status_code=self.status, headers=dict(NO_STORE))


def not_found(description: str) -> ApiProblem:
    return ApiProblem(404, "not_found", description)


def forbidden(description: str) -> ApiProblem:
    """403 for a valid credential whose holder may not do this (a permission, not a scope:
    RFC 6750 §3.1's ``insufficient_scope`` is for scopes only)."""
    return ApiProblem(403, "access_denied", description)


def conflict(description: str) -> ApiProblem:
    return ApiProblem(409, "conflict", description)


def invalid(description: str, issues: Sequence[ValidationIssue] = ()) -> ApiProblem:
    return ApiProblem(422, "invalid_request", description, issues)


def _location(loc: Sequence[object]) -> list[str | int]:
    """Where the problem is, without pydantic's names for the branches of a union or the
    validators it ran (``function-after[...]``)."""
    return [
        part if isinstance(part, int) else str(part)
        for part in loc
        if isinstance(part, int) or not ("(" in str(part) or str(part).startswith("function-"))
    ]


def from_validation_error(exc: RequestValidationError) -> ApiProblem:
    """FastAPI's validation errors, said plainly. A malformed path id names no employee: 404.
    Pydantic's echo of the input is left out (it may be huge, or a secret sent by mistake);
    for a value that may also be null, the "should be None" half of the message is dropped."""
    errors = list(exc.errors())
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return not_found("there is no such resource.")
    issues: dict[tuple[str | int, ...], ValidationIssue] = {}
    for error in errors:
        loc = _location(error.get("loc", ()))
        if loc and loc[-1] == "none" and error.get("type") == "none_required":
            continue
        issues.setdefault(tuple(loc), ValidationIssue(loc=loc, msg=str(error.get("msg", ""))))
    listed = list(issues.values())[:20]
    summary = "; ".join(
        f"{'.'.join(str(part) for part in issue.loc[1:]) or issue.loc[0]}: {issue.msg}"
        for issue in listed[:3]
    )
    return invalid(summary or "the request is invalid.", listed)


# Documented on every operation, so that the OpenAPI description lists every answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed Authorization or x-api-key header"},
    401: {
        "model": ErrorBody,
        "description": "No credential, or an invalid, expired or revoked one (RFC 6750 §3.1)",
    },
    403: {
        "model": ErrorBody,
        "description": "The token lacks the scope (insufficient_scope), or the person may not "
        "do this (access_denied)",
    },
    404: {
        "model": ErrorBody,
        "description": "No such path (a version that is not a date), or no such employee in "
        "the credential's company",
    },
    422: {"model": ErrorBody, "description": "Invalid query or body"},
}
