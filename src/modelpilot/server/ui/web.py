"""What every dashboard page shares: who is asking, the templates, forms and HTML errors.

A page's caller is found once by :func:`viewer` (the ``UiViewer`` dependency): a
``Authorization: Bearer`` header as the API takes it, else the signed session cookie, else
(``--no-auth``) the admin identity the API uses. Role checks are the API's
(:class:`~modelpilot.server.deps.RoleGuard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from modelpilot.errors import Forbidden, InvalidInput, Unauthorized
from modelpilot.identity import Authenticator, Identity, Role
from modelpilot.server.deps import NO_AUTH_IDENTITY, RoleGuard
from modelpilot.server.ui.session import COOKIE, SESSION_S, Session, SessionSigner

# Nothing loads from anywhere but this server; no inline scripts or styles.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_DEPLOYER = RoleGuard(Role.DEPLOYER)
_ADMIN = RoleGuard(Role.ADMIN)


@dataclass(frozen=True)
class Caller:
    """Who asks for a page, and the session (None for a Bearer request) its forms belong to."""

    identity: Identity
    session: Session | None
    is_new_session: bool = False  # set the cookie on the response

    @property
    def can_deploy(self) -> bool:
        """Whether promote and rollback are offered."""
        return self.identity.role >= Role.DEPLOYER

    @property
    def can_audit(self) -> bool:
        """Whether the audit log is shown (admin, as ``/api/v1/audit``)."""
        return self.identity.role >= Role.ADMIN


def signer(request: Request) -> SessionSigner:
    """The app's session signer."""
    found: SessionSigner = request.app.state.ui_signer
    return found


def current_session(request: Request) -> tuple[Session, bool]:
    """The request's valid session, or a new anonymous one (True: new)."""
    session = signer(request).decode(request.cookies.get(COOKIE))
    return (session, False) if session is not None else (Session.new(None), True)


def viewer(request: Request) -> Caller:
    """The caller of a page: Bearer header, session cookie or ``--no-auth``; Unauthorized
    (a redirect to the login page, see app.py) otherwise."""
    authenticator: Authenticator | None = request.app.state.authenticator
    header = request.headers.get("authorization")
    if authenticator is not None and header:
        return Caller(authenticator.authenticate(header), None)
    session, is_new = current_session(request)
    if authenticator is None:
        return Caller(NO_AUTH_IDENTITY, session, is_new)
    if session.token_id is None:
        raise Unauthorized("Log in with an API token to see the dashboard.")
    return Caller(authenticator.authenticate_session(session.token_id), session)


UiViewer = Annotated[Caller, Depends(viewer)]


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def check_post(request: Request, caller: Caller, form: dict[str, str]) -> None:
    """Refuse (403) a form post whose CSRF token does not belong to the caller's session."""
    if caller.session is None:  # Authorization header: not a browser's forged request
        return
    if not signer(request).csrf_matches(caller.session, form.get("csrf")):
        raise Forbidden(
            f"POST {request.url.path}: the form's CSRF token is missing or belongs to another "
            "session. Reload the page and submit the form again."
        )


def require_deployer(request: Request, caller: Caller) -> None:
    """The API's deployer check (403 naming the role needed)."""
    _DEPLOYER.check(caller.identity, request)


def require_admin(request: Request, caller: Caller) -> None:
    """The API's admin check (403 naming the role needed): the audit log's pages."""
    _ADMIN.check(caller.identity, request)


def required_text(form: dict[str, str], field: str, what: str) -> str:
    """A non-blank form field, stripped; InvalidInput naming it otherwise."""
    value = form.get(field, "").strip()
    if not value:
        raise InvalidInput(
            f"{what} is required; the form's {field!r} field was empty.", field=field
        )
    return value


def confirmed_reason(form: dict[str, str], label: str, subject: str) -> str:
    """The reason typed in a change form (promote, roll back, approve a loop decision)
    whose confirmation box is ticked; InvalidInput naming what is missing otherwise, which
    the page shows while nothing changes.

    >>> confirmed_reason({"confirm": "yes", "reason": " canary healthy "}, "Promote", "d")
    'canary healthy'
    """
    if form.get("confirm") != "yes":
        raise InvalidInput(
            f"{label} {subject!r}: tick the confirmation box to confirm the change.",
            field="confirm",
        )
    return required_text(form, "reason", f"A reason for {label.lower()}")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path of this server, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("/ui//"):
        return target
    return "/ui/runs"


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _duration(start_ms: int, end_ms: int | None) -> str:
    if end_ms is None:
        return "running"
    seconds = max(0, end_ms - start_ms) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelpilot.server.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, num=_num, duration=_duration, q=lambda s: quote(str(s), safe=""))
    return env


_TEMPLATES = _environment()


def render(
    request: Request, caller: Caller | None, template: str, status: int = 200, **values: Any
) -> Response:
    """A page from ``template`` with the caller, the CSRF token and ``values``."""
    session = caller.session if caller is not None else None
    html = _TEMPLATES.get_template(template).render(
        caller=caller,
        csrf=signer(request).csrf(session) if session is not None else "",
        path=request.url.path,
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=_HEADERS)
    if caller is not None and caller.is_new_session and session is not None:
        set_session(request, response, session)
    return response


def svg(markup: str) -> Markup:
    """SVG our own chart code wrote (labels already escaped) for a template."""
    return Markup(markup)  # built by modelpilot.cards.svg, which escapes its text


def set_session(request: Request, response: Response, session: Session) -> None:
    """Set the signed session cookie (HttpOnly, SameSite=Strict; Secure over HTTPS)."""
    response.set_cookie(
        COOKIE,
        signer(request).encode(session),
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def redirect(target: str) -> RedirectResponse:
    """303 See Other: after a form post, the browser GETs ``target``."""
    return RedirectResponse(target, status_code=303, headers=_HEADERS)


def error_page(request: Request, status: int, kind: str, message: str) -> Response:
    """An error as an HTML page for a dashboard path; a page that needs a login redirects
    to the login form instead (a browser without a session, not a script's bad token)."""
    if status == 401 and not request.headers.get("authorization"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/ui/login?next={quote(target, safe='')}")
    return render(request, None, "error.html", status=status, kind=kind, message=message)
