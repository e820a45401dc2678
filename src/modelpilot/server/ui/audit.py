"""The dashboard's audit page: the audit log, newest page first, and whether its hash chain
verifies.

Admin only, as ``/api/v1/audit``: the log names every actor and subject (tokens created,
aliases moved), so the dashboard never shows it to a role the API refuses it to.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from modelpilot.audit.local import LocalAudit
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.web import UiViewer, render, require_admin

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 50
_MAX_ID = 2**63 - 1


@router.get("/ui/audit")
def audit_page(
    request: Request,
    caller: UiViewer,
    store: StoreDep,
    subject: Annotated[str, Query(max_length=512)] = "",
    before: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
) -> Response:
    """A page of ``AUDIT_PAGE`` entries (newest first; ``before`` pages back) and the chain's
    verification."""
    require_admin(request, caller)
    audit = LocalAudit(store)
    page = audit.list_entries(subject_prefix=subject or None, limit=AUDIT_PAGE, before_id=before)
    query = {"subject": subject} if subject else {}
    return render(
        request,
        caller,
        "audit.html",
        entries=list(reversed(page.entries)),
        verification=audit.verify(),
        subject=subject,
        older_url=None
        if page.next_before_id is None
        else "/ui/audit?" + urlencode({**query, "before": page.next_before_id}),
        newest_url="/ui/audit?" + urlencode(query) if before is not None else None,
    )
