"""Mailings compared: which mailings a selection names, and each one's figures from the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.links.tokens import LinkClaims
from app.mailings.feedback.bounces import record_bounce
from app.mailings.models import DeliveryStatus, MailingStatus
from app.tracking import machine
from app.tracking.comparisons import (
    ComparisonError,
    MailingSelection,
    mailing_rows,
    select_mailings,
)
from app.tracking.models import EventKind
from app.tracking.services import insert_events, record_event
from tests.factories import make_delivery, make_mailing, make_sent_mailing, make_supporter

PERSON = machine.Verdict(False, "", "browser")
PROXY = machine.Verdict(True, "apple-mpp", "apple-mpp")
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def sent_mailing(name: str, started_at: datetime, campaign_id: int | None = None):
    mailing = make_sent_mailing(name)
    mailing.started_at, mailing.campaign_id = started_at, campaign_id
    return mailing


def click(delivery, position: int, *, by_machine: bool = False) -> None:
    insert_events(
        [
            {
                "kind": EventKind.CLICK,
                "mailing_id": delivery.mailing_id,
                "supporter_id": delivery.supporter_id,
                "delivery_id": delivery.id,
                "link_position": position,
                "occurred_at": datetime.now(UTC),
                "user_agent_class": "scanner" if by_machine else "browser",
                "machine": by_machine,
                "machine_reason": "scanner" if by_machine else None,
            }
        ]
    )


def test_rows_count_people_and_machines_apart_with_rates_over_delivered():
    mailing = sent_mailing("Alert", NOV + timedelta(days=3))
    people = [make_supporter(f"c{n}@example.org") for n in range(5)]
    deliveries = [make_delivery(mailing, p) for p in people]
    deliveries[4].status = DeliveryStatus.FAILED
    claims = [LinkClaims(mailing.id, p.id) for p in people]
    record_event(EventKind.OPEN, claims[0], PERSON)
    record_event(EventKind.OPEN, claims[0], PROXY)  # the same person: still one opener
    record_event(EventKind.OPEN, claims[1], PROXY)  # a proxy only: not a person
    record_event(EventKind.OPEN, claims[2], PERSON)
    click(deliveries[0], 1)
    click(deliveries[0], 2)  # a second link: still one clicker
    click(deliveries[3], 1, by_machine=True)
    record_event(EventKind.UNSUBSCRIBE, claims[2], PERSON)
    record_bounce(kind="soft", source="smtp", delivery_id=deliveries[3].id, soft_bounce_limit=3)
    record_bounce(
        kind="complaint", source="webhook", delivery_id=deliveries[1].id, soft_bounce_limit=3
    )

    [row] = mailing_rows([mailing])

    delivered = 4  # five deliveries, one failed
    assert row["delivered"] == delivered and row["failed"] == 1
    # People: c0 and c2 opened; c1 only through a proxy. c3 was only scanned (a click row,
    # inserted as an import would: no open implied).
    assert (row["opens"], row["human_opens"]) == (3, 2)
    assert (row["clicks"], row["human_clicks"]) == (2, 1)
    assert row["unsubscribes"] == 1 and row["actions"] == 0
    assert (row["bounced"], row["complaints"]) == (1, 1)
    assert row["human_open_rate"] == pytest.approx(2 / delivered)
    assert row["human_click_rate"] == pytest.approx(1 / delivered)
    assert row["human_click_to_open"] == pytest.approx(1 / 2)
    assert row["unsubscribe_rate"] == pytest.approx(1 / delivered)
    assert row["bounce_rate"] == pytest.approx(1 / delivered)
    assert row["actions_per_1000"] == 0


def test_a_mailing_with_nothing_delivered_has_no_rates():
    mailing = sent_mailing("Nobody", NOV)
    [row] = mailing_rows([mailing])
    assert row["delivered"] == 0
    assert row["human_open_rate"] is None and row["actions_per_1000"] is None


def test_selection_by_date_range_campaign_and_last_n():
    october = sent_mailing("October", datetime(2026, 10, 31, 23, 59, tzinfo=UTC), campaign_id=7)
    first = sent_mailing("1 Nov", NOV, campaign_id=7)
    middle = sent_mailing("15 Nov", NOV + timedelta(days=14))
    last = sent_mailing("30 Nov", datetime(2026, 11, 30, 23, 59, tzinfo=UTC), campaign_id=7)
    december = sent_mailing("December", datetime(2026, 12, 1, tzinfo=UTC))
    make_mailing(name="A draft, never sent")
    make_mailing(name="Cancelled before it started", status=MailingStatus.CANCELLED)

    november = MailingSelection(sent_after=NOV, sent_before=datetime(2026, 12, 1, tzinfo=UTC))
    assert [m.id for m in select_mailings(november).mailings] == [last.id, middle.id, first.id]
    of_campaign = MailingSelection(
        sent_after=NOV, sent_before=datetime(2026, 12, 1, tzinfo=UTC), campaign_id=7
    )
    assert [m.id for m in select_mailings(of_campaign).mailings] == [last.id, first.id]
    newest_two = select_mailings(MailingSelection(last=2)).mailings
    assert [m.id for m in newest_two] == [december.id, last.id]
    # No filter: the last ten, which here are all five with results.
    everything = select_mailings(MailingSelection()).mailings
    assert [m.id for m in everything] == [december.id, last.id, middle.id, first.id, october.id]


@pytest.mark.parametrize(
    ("selection", "field"),
    [
        (MailingSelection(last=0), "last"),
        (MailingSelection(last=10_000), "last"),
        (MailingSelection(sent_after=NOV, sent_before=NOV), "sent_before"),
        (MailingSelection(sent_after=datetime(2026, 11, 1)), "sent_after"),
    ],
)
def test_a_selection_that_cannot_be_compared_says_which_filter(selection, field):
    with pytest.raises(ComparisonError) as refused:
        select_mailings(selection)
    assert field in refused.value.details
