"""Passwords of people: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified when the email is unknown, so that a sign-in takes as long whether or not the
# account exists.
_DUMMY_HASH = _hasher.hash("grantly-dummy-password")


# The rules of every password a person chooses (``grantly users create``, an invitation's link,
# the password change page). The sign-in form reads at most MAX_LENGTH characters of what is
# typed (web/accounts.py): a longer password could be set but never typed in.
MIN_LENGTH = 8
MAX_LENGTH = 1024


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, said to the person choosing it; None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def unusable_password_hash() -> str:
    """The password hash of people who have no password yet (created through the API, or by
    ``grantly users create`` without one): the argon2id hash of a random 256-bit secret,
    discarded at once, so no one can sign in with it. Unlike a sentinel that fails to parse, it
    takes as long to verify as any password, so sign-in reveals nothing about the account.
    Computed once per process. (Whether a person has a password is ``users.password_set_at``.)"""
    return hash_password(secrets.token_urlsafe(32))


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
