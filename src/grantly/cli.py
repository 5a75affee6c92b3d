"""``grantly``: migrate, serve, and manage companies, users and applications.

Every command prints human output, or one JSON object with ``--json``; bad input exits
non-zero with a message that says what to change. Something that does not exist is always
"there is no …" (exit 1); every command that changes something says what it changed.

Help texts: a command's first paragraph is what ``--help`` lists, kept to one short line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from . import admin
from .oauth.clock import SystemClock
from .oauth.models import AGENT_POLICIES, Application, User
from .oauth.registration import ApplicationDraft, RegistrationError, security_of, validate
from .observability import configure_logging
from .passwords import hash_password, password_problem
from .settings import Settings
from .store import migrate
from .store.database import open_database
from .store.errors import Conflict
from .store.live import LiveTokens
from .store.unit import Store
from .store.users import Company, Person

app = typer.Typer(
    rich_markup_mode=None, help="Grantly: an OAuth 2 authorization server.", no_args_is_help=True
)
db_app = typer.Typer(rich_markup_mode=None, help="The database schema.", no_args_is_help=True)
companies_app = typer.Typer(
    rich_markup_mode=None, help="Companies (tenants).", no_args_is_help=True
)
users_app = typer.Typer(rich_markup_mode=None, help="People who sign in.", no_args_is_help=True)
apps_app = typer.Typer(rich_markup_mode=None, help="OAuth applications.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(companies_app, name="companies")
app.add_typer(users_app, name="users")
app.add_typer(apps_app, name="apps")
tokens_app = typer.Typer(rich_markup_mode=None, help="Tokens and codes.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
CompanyOption = Annotated[int, typer.Option("--company", help="The company's id.")]
CompanyFilter = Annotated[
    int | None, typer.Option("--company", help="Only this company's (its id).")
]
UserIdOption = Annotated[
    int | None, typer.Option("--id", help="The person's id (or name them with --email).")
]
UserEmailOption = Annotated[
    str | None, typer.Option("--email", help="The person's sign-in email (or give --id).")
]
AppIdOption = Annotated[
    int | None,
    typer.Option("--id", help="The application's id (or name it with --client-id)."),
]
ClientIdOption = Annotated[
    str | None, typer.Option("--client-id", help="The application's client_id (or give --id).")
]
YesOption = Annotated[
    bool, typer.Option("--yes", help="Do it without asking (needed without a terminal).")
]
T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids beyond what the database can hold exist nowhere


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also print the log lines of schema migrations.")
    ] = False,
) -> None:
    # Every command migrates first; its log lines are for operators who ask, not for the
    # person reading the command's answer (nor for a program parsing --json).
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except Exception as exc:  # pydantic's ValidationError, said plainly
        _fail(f"configuration error: {exc}", False)


def _issuer_configured() -> bool:
    # pydantic-settings reads environment variable names regardless of case.
    return any(name.upper() == "GRANTLY_ISSUER" for name in os.environ)


def listening_url(host: str, port: int) -> str:
    """The URL of a server listening on ``host``:``port``. An address that means every
    address (0.0.0.0, ::) names no host a client can reach: its loopback stands in."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - read, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:  # an IPv6 literal (RFC 3986 §3.2.2)
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _serving_settings(host: str, port: int) -> Settings:
    """The settings of a command that serves on ``host``:``port``. Without GRANTLY_ISSUER, the
    issuer (RFC 8414 §2's ``issuer``, RFC 9207's ``iss``, every URL printed) is the URL it
    listens on, whatever the port: a default naming another port sends clients elsewhere."""
    if _issuer_configured():
        return _settings()
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - read, not bound
        typer.secho(
            f"warning: listening on every address; the issuer is {listening_url(host, port)}. "
            "Set GRANTLY_ISSUER to the URL clients reach Grantly at.",
            err=True,
            fg=typer.colors.YELLOW,
        )
    return _settings(issuer=listening_url(host, port))


def _fail(message: str, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _not_found(what: str, as_json: bool) -> NoReturn:
    _fail(f"there is no {what}.", as_json)


def _emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data) if as_json else human)


def _run(settings: Settings, work: Callable[[Store], Awaitable[T]], *, migrated: bool = False) -> T:
    """Migrate (unless a first step of the command just did), then run ``work`` in one
    transaction."""
    if not migrated:
        migrate.upgrade(settings.async_database_url)

    async def main() -> T:
        db = open_database(settings.database_url)
        try:
            async with db.unit() as uow:
                return await work(uow)
        finally:
            await db.close()

    return asyncio.run(main())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm(question: str, consequences: list[str], yes: bool, as_json: bool) -> None:
    """Go on with a destructive command only if it was confirmed: ``--yes``, or a person at a
    terminal answering the question after reading what it stops. Without a terminal (a script,
    a pipe) and without ``--yes`` it refuses: nobody is there to have read the consequences."""
    if yes:
        return
    if not _interactive():
        _fail(
            f"{' '.join(consequences)} Nothing was changed: to go ahead without being asked, "
            "run it again with --yes.",
            as_json,
            2,
        )
    for line in consequences:
        typer.echo(f"  {line}", err=True)
    if not typer.confirm(question, default=False, err=True):
        _fail("not confirmed; nothing was changed.", as_json)


def _tokens(live: LiveTokens) -> str:
    """ "2 access tokens and 2 refresh tokens" (of how many user and company grants)."""
    tokens = ((live.access_tokens, "access token"), (live.refresh_tokens, "refresh token"))
    parts = [_plural(n, word) for n, word in tokens if n]
    kinds = ((live.user_grants, "user grant"), (live.company_grants, "company grant"))
    grants = [_plural(n, word) for n, word in kinds if n]
    said = " and ".join(parts) or "no token"
    return f"{said} ({', '.join(grants)})" if grants else said


def _when(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _exactly_one(what: str, options: dict[str, object], as_json: bool) -> None:
    given = [name for name, value in options.items() if value is not None]
    if len(given) != 1:
        names = " or ".join(options)
        _fail(f"name the {what} with {names} (one of them).", as_json, 2)


async def _company(uow: Store, company_id: int, as_json: bool) -> Company:
    found = await uow.accounts.company(company_id) if 0 < company_id <= MAX_ID else None
    if found is None:
        _not_found(f"company {company_id}", as_json)
    return found


async def _person(uow: Store, user_id: int | None, email: str | None, as_json: bool) -> User:
    if user_id is not None:
        found = await uow.accounts.user(user_id) if 0 < user_id <= MAX_ID else None
        if found is None:
            _not_found(f"user {user_id}", as_json)
        return found
    assert email is not None
    by_email = await uow.accounts.user_by_email(email)
    if by_email is None:
        _not_found(f"user with email {email.strip().lower()}", as_json)
    return by_email


async def _application(
    uow: Store, application_id: int | None, client_id: str | None, as_json: bool
) -> Application:
    if application_id is not None:
        found = (
            await uow.applications.by_id(application_id) if 0 < application_id <= MAX_ID else None
        )
        if found is None:
            _not_found(f"application {application_id}", as_json)
        return found
    assert client_id is not None
    by_client_id = await uow.applications.by_client_id(client_id.strip())
    if by_client_id is None:
        _not_found(f"application with client_id {client_id.strip()}", as_json)
    return by_client_id


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "company_id": user.company_id,
        "admin": user.admin,
        "active": user.active,
    }


