"""The supporter directory: search and filter every supporter, a page at a time."""

from __future__ import annotations

from flask import render_template, request

from app.auth.models import Role
from app.security import parse_id
from app.staff.access import requires
from app.staff.supporters import blueprint
from app.supporters import directory, groups
from app.supporters.models import SubscriptionStatus


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    query = _directory_query(request.args)
    if not query.is_filtered and query.after is None and not directory.has_supporters():
        return render_template("staff/supporters/empty.html")
    return render_template(
        "staff/supporters/index.html",
        query=query,
        page=directory.search_directory(query),
        lists=groups.list_choices(),
        tags=groups.tag_choices(),
        statuses=list(SubscriptionStatus),
    )


def _directory_query(args) -> directory.DirectoryQuery:
    # A hand-edited or stale URL filters on nothing rather than failing.
    status = args.get("status", "")
    return directory.DirectoryQuery(
        text=args.get("q", "").strip()[: directory.MAX_QUERY_LENGTH],
        list_id=parse_id(args.get("list", "")),
        tag_id=parse_id(args.get("tag", "")),
        status=SubscriptionStatus(status) if status in set(SubscriptionStatus) else None,
        after=parse_id(args.get("after", "")),
    )
