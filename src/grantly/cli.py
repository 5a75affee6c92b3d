"""``grantly``: migrate, serve, and manage companies, users and applications.

Every command prints human output, or one JSON object with ``--json``; bad input exits
non-zero with a message that says what to change.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from . import admin
from .oauth.clock import SystemClock
from .oauth.registration import RegistrationError, validate
from .observability import configure_logging
from .passwords import hash_password
from .settings import Settings
from .store import migrate
from .store.database import open_database
from .store.errors import Conflict
from .store.unit import Store

app = typer.Typer(help="Grantly: an OAuth 2 authorization server.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
companies_app = typer.Typer(help="Companies (tenants).", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in.", no_args_is_help=True)
apps_app = typer.Typer(help="OAuth applications.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(companies_app, name="companies")
app.add_typer(users_app, name="users")
app.add_typer(apps_app, name="apps")
tokens_app = typer.Typer(help="Tokens and codes.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
T = TypeVar("T")


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


def _emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data) if as_json else human)


def _run(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Migrate, then run ``work`` in one transaction."""
    migrate.upgrade(settings.async_database_url)

    async def main() -> T:
        db = open_database(settings.database_url)
        try:
            async with db.unit() as uow:
                return await work(uow)
        finally:
            await db.close()

    return asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Create or update the schema to the newest version (safe to run again)."""
    settings = _settings()
    migrate.upgrade(settings.async_database_url)
    _emit({"status": "up to date"}, as_json, "database schema is up to date")


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
    # Each worker builds its own Settings from the environment (create_app_from_environment).
    os.environ.setdefault("GRANTLY_ISSUER", settings.issuer)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics in any worker reports them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="grantly-metrics-")
    typer.echo(f"Grantly serving {settings.issuer} on http://{host}:{port} ({workers} worker(s))")
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


@users_app.command("create")
def users_create(
    company: Annotated[int, typer.Option(help="Company id.")],
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    password: Annotated[str, typer.Option(help="Sign-in password (8 characters or more).")],
    admin_flag: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user (an employee) of a company."""
    settings = _settings()
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        _fail(f"'{email}' is not an email address.", as_json, 2)
    if len(password) < 8:
        _fail("--password must have at least 8 characters.", as_json, 2)

    async def work(uow: Store) -> Any:
        accounts = uow.accounts
        if await accounts.company(company) is None:
            _fail(
                f"there is no company {company}; create it with `grantly companies create`.",
                as_json,
            )
        return await accounts.create_user(
            company_id=company,
            email=email,
            name=name or email.split("@")[0],
            password_hash=hash_password(password),
            admin=admin_flag,
            now=SystemClock().now(),
        )

    try:
        user = _run(settings, work)
    except Conflict:
        _fail(f"a user with email {email} already exists.", as_json)
    _emit(
        {"id": user.id, "email": user.email, "company_id": user.company_id, "admin": user.admin},
        as_json,
        f"created {'admin' if user.admin else 'user'} {user.id}: {user.email} "
        f"(company {user.company_id})",
    )


@users_app.command("deactivate")
def users_deactivate(
    user_id: Annotated[int, typer.Option("--id", help="User id.")], as_json: JsonOption = False
) -> None:
    """Deactivate a user (a terminated employee): no more sign-in, and their user tokens stop
    working at once. Company tokens they authorized keep working."""
    settings = _settings()
    user = _run(settings, lambda uow: uow.accounts.deactivate(user_id))
    if user is None:
        _fail(f"there is no user {user_id}.", as_json)
    _emit(
        {"id": user.id, "email": user.email, "active": user.active},
        as_json,
        f"deactivated user {user.id}: {user.email}",
    )


@apps_app.command("create")
def apps_create(
    company: Annotated[int, typer.Option(help="Company id.")],
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
    as_json: JsonOption = False,
) -> None:
    """Register an OAuth application. The client secret is printed once."""
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
        )
    except RegistrationError as exc:
        _fail("; ".join(exc.problems), as_json, 2)

    async def work(uow: Store) -> admin.CreatedApplication:
        if await uow.accounts.company(company) is None:
            _fail(f"there is no company {company}.", as_json)
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