def _application_json(application: Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "client_id": application.client_id,
        "name": application.name,
        "company_id": application.company_id,
        "confidential": application.confidential,
        "redirect_uris": list(application.redirect_uris),
        "scopes": list(application.scopes),
        "consent": application.consent,
        "access_token_lifetime": application.access_token_lifetime,
        **admin.security_json(application),
    }


def _security_options(
    current: dict[str, object],
    *,
    access_token_format: str | None,
    dpop: str | None,
    auth_method: str | None,
    jwks: Path | None,
    jwks_uri: str | None,
    require_par: bool | None,
    grant_type: list[str] | None,
    as_json: bool,
) -> dict[str, object]:
    """``validate``'s ``security`` from the options given, over the application's ``current``
    settings. Choosing a method drops the keys of another; giving keys keeps the method."""
    settings = dict(current)
    for name, value in (
        ("access_token_format", access_token_format),
        ("dpop", dpop),
        ("require_par", require_par),
    ):
        if value is not None:
            settings[name] = value
    if auth_method is not None:
        settings["auth_method"] = auth_method
        if auth_method != "private_key_jwt":
            settings["jwks"] = settings["jwks_uri"] = None
    if jwks is not None or jwks_uri is not None:
        settings["jwks"] = settings["jwks_uri"] = None
    if jwks is not None:
        try:
            settings["jwks"] = jwks.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the JWK Set {jwks}: {exc}", as_json, 2)
    if jwks_uri is not None:
        settings["jwks_uri"] = jwks_uri
    if grant_type is not None:
        settings["grant_types"] = grant_type
    return settings


def _application_line(application: Application) -> str:
    kind = "confidential" if application.confidential else "public"
    return (
        f"{application.id}\t{application.client_id}\t{application.name}\t"
        f"company {application.company_id}\t{kind}"
    )


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Create or update the schema to the newest version.

    Safe to run again: an up-to-date schema is left as it is."""
    settings = _settings()
    applied = migrate.upgrade(settings.async_database_url)
    revision = migrate.head()
    if applied:
        _emit(
            {"status": "upgraded", "revision": revision, "applied": applied},
            as_json,
            f"upgraded the database schema to revision {revision} (applied {', '.join(applied)})",
        )
    else:
        _emit(
            {"status": "up to date", "revision": revision, "applied": []},
            as_json,
            f"database schema is up to date (revision {revision}); nothing changed",
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Migrate the database, then serve HTTP."""
    import uvicorn

    from .serving import uvicorn_options

    settings = _serving_settings(host, port)
    migrate.upgrade(settings.async_database_url)
    settings.resolved_secret_key()  # create it once, before workers race to
    _ensure_signing_keys(settings)
    # Each worker builds its own Settings from the environment (create_app_from_environment).
    os.environ.setdefault("GRANTLY_ISSUER", settings.issuer)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics in any worker reports them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="grantly-metrics-")
    address = f"http://{host}:{port}"
    served = address if settings.issuer == address else f"{settings.issuer} on {address}"
    typer.echo(f"Grantly serving {served} ({workers} worker{'s' if workers != 1 else ''})")
    uvicorn.run(
        "grantly.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # our own access log never prints query strings
        log_config=None,  # logging is Grantly's (structlog), set up in each worker
        log_level="info",
        proxy_headers=True,
        **uvicorn_options(settings),  # the bounds on slow and idle clients
    )


# --- companies --------------------------------------------------------------------------------


@companies_app.command("create")
def companies_create(
    name: Annotated[str, typer.Option(help="The company's name.")], as_json: JsonOption = False
) -> None:
    """Create a company."""
    settings = _settings()
    name = name.strip()
    if not name or len(name) > 200:
        _fail("--name must be 1 to 200 characters.", as_json, 2)
    company = _run(settings, lambda uow: uow.accounts.create_company(name, SystemClock().now()))
    _emit(
        {"id": company.id, "name": company.name},
        as_json,
        f"created company {company.id}: {company.name}",
    )


@companies_app.command("list")
def companies_list(as_json: JsonOption = False) -> None:
    """List the companies."""
    companies = _run(_settings(), lambda uow: uow.accounts.companies())
    rows = [{"id": c.id, "name": c.name} for c in companies]
    human = "\n".join(f"{c['id']}\t{c['name']}" for c in rows)
    _emit(
        {"companies": rows},
        as_json,
        human or "there are no companies yet; create one with `grantly companies create`",
    )


