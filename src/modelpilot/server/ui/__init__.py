"""The web dashboard that ``modelpilot server`` serves under ``/ui`` (docs/dashboard.md).

Owns server-rendered pages (Jinja2 templates, one CSS file, a few lines of JavaScript; nothing
loads from the network), dashboard sessions and CSRF tokens. Never has rules of its own: every
read and every change is a call of the same service function the API calls, under the API's
role checks.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from modelpilot.errors import NotFound, Unauthorized
from modelpilot.identity.tokens import token_id_of
from modelpilot.server.ui import audit, datasets, deployments, models, monitoring, runs
from modelpilot.server.ui.session import COOKIE, Session, SessionSigner, load_secret
from modelpilot.server.ui.web import (
    Form,
    UiViewer,
    check_post,
    current_session,
    error_page,
    redirect,
    render,
    safe_next,
    set_session,
)

router = APIRouter(include_in_schema=False)
_STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


def install(app: FastAPI, home: Path | None) -> None:
    """Add the dashboard to ``app``; its session secret is kept in ``home``."""
    app.state.ui_signer = SessionSigner(load_secret(home))
    for part in (
        router,
        runs.router,
        models.router,
        deployments.router,
        monitoring.router,
        datasets.router,
        audit.router,
    ):
        app.include_router(part)


@router.get("/")
def root() -> Response:
    """The dashboard's front page."""
    return RedirectResponse("/ui/runs", status_code=307)


@router.get("/ui")
@router.get("/ui/")
def ui_root() -> Response:
    """The dashboard's front page."""
    return RedirectResponse("/ui/runs", status_code=307)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    """The stylesheet and the script (shipped in the package; cached for an hour)."""
    if name not in _STATIC:
        raise NotFound(f"No dashboard file {name!r}; there are {', '.join(_STATIC)}.")
    body = files("modelpilot.server.ui").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=_STATIC[name],
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/ui/login")
def login_page(request: Request, next: str = "") -> Response:
    """The login form (a token), with a CSRF token of an anonymous session."""
    return _login_form(request, next)


@router.post("/ui/login")
def login(request: Request, form: Form) -> Response:
    """Check the token with the server's Authenticator and start a signed session."""
    session, _ = current_session(request)
    target = safe_next(form.get("next"))
    authenticator = request.app.state.authenticator
    try:
        if not request.app.state.ui_signer.csrf_matches(session, form.get("csrf")):
            raise Unauthorized(
                "The login form expired or came from another page (CSRF check). Log in again."
            )
        if authenticator is None:  # --no-auth: everyone is admin already
            return redirect(target)
        token = form.get("token", "").strip()
        authenticator.authenticate(f"Bearer {token}")
        token_id = token_id_of(token)
    except Unauthorized as exc:
        return _login_form(request, target, error=str(exc), status=401)
    response = redirect(target)
    set_session(request, response, Session.new(token_id))
    return response


@router.post("/ui/logout")
def logout(request: Request, caller: UiViewer, form: Form) -> Response:
    """End the browser's session."""
    check_post(request, caller, form)
    response = redirect("/ui/login")
    response.delete_cookie(COOKIE, path="/")
    return response


def _login_form(
    request: Request, target: str, error: str | None = None, status: int = 200
) -> Response:
    session, is_new = current_session(request)
    response = render(
        request,
        None,
        "login.html",
        status=status,
        login_csrf=request.app.state.ui_signer.csrf(session),
        next=safe_next(target),
        error=error,
        no_auth=request.app.state.authenticator is None,
    )
    if is_new:
        set_session(request, response, session)
    return response


__all__ = ["error_page", "install"]
