"""The schema. Alembic migrations in ``migrations/versions`` create exactly this.

Secrets, codes and tokens appear only as ``*_digest`` columns (SHA-256 hex of the value).
Times are Unix seconds (integers): the protocol core thinks in them, and they compare the same
way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# Companies, people, applications, API keys and invitations never get an id that was used
# before: audit rows and old links name them by id. SQLite reuses the highest id after its row
# is deleted unless the table is AUTOINCREMENT; PostgreSQL's sequences never reuse one.
NEVER_REUSED_IDS = {"sqlite_autoincrement": True}

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # "allow" or "block": whether its people may authorize agent applications (clients that
    # registered themselves or are named by a client metadata document).
    Column("agent_applications", String(8), nullable=False, server_default="allow"),
    **NEVER_REUSED_IDS,
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    # The full name: kept equal to "first_name last_name" when either is set.
    Column("name", String(200), nullable=False),
    # An employee created through the API has the hash of a random secret no one knows (see
    # ``passwords.unusable_password_hash``): no sign-in until they set a password from an
    # admin's invitation (``invitations``).
    Column("password_hash", String(200), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    # False once the employee is terminated: no sign-in, user tokens stop at once.
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    # The employee directory (docs/factorial-api.md §4.4). NULL names are derived from
    # ``name`` (people created before these columns, or by ``Accounts.create_user``).
    Column("first_name", String(100), nullable=True),
    Column("last_name", String(100), nullable=True),
    Column("preferred_name", String(100), nullable=True),
    # Grantly keeps no workplaces; the id is the company's own, 1 for its main workplace.
    Column("location_id", Integer, nullable=False, server_default="1"),
    # No foreign key: on SQLite adding one means rebuilding ``users``, and dropping the old
    # table would run every ON DELETE that points at it (sessions, tokens). The API checks the
    # manager is a colleague on every write; people are never deleted one by one.
    Column("manager_id", Integer, nullable=True),
    # '0' reads as false on SQLite and PostgreSQL alike, and keeps migrations to ADD COLUMN.
    Column("attendable", Boolean, nullable=False, server_default="0"),
    Column("terminated_on", Date, nullable=True),
    Column("updated_at", BigInteger, nullable=True),
    # Sensitive: shown only to the employee, admins, company tokens and API keys.
    Column("birthday_on", Date, nullable=True),
    Column("phone_number", String(40), nullable=True),
    Column("personal_email", String(320), nullable=True),
    Column("bank_number", String(64), nullable=True),
    Column("bank_number_format", String(40), nullable=True),
    Column("swift_bic", String(11), nullable=True),
    Column("social_security_number", String(40), nullable=True),
    Column("salary_cents", BigInteger, nullable=True),
    Column("termination_reason", String(1000), nullable=True),
    # When the person last chose a password (or was given one by ``grantly users create``);
    # NULL: never, so they cannot sign in until they set one from an invitation's link.
    Column("password_set_at", BigInteger, nullable=True),
    Index("ix_users_company_id", "company_id"),
    Index("ix_users_manager_id", "manager_id"),
    **NEVER_REUSED_IDS,
)

applications = Table(
    "applications",
    metadata,
    Column("id", Integer, primary_key=True),
    # NULL for an agent application: it registered itself, or is named by its metadata
    # document, and belongs to no company.
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(200), nullable=False),
    # A client metadata document's client_id is its https URL.
    Column("client_id", String(2048), nullable=False, unique=True),
    Column("secret_digest", String(64), nullable=True),
    Column("confidential", Boolean, nullable=False),
    # One URI per line; URIs cannot contain line breaks.
    Column("redirect_uris", Text, nullable=False),
    Column("scopes", String(1000), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # "always" asks every time; "remember" skips consent when the user already granted the
    # same or wider scopes; "trusted" skips it for the company's own people. Company tokens
    # always ask an admin.
    Column("consent", String(16), nullable=False, server_default="always"),
    # Seconds; NULL means the server's default (GRANTLY_ACCESS_TOKEN_LIFETIME).
    Column("access_token_lifetime", Integer, nullable=True),
    # "dashboard", "registration" (RFC 7591) or "metadata_document".
    Column("origin", String(24), nullable=False, server_default="dashboard"),
    # The digest of the RFC 7592 registration access token.
    Column("registration_digest", String(64), nullable=True, unique=True),
    # The client's metadata as it registered or published it (JSON), shown and returned.
    Column("client_metadata", Text, nullable=True),
    # A fetched client metadata document is fetched again after this.
    Column("metadata_expires_at", BigInteger, nullable=True),
    # When a person last authorized it: registrations never authorized are pruned.
    Column("authorized_at", BigInteger, nullable=True),
    # "opaque" or "jwt" (RFC 9068): the form of its user tokens' access tokens.
    Column("access_token_format", String(8), nullable=False, server_default="opaque"),
    # "optional": DPoP-bound tokens when the client sends a proof (RFC 9449); "required":
    # never a bearer token.
    Column("dpop", String(10), nullable=False, server_default="optional"),
    # NULL: the client secret (confidential) or nothing (public); or "private_key_jwt" (RFC
    # 7523 §2.2), with the client's keys in ``jwks`` (a JWK Set, JSON) or at ``jwks_uri``.
    Column("token_endpoint_auth_method", String(32), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_uri", String(2048), nullable=True),
    # RFC 9126 §6: authorization requests only by a pushed request_uri.
    Column("require_par", Boolean, nullable=False, server_default="0"),
    # Space-separated; NULL: authorization_code and refresh_token.
    Column("grant_types", String(200), nullable=True),
    Index("ix_applications_company_id", "company_id"),
    Index("ix_applications_origin", "origin", "created_at"),
    **NEVER_REUSED_IDS,
)


def _grant_columns() -> list[Column[object]]:
    """What codes and tokens share: their digest, the client, and whose data they open."""
    return [
        Column("id", Integer, primary_key=True),
        Column("digest", String(64), nullable=False, unique=True),
        Column("application_id", ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
        Column("owner_type", String(16), nullable=False),
        Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
        # The user a user token acts as, or the admin who authorized a company token. SET
        # NULL: removing a person must never delete the company's tokens; a user token whose
        # user is gone is inactive (``AccessToken.is_active``).
        Column("user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    ]


def _audience_column() -> Column[object]:
    """RFC 8707: the resources a code's grant or a token is for, space-separated: a path under
    the issuer for Grantly's own ("/api"), the URI of a registered resource server otherwise.
    NULL is the default audience, Grantly's own API alone: every row from before resource
    indicators, and every grant that named no resource."""
    return Column("audience", Text, nullable=True)


def _jkt_column() -> Column[object]:
    """RFC 9449 §6: the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key a token is bound
    to; NULL for a bearer token."""
    return Column("jkt", String(64), nullable=True)


authorization_codes = Table(
    "authorization_codes",
    metadata,
    *_grant_columns(),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_in_request", Boolean, nullable=False),
    Column("scopes", String(1000), nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(16), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger, nullable=True),
    _audience_column(),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    *_grant_columns(),
    Column("scopes", String(1000), nullable=False),
    Column("family_id", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    _audience_column(),
    _jkt_column(),
    Index("ix_access_tokens_family_id", "family_id"),
    Index("ix_access_tokens_application_id", "application_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    *_grant_columns(),
    Column("scopes", String(1000), nullable=False),
    Column("family_id", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("rotated_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    _audience_column(),
    _jkt_column(),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_application_id", "application_id"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    # Server-side sign-in sessions: the cookie carries a random id, the table its digest, so
    # signing out (or deactivating the user) ends the session everywhere at once.
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_user_sessions_user_id", "user_id"),
)

consents = Table(
    "consents",
    metadata,
    # What a person (or, for company tokens, an admin on the company's behalf) allowed an
    # application: listed on /oauth/authorized_applications, and remembered for consent.
    Column("id", Integer, primary_key=True),
    Column("application_id", ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("scopes", String(1000), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_consents_application_id", "application_id"),
    Index("ix_consents_user_id", "user_id"),
    Index("ix_consents_company_id", "company_id"),
)
# One live consent per application and person (user grants) or per application and company
# (company grants): concurrent grants upsert into it (``Consents.record``).
LIVE_USER_GRANT = text("owner_type = 'user' AND revoked_at IS NULL")
LIVE_COMPANY_GRANT = text("owner_type = 'company' AND revoked_at IS NULL")
Index(
    "uq_consents_live_user_grant",
    consents.c.application_id,
    consents.c.company_id,
    consents.c.user_id,
    unique=True,
    sqlite_where=LIVE_USER_GRANT,
    postgresql_where=LIVE_USER_GRANT,
)
Index(
    "uq_consents_live_company_grant",
    consents.c.application_id,
    consents.c.company_id,
    unique=True,
    sqlite_where=LIVE_COMPANY_GRANT,
    postgresql_where=LIVE_COMPANY_GRANT,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    # The first characters of the key, to recognise it in a list; never enough to use it.
    Column("hint", String(16), nullable=False),
    Column("created_by", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_api_keys_company_id", "company_id"),
    **NEVER_REUSED_IDS,
)

invitations = Table(
    "invitations",
    metadata,
    # One-time links to set a password, made by an admin for a person who has none (or forgot
    # it): only the digest of the link's token is kept. A link works once, until it expires,
    # while its person is active and no newer invitation replaced it (``revoked_at``).
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    # The admin who made it; NULL when made with the CLI (or once that admin is removed).
    Column("created_by", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    # Replaced by a newer invitation, or ended by the person's deactivation.
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_invitations_user_id", "user_id"),
    **NEVER_REUSED_IDS,
)

audit_events = Table(
    "audit_events",
    metadata,
    # Security events, shown to the company's admins. Never a secret, code or token: only ids,
    # names, scopes and the kind of event.
    Column("id", Integer, primary_key=True),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), nullable=True),
    Column("event", String(64), nullable=False),
    Column("actor_user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("application_id", Integer, nullable=True),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("ip", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_audit_events_company_id_created_at", "company_id", "created_at"),
    # The trail's filters (``AuditLog.page``): one index range each, already in the page's
    # order. The person's also serves ON DELETE SET NULL of ``users`` on PostgreSQL.
    Index("ix_audit_events_company_id_event", "company_id", "event", "created_at"),
    Index("ix_audit_events_company_id_actor", "company_id", "actor_user_id", "created_at"),
    Index("ix_audit_events_company_id_application", "company_id", "application_id", "created_at"),
)

throttle_counters = Table(
    "throttle_counters",
    metadata,
    # Failed sign-ins and client authentications, counted per window when no Redis is
    # configured (``grantly.throttle``), so every worker and host counts the same. The key is
    # an HMAC of what is counted (an account, an address, a client): no email or address here.
    Column("key", String(200), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_throttle_counters_expires_at", "expires_at"),
)

resource_servers = Table(
    "resource_servers",
    metadata,
    # Protected resources other than Grantly's own API, registered by the operator (RFC 8707):
    # a grant names one by ``uri`` (normalized, unique); it introspects the tokens issued for
    # it with ``client_id`` and a secret kept only as a digest.
    Column("id", Integer, primary_key=True),
    Column("uri", String(2000), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    # The server's scopes it declares, space-separated; empty: it takes any.
    Column("scopes", String(1000), nullable=False),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("secret_digest", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    **NEVER_REUSED_IDS,
)

# The agent applications one company blocked: its people cannot authorize them, and the
# company's grants to them were revoked when the block was made.
company_application_blocks = Table(
    "company_application_blocks",
    metadata,
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("application_id", ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True),
    Column("blocked_by", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

# Initial access tokens for dynamic client registration (RFC 7591 §3), minted by an operator
# (``grantly registration-tokens create``) when GRANTLY_REGISTRATION=token; digests only.
registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    **NEVER_REUSED_IDS,
)

# Grantly's signing keys (grantly/keys.py): the public JWK in clear, the private key sealed
# with a key derived from GRANTLY_SECRET_KEY. A key signs from activates_at until a later key
# activates; retired keys are no longer published.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("sealed_private", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("activates_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
)

# Pushed authorization requests (RFC 9126): the parameters a client pushed, under the digest of
# the request_uri it was given; used once, within a minute.
pushed_requests = Table(
    "pushed_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("application_id", ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("params", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_pushed_requests_expires_at", "expires_at"),
)

# JWT ids seen once (DPoP proofs, RFC 9449 §11.1; client assertions, RFC 7523 §3), when no
# Redis is configured: the key is a digest of the kind, the issuer and the jti.
used_jtis = Table(
    "used_jtis",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_used_jtis_expires_at", "expires_at"),
)
