"""A seeded Grantly protocol core on the in-memory ports, driven synchronously.

Two companies; in the first, an employee, an admin and a former employee; a confidential web
application, a public native application and a confidential read-only application. The helpers
run the core's coroutines with ``asyncio.run`` so that the tests read as plain sequences of
requests, and a ``FrozenClock`` stands in for time.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import quote_plus

from grantly.oauth import bearer
from grantly.oauth.authorize import AuthorizationPolicy, AuthorizationRequest, issue_code, validate
from grantly.oauth.clock import FrozenClock
from grantly.oauth.grants.common import TokenContext, TokenPolicy
from grantly.oauth.models import AccessToken, Application, ResourceServer, TokenResponse, User
from grantly.oauth.resources import OwnResources
from grantly.oauth.secrets import digest
from grantly.oauth.token import token_request
from tests.oauth.memory import (
    Database,
    MemoryApplications,
    MemoryAuthorizationCodes,
    MemoryResourceServers,
    MemoryTokens,
    run,
)

SERVER_SCOPES = ("read", "write")
ISSUER = "https://grantly.example"
REDIRECT_URI = "https://client.example/callback"
OTHER_REDIRECT_URI = "https://client.example/other-callback"
NATIVE_REDIRECT_URI = "com.example.app:/oauth/callback"
CODE_LIFETIME = 600
STATE = "af0ifjsldkj"

# RFC 7636 Appendix B.
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

# RFC 6749 §5.1 plus Doorkeeper's created_at, as Factorial answers.
USER_TOKEN_KEYS = {
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "created_at",
}
COMPANY_TOKEN_KEYS = {"access_token", "token_type", "scope", "created_at"}

# RFC 6749 §4.1.2.1 and §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
ALLOWED_DESCRIPTION_CHARACTERS = frozenset(
    chr(c) for c in [0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]
)

Query = Mapping[str, str | list[str] | None]


def params(values: Query | None = None, /, **more: str | list[str] | None) -> dict[str, list[str]]:
    """Request parameters as the web layer hands them over: name -> every value sent.

    ``None`` leaves a parameter out; a list sends it several times.
    """
    merged = {**(values or {}), **more}
    return {
        name: value if isinstance(value, list) else [value]
        for name, value in merged.items()
        if value is not None
    }


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode both, join with ':', base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class Server:
    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.db = Database()
        self.applications = MemoryApplications(self.db)
        self.codes = MemoryAuthorizationCodes(self.db)
        self.tokens = MemoryTokens(self.db)
        self.resource_servers = MemoryResourceServers(self.db)
        self.policy = TokenPolicy(server_scopes=SERVER_SCOPES, resources=OwnResources(ISSUER))
        self.context = TokenContext(
            applications=self.applications,
            codes=self.codes,
            tokens=self.tokens,
            clock=self.clock,
            policy=self.policy,
        )
        self.authorization_policy = AuthorizationPolicy(
            server_scopes=SERVER_SCOPES, resources=OwnResources(ISSUER)
        )
        self.secrets: dict[str, str] = {}

        self.company_id = 1
        self.other_company_id = 2
        self.web_app = self._application(
            1, "web-client", "gcs_web-client-secret", (REDIRECT_URI, OTHER_REDIRECT_URI)
        )
        self.native_app = self._application(2, "native-client", None, (NATIVE_REDIRECT_URI,))
        self.reader_app = self._application(
            3, "reader-client", "gcs_reader-client-secret", (REDIRECT_URI,), scopes=("read",)
        )
        self.employee = self._user(10, "employee@acme.example", admin=False)
        self.admin = self._user(11, "admin@acme.example", admin=True)
        self.former_employee = self._user(12, "former@acme.example", admin=False, active=False)

    def _application(
        self,
        id: int,
        client_id: str,
        secret: str | None,
        redirect_uris: tuple[str, ...],
        scopes: tuple[str, ...] = SERVER_SCOPES,
    ) -> Application:
        if secret is not None:
            self.secrets[client_id] = secret
        return self.db.add_application(
            Application(
                id=id,
                company_id=self.company_id,
                name=client_id,
                client_id=client_id,
                secret_digest=None if secret is None else digest(secret),
                confidential=secret is not None,
                redirect_uris=redirect_uris,
                scopes=scopes,
            )
        )

    def add_resource_server(
        self, uri: str, secret: str = "grs_secret", scopes: tuple[str, ...] = ()
    ) -> ResourceServer:
        """A resource server registered by the operator, with its introspection secret."""
        return self.db.add_resource_server(
            ResourceServer(
                id=len(self.db.resource_servers) + 1,
                uri=uri,
                name=uri,
                scopes=scopes,
                client_id=f"rs.{len(self.db.resource_servers) + 1}",
                secret_digest=digest(secret),
                created_at=self.clock.now(),
            )
        )

    def _user(self, id: int, email: str, *, admin: bool, active: bool = True) -> User:
        return self.db.add_user(
            User(
                id=id,
                company_id=self.company_id,
                email=email,
                name=email.split("@")[0],
                admin=admin,
                active=active,
            )
        )

    def add_application(self, **fields: object) -> Application:
        """A further application of the first company; ``secret`` makes it confidential."""
        secret = fields.pop("secret", None)
        assert secret is None or isinstance(secret, str)
        values: dict[str, object] = {
            "id": 100 + len(self.db.applications),
            "company_id": self.company_id,
            "name": "extra",
            "client_id": f"extra-client-{len(self.db.applications)}",
            "secret_digest": None if secret is None else digest(secret),
            "confidential": secret is not None,
            "redirect_uris": (REDIRECT_URI,),
            "scopes": SERVER_SCOPES,
            **fields,
        }
        application = Application(**values)  # type: ignore[arg-type]
        if secret is not None:
            self.secrets[application.client_id] = secret
        return self.db.add_application(application)

    # The authorization endpoint.

    def authorization_query(
        self, application: Application | None = None, /, **overrides: str | list[str] | None
    ) -> dict[str, list[str]]:
        """A valid authorization request for ``application``, changed by ``overrides``."""
        application = application or self.web_app
        query: dict[str, str | list[str] | None] = {
            "client_id": application.client_id,
            "response_type": "code",
            "redirect_uri": application.redirect_uris[0],
            "state": STATE,
        }
        if application.public:
            query["code_challenge"] = RFC7636_CHALLENGE
            query["code_challenge_method"] = "S256"
        query.update(overrides)
        return params(query)

    def authorize(
        self, application: Application | None = None, /, **overrides: str | list[str] | None
    ) -> AuthorizationRequest:
        query = self.authorization_query(application, **overrides)
        return run(
            validate(query, self.applications, self.authorization_policy, self.resource_servers)
        )

    def validate(self, query: dict[str, list[str]]) -> AuthorizationRequest:
        return run(
            validate(query, self.applications, self.authorization_policy, self.resource_servers)
        )

    def issue_code(self, request: AuthorizationRequest, user: User | None = None) -> str:
        return run(
            issue_code(request, user or self.employee, self.codes, self.clock, CODE_LIFETIME)
        )

    def code(
        self,
        application: Application | None = None,
        /,
        *,
        user: User | None = None,
        **overrides: str | list[str] | None,
    ) -> str:
        """An authorization code the user allowed for a valid request."""
        return self.issue_code(self.authorize(application, **overrides), user)

    # The token endpoint.

    def token(
        self, authorization: str | None = None, /, **body: str | list[str] | None
    ) -> TokenResponse:
        return run(token_request(params(body), authorization, self.context))

    def client_auth(self, application: Application) -> dict[str, str | list[str] | None]:
        if application.confidential:
            return {
                "client_id": application.client_id,
                "client_secret": self.secrets[application.client_id],
            }
        return {"client_id": application.client_id}

    def exchange(
        self,
        code: str,
        application: Application | None = None,
        /,
        **overrides: str | list[str] | None,
    ) -> TokenResponse:
        """The token request a well-behaved client sends for ``code``."""
        application = application or self.web_app
        body: dict[str, str | list[str] | None] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": application.redirect_uris[0],
            **self.client_auth(application),
        }
        if application.public:
            body["code_verifier"] = RFC7636_VERIFIER
        body.update(overrides)
        return self.token(**body)

    def refresh(
        self,
        refresh_token: str | None,
        application: Application | None = None,
        /,
        **overrides: str | list[str] | None,
    ) -> TokenResponse:
        application = application or self.web_app
        body: dict[str, str | list[str] | None] = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            **self.client_auth(application),
        }
        body.update(overrides)
        return self.token(**body)

    def tokens_for(
        self, application: Application | None = None, user: User | None = None
    ) -> TokenResponse:
        """A fresh user grant: authorize, allow, exchange."""
        return self.exchange(self.code(application, user=user), application)

    # The resource API.

    def bearer(self, access_token: str | None) -> AccessToken:
        return run(bearer.authenticate(access_token, self.tokens, self.clock))

    def access_is_active(self, access_token: str) -> bool:
        record = run(self.tokens.access_token(digest(access_token)))
        return record is not None and record.is_active(self.clock.now())


def description_is_rfc6749_safe(description: str) -> bool:
    return bool(description) and set(description) <= ALLOWED_DESCRIPTION_CHARACTERS
