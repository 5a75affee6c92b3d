"""What a person's user tokens and codes become when their access ends or comes back."""

from __future__ import annotations

from sqlalchemy import delete, update

from . import tables as t
from .invitations import Invitations
from .transaction import Transaction


async def revoke_user_credentials(tx: Transaction, user_id: int, now: int) -> None:
    """Revoke a person's user tokens and consents and drop their unused codes, for good: back,
    they are asked again. Their pending invitation's link stops working too: back, an admin
    invites them again. Company tokens they authorized act for the company and are kept."""
    for table in (t.access_tokens, t.refresh_tokens, t.consents):
        await tx.execute(
            update(table)
            .where(
                table.c.user_id == user_id,
                table.c.owner_type == "user",
                table.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    codes = t.authorization_codes
    await tx.execute(
        delete(codes).where(
            codes.c.user_id == user_id,
            codes.c.owner_type == "user",
            codes.c.consumed_at.is_(None),
        )
    )
    await Invitations(tx).revoke_pending(user_id, now)
