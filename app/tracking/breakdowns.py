"""One mailing's figures by audience group: per list, tag or saved segment.

Unlike the rest of the report (app/tracking/reports.py), which reads rollups, a breakdown reads
the deliveries themselves (their first-time stamps) joined to the groups' current members, in
one grouped query, because group membership is not rolled up. A recipient in two lists counts
in both; an erased supporter (in no list any more) leaves its groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, func, literal, select, union_all

from app.errors import Invalid
from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus
from app.supporters.models import ListMembership, MailingList, Segment, SupporterTag, Tag
from app.supporters.segments import segment_query
from app.tracking.reports import Pair, rate

BREAKDOWNS = ("list", "tag", "segment")
# A breakdown by every saved segment runs each segment's query: keep the page bounded.
MAX_SEGMENTS = 50


@dataclass(frozen=True)
class GroupFigures:
    """One list, tag or segment: its members among the recipients and what they did."""

    group_id: int
    name: str
    recipients: int
    delivered: int
    opens: Pair
    clicks: Pair
    actions: int
    unsubscribes: int
    open_rate: Pair
    click_rate: Pair
    action_rate: float | None


class UnknownBreakdown(Invalid):
    """A breakdown other than list, tag or segment was asked for."""


def breakdown(mailing_id: int, by: str, ids: list[int] | None = None) -> list[GroupFigures]:
    """Return the mailing's figures per list, tag or segment (those given, or every one).

    One grouped query over the mailing's deliveries joined to the groups' members, counting
    the deliveries' first-time stamps. A recipient in two lists counts in both.
    """
    if by not in BREAKDOWNS:
        raise UnknownBreakdown(f"Break down by list, tag or segment, not {by!r}.")
    members, names = _members(by, ids)
    if members is None:
        return []
    stamped = {
        "opens": Delivery.opened_at,
        "human_opens": Delivery.human_opened_at,
        "clicks": Delivery.clicked_at,
        "human_clicks": Delivery.human_clicked_at,
        "actions": Delivery.acted_at,
        "unsubscribes": Delivery.unsubscribed_at,
    }
    counted: list[ColumnElement] = [
        func.count().label("recipients"),
        func.count().filter(Delivery.status == DeliveryStatus.SENT).label("delivered"),
        *(func.count().filter(column.is_not(None)).label(n) for n, column in stamped.items()),
    ]
    rows = db.session.execute(
        select(members.c.group_id, *counted)
        .select_from(Delivery)
        .join(members, members.c.supporter_id == Delivery.supporter_id)
        .where(Delivery.mailing_id == mailing_id)
        .group_by(members.c.group_id)
    ).all()
    groups = []
    for row in rows:
        delivered = row.delivered
        groups.append(
            GroupFigures(
                group_id=row.group_id,
                name=names.get(row.group_id, f"#{row.group_id}"),
                recipients=row.recipients,
                delivered=delivered,
                opens=Pair(row.opens, row.human_opens),
                clicks=Pair(row.clicks, row.human_clicks),
                actions=row.actions,
                unsubscribes=row.unsubscribes,
                open_rate=Pair(rate(row.opens, delivered), rate(row.human_opens, delivered)),
                click_rate=Pair(rate(row.clicks, delivered), rate(row.human_clicks, delivered)),
                action_rate=rate(row.actions, delivered),
            )
        )
    return sorted(groups, key=lambda g: (g.name.lower(), g.group_id))


_GROUP_MODELS = {"list": MailingList, "tag": Tag, "segment": Segment}


def _members(by: str, ids: list[int] | None):
    """Return (a subquery of (group_id, supporter_id), {group_id: name}), or (None, {})."""
    model = _GROUP_MODELS[by]
    chosen = select(model.id, model.name)
    if ids is not None:
        chosen = chosen.where(model.id.in_(ids))
    if by == "segment":
        segments = db.session.execute(
            select(Segment.id, Segment.name, Segment.definition)
            .where(*([Segment.id.in_(ids)] if ids is not None else []))
            .order_by(Segment.id)
            .limit(MAX_SEGMENTS)
        ).all()
        if not segments:
            return None, {}
        parts = [
            segment_query(definition or {}).add_columns(
                literal(segment_id, BigInteger).label("group_id")
            )
            for segment_id, _, definition in segments
        ]
        members = union_all(*parts).subquery()
        members = (
            select(members.c.group_id, members.c.id.label("supporter_id"))
            .select_from(members)
            .subquery()
        )
        return members, {segment_id: name for segment_id, name, _ in segments}
    names = dict(db.session.execute(chosen).all())
    if not names:
        return None, {}
    table = ListMembership if by == "list" else SupporterTag
    group_column = table.list_id if by == "list" else table.tag_id
    members = (
        select(group_column.label("group_id"), table.supporter_id)
        .where(group_column.in_(list(names)))
        .subquery()
    )
    return members, names
