"""The company's people (``/people``), for its admins: search, add, invite (a one-time link to
set a password, shown once), deactivate and reactivate, and each person's grants, revocable.
What the CLI does too is ``grantly.admin``'s; these handlers only translate HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import admin
from ..http import NO_STORE
from ..oauth.models import User
from ..services import services
from ..store.consents import Consent
from ..store.errors import Conflict
from ..store.live import NOTHING, LiveTokens, grant_key
from ..store.unit import Store
from ..store.users import Person
from . import consequences as say
from . import sessions
from .guards import admin_or_refusal, checked_form, form_id
from .pages import audit, confirm, confirmed, plural, possessive, render
from .responses import error_page

router = APIRouter(prefix="/people")

MAX_ID = 2**31 - 1  # ids beyond what the database can hold exist nowhere
PAGE_SIZE = 50
MAX_SEARCH = 200


async def _admin(request: Request, uow: Store) -> User | Response:
    return await admin_or_refusal(
        request,
        uow,
        title="Only admins manage people",
        why="The list of your company's people, their invitations and their access is open to "
        "your company's admins only. To change your own password, use Change password in the "
        "header; to see the applications you authorized, open Authorized applications.",
    )


async def _load(request: Request, uow: Store, user_id: int) -> tuple[User, Person] | Response:
    user = await _admin(request, uow)
    if isinstance(user, Response):
        return user
    person = (
        await uow.accounts.person(user_id, services(request).clock.now())
        if 0 < user_id <= MAX_ID
        else None
    )
    if person is None or person.user.company_id != user.company_id:
        # Another company's person is "not found" too: nothing tells they exist.
        return error_page(
            request, "Person not found", "There is no such person in your company.", 404
        )
    return user, person


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 7 and int(raw) > 0 else 1


async def _index(
    request: Request,
    uow: Store,
    user: User,
    *,
    values: dict[str, object] | None = None,
    problems: list[str] | None = None,
    status: int = 200,
) -> Response:
    search = "".join(
        c for c in request.query_params.get("q", "")[:MAX_SEARCH] if c.isprintable()
    ).strip()
    page = _page_number(request.query_params.get("page"))
    people, total = await uow.accounts.people(
        user.company_id,
        services(request).clock.now(),
        search=search,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-total // PAGE_SIZE))

    def link(number: int) -> str:
        query: dict[str, object] = {"q": search} if search else {}
        if number > 1:
            query["page"] = number
        return "/people?" + urlencode(query) if query else "/people"

    return render(
        request,
        "people.html",
        status,
        people=people,
        search=search,
        total=total,
        page=page,
        pages=pages,
        previous_page=link(page - 1) if page > 1 else None,
        next_page=link(page + 1) if page < pages else None,
        last_page=link(pages),
        values=values or {"name": "", "email": "", "admin": False},
        problems=problems or [],
    )


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    async with services(request).db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        return await _index(request, uow, user)


def _invited_page(
    request: Request, invited: admin.Invited, *, added: bool, person: Person | None
) -> Response:
    response = render(
        request,
        "person_invited.html",
        201,
        person=invited.user,
        link=invited.link(services(request).settings.issuer),
        expires_at=invited.expires_at,
        added=added,
        replaced=invited.replaced,
        had_password=person is not None and person.has_password,
    )
    # The link is a credential: neither cached nor sent on as a Referer (the header is the
    # default of every page, SecurityHeaders').
    response.headers.update(NO_STORE)
    return response


@router.post("", include_in_schema=False)
async def create(request: Request) -> Response:
    """Add a person (no password) and invite them at once: the link is shown once."""
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    email = str(form.get("email") or "").strip().lower()[:400]
    name = str(form.get("name") or "").strip()[:400]
    make_admin = form.get("admin") == "on"
    values: dict[str, object] = {"name": name, "email": email, "admin": make_admin}
    problems = [
        problem
        for problem in (admin.name_problem(name), admin.email_problem(email))
        if problem is not None
    ]
    try:
        async with svc.db.unit() as uow:
            user = await _admin(request, uow)
            if isinstance(user, Response):
                return user
            if not problems and await uow.people.email_taken(email):
                problems.append(f"{email} is already someone's sign-in email.")
            if problems:
                return await _index(
                    request, uow, user, values=values, problems=problems, status=422
                )
            now = svc.clock.now()
            person = await admin.create_person(
                uow, company_id=user.company_id, email=email, name=name, admin=make_admin, now=now
            )
            invited = await admin.invite(uow, person, user.id, now)
            await audit(
                request,
                uow,
                "user.created",
                company_id=user.company_id,
                actor_user_id=user.id,
                user_id=person.id,
                email=person.email,
                admin=person.admin,
            )
            await _audit_invited(request, uow, user, invited)
    except Conflict:
        # Taken by someone else between the check and the write.
        problems = [f"{email} is already someone's sign-in email."]
        async with svc.db.unit(write=False) as uow:
            user = await _admin(request, uow)
            if isinstance(user, Response):
                return user
            return await _index(request, uow, user, values=values, problems=problems, status=422)
    sessions.mark_done(request, form_id(form), f"/people/{person.id}")
    sessions.notify(request, f"Added {person.name} ({person.email}).")
    return _invited_page(request, invited, added=True, person=None)


async def _audit_invited(request: Request, uow: Store, user: User, invited: admin.Invited) -> None:
    await audit(
        request,
        uow,
        "user.invited",
        company_id=user.company_id,
        actor_user_id=user.id,
        user_id=invited.user.id,
        email=invited.user.email,
        invitation_id=invited.id,
        expires_at=invited.expires_at,
    )


@dataclass(frozen=True)
class _Grant:
    consent: Consent
    kind: str  # "User token" or "Company token"
    live: LiveTokens

    @property
    def confirmation(self) -> str:
        return say.dialog(say.revoke_grant(self.consent, self.live, own=False))


async def _grants(uow: Store, person: Person, now: int) -> list[_Grant]:
    """The person's user grants and the company grants they authorized, with what works of
    each: two grouped reads of the tokens, whatever the number of grants."""
    consents, tokens, user = uow.consents, uow.tokens, person.user
    found = [
        *((c, "User token") for c in await consents.of_user(user.id, now)),
        *((c, "Company token") for c in await consents.authorized_by(user.id, now)),
    ]
    working = {
        **await tokens.live_by_grant(now, owner_type="user", user_id=user.id),
        **await tokens.live_by_grant(now, owner_type="company", company_id=user.company_id),
    }
    return [
        _Grant(
            consent, kind, working.get(grant_key(consent.application_id, consent.owner), NOTHING)
        )
        for consent, kind in found
    ]


@router.get("/{user_id:int}", include_in_schema=False)
async def show(request: Request, user_id: int) -> Response:
    svc = services(request)
    now = svc.clock.now()
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, user_id)
        if isinstance(loaded, Response):
            return loaded
        user, person = loaded
        grants = await _grants(uow, person, now)
        access = await admin.access_of(uow, person.user, now) if person.user.active else None
    return render(
        request,
        "person.html",
        person=person,
        grants=grants,
        deactivation=access.consequences(person.user.name) if access else [],
        is_me=person.user.id == user.id,
    )


@router.post("/{user_id:int}/invite", include_in_schema=False)
async def invite(request: Request, user_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, user_id)
        if isinstance(loaded, Response):
            return loaded
        user, person = loaded
        if not person.user.active:
            return error_page(
                request,
                "This person is deactivated",
                f"{person.user.name} cannot sign in, so an invitation would not work. "
                "Reactivate them first, then invite them.",
                400,
            )
        invited = await admin.invite(uow, person.user, user.id, svc.clock.now())
        await _audit_invited(request, uow, user, invited)
    sessions.mark_done(request, form_id(form), f"/people/{user_id}")
    notice = f"Invited {person.user.name}."
    if invited.replaced:
        notice += " Their earlier invitation link stopped working."
    sessions.notify(request, notice)
    return _invited_page(request, invited, added=False, person=person)


def _back(form: FormData, user_id: int) -> str:
    """Where the form came from (the list, or the person's page): only a People page."""
    back = sessions.safe_next(str(form.get("next") or ""), f"/people/{user_id}")
    return (
        back
        if back == "/people" or back.startswith(("/people?", "/people/"))
        else (f"/people/{user_id}")
    )


@router.post("/{user_id:int}/deactivate", include_in_schema=False)
async def deactivate(request: Request, user_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    back = _back(form, user_id)
    now = svc.clock.now()
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, user_id)
        if isinstance(loaded, Response):
            return loaded
        user, person = loaded
        name = person.user.name
        if person.user.id == user.id:
            return error_page(
                request,
                "You cannot deactivate yourself",
                "An admin cannot end their own access: your company could be left without one. "
                "Ask another admin to do it.",
                400,
            )
        if not person.user.active:
            sessions.notify(request, f"{name} was already deactivated; nothing changed.", "warn")
            return RedirectResponse(back, status_code=303)
        if not confirmed(form):
            access = await admin.access_of(uow, person.user, now)
            return confirm(
                request,
                title=f"Deactivate {name}?",
                consequences=access.consequences(name),
                action=f"/people/{user_id}/deactivate",
                button="Deactivate",
                cancel=back,
                fields={"next": back},
            )
        done = await admin.deactivate(uow, person.user, now)
        assert done is not None
        _deactivated, access = done
        await audit(
            request,
            uow,
            "user.deactivated",
            company_id=user.company_id,
            actor_user_id=user.id,
            user_id=person.user.id,
            email=person.user.email,
            sessions_ended=access.sessions,
            tokens_stopped=access.tokens,
        )
    sessions.notify(
        request,
        f"Deactivated {name}: {plural(access.sessions, 'sign-in session')} ended, "
        f"{plural(access.tokens, 'live token')} stopped working. Reactivate them to let them "
        "sign in again.",
    )
    return RedirectResponse(back, status_code=303)


@router.post("/{user_id:int}/activate", include_in_schema=False)
async def activate(request: Request, user_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    back = _back(form, user_id)
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, user_id)
        if isinstance(loaded, Response):
            return loaded
        user, person = loaded
        name = person.user.name
        activated = await admin.activate(uow, person.user, svc.clock.now())
        if activated is None:
            sessions.notify(request, f"{name} was already active; nothing changed.", "warn")
            return RedirectResponse(back, status_code=303)
        await audit(
            request,
            uow,
            "user.activated",
            company_id=user.company_id,
            actor_user_id=user.id,
            user_id=person.user.id,
            email=person.user.email,
        )
    notice = (
        f"Reactivated {name}: they can sign in again. Their tokens from before stay revoked: "
        "applications must ask them again."
    )
    if not person.has_password:
        notice += " They have no password yet: invite them to set one."
    sessions.notify(request, notice)
    return RedirectResponse(back, status_code=303)


@router.post("/{user_id:int}/grants/{consent_id:int}/revoke", include_in_schema=False)
async def revoke_grant(request: Request, user_id: int, consent_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    now = svc.clock.now()
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, user_id)
        if isinstance(loaded, Response):
            return loaded
        user, person = loaded
        consent = await uow.consents.get(consent_id) if 0 < consent_id <= MAX_ID else None
        if (
            consent is None
            or consent.owner.company_id != user.company_id
            or consent.owner.user_id != person.user.id
        ):
            return error_page(
                request,
                "Not found",
                f"{person.user.name} has no such authorization to revoke.",
                404,
            )
        if not confirmed(form):
            live = await uow.tokens.live_tokens(now, consent.application_id, consent.owner)
            return confirm(
                request,
                title=f"Revoke {possessive(consent.application_name)} access?",
                consequences=say.revoke_grant(consent, live, own=False),
                action=f"/people/{user_id}/grants/{consent_id}/revoke",
                button="Revoke",
                cancel=f"/people/{user_id}",
            )
        stopped = await uow.consents.revoke(consent, now)
        await audit(
            request,
            uow,
            "grant.revoked",
            company_id=consent.owner.company_id,
            actor_user_id=user.id,
            application_id=consent.application_id,
            resource_owner_type=consent.owner.type,
            scope=" ".join(consent.scopes),
            user_id=person.user.id,
            tokens_revoked=stopped.tokens,
        )
    sessions.notify(
        request,
        f"Revoked {possessive(consent.application_name)} access: "
        f"{say.tokens(stopped)} stopped working.",
    )
    return RedirectResponse(f"/people/{user_id}", status_code=303)
