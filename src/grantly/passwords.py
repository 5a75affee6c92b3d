"""Passwords of people: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified when the email is unknown, so that a sign-in takes as long whether or not the
# account exists.
_DUMMY_HASH = _hasher.hash("grantly-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# Each verification takes ~64 MiB and tens of milliseconds of CPU: a burst of sign-in attempts
# must queue, not exhaust the machine's memory.
# (A thread semaphore: it holds across event loops and worker threads alike.)
_VERIFICATIONS = threading.BoundedSemaphore(4)


def _verify_bounded(password_hash: str | None, password: str) -> bool:
    with _VERIFICATIONS:
        return verify_password(password_hash, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop (in a worker thread), at most four at a time per process."""
    return await asyncio.to_thread(_verify_bounded, password_hash, password)
