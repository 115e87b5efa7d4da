"""Behaviour segments: acted / did not act, opened or clicked lately, non-openers, the sunset list.

Opens and clicks are tracking_events rows as the tracking pipeline leaves them (one per
recipient, kind, link and human-or-machine), so machine-only opens can be set up exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.auth.models import Role
from app.campaigns.behaviour import months_before
from app.campaigns.models import Action
from app.db import utcnow
from app.extensions import db
from app.mailings.delivery.launch import snapshot_audience
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.supporters.behaviours import behaviour_types
from app.supporters.models import ListMembership, Segment, Supporter
from app.supporters.segments import (
    SegmentDefinitionError,
    count_segment,
    segment_query,
    validate_definition,
)
from app.tracking.models import EventKind, TrackingEvent
from tests.factories import (
    make_campaign,
    make_delivery,
    make_list,
    make_mailing,
    make_sent_mailing,
    make_supporter,
)
from tests.staff.conftest import (  # noqa: F401 - the staff fixtures, for the editor pages
    make_staff_user,
    staff_client,
    staff_test_client_class,
)

ALL_TYPES = {
    "acted_on_campaign",
    "not_acted_on_campaign",
    "opened_recent_mailings",
    "clicked_recent_mailings",
    "received_not_opened",
    "not_engaged",
}


def people(*names: str) -> dict[str, Supporter]:
    return {name: make_supporter(f"{name}@example.org") for name in names}


def matched(*behaviour: dict, **definition) -> set[str]:
    checked = validate_definition({**definition, "behaviour": list(behaviour)})
    emails = db.session.scalars(
        select(Supporter.email).where(Supporter.id.in_(segment_query(checked)))
    )
    return {email.split("@")[0] for email in emails}


def sent(name: str, days_ago: int = 1) -> Mailing:
    mailing = make_sent_mailing(name)
    mailing.started_at = utcnow() - timedelta(days=days_ago)
    db.session.flush()
    return mailing


def event(delivery: Delivery, kind: EventKind, *, machine=False, position=None, ago=None):
    db.session.add(
        TrackingEvent(
            kind=kind,
            mailing_id=delivery.mailing_id,
            supporter_id=delivery.supporter_id,
            delivery_id=delivery.id,
            link_position=position,
            machine=machine,
            machine_reason="privacy_proxy" if machine else None,
            user_agent_class="proxy" if machine else "browser",
            occurred_at=utcnow() - (ago or timedelta(minutes=30)),
        )
    )
    db.session.flush()


def act(campaign, supporter, *, ago=timedelta(days=1)) -> None:
    db.session.add(
        Action(campaign_id=campaign.id, supporter_id=supporter.id, created_at=utcnow() - ago)
    )
    db.session.flush()


def test_create_app_registers_every_behaviour():
    assert {t.name for t in behaviour_types()} >= ALL_TYPES


def test_acted_and_did_not_act_on_a_campaign():
    p = people("a", "b", "c")
    ice = make_campaign(slug="ice")
    other = make_campaign(slug="other")
    act(ice, p["a"])
    act(other, p["b"])
    assert matched({"type": "acted_on_campaign", "campaign_id": ice.id}) == {"a"}
    # Did not act = everyone without an action on it, mailed about it or not (c never was).
    assert matched({"type": "not_acted_on_campaign", "campaign_id": ice.id}) == {"b", "c"}
    both = [
        {"type": "acted_on_campaign", "campaign_id": other.id},
        {"type": "not_acted_on_campaign", "campaign_id": ice.id},
    ]
    assert matched(*both) == {"b"}  # behaviour conditions all hold together


def test_did_not_act_is_narrowed_by_the_rest_of_the_segment():
    network, p = _network("a", "b")
    make_supporter("c@example.org")
    ice = make_campaign(slug="ice")
    act(ice, p["a"])
    not_acted = {"type": "not_acted_on_campaign", "campaign_id": ice.id}
    assert matched(not_acted, include_lists=[network.id]) == {"b"}


def test_opened_and_clicked_recent_mailings_count_people_only():
    p = people("a", "b", "c", "d", "e")
    oldest, middle, newest = sent("oldest", 30), sent("middle", 20), sent("newest", 10)
    deliveries = {
        (m.name, n): make_delivery(m, p[n]) for m in (oldest, middle, newest) for n in "abcd"
    }
    event(deliveries["newest", "a"], EventKind.OPEN)  # a person opened
    event(deliveries["newest", "b"], EventKind.OPEN, machine=True)  # only a privacy proxy
    event(deliveries["newest", "b"], EventKind.CLICK, machine=True, position=1)  # a scanner
    event(deliveries["oldest", "c"], EventKind.CLICK, position=2)  # long ago
    event(deliveries["middle", "d"], EventKind.CLICK, position=1)  # a click without an open

    opened = {"type": "opened_recent_mailings", "last_mailings": 2}
    assert matched(opened) == {"a", "d"}  # a click counts as an open; b's machines do not
    assert matched({**opened, "last_mailings": 3}) == {"a", "c", "d"}
    clicked = {"type": "clicked_recent_mailings", "last_mailings": 2}
    assert matched(clicked) == {"d"}
    assert matched({**clicked, "last_mailings": 1}) == set()


def test_recent_mailings_leave_out_drafts_and_cancelled_mailings():
    p = people("a")
    mailing = sent("the one that went out", 5)
    event(make_delivery(mailing, p["a"]), EventKind.OPEN)
    make_mailing(name="a newer draft")
    cancelled = sent("cancelled", 1)
    cancelled.status = MailingStatus.CANCELLED
    db.session.flush()
    assert matched({"type": "opened_recent_mailings", "last_mailings": 1}) == {"a"}


def test_received_but_did_not_open_a_mailing():
    p = people("opened", "proxy", "silent", "never", "failed", "clicked")
    mailing = sent("Free the journalists")
    other = sent("Another alert")
    d = {n: make_delivery(mailing, p[n]) for n in ("opened", "proxy", "silent", "clicked")}
    event(d["opened"], EventKind.OPEN)
    event(d["proxy"], EventKind.OPEN, machine=True)  # Apple's proxy: not a person opening
    event(d["clicked"], EventKind.CLICK, position=1)
    failed = make_delivery(mailing, p["failed"])
    failed.status = DeliveryStatus.FAILED
    event(make_delivery(other, p["never"]), EventKind.OPEN)  # opened a different mailing
    db.session.flush()
    non_openers = {"type": "received_not_opened", "mailing_id": mailing.id}
    assert matched(non_openers) == {"proxy", "silent"}
    assert count_segment(validate_definition({"behaviour": [non_openers]})) == 2


def test_sunset_is_mailed_in_the_period_with_no_human_open_click_or_action():
    p = people("quiet", "reader", "proxied", "unmailed", "actor", "old_reader", "unsent")
    campaign = make_campaign()
    recent, old = sent("recent", 60), sent("old", 420)
    old.finished_at = utcnow() - timedelta(days=419)
    for name in ("quiet", "reader", "proxied", "actor", "old_reader"):
        make_delivery(recent, p[name], sent_ago=timedelta(days=60))
    event(
        make_delivery(old, p["old_reader"], sent_ago=timedelta(days=420)),
        EventKind.OPEN,
        ago=timedelta(days=400),
    )  # engaged, but more than 12 months ago
    make_delivery(old, p["unmailed"], sent_ago=timedelta(days=420))  # not mailed this year
    reader = db.session.scalar(select(Delivery).where(Delivery.supporter_id == p["reader"].id))
    event(reader, EventKind.OPEN, ago=timedelta(days=30))
    proxied = db.session.scalar(select(Delivery).where(Delivery.supporter_id == p["proxied"].id))
    event(proxied, EventKind.OPEN, machine=True, ago=timedelta(days=59))
    act(campaign, p["actor"], ago=timedelta(days=10))  # acted on the public page
    queued = make_delivery(recent, p["unsent"])
    queued.status, queued.sent_at = DeliveryStatus.QUEUED, None
    db.session.flush()

    sunset = {"type": "not_engaged", "months": 12}
    assert matched(sunset) == {"quiet", "proxied", "old_reader"}
    # Over 14 months old_reader's open counts, and unmailed was mailed in the period.
    assert matched({**sunset, "months": 14}) == {"quiet", "proxied", "unmailed"}
    assert matched({**sunset, "months": 1}) == set()  # nobody was mailed this month


def test_months_before_counts_calendar_months():
    march_end = datetime(2026, 3, 31, 12, 30, tzinfo=UTC)
    assert months_before(march_end, 1) == datetime(2026, 2, 28, 12, 30, tzinfo=UTC)
    assert months_before(march_end, 12) == datetime(2025, 3, 31, 12, 30, tzinfo=UTC)
    assert months_before(march_end, 15) == datetime(2024, 12, 31, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"type": "acted_on_campaign", "campaign_id": 987654}, "campaign_id", "No campaign"),
        ({"type": "received_not_opened", "mailing_id": 987654}, "mailing_id", "No mailing"),
        ({"type": "acted_on_campaign"}, "campaign_id", "choose a campaign"),
        ({"type": "not_engaged", "months": 0}, "months", "greater than or equal to 1"),
        ({"type": "not_engaged", "months": "12"}, "months", "Not a valid integer"),
        ({"type": "not_engaged", "months": 12, "campaign_id": 1}, "campaign_id", "takes no"),
        ({"type": "opened_ever"}, "type", "Unknown behaviour"),
    ],
)
def test_engine_refuses_a_bad_behaviour_at_its_field(item, field, message):
    with pytest.raises(SegmentDefinitionError) as raised:
        validate_definition({"behaviour": [{"type": "not_engaged", "months": 12}, item]})
    (text,) = raised.value.details["behaviour"][1][field]
    assert message in text


def test_api_refuses_unknown_campaign_and_mailing_ids_with_details(client, api_token):
    headers = api_token("admin")
    bad = {
        "name": "Acted",
        "definition": {
            "behaviour": [
                {"type": "acted_on_campaign", "campaign_id": 987654},
                {"type": "received_not_opened", "mailing_id": 876543},
            ]
        },
    }
    response = client.post("/api/v1/segments", json=bad, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["details"] == {
        "behaviour": {
            "0": {"campaign_id": ["No campaign with id 987654."]},
            "1": {"mailing_id": ["No mailing with id 876543."]},
        }
    }
    unknown = {"name": "X", "definition": {"behaviour": [{"type": "telepathy"}]}}
    response = client.post("/api/v1/segments", json=unknown, headers=headers)
    assert response.status_code == 422
    assert "telepathy" in str(response.get_json()["error"]["details"])
    assert db.session.scalars(select(Segment)).all() == []


def test_api_saves_and_counts_a_behaviour_segment(client, api_token):
    headers = api_token("admin")
    p = people("a", "b")
    campaign = make_campaign()
    act(campaign, p["a"])
    definition = {"behaviour": [{"type": "acted_on_campaign", "campaign_id": campaign.id}]}
    created = client.post(
        "/api/v1/segments", json={"name": "Acted", "definition": definition}, headers=headers
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    segment = created.get_json()
    assert segment["definition"]["behaviour"] == definition["behaviour"]
    count = client.get(f"/api/v1/segments/{segment['id']}/count", headers=headers)
    assert count.get_json() == {"count": 1}


def _segment(name: str, *behaviour: dict) -> Segment:
    segment = Segment(name=name, definition=validate_definition({"behaviour": list(behaviour)}))
    db.session.add(segment)
    db.session.flush()
    return segment


def _snapshot(mailing: Mailing) -> set[str]:
    snapshot_audience(mailing, batch_size=100)
    emails = db.session.scalars(
        select(Supporter.email)
        .join(Delivery, Delivery.supporter_id == Supporter.id)
        .where(Delivery.mailing_id == mailing.id)
    )
    return {email.split("@")[0] for email in emails}


def _network(*names) -> tuple:
    network = make_list("Network")
    p = people(*names)
    db.session.add_all([ListMembership(list_id=network.id, supporter_id=s.id) for s in p.values()])
    db.session.flush()
    return network, p


def test_resend_to_non_openers_excludes_who_opened():
    network, p = _network("a", "b", "c")
    first = sent("First send")
    d = {n: make_delivery(first, s) for n, s in p.items()}
    event(d["a"], EventKind.OPEN)
    event(d["b"], EventKind.OPEN, machine=True)
    opened = _segment(
        "Opened the first send", {"type": "opened_recent_mailings", "last_mailings": 1}
    )
    resend = make_mailing(
        name="Resend", audience={"include_lists": [network.id], "exclude_segments": [opened.id]}
    )
    assert _snapshot(resend) == {"b", "c"}


def test_resend_to_non_openers_by_including_the_segment():
    network, p = _network("a", "b", "c")
    make_supporter("outsider@example.org")
    first = sent("First send")
    d = {n: make_delivery(first, s) for n, s in p.items() if n != "c"}
    event(d["a"], EventKind.CLICK, position=1)
    non_openers = _segment("Non-openers", {"type": "received_not_opened", "mailing_id": first.id})
    resend = make_mailing(
        name="Resend", audience={"include_lists": [network.id], "segments": [non_openers.id]}
    )
    assert _snapshot(resend) == {"a", "b", "c"}  # the list, plus the segment (an OR)
    only = make_mailing(name="Only them", audience={"segments": [non_openers.id]})
    assert _snapshot(only) == {"b"}


def test_api_mailing_audience_checks_excluded_segment_ids(client, api_token):
    headers = api_token("admin")
    network, _ = _network("a")
    body = {
        "name": "Resend",
        "subject": "Hello",
        "layout": "demo_28_children",
        "audience": {"include_lists": [network.id], "exclude_segments": [987654]},
    }
    response = client.post("/api/v1/mailings", json=body, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    details = response.get_json()["error"]["details"]
    assert details["audience"] == {"exclude_segments": ["No segment with id 987654."]}


def test_a_segment_an_unfinished_mailing_excludes_cannot_be_deleted(client, api_token):
    headers = api_token("admin")
    network, _ = _network("a")
    segment = _segment("Opened", {"type": "opened_recent_mailings", "last_mailings": 1})
    mailing = make_mailing(
        network, audience={"include_lists": [network.id], "exclude_segments": [segment.id]}
    )
    response = client.delete(f"/api/v1/segments/{segment.id}", headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"] == {"mailing_ids": [mailing.id]}


# --- the staff pages ---------------------------------------------------------------------------


@pytest.fixture
def campaigner(staff_client):  # noqa: F811
    return staff_client(Role.CAMPAIGNER)


def segment_form(name="Behaviour", **fields) -> dict:
    return {
        "name": name,
        "statuses": ["subscribed"],
        "match": "all",
        "conditions-0-field": "",
        "conditions-0-op": "eq",
        "conditions-0-value": "",
        "behaviour-0-type": "",
        "behaviour-0-campaign_id": "",
        "behaviour-0-mailing_id": "",
        "behaviour-0-last_mailings": "5",
        "behaviour-0-months": "12",
        **fields,
    }


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_editor_offers_behaviour_with_campaign_and_mailing_choices(campaigner):
    make_campaign(title="Reunite the Lopez family")
    sent("Free the journalists")
    page = text_of(campaigner.get("/staff/supporters/segments/new"))
    assert "Did not act on a campaign" in page and "Mailed but not engaged" in page
    assert "Reunite the Lopez family" in page and "Free the journalists" in page
    assert '<label for="behaviour-0-campaign_id">Campaign</label>' in page


def test_editor_counts_and_saves_a_behaviour_segment(campaigner):
    p = people("a", "b")
    campaign = make_campaign(title="Reunite the Lopez family")
    act(campaign, p["a"])
    chosen = {"behaviour-0-type": "acted_on_campaign", "behaviour-0-campaign_id": str(campaign.id)}
    counted = campaigner.submit("/staff/supporters/segments/count", segment_form(**chosen))
    assert "<strong>1</strong> supporter matches" in text_of(counted)
    everyone_else = {**chosen, "behaviour-0-type": "not_acted_on_campaign"}
    counted = campaigner.submit("/staff/supporters/segments/count", segment_form(**everyone_else))
    assert "<strong>1</strong> supporter matches" in text_of(counted)

    saved = campaigner.submit("/staff/supporters/segments/new", segment_form("Acted", **chosen))
    assert saved.status_code == 302, text_of(saved)[:3000]
    segment = db.session.scalar(select(Segment).where(Segment.name == "Acted"))
    assert segment.definition["behaviour"] == [
        {"type": "acted_on_campaign", "campaign_id": campaign.id}
    ]
    page = text_of(campaigner.get(f"/staff/supporters/segments/{segment.id}"))
    assert f'<option selected value="{campaign.id}">Reunite the Lopez family' in page
    assert "<strong>1</strong> supporter matches right now" in page


def test_editor_puts_behaviour_errors_next_to_their_field(campaigner):
    forged = segment_form(
        **{"behaviour-0-type": "acted_on_campaign", "behaviour-0-campaign_id": "987654"}
    )
    page = campaigner.submit("/staff/supporters/segments/new", forged)
    assert page.status_code == 422
    html = text_of(page)
    assert '<p class="error" id="behaviour-0-campaign_id-error">No campaign with id 987654.' in html
    months = segment_form(**{"behaviour-0-type": "not_engaged", "behaviour-0-months": "lots"})
    html = text_of(campaigner.submit("/staff/supporters/segments/new", months))
    assert 'id="behaviour-0-months-error">Not a valid integer.' in html
    hostile = segment_form(**{"behaviour-0-type": "<script>alert(1)</script>"})
    response = campaigner.submit("/staff/supporters/segments/count", hostile)
    assert response.status_code == 200 and "<script>alert" not in text_of(response)
    assert "Unknown behaviour" in text_of(response)
    assert db.session.scalars(select(Segment)).all() == []


def test_mailing_audience_picker_excludes_a_segment(campaigner):
    network, p = _network("a", "b", "c")
    campaign = make_campaign()
    act(campaign, p["a"])
    acted = _segment("Acted already", {"type": "acted_on_campaign", "campaign_id": campaign.id})
    editor = text_of(campaigner.get("/staff/mailings/new"))
    assert "Except supporters in these saved segments" in editor
    audience = {"include_lists": [str(network.id)], "exclude_segments": [str(acted.id)]}
    counted = campaigner.submit("/staff/mailings/audience-count", audience)
    assert "<strong>2</strong> subscribed" in text_of(counted)
