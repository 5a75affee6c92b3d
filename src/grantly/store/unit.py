"""``Store``: what a unit of work hands its caller, the repositories over its transaction."""

from __future__ import annotations

from functools import cached_property

from .agents import AgentApplications, RegistrationTokens
from .api_keys import ApiKeys
from .applications import Applications
from .audit import AuditLog
from .consents import Consents
from .counters import Counters
from .invitations import Invitations
from .people import People
from .pushed_requests import PushedRequests
from .resources import ResourceServers
from .signing_keys import SigningKeys
from .tokens import AuthorizationCodes, Tokens
from .transaction import Transaction
from .used_ids import UsedIds
from .users import Accounts, UserSessions


class Store:
    """``async with db.unit() as uow: await uow.tokens.access_token(...)``. Each repository
    is made the first time it is asked for."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    @cached_property
    def applications(self) -> Applications:
        return Applications(self.tx)

    @cached_property
    def codes(self) -> AuthorizationCodes:
        return AuthorizationCodes(self.tx)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.tx)

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.tx)

    @cached_property
    def sessions(self) -> UserSessions:
        return UserSessions(self.tx)

    @cached_property
    def consents(self) -> Consents:
        return Consents(self.tx)

    @cached_property
    def counters(self) -> Counters:
        return Counters(self.tx)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.tx)

    @cached_property
    def people(self) -> People:
        return People(self.tx)

    @cached_property
    def api_keys(self) -> ApiKeys:
        return ApiKeys(self.tx)

    @cached_property
    def invitations(self) -> Invitations:
        return Invitations(self.tx)

    @cached_property
    def resources(self) -> ResourceServers:
        return ResourceServers(self.tx)

    @cached_property
    def agents(self) -> AgentApplications:
        return AgentApplications(self.tx)

    @cached_property
    def registration_tokens(self) -> RegistrationTokens:
        return RegistrationTokens(self.tx)

    @cached_property
    def signing_keys(self) -> SigningKeys:
        return SigningKeys(self.tx)

    @cached_property
    def used_ids(self) -> UsedIds:
        return UsedIds(self.tx)

    @cached_property
    def pushed_requests(self) -> PushedRequests:
        return PushedRequests(self.tx)