@tokens_app.command("prune")
def tokens_prune(
    retention_days: Annotated[
        int, typer.Option(min=0, help="Keep rows for this many days after they expire or end.")
    ] = 30,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per batch.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Remove expired, revoked and used tokens, codes and sessions past the retention period,
    with a progress bar and a summary."""
    from .store import maintenance

    settings = _settings()
    migrate.upgrade(settings.async_database_url)
    now = SystemClock().now()
    cutoff = now - retention_days * 86400

    async def main() -> dict[str, int]:
        db = open_database(settings.database_url)
        try:
            total = sum((await maintenance.count(db, cutoff, now)).values())
            with typer.progressbar(
                length=total, label="Pruning", file=sys.stderr, show_pos=True
            ) as bar:
                return await maintenance.prune(
                    db, cutoff, batch_size, lambda _table, n: bar.update(n), now
                )
        finally:
            await db.close()

    removed = asyncio.run(main())
    total_removed = sum(removed.values())
    lines = [f"removed {total_removed} rows older than {retention_days} days:"]
    lines += [f"  {name}: {n}" for name, n in removed.items()]
    _emit(
        {"removed": removed, "total": total_removed, "retention_days": retention_days},
        as_json,
        "\n".join(lines),
    )


@app.command()
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")
    ] = True,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    as_json: JsonOption = False,
) -> None:
    """Seed a demo company, admin, employee and application (reused when they exist), print
    their credentials and an authorize URL, then serve. Needs GRANTLY_ENV=development."""
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
            "",
        ]
    )
    _emit(data, as_json, human)
    sys.stdout.flush()
    if serve_after:
        serve(host=host, port=port, workers=1)


# --- API keys ---------------------------------------------------------------------------------

api_keys_app = typer.Typer(
    help="API keys: company credentials for the x-api-key header.", no_args_is_help=True
)
app.add_typer(api_keys_app, name="api-keys")


@api_keys_app.command("create")
def api_keys_create(
    company: Annotated[int, typer.Option(help="Company id.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    as_json: JsonOption = False,
) -> None:
    """Create an API key (full access to the company's data, never expires). The key is
    printed once: only its digest is stored."""
    from .api.keys import InvalidApiKeyName, create_api_key, validate_name

    settings = _settings()
    try:
        validate_name(name)
    except InvalidApiKeyName as exc:
        _fail(f"--name: {exc}", as_json, 2)

    async def work(uow: Store) -> Any:
        if await uow.accounts.company(company) is None:
            _fail(
                f"there is no company {company}; create it with `grantly companies create`.",
                as_json,
            )
        return await create_api_key(uow, company, name, None, SystemClock().now())

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

    settings = _settings()

    async def work(uow: Store) -> Any:
        keys = uow.api_keys
        key = await keys.get(key_id) if 0 < key_id <= 2**31 - 1 else None
        if key is None:
            _fail(f"there is no API key {key_id}.", as_json)
        return await keys.revoke(key, SystemClock().now())

    key = _run(settings, work)
    _emit(
        {
            "id": key.id,
            "name": key.name,
            "company_id": key.company_id,
            "revoked_at": key.revoked_at,
        },
        as_json,
        f"revoked API key {key.id}: {key.name} (company {key.company_id})",
    )


@api_keys_app.command("list")
def api_keys_list(
    company: Annotated[int, typer.Option(help="Company id.")], as_json: JsonOption = False
) -> None:
    """List a company's API keys (their hints, never the keys)."""

    settings = _settings()
    keys = _run(settings, lambda uow: uow.api_keys.for_company(company))
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
    help="Development tools (benchmarks): refuse to run unless GRANTLY_ENV=development.",
    no_args_is_help=True,
)
app.add_typer(dev_app, name="dev")

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
    """Mint authorization codes, refresh tokens or access tokens (for benchmarks), one per
    line, without the browser dance but through the protocol code the real flow runs: the
    request is validated and the code issued as when the user presses Allow; tokens come from
    exchanging such a code with the authorization code grant. Needs GRANTLY_ENV=development
    or --i-know."""
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
                _fail(f"there is no user {user_email}.", as_json)
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


def main() -> None:
    try:
        log_format = Settings().log_format
    except Exception:  # a bad setting is reported by the command itself
        log_format = "json"
    configure_logging(log_format)
    app()


if __name__ == "__main__":
    main()