@companies_app.command("update", short_help="Change a company's settings.")
def companies_update(
    company_id: Annotated[int, typer.Option("--id", help="The company's id.")],
    agent_applications: Annotated[
        str | None,
        typer.Option(
            help="allow: its people may authorize applications no company registered (agents "
            "that registered themselves or publish a metadata document); block: they may not."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a company's settings. Blocking agent applications refuses their authorization
    requests from then on; tokens already issued keep working until revoked (the dashboard's
    Agent applications page revokes them)."""
    if agent_applications not in (None, *AGENT_POLICIES):
        _fail("--agent-applications must be allow or block.", as_json, 2)
    settings = _settings()

    async def work(uow: Store) -> tuple[Any, str]:
        company = await uow.accounts.company(company_id) if 0 < company_id <= MAX_ID else None
        if company is None:
            _not_found(f"company {company_id}", as_json)
        if agent_applications is not None:
            await uow.agents.set_policy(company.id, agent_applications)  # type: ignore[arg-type]
        return company, await uow.agents.policy(company.id)

    company, policy = _run(settings, work)
    _emit(
        {"id": company.id, "name": company.name, "agent_applications": policy},
        as_json,
        f"company {company.id}: {company.name}\n  agent applications: {policy}",
    )


# --- users ------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    company: CompanyOption,
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="Sign-in password (8 characters or more). Without it the person has none: "
            "`grantly users invite` prints a link for them to set one."
        ),
    ] = None,
    admin_flag: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user (an employee) of a company."""
    settings = _settings()
    email = email.strip().lower()
    if (problem := admin.email_problem(email)) is not None:
        _fail(problem, as_json, 2)
    if password is not None and (problem := password_problem(password)) is not None:
        _fail(f"--password: {problem}", as_json, 2)
    if name is not None and (problem := admin.name_problem(name)) is not None:
        _fail(f"--name: {problem}", as_json, 2)

    async def work(uow: Store) -> User:
        await _company(uow, company, as_json)
        now = SystemClock().now()
        user = await admin.create_person(
            uow,
            company_id=company,
            email=email,
            name=name or email.split("@")[0],
            admin=admin_flag,
            now=now,
            password_hash=hash_password(password) if password is not None else None,
        )
        await uow.audit.record(
            "user.created",
            company_id=company,
            now=now,
            user_id=user.id,
            email=user.email,
            admin=user.admin,
            via="cli",
        )
        return user

    try:
        user = _run(settings, work)
    except Conflict:
        _fail(f"a user with email {email} already exists.", as_json)
    human = (
        f"created {'admin' if user.admin else 'user'} {user.id}: {user.email} "
        f"(company {user.company_id})"
    )
    if password is None:
        human += (
            "\n  no password yet: `grantly users invite --id "
            f"{user.id}` prints a link for them to set one"
        )
    _emit(
        {
            "id": user.id,
            "email": user.email,
            "company_id": user.company_id,
            "admin": user.admin,
            "has_password": password is not None,
        },
        as_json,
        human,
    )


def _password_state(person: Person) -> str:
    if person.invitation_expires_at is not None:
        return f"invited until {_when(person.invitation_expires_at)}"
    return "password set" if person.has_password else "no password"


@users_app.command("list")
def users_list(company: CompanyFilter = None, as_json: JsonOption = False) -> None:
    """List the people who sign in, of every company or of one.

    Each with whether they have a password, or an invitation to set one pending."""

    async def work(uow: Store) -> list[Person]:
        if company is not None:
            await _company(uow, company, as_json)
        people, _total = await uow.accounts.people(company, SystemClock().now())
        return people

    people = _run(_settings(), work)
    human = "\n".join(
        f"{p.user.id}\t{p.user.email}\t{p.user.name}\tcompany {p.user.company_id}\t"
        f"{'admin' if p.user.admin else 'user'}\t{'active' if p.user.active else 'deactivated'}"
        f"\t{_password_state(p)}"
        for p in people
    )
    where = f"company {company} has" if company is not None else "there are"
    _emit(
        {
            "users": [
                {
                    **_user_json(p.user),
                    "has_password": p.has_password,
                    "invitation_expires_at": p.invitation_expires_at,
                }
                for p in people
            ]
        },
        as_json,
        human or f"{where} no users",
    )


@users_app.command("invite")
def users_invite(
    user_id: UserIdOption = None, email: UserEmailOption = None, as_json: JsonOption = False
) -> None:
    """Print a one-time link with which a person sets their password.

    The link works once, for 7 days; an earlier unused link of theirs stops working. Only a
    digest of it is kept: it is printed once. Links start with GRANTLY_ISSUER."""
    _exactly_one("person", {"--id": user_id, "--email": email}, as_json)
    settings = _settings()

    async def work(uow: Store) -> admin.Invited:
        user = await _person(uow, user_id, email, as_json)
        if not user.active:
            _fail(
                f"user {user.id} ({user.email}) is deactivated: activate them first "
                f"(`grantly users activate --id {user.id}`).",
                as_json,
            )
        now = SystemClock().now()
        invited = await admin.invite(uow, user, None, now)
        await uow.audit.record(
            "user.invited",
            company_id=user.company_id,
            now=now,
            user_id=user.id,
            email=user.email,
            invitation_id=invited.id,
            expires_at=invited.expires_at,
            via="cli",
        )
        return invited

    invited = _run(settings, work)
    user, link = invited.user, invited.link(settings.issuer)
    if not _issuer_configured():
        typer.secho(
            f"warning: GRANTLY_ISSUER is not set; the link starts with {settings.issuer}. "
            "Set it to the URL people reach Grantly at, and invite them again.",
            err=True,
            fg=typer.colors.YELLOW,
        )
    _emit(
        {**_user_json(user), "link": link, "expires_at": invited.expires_at},
        as_json,
        f"invited user {user.id}: {user.email} (company {user.company_id})\n"
        f"  link: {link}  (shown once; works once, until {_when(invited.expires_at)})\n"
        "  send it to them: it lets whoever opens it set the password",
    )


@users_app.command("deactivate")
def users_deactivate(
    user_id: UserIdOption = None, email: UserEmailOption = None, as_json: JsonOption = False
) -> None:
    """Deactivate a user (a terminated employee).

    No more sign-in: their sessions end and their user tokens stop working at once, as does a
    pending invitation. Company tokens they authorized keep working."""
    _exactly_one("person", {"--id": user_id, "--email": email}, as_json)

    async def work(uow: Store) -> tuple[User, admin.Access | None]:
        user = await _person(uow, user_id, email, as_json)
        now = SystemClock().now()
        done = await admin.deactivate(uow, user, now)
        if done is None:
            return user, None
        deactivated, access = done
        await uow.audit.record(
            "user.deactivated",
            company_id=user.company_id,
            now=now,
            user_id=user.id,
            email=user.email,
            sessions_ended=access.sessions,
            tokens_stopped=access.tokens,
            via="cli",
        )
        return deactivated, access

    user, access = _run(_settings(), work)
    if access is None:
        _unchanged(user, "deactivated", as_json)
        return
    _emit(
        {
            **_user_json(user),
            "changed": True,
            "sessions_ended": access.sessions,
            "tokens_stopped": access.tokens,
        },
        as_json,
        f"deactivated user {user.id}: {user.email} (company {user.company_id})\n"
        f"  ended {_plural(access.sessions, 'sign-in session')}; "
        f"{_plural(access.tokens, 'live user token')} stopped working",
    )


@users_app.command("activate")
def users_activate(
    user_id: UserIdOption = None, email: UserEmailOption = None, as_json: JsonOption = False
) -> None:
    """Let a deactivated user sign in again.

    Their tokens from before stay revoked: they authorize applications again."""
    _exactly_one("person", {"--id": user_id, "--email": email}, as_json)

    async def work(uow: Store) -> tuple[User, bool]:
        user = await _person(uow, user_id, email, as_json)
        now = SystemClock().now()
        activated = await admin.activate(uow, user, now)
        if activated is None:
            return user, False
        await uow.audit.record(
            "user.activated",
            company_id=user.company_id,
            now=now,
            user_id=user.id,
            email=user.email,
            via="cli",
        )
        return activated, True

    user, changed = _run(_settings(), work)
    if not changed:
        _unchanged(user, "active", as_json)
        return
    _emit(
        {**_user_json(user), "changed": True},
        as_json,
        f"activated user {user.id}: {user.email} (company {user.company_id})\n"
        "  they can sign in again; tokens from before stay revoked",
    )


def _unchanged(user: User, state: str, as_json: bool) -> None:
    _emit(
        {**_user_json(user), "changed": False},
        as_json,
        f"user {user.id} ({user.email}) is already {state}; nothing changed",
    )


# --- applications -----------------------------------------------------------------------------


# The token security options of `apps create` and `apps update` (issue 16).
AccessTokenFormatOption = Annotated[
    str | None, typer.Option(help="opaque | jwt (RFC 9068; user tokens).")
]
DpopOption = Annotated[
    str | None,
    typer.Option(help="optional | required (RFC 9449: required never issues a bearer token)."),
]
AuthMethodOption = Annotated[
    str | None,
    typer.Option(help="client_secret | private_key_jwt (RFC 7523; with --jwks or --jwks-uri)."),
]
JwksOption = Annotated[
    Path | None, typer.Option(help="A file with the client's public JWK Set (private_key_jwt).")
]
JwksUriOption = Annotated[
    str | None, typer.Option(help="An https URL of the client's JWK Set (private_key_jwt).")
]
RequireParOption = Annotated[
    bool | None,
    typer.Option(
        "--require-par/--no-require-par", help="Authorize only pushed requests (RFC 9126)."
    ),
]
GrantTypeOption = Annotated[
    list[str] | None,
    typer.Option(
        help="An extra grant type (repeatable): client_credentials (RFC 6749 §4.4). "
        "authorization_code and refresh_token are always on."
    ),
]


@apps_app.command("create")
def apps_create(
    company: CompanyOption,
    name: Annotated[str, typer.Option(help="Application name.")],
    redirect_uri: Annotated[list[str], typer.Option(help="Redirect URI (repeatable).")],
    public: Annotated[bool, typer.Option("--public", help="No secret; PKCE required.")] = False,
    scope: Annotated[list[str] | None, typer.Option(help="Scope (repeatable).")] = None,
    consent: Annotated[
        str, typer.Option(help="always | remember | trusted (company tokens always ask).")
    ] = "always",
    access_token_lifetime: Annotated[
        int | None, typer.Option(help="Seconds; default: GRANTLY_ACCESS_TOKEN_LIFETIME.")
    ] = None,
    access_token_format: AccessTokenFormatOption = None,
    dpop: DpopOption = None,
    auth_method: AuthMethodOption = None,
    jwks: JwksOption = None,
    jwks_uri: JwksUriOption = None,
    require_par: RequireParOption = None,
    grant_type: GrantTypeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an OAuth application.

    The client secret is printed once: only its digest is stored."""
    settings = _settings()
    try:
        draft = validate(
            name=name,
            redirect_uris=redirect_uri,
            confidential=not public,
            scopes=scope if scope is not None else settings.scope_names,
            server_scopes=settings.scope_names,
            consent=consent,
            access_token_lifetime=access_token_lifetime,
            security=_security_options(
                {},
                access_token_format=access_token_format,
                dpop=dpop,
                auth_method=auth_method,
                jwks=jwks,
                jwks_uri=jwks_uri,
                require_par=require_par,
                grant_type=grant_type,
                as_json=as_json,
            ),
        )
    except RegistrationError as exc:
        _fail("; ".join(exc.problems), as_json, 2)

    async def work(uow: Store) -> admin.CreatedApplication:
        await _company(uow, company, as_json)
        created = await admin.create_application(uow, company, draft, SystemClock().now())
        await uow.audit.record(
            "application.created",
            company_id=company,
            now=SystemClock().now(),
            application_id=created.application.id,
            name=draft.name,
            scope=" ".join(draft.scopes),
            confidential=draft.confidential,
            via="cli",
        )
        return created

    created = _run(settings, work)
    data = created.as_json()
    human = (
        f"created application {data['id']}: {data['name']}\n"
        f"  client_id:     {data['client_id']}\n"
        f"  client_secret: {data['client_secret'] or '(none: public application)'}"
    )
    _emit(data, as_json, human)


@apps_app.command("list")
def apps_list(company: CompanyFilter = None, as_json: JsonOption = False) -> None:
    """List the OAuth applications, of every company or of one."""

    async def work(uow: Store) -> list[Application]:
        if company is not None:
            await _company(uow, company, as_json)
        return await uow.applications.everyone(company)

    applications = _run(_settings(), work)
    where = f"company {company} has" if company is not None else "there are"
    _emit(
        {"applications": [_application_json(a) for a in applications]},
        as_json,
        "\n".join(_application_line(a) for a in applications) or f"{where} no applications",
    )


@apps_app.command("show")
def apps_show(
    application_id: AppIdOption = None,
    client_id: ClientIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an application and how many of its tokens still work."""
    _exactly_one("application", {"--id": application_id, "--client-id": client_id}, as_json)

    async def work(uow: Store) -> tuple[Application, LiveTokens]:
        application = await _application(uow, application_id, client_id, as_json)
        live = await uow.tokens.live_tokens(SystemClock().now(), application.id)
        return application, live

    application, live = _run(_settings(), work)
    data = {**_application_json(application), "live_tokens": live.tokens, "live": live.as_json()}
    lifetime = application.access_token_lifetime
    human = "\n".join(
        [
            f"application {application.id}: {application.name}",
            f"  company:       {application.company_id}",
            f"  client_id:     {application.client_id}",
            f"  type:          {'confidential' if application.confidential else 'public'}",
            f"  redirect URIs: {', '.join(application.redirect_uris)}",
            f"  scopes:        {' '.join(application.scopes)}",
            f"  consent:       {application.consent}",
            f"  token life:    {f'{lifetime} s' if lifetime else 'the server default'}",
            f"  tokens:        {application.access_token_format}, DPoP {application.dpop}",
            f"  client auth:   {data['token_endpoint_auth_method']}",
            f"  grant types:   {' '.join(application.grant_types)}",
            f"  pushed only:   {'yes' if application.require_par else 'no'}",
            f"  live tokens:   {_tokens(live) if live.tokens else 'none'}",
        ]
    )
    _emit(data, as_json, human)


@apps_app.command("update")
def apps_update(
    application_id: AppIdOption = None,
    client_id: ClientIdOption = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Redirect URI (repeatable; replaces them all).")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope (repeatable; replaces them all).")
    ] = None,
    confidential: Annotated[
        bool | None,
        typer.Option(
            "--confidential/--public", help="Client type: with a secret, or none and PKCE."
        ),
    ] = None,
    consent: Annotated[
        str | None, typer.Option(help="always | remember | trusted (company tokens always ask).")
    ] = None,
    access_token_lifetime: Annotated[
        int | None, typer.Option(help="Seconds (60 to 86400).")
    ] = None,
    default_lifetime: Annotated[
        bool,
        typer.Option("--default-lifetime", help="Use the server's default lifetime again."),
    ] = False,
    access_token_format: AccessTokenFormatOption = None,
    dpop: DpopOption = None,
    auth_method: AuthMethodOption = None,
    jwks: JwksOption = None,
    jwks_uri: JwksUriOption = None,
    require_par: RequireParOption = None,
    grant_type: Annotated[
        list[str] | None,
        typer.Option(
            help="An extra grant type (repeatable; replaces them): client_credentials (RFC "
            "6749 §4.4), or authorization_code for none. "
            "authorization_code and refresh_token are always on."
        ),
    ] = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Change an application; what is not given stays as it is.

    Changing the scopes or the client type revokes every token of the application: it asks
    first (or takes --yes). Turning a public application confidential prints its new client
    secret once."""
    _exactly_one("application", {"--id": application_id, "--client-id": client_id}, as_json)
    if default_lifetime and access_token_lifetime is not None:
        _fail("give --access-token-lifetime or --default-lifetime, not both.", as_json, 2)
    settings = _settings()

    def drafted(application: Application) -> ApplicationDraft:
        lifetime = application.access_token_lifetime
        if default_lifetime:
            lifetime = None
        elif access_token_lifetime is not None:
            lifetime = access_token_lifetime
        try:
            return validate(
                name=application.name if name is None else name,
                redirect_uris=application.redirect_uris if redirect_uri is None else redirect_uri,
                confidential=application.confidential if confidential is None else confidential,
                scopes=application.scopes if scope is None else scope,
                server_scopes=settings.scope_names,
                consent=application.consent if consent is None else consent,
                access_token_lifetime=lifetime,
                security=_security_options(
                    security_of(application),
                    access_token_format=access_token_format,
                    dpop=dpop,
                    auth_method=auth_method,
                    jwks=jwks,
                    jwks_uri=jwks_uri,
                    require_par=require_par,
                    grant_type=grant_type,
                    as_json=as_json,
                ),
            )
        except RegistrationError as exc:
            _fail("; ".join(exc.problems), as_json, 2)

    async def check(uow: Store) -> tuple[Application, list[str], LiveTokens]:
        application = await _application(uow, application_id, client_id, as_json)
        revoking = admin.revoking_changes(application, drafted(application))
        live = await uow.tokens.live_tokens(SystemClock().now(), application.id)
        return application, revoking, live

    found, revoking, live = _run(settings, check)
    if revoking and live.tokens:
        _confirm(
            f"Change the {' and '.join(revoking)} of application {found.id} ({found.name})?",
            [
                f"Changing its {' and '.join(revoking)} revokes every grant of application "
                f"{found.id} ({found.name}): {_tokens(live)} stop working at once.",
            ],
            yes,
            as_json,
        )

    async def work(uow: Store) -> tuple[Application, admin.UpdatedApplication | None]:
        application = await _application(uow, found.id, None, as_json)
        draft = drafted(application)
        if not admin.changes(application, draft):
            return application, None
        now = SystemClock().now()
        updated = await admin.update_application(uow, application, draft, now)
        revoked = updated.revoked
        await uow.audit.record(
            "application.updated",
            company_id=application.company_id,
            now=now,
            application_id=application.id,
            name=draft.name,
            scope=" ".join(draft.scopes),
            confidential=draft.confidential,
            consent=draft.consent,
            changed=", ".join(updated.changed),
            tokens_revoked=revoked.tokens if revoked else 0,
            grants_revoked=revoked.grants if revoked else 0,
            via="cli",
        )
        return application, updated

    application, updated = _run(settings, work, migrated=True)
    if updated is None:
        _emit(
            {**_application_json(application), "changed": [], "tokens_revoked": 0},
            as_json,
            f"application {application.id} ({application.name}) already is so; nothing changed",
        )
        return
    revoked = updated.revoked
    data: dict[str, Any] = {
        **_application_json(updated.application),
        "changed": list(updated.changed),
        "tokens_revoked": revoked.tokens if revoked else 0,
        "revoked": revoked.as_json() if revoked else None,
    }
    lines = [
        f"updated application {application.id}: {updated.application.name}",
        f"  changed: {', '.join(updated.changed)}",
    ]
    if revoked is not None:
        lines.append(
            f"  revoked every grant: {_tokens(revoked)} stopped working; "
            "they must authorize it again"
            if revoked.tokens
            else "  no token was working, so none was revoked"
        )
    if updated.client_secret:
        data["client_secret"] = updated.client_secret
        lines.append(f"  client_secret: {updated.client_secret}  (shown once)")
    _emit(data, as_json, "\n".join(lines))


@apps_app.command("rotate-secret", short_help="Give an application a new client secret.")
def apps_rotate_secret(
    application_id: AppIdOption = None,
    client_id: ClientIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give an application a new client secret; the old one stops working.

    The new secret is printed once. Tokens already issued keep working."""
    _exactly_one("application", {"--id": application_id, "--client-id": client_id}, as_json)

    async def work(uow: Store) -> tuple[Application, str, int]:
        application = await _application(uow, application_id, client_id, as_json)
        if not application.confidential:
            _fail(
                f"application {application.id} ({application.name}) is public: it has no "
                "secret to rotate.",
                as_json,
                2,
            )
        now = SystemClock().now()
        secret = await admin.regenerate_secret(uow, application, now)
        await uow.audit.record(
            "application.secret_regenerated",
            company_id=application.company_id,
            now=now,
            application_id=application.id,
            name=application.name,
            via="cli",
        )
        live = await uow.tokens.live_tokens(now, application.id)
        return application, secret, live.tokens

    application, secret, live = _run(_settings(), work)
    _emit(
        {
            "id": application.id,
            "client_id": application.client_id,
            "name": application.name,
            "client_secret": secret,
            "live_tokens": live,
        },
        as_json,
        f"rotated the client secret of application {application.id}: {application.name}\n"
        f"  client_secret: {secret}  (shown once)\n"
        f"  the old secret stopped working; {_plural(live, 'live token')} keep working",
    )


@apps_app.command("delete", short_help="Delete an application and stop its tokens.")
def apps_delete(
    application_id: AppIdOption = None,
    client_id: ClientIdOption = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete an application: its tokens and codes stop working at once.

    It asks first, saying how many tokens stop; --yes deletes without asking (scripts must
    give it)."""
    _exactly_one("application", {"--id": application_id, "--client-id": client_id}, as_json)
    settings = _settings()

    async def check(uow: Store) -> tuple[Application, LiveTokens]:
        application = await _application(uow, application_id, client_id, as_json)
        return application, await uow.tokens.live_tokens(SystemClock().now(), application.id)

    found, live = _run(settings, check)
    _confirm(
        f"Delete application {found.id} ({found.name})?",
        [
            f"Deleting application {found.id} ({found.name}, client_id {found.client_id}) "
            + (f"stops {_tokens(live)} at once" if live.tokens else "stops no working token")
            + " and its client_id no longer signs in; it cannot be undone.",
        ],
        yes,
        as_json,
    )

    async def work(uow: Store) -> tuple[Application, LiveTokens]:
        application = await _application(uow, found.id, None, as_json)
        now = SystemClock().now()
        stopped = await uow.applications.delete(application.id, now)
        await uow.audit.record(
            "application.deleted",
            company_id=application.company_id,
            now=now,
            application_id=application.id,
            name=application.name,
            client_id=application.client_id,
            tokens_revoked=stopped.tokens,
            grants_revoked=stopped.grants,
            via="cli",
        )
        return application, stopped

    application, stopped = _run(settings, work, migrated=True)
    _emit(
        {
            **_application_json(application),
            "deleted": True,
            "tokens_stopped": stopped.tokens,
            "stopped": stopped.as_json(),
        },
        as_json,
        f"deleted application {application.id}: {application.name} "
        f"(client_id {application.client_id}, company {application.company_id})\n"
        f"  {_tokens(stopped)} stopped working; its client_id no longer signs in",
    )


@tokens_app.command("prune", short_help="Remove old tokens, codes, sessions and events.")
def tokens_prune(
    retention_days: Annotated[
        int, typer.Option(min=0, help="Keep rows for this many days after they expire or end.")
    ] = 30,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per batch.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Remove old expired, revoked and used tokens, codes, sessions and invitations, and old
    audit events.

    Rows are kept for the retention period after they expire or end; audit events for
    GRANTLY_AUDIT_RETENTION_DAYS (365 unless set) after they were recorded. A progress bar
    shows the work, a summary what was removed."""
    from .store import maintenance

    settings = _settings()
    migrate.upgrade(settings.async_database_url)
    now = SystemClock().now()
    cutoff = now - retention_days * 86400
    audit_cutoff = now - settings.audit_retention_days * 86400

    async def main() -> dict[str, int]:
        db = open_database(settings.database_url)
        try:
            total = sum((await maintenance.count(db, cutoff, now, audit_cutoff)).values())
            with typer.progressbar(
                length=total, label="Pruning", file=sys.stderr, show_pos=True
            ) as bar:
                return await maintenance.prune(
                    db, cutoff, batch_size, lambda _table, n: bar.update(n), now, audit_cutoff
                )
        finally:
            await db.close()

    removed = asyncio.run(main())
    total_removed = sum(removed.values())
    lines = [
        f"removed {total_removed} rows: those that ended more than {retention_days} days ago, "
        f"audit events older than {settings.audit_retention_days} days:"
    ]
    lines += [f"  {name}: {n}" for name, n in removed.items()]
    _emit(
        {
            "removed": removed,
            "total": total_removed,
            "retention_days": retention_days,
            "audit_retention_days": settings.audit_retention_days,
        },
        as_json,
        "\n".join(lines),
    )


@app.command(short_help="Seed a demo company and serve it on this machine.")
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")
    ] = True,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    as_json: JsonOption = False,
) -> None:
    """Seed a demo company and application, print how to sign in, then serve.

    Creates a company, an admin, an employee and an application (reused when they exist),
    prints their credentials and an authorize URL. Needs GRANTLY_ENV=development."""
    settings = _serving_settings(host, port)
    if settings.env == "production":
        _fail(
            "the demo creates accounts with well-known passwords; it runs only with "
            "GRANTLY_ENV=development (as `make demo` sets it).",
            as_json,
            2,
        )

    from . import demo as seeding

    data = _run(settings, lambda uow: seeding.seed(uow, settings, SystemClock().now()))
    human = "\n".join(
        [
            "",
            f"Grantly demo — {data['company']['name']} (company {data['company']['id']})",
            f"  admin:         {data['admin']['email']} / {data['admin']['password']}",
            f"  employee:      {data['employee']['email']} / {data['employee']['password']}",
            f"  client_id:     {data['application']['client_id']}",
            f"  client_secret: {data['application']['client_secret']}  (new on every run)",
            f"  redirect URIs: {', '.join(data['application']['redirect_uris'])}",
            "",
            "Open this to authorize as a user (the code is shown on the page):",
            f"  {data['authorize_url']}",
            "or this for a company token (admins only):",
            f"  {data['company_authorize_url']}",
            f"Dashboard: {settings.issuer}/oauth/applications",
            *(
                [f"MCP server for AI agents (they register themselves): {settings.issuer}/mcp"]
                if settings.mcp
                else []
            ),
            "",
        ]
    )
    _emit(data, as_json, human)
    sys.stdout.flush()
    if serve_after:
        serve(host=host, port=port, workers=1)


# --- API keys ---------------------------------------------------------------------------------

api_keys_app = typer.Typer(
    rich_markup_mode=None,
    help="API keys: company credentials for the x-api-key header.",
    no_args_is_help=True,
)
app.add_typer(api_keys_app, name="api-keys")


@api_keys_app.command("create", short_help="Create an API key (shown once).")
def api_keys_create(
    company: CompanyOption,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    as_json: JsonOption = False,
) -> None:
    """Create an API key: full access to the company's data, never expires.

    The key is printed once: only its digest is stored."""
    from .api.keys import CreatedApiKey, InvalidApiKeyName, create_api_key, validate_name

    settings = _settings()
    try:
        validate_name(name)
    except InvalidApiKeyName as exc:
        _fail(f"--name: {exc}", as_json, 2)

    async def work(uow: Store) -> CreatedApiKey:
        await _company(uow, company, as_json)
        now = SystemClock().now()
        created = await create_api_key(uow, company, name, None, now)
        await uow.audit.record(
            "api_key.created",
            company_id=company,
            now=now,
            name=created.api_key.name,
            hint=created.api_key.hint,
            via="cli",
        )
        return created

    created = _run(settings, work)
    data = created.as_json()
    _emit(
        data,
        as_json,
        f"created API key {data['id']}: {data['name']} (company {data['company_id']})\n"
        f"  key: {data['key']}  (shown once; send it as the x-api-key header)",
    )


@api_keys_app.command("revoke")
def api_keys_revoke(
    key_id: Annotated[int, typer.Option("--id", help="API key id.")], as_json: JsonOption = False
) -> None:
    """Revoke an API key: requests with it get 401 at once."""
    from .store.api_keys import ApiKey

    async def work(uow: Store) -> tuple[ApiKey, bool]:
        keys = uow.api_keys
        key = await keys.get(key_id) if 0 < key_id <= MAX_ID else None
        if key is None:
            _not_found(f"API key {key_id}", as_json)
        if not key.active:
            return key, False
        now = SystemClock().now()
        revoked = await keys.revoke(key, now)
        await uow.audit.record(
            "api_key.revoked",
            company_id=key.company_id,
            now=now,
            name=key.name,
            hint=key.hint,
            via="cli",
        )
        return revoked, True

    key, changed = _run(_settings(), work)
    assert key.revoked_at is not None
    data = {
        "id": key.id,
        "name": key.name,
        "company_id": key.company_id,
        "revoked_at": key.revoked_at,
        "changed": changed,
    }
    if changed:
        human = (
            f"revoked API key {key.id}: {key.name} (company {key.company_id})\n"
            "  requests with it get 401 from now on"
        )
    else:
        human = (
            f"API key {key.id} ({key.name}) was already revoked on {_when(key.revoked_at)}; "
            "nothing changed"
        )
    _emit(data, as_json, human)


@api_keys_app.command("list")
def api_keys_list(company: CompanyOption, as_json: JsonOption = False) -> None:
    """List a company's API keys (their hints, never the keys)."""
    from .store.api_keys import ApiKey

    async def work(uow: Store) -> list[ApiKey]:
        await _company(uow, company, as_json)
        return await uow.api_keys.for_company(company)

    keys = _run(_settings(), work)
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "hint": k.hint,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    human = "\n".join(
        f"{k['id']}\t{k['name']}\t{k['hint']}…\t{'revoked' if k['revoked_at'] else 'active'}"
        for k in rows
    )
    _emit({"api_keys": rows}, as_json, human or f"company {company} has no API keys")


# --- development tools ------------------------------------------------------------------------

dev_app = typer.Typer(
    rich_markup_mode=None,
    help="Development tools (benchmarks): refuse to run unless GRANTLY_ENV=development.",
    no_args_is_help=True,
)
app.add_typer(dev_app, name="dev", short_help="Development tools (benchmarks).")

MINT_BATCH = 5000  # values per transaction


@dev_app.command("mint")
def dev_mint(
    client_id: Annotated[str, typer.Option(help="The application's client_id.")],
    user_email: Annotated[str, typer.Option(help="The user who 'allows' the authorization.")],
    redirect_uri: Annotated[str, typer.Option(help="A redirect URI registered for the app.")],
    kind: Annotated[str, typer.Option(help="code | refresh_token | access_token")] = "code",
    count: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many values.")] = 1,
    scope: Annotated[str | None, typer.Option(help='Scopes, e.g. "read write".')] = None,
    i_know: Annotated[
        bool, typer.Option("--i-know", help="Run even when GRANTLY_ENV is not development.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Mint codes or tokens for benchmarks, one per line.

    Authorization codes, refresh tokens or access tokens, without the browser dance but
    through the protocol code the real flow runs: the request is validated and the code
    issued as when the user presses Allow; tokens come from exchanging such a code with the
    authorization code grant. Needs GRANTLY_ENV=development or --i-know."""
    from . import dev_mint as minting
    from .oauth.authorize import AuthorizationPolicy
    from .oauth.errors import OAuthError
    from .oauth.grants.common import TokenPolicy

    settings = _settings()
    if settings.env != "development" and not i_know:
        _fail(
            "`grantly dev mint` creates working codes and tokens for a user without asking "
            f"them, so it runs only with GRANTLY_ENV=development (here GRANTLY_ENV is "
            f"{settings.env}); set GRANTLY_ENV=development, or pass --i-know if you really mean "
            "this database.",
            as_json,
            2,
        )
    if kind not in minting.KINDS:
        _fail(f"--kind must be one of {', '.join(minting.KINDS)}, not '{kind}'.", as_json, 2)
    params: dict[str, list[str]] = {
        "client_id": [client_id],
        "redirect_uri": [redirect_uri],
        "response_type": ["code"],
    }
    if scope is not None:
        params["scope"] = [scope]
    show_progress = count > MINT_BATCH and not as_json
    migrate.upgrade(settings.async_database_url)

    async def main() -> list[str]:
        db = open_database(settings.database_url)
        minted: list[str] = []
        started = time.monotonic()
        try:
            async with db.unit(write=False) as uow:
                found = await uow.accounts.user_with_password_hash(user_email)
            if found is None:
                _not_found(f"user with email {user_email.strip().lower()}", as_json)
            request = minting.MintRequest(
                kind=kind,
                params=params,
                user=found[0],
                code_lifetime=settings.authorization_code_lifetime,
                authorization_policy=AuthorizationPolicy(
                    server_scopes=settings.scope_names,
                    allow_plain_pkce=settings.allow_plain_pkce,
                    max_parameter_length=settings.max_parameter_length,
                ),
                token_policy=TokenPolicy(
                    access_token_lifetime=settings.access_token_lifetime,
                    refresh_token_lifetime=settings.refresh_token_lifetime,
                    server_scopes=settings.scope_names,
                    max_parameter_length=settings.max_parameter_length,
                ),
                clock=SystemClock(),
            )
            while len(minted) < count:
                n = min(MINT_BATCH, count - len(minted))
                async with db.unit() as uow:
                    batch = await minting.mint_batch(uow, request, n)
                minted += batch
                if not as_json:
                    sys.stdout.write("\n".join(batch) + "\n")
                if show_progress:
                    rate = len(minted) / max(time.monotonic() - started, 1e-6)
                    typer.echo(f"minted {len(minted)}/{count} {kind} ({rate:.0f}/s)", err=True)
        finally:
            await db.close()
        return minted

    try:
        values = asyncio.run(main())
    except OAuthError as exc:
        _fail(f"the authorization request is refused: {exc.description}", as_json)
    if as_json:
        typer.echo(json.dumps({"kind": kind, "count": len(values), "values": values}))
    else:
        sys.stdout.flush()


def _one_line_paragraphs(*typers: typer.Typer) -> None:
    """Help wraps each paragraph of a docstring to the terminal, but keeps the line breaks of
    every paragraph after the first: at 80 columns a sentence broke in the middle. Each
    paragraph becomes one line for it to wrap."""
    for group in typers:
        for command in group.registered_commands:
            doc = command.help or (inspect.getdoc(command.callback) if command.callback else None)
            if doc:
                command.help = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))


_one_line_paragraphs(app, db_app, companies_app, users_app, apps_app, tokens_app)
_one_line_paragraphs(api_keys_app, dev_app)


# --- resource servers -------------------------------------------------------------------------

# Imported here, with the commands that use it: this block is the resource servers' alone.
from .oauth.models import ResourceServer  # noqa: E402

resources_app = typer.Typer(
    rich_markup_mode=None,
    help="Resource servers: APIs other than Grantly's own that tokens are issued for (RFC 8707).",
    no_args_is_help=True,
)
app.add_typer(resources_app, name="resources", short_help="Resource servers (RFC 8707).")
ResourceServerIdOption = Annotated[int, typer.Option("--id", help="The resource server's id.")]


def _resource_server_json(server: ResourceServer) -> dict[str, Any]:
    return {
        "id": server.id,
        "uri": server.uri,
        "name": server.name,
        "scopes": list(server.scopes),
        "client_id": server.client_id,
    }


@resources_app.command("create", short_help="Register a resource server.")
def resources_create(
    uri: Annotated[str, typer.Option(help="The resource's URI, as clients name it (https).")],
    name: Annotated[str, typer.Option(help="A name to recognise it by.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope it understands (repeatable); none: any scope."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a resource server: tokens may then be asked for it with resource=URI.

    Prints the client_id and client_secret it introspects tokens with (at /oauth/introspect,
    HTTP Basic); the secret is shown once, only its digest is stored. It sees only the tokens
    issued for it."""
    from .oauth import resources
    from .oauth.secrets import (
        RESOURCE_SERVER_SECRET_PREFIX,
        digest,
        new_resource_server_client_id,
        new_secret,
    )

    settings = _settings()
    if resources.OwnResources(settings.issuer).names(uri):
        _fail(
            f"{uri.strip()} is Grantly's own API: tokens are issued for it without registering it.",
            as_json,
            2,
        )
    try:
        normalized = resources.validate_registration(
            uri, allow_loopback_http=settings.env != "production"
        )
        scopes = resources.registered_scopes(scope or [], settings.scope_names)
    except ValueError as exc:
        _fail(f"{exc}", as_json, 2)
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        _fail("--name must be 1 to 200 characters, without control characters.", as_json, 2)
    secret = new_secret(RESOURCE_SERVER_SECRET_PREFIX)

    async def work(uow: Store) -> ResourceServer:
        return await uow.resources.create(
            uri=normalized,
            name=name,
            scopes=scopes,
            client_id=new_resource_server_client_id(),
            secret_digest=digest(secret),
            now=SystemClock().now(),
        )

    try:
        server = _run(settings, work)
    except Conflict:
        _fail(f"a resource server with URI {normalized} is already registered.", as_json)
    _emit(
        {**_resource_server_json(server), "client_secret": secret},
        as_json,
        f"created resource server {server.id}: {server.name}\n"
        f"  uri:           {server.uri}\n"
        f"  scopes:        {' '.join(server.scopes) or '(any scope)'}\n"
        f"  client_id:     {server.client_id}\n"
        f"  client_secret: {secret}  (shown once)\n"
        f"  it introspects at {settings.issuer}/oauth/introspect with these (HTTP Basic)",
    )


@resources_app.command("list")
def resources_list(as_json: JsonOption = False) -> None:
    """List the registered resource servers (never their secrets)."""
    servers = _run(_settings(), lambda uow: uow.resources.everyone())
    human = "\n".join(
        f"{s.id}\t{s.uri}\t{s.name}\t{' '.join(s.scopes) or '(any scope)'}\t{s.client_id}"
        for s in servers
    )
    _emit(
        {"resource_servers": [_resource_server_json(s) for s in servers]},
        as_json,
        human or "there are no resource servers yet; register one with `grantly resources create`",
    )


@resources_app.command("delete", short_help="Delete a resource server.")
def resources_delete(
    server_id: ResourceServerIdOption,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a resource server: its credentials stop introspecting at once.

    Authorization and token requests naming its URI then get invalid_target. Tokens issued for
    it keep their audience (its URI): registered again at that URI, it accepts them."""
    settings = _settings()

    async def find(uow: Store) -> ResourceServer:
        server = await uow.resources.by_id(server_id) if 0 < server_id <= MAX_ID else None
        if server is None:
            _not_found(f"resource server {server_id}", as_json)
        return server

    server = _run(settings, find)
    if not yes:
        try:
            confirmed = typer.confirm(
                f"Delete resource server {server.id} ({server.uri})? Its credentials stop "
                "introspecting at once.",
                err=True,
            )
        except typer.Abort:
            confirmed = False
        if not confirmed:
            _fail("nothing was deleted (pass --yes to delete without being asked).", as_json)

    async def work(uow: Store) -> None:
        await uow.resources.delete(server.id)

    _run(settings, work)
    _emit(
        {**_resource_server_json(server), "deleted": True},
        as_json,
        f"deleted resource server {server.id}: {server.name} ({server.uri})\n"
        "  its client_id no longer introspects; requests naming its URI get invalid_target",
    )


_one_line_paragraphs(resources_app)

registration_tokens_app = typer.Typer(
    rich_markup_mode=None,
    help="Initial access tokens for dynamic client registration (RFC 7591 §3), needed when "
    "GRANTLY_REGISTRATION=token.",
    no_args_is_help=True,
)
app.add_typer(
    registration_tokens_app,
    name="registration-tokens",
    short_help="Initial access tokens for client registration (RFC 7591).",
)


def _registration_token_json(token: Any) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@registration_tokens_app.command("create", short_help="Mint an initial access token.")
def registration_tokens_create(
    name: Annotated[str, typer.Option(help="Who it is for, to recognise it by.")],
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Days it stays valid; none: until revoked.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Mint an initial access token: its holder may register clients at /oauth/register
    (Authorization: Bearer TOKEN) while GRANTLY_REGISTRATION=token. Shown once; only its
    digest is stored."""
    from .oauth.secrets import INITIAL_ACCESS_TOKEN_PREFIX, digest, new_secret

    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        _fail("--name must be 1 to 200 characters, without control characters.", as_json, 2)
    settings = _settings()
    secret = new_secret(INITIAL_ACCESS_TOKEN_PREFIX)
    now = SystemClock().now()
    expires_at = now + expires_in_days * 86400 if expires_in_days else None
    token = _run(
        settings, lambda uow: uow.registration_tokens.create(digest(secret), name, now, expires_at)
    )
    note = (
        ""
        if settings.registration == "token"
        else (
            f"\n  note: GRANTLY_REGISTRATION is {settings.registration}; the token is needed only "
            "when it is token"
        )
    )
    _emit(
        {**_registration_token_json(token), "token": secret},
        as_json,
        f"created initial access token {token.id}: {token.name}\n"
        f"  token: {secret}  (shown once)\n"
        f"  register with: curl -X POST {settings.issuer}/oauth/register "
        f"-H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' -d '{{...}}'"
        + note,
    )


@registration_tokens_app.command("list")
def registration_tokens_list(as_json: JsonOption = False) -> None:
    """List initial access tokens (never their values)."""
    tokens = _run(_settings(), lambda uow: uow.registration_tokens.everyone())
    now = SystemClock().now()

    def status(token: Any) -> str:
        if token.revoked_at is not None:
            return "revoked"
        if token.expires_at is not None and token.expires_at <= now:
            return "expired"
        return "valid"

    human = "\n".join(f"{t.id}\t{t.name}\t{status(t)}" for t in tokens)
    typer.echo(
        json.dumps([_registration_token_json(t) for t in tokens])
        if as_json
        else human
        or "there are no initial access tokens; mint one with `grantly registration-tokens create`"
    )


@registration_tokens_app.command("revoke", short_help="Revoke an initial access token.")
def registration_tokens_revoke(
    token_id: Annotated[int, typer.Option("--id", help="The token's id.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke an initial access token: it registers nothing more. Clients it registered stay."""
    now = SystemClock().now()
    revoked = _run(
        _settings(),
        lambda uow: (
            uow.registration_tokens.revoke(token_id, now) if 0 < token_id <= MAX_ID else _false()
        ),
    )
    if not revoked:
        _not_found(f"valid initial access token {token_id}", as_json)
    _emit({"id": token_id, "revoked": True}, as_json, f"revoked initial access token {token_id}")


async def _false() -> bool:
    return False


_one_line_paragraphs(registration_tokens_app)

keys_app = typer.Typer(
    rich_markup_mode=None,
    help="Grantly's signing keys (JWKs published at /oauth/jwks).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys", short_help="Signing keys: list, rotate, retire.")


def _key_ring(settings: Settings, db: Any) -> Any:
    from .key_ring import KeyRing

    return KeyRing(db, settings.resolved_secret_key(), SystemClock())


def _with_key_ring(
    settings: Settings, work: Callable[[Any], Awaitable[T]], *, migrated: bool = False
) -> T:
    if not migrated:
        migrate.upgrade(settings.async_database_url)

    async def main() -> T:
        db = open_database(settings.database_url)
        try:
            return await work(_key_ring(settings, db))
        finally:
            await db.close()

    return asyncio.run(main())


def _ensure_signing_keys(settings: Settings) -> None:
    """The first start makes the first signing key (before workers race to)."""
    _with_key_ring(settings, lambda ring: ring.ensure(), migrated=True)


def _key_json(key: Any, now: int, current: str | None) -> dict[str, Any]:
    if key.retired_at is not None:
        status = "retired"
    elif key.kid == current:
        status = "active"
    elif key.activates_at > now:
        status = "published"  # not signing yet
    else:
        status = "verifying"  # signed before; its tokens still verify
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": status,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "retired_at": key.retired_at,
    }


@keys_app.command("list", short_help="List the signing keys and what each does.")
def keys_list(as_json: JsonOption = False) -> None:
    """List the signing keys: the one that signs (active), those published ahead of signing,
    those that only verify what they signed, and retired ones. Never a private key."""
    from . import keys as key_rules

    found = _with_key_ring(_settings(), lambda ring: ring.keys())
    now = SystemClock().now()
    current = key_rules.active(found, now)
    rows = [_key_json(k, now, current.kid if current else None) for k in found]
    human = "\n".join(f"{r['kid']}\t{r['alg']}\t{r['status']}" for r in rows)
    _emit({"keys": rows}, as_json, human)


@keys_app.command("rotate", short_help="Make a new signing key.")
def keys_rotate(
    activate_after: Annotated[
        int,
        typer.Option(
            min=0,
            max=30 * 86400,
            help="Seconds it is published before it signs (longer than verifiers cache the JWKS).",
        ),
    ] = 600,
    alg: Annotated[str, typer.Option(help="ES256 or RS256.")] = "ES256",
    as_json: JsonOption = False,
) -> None:
    """Make a new key: published at /oauth/jwks now, signing after --activate-after seconds.
    The key it replaces keeps verifying what it signed until retired."""
    from . import keys as key_rules

    if alg not in key_rules.ALGORITHMS:
        _fail(f"--alg must be one of {', '.join(key_rules.ALGORITHMS)}.", as_json, 2)
    new = _with_key_ring(
        _settings(),
        lambda ring: ring.rotate(activate_after=activate_after, alg=alg),  # type: ignore[arg-type]
    )
    _emit(
        {"kid": new.kid, "alg": new.alg, "activates_at": new.activates_at},
        as_json,
        f"made signing key {new.kid} ({new.alg}); published now, signing from "
        f"{new.activates_at} (in {activate_after} seconds)",
    )


@keys_app.command("retire", short_help="Stop publishing a signing key.")
def keys_retire(
    kid: Annotated[str, typer.Option(help="The key's kid.")],
    force: Annotated[
        bool, typer.Option("--force", help="Even while tokens it signed may be valid.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Retire a key: no longer published, so nothing it signed verifies. Refused while it
    signs, or while a token it signed may still be valid, unless --force."""
    from .oauth.registration import MAX_ACCESS_TOKEN_LIFETIME

    settings = _settings()
    longest = max(settings.access_token_lifetime, MAX_ACCESS_TOKEN_LIFETIME)
    result = _with_key_ring(settings, lambda ring: ring.retire(kid, longest, force))
    if result.key is None:
        _not_found(f"signing key {kid}", as_json)
    if result.refusal is not None:
        _fail(f"signing key {kid} cannot be retired: {result.refusal}.", as_json)
    _emit({"kid": kid, "retired": True}, as_json, f"retired signing key {kid}")


_one_line_paragraphs(keys_app)


def main() -> None:
    try:
        log_format = Settings().log_format
    except Exception:  # a bad setting is reported by the command itself
        log_format = "json"
    configure_logging(log_format)
    app()


if __name__ == "__main__":
    main()
