"""``/oauth/agent_applications``: the applications no company registered (agents that
registered themselves, RFC 7591, or publish a client metadata document) as a company's admins
see them: which of them people of the company authorized, and who; the company's policy for
them; and, per application, revoking every grant it has in the company or blocking it there.
Nothing here reaches another company: an agent application's grants and blocks are per
company."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..oauth.models import AGENT_POLICIES, Application, User
from ..services import services
from ..store.unit import Store
from . import consequences as say
from . import pages, sessions
from .guards import admin_or_refusal, checked_form
from .pages import audit, render
from .responses import error_page

router = APIRouter(prefix="/oauth/agent_applications")
PAGE = "/oauth/agent_applications"


async def _admin(request: Request, uow: Store) -> User | Response:
    return await admin_or_refusal(
        request,
        uow,
        title="Only admins manage agent applications",
        why="Which applications your company's people may authorize is your admins' decision. "
        "Your own authorizations are on the Authorized applications page.",
    )


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        uses = await uow.agents.used_in(user.company_id)
        policy = await uow.agents.policy(user.company_id)
    return render(
        request,
        "agents/index.html",
        uses=uses,
        policy=policy,
        host=_host,
    )


@router.post("/policy", include_in_schema=False)
async def set_policy(request: Request) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    policy = str(form.get("agent_applications") or "")
    async with svc.db.unit() as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        if policy not in AGENT_POLICIES:
            return error_page(request, "Not a policy", "Choose allow or block.", 400)
        await uow.agents.set_policy(user.company_id, policy)  # type: ignore[arg-type]
        await audit(
            request,
            uow,
            "company.agent_policy_changed",
            company_id=user.company_id,
            actor_user_id=user.id,
            agent_applications=policy,
        )
    sessions.notify(
        request,
        "People of your company may authorize agent applications."
        if policy == "allow"
        else "Agent applications are blocked for your company: new authorizations are "
        "refused. Revoke what is already authorized below.",
    )
    return RedirectResponse(PAGE, status_code=303)


async def _admin_and_agent(
    request: Request, uow: Store, application_id: int
) -> tuple[User, Application] | Response:
    """The signed-in admin and an agent application their company dealt with; any other is
    404 (not even its name is told to another company's admin)."""
    user = await _admin(request, uow)
    if isinstance(user, Response):
        return user
    application = (
        await uow.applications.by_id(application_id) if 0 < application_id < 2**31 else None
    )
    if (
        application is None
        or not application.agent
        or not await uow.agents.known_in(user.company_id, application.id)
    ):
        return error_page(request, "Not found", "There is no such agent application.", 404)
    return user, application


@router.post("/{application_id:int}/revoke", include_in_schema=False)
async def revoke(request: Request, application_id: int) -> Response:
    return await _end(request, application_id, block=False)


@router.post("/{application_id:int}/block", include_in_schema=False)
async def block(request: Request, application_id: int) -> Response:
    return await _end(request, application_id, block=True)


async def _end(request: Request, application_id: int, *, block: bool) -> Response:
    """Revoke every grant the agent application has in the admin's company (tokens, consents,
    codes), and with ``block`` refuse its authorizations there from now on."""
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _admin_and_agent(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        user, application = loaded
        now = svc.clock.now()
        action = "block" if block else "revoke"
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                title=f"{'Block' if block else 'Revoke'} “{application.name}” in your company?",
                consequences=[
                    "Every token it holds for people of your company stops working at once, "
                    "and their authorizations end.",
                    *(
                        [
                            "Nobody of your company can authorize it again until it is "
                            "unblocked. Other companies are not affected."
                        ]
                        if block
                        else ["People may authorize it again."]
                    ),
                ],
                action=f"{PAGE}/{application.id}/{action}",
                button="Block" if block else "Revoke",
                cancel=PAGE,
            )
        if block:
            stopped = await uow.agents.block(user.company_id, application.id, user.id, now)
        else:
            stopped = await uow.agents.revoke_in_company(application.id, user.company_id, now)
        await audit(
            request,
            uow,
            "agent_application.blocked" if block else "agent_application.revoked",
            company_id=user.company_id,
            actor_user_id=user.id,
            application_id=application.id,
            name=application.name,
            tokens_revoked=stopped.tokens,
            grants_revoked=stopped.grants,
        )
    sessions.notify(
        request,
        f"“{application.name}”: {say.tokens(stopped)} stopped working"
        + ("; it is blocked for your company." if block else "."),
    )
    return RedirectResponse(PAGE, status_code=303)


@router.post("/{application_id:int}/unblock", include_in_schema=False)
async def unblock(request: Request, application_id: int) -> Response:
    svc = services(request)
    _form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _admin_and_agent(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        user, application = loaded
        if await uow.agents.unblock(user.company_id, application.id):
            await audit(
                request,
                uow,
                "agent_application.unblocked",
                company_id=user.company_id,
                actor_user_id=user.id,
                application_id=application.id,
                name=application.name,
            )
    sessions.notify(request, f"“{application.name}” may be authorized again in your company.")
    return RedirectResponse(PAGE, status_code=303)
