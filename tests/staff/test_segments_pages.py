"""The staff Segments pages: list, build with a live count, save, edit, delete."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.auth.models import Role
from app.extensions import db
from app.mailings.models import MailingStatus
from app.supporters.models import Segment, SubscriptionStatus
from app.supporters.services import change_status
from tests.factories import make_list, make_mailing, make_supporter, make_supporters

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def analyst(staff_client):
    return staff_client(Role.ANALYST)


@pytest.fixture
def campaigner(staff_client):
    return staff_client(Role.CAMPAIGNER)


@pytest.fixture
def network():
    network = make_list("Network")
    make_supporters(4, mailing_list=network)
    make_supporters(2, prefix="other")
    return network


def text_of(response) -> str:
    return response.get_data(as_text=True)


def segment_form(name="Network in GB", **fields) -> dict:
    return {
        "name": name,
        "statuses": ["subscribed"],
        "match": "all",
        "conditions-0-field": "",
        "conditions-0-op": "eq",
        "conditions-0-value": "",
        **fields,
    }


def saved(name: str) -> Segment | None:
    return db.session.scalar(select(Segment).where(Segment.name == name))


def test_no_segments_yet(analyst):
    page = text_of(analyst.get("/staff/supporters/segments"))
    assert "No saved segments yet" in page
    assert "New segment" not in page  # analysts only read


def test_campaigner_saves_a_segment_in_the_engines_format(campaigner, network):
    response = campaigner.submit(
        "/staff/supporters/segments/new",
        segment_form(
            include_lists=[str(network.id)],
            **{
                "conditions-0-field": "last_name",
                "conditions-0-op": "in",
                "conditions-0-value": "Tester, Smith",
                "conditions-1-field": "created_at",
                "conditions-1-op": "after",
                "conditions-1-value": "2020-01-01",
            },
        ),
    )
    assert response.status_code == 302, text_of(response)[:3000]
    segment = saved("Network in GB")
    assert segment.definition["include_lists"] == [network.id]
    assert segment.definition["conditions"] == [
        {"field": "last_name", "op": "in", "value": ["Tester", "Smith"]},
        {"field": "created_at", "op": "after", "value": "2020-01-01"},
    ]
    page = text_of(campaigner.get(f"/staff/supporters/segments/{segment.id}"))
    assert "<strong>4</strong> supporters match right now" in page
    assert 'value="Tester, Smith"' in page


def test_live_count_returns_a_small_fragment(analyst, network):
    response = analyst.submit(
        "/staff/supporters/segments/count", segment_form(include_lists=[str(network.id)])
    )
    assert response.status_code == 200
    fragment = text_of(response)
    assert "<strong>4</strong> supporters match" in fragment
    assert "<html" not in fragment
    everyone = text_of(analyst.submit("/staff/supporters/segments/count", segment_form()))
    assert "<strong>6</strong>" in everyone


def test_live_count_explains_an_invalid_definition(analyst):
    response = analyst.submit(
        "/staff/supporters/segments/count",
        segment_form(
            **{
                "conditions-0-field": "created_at",
                "conditions-0-op": "after",
                "conditions-0-value": "last tuesday",
            }
        ),
    )
    assert response.status_code == 200
    assert "Not counted" in text_of(response) and "ISO 8601" in text_of(response)


def test_count_without_javascript_rerenders_the_form_with_the_count(campaigner, network):
    response = campaigner.submit(
        "/staff/supporters/segments/new",
        segment_form(include_lists=[str(network.id)], intent="count"),
    )
    assert response.status_code == 200
    assert "<strong>4</strong> supporters match" in text_of(response)
    assert saved("Network in GB") is None  # counting does not save


def test_definition_errors_are_shown_next_to_their_fields(campaigner):
    response = campaigner.submit(
        "/staff/supporters/segments/new",
        {
            **segment_form(name=""),
            "statuses": [],
            "conditions-0-field": "postcode",
            "conditions-0-op": "before",
            "conditions-0-value": "2020-01-01",
            "conditions-1-field": "custom.<bad>",
            "conditions-1-op": "eq",
            "conditions-1-value": "x",
        },
    )
    assert response.status_code == 422
    page = text_of(response)
    assert 'id="name-error"' in page
    assert 'id="statuses-error"' in page
    assert re.search(r'id="conditions-0-op-error">[^<]*cannot be used on postcode', page)
    assert re.search(r'id="conditions-1-field-error">Custom field names', page)
    assert "custom.&lt;bad&gt;" in page and "custom.<bad>" not in page
    assert db.session.scalar(select(Segment)) is None


def test_forged_ids_and_ops_are_refused_not_500(campaigner):
    response = campaigner.submit(
        "/staff/supporters/segments/new",
        segment_form(
            include_lists=["999999", "abc"],
            **{"conditions-0-field": "email", "conditions-0-op": "drop table"},
        ),
    )
    assert response.status_code == 422
    assert 'id="include_lists-error"' in text_of(response)
    assert 'id="conditions-0-op-error"' in text_of(response)


def test_analyst_views_and_counts_but_cannot_save(analyst, network):
    segment = Segment(name="All", definition={"statuses": ["subscribed"]})
    db.session.add(segment)
    db.session.flush()
    page = text_of(analyst.get(f"/staff/supporters/segments/{segment.id}"))
    assert "<strong>6</strong>" in page
    assert "Save segment" not in page
    assert analyst.get("/staff/supporters/segments/new").status_code == 403
    response = analyst.submit(f"/staff/supporters/segments/{segment.id}", segment_form(name="Mine"))
    assert response.status_code == 403
    assert saved("All") is not None


@pytest.mark.parametrize("token", [None, "forged"])
def test_posts_without_a_valid_csrf_token_are_refused(campaigner, token):
    data = segment_form() | ({"csrf_token": token} if token else {})
    assert campaigner.post("/staff/supporters/segments/count", data=data).status_code == 400
    assert campaigner.post("/staff/supporters/segments/new", data=data).status_code == 400
    assert db.session.scalar(select(Segment)) is None


def test_edit_keeps_statuses_and_refuses_a_taken_name(campaigner):
    make_supporter("gone@example.org")
    change_status(make_supporter("left@example.org"), SubscriptionStatus.UNSUBSCRIBED, channel="t")
    first = Segment(name="First", definition={"statuses": ["unsubscribed"]})
    second = Segment(name="Second", definition={})
    db.session.add_all([first, second])
    # Committed (to the test's savepoint): the refused rename rolls its own request back.
    db.session.commit()

    page = text_of(campaigner.get(f"/staff/supporters/segments/{first.id}"))
    assert re.search(r'value="unsubscribed" checked', page)
    assert "<strong>1</strong> supporter matches" in page

    taken = campaigner.submit(
        f"/staff/supporters/segments/{first.id}",
        segment_form(name="Second", statuses=["unsubscribed"]),
    )
    assert taken.status_code == 422 and "already exists" in text_of(taken)
    renamed = campaigner.submit(
        f"/staff/supporters/segments/{first.id}",
        segment_form(name="Leavers", statuses=["unsubscribed", "bounced"]),
    )
    assert renamed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Segment, first.id).definition["statuses"] == ["bounced", "unsubscribed"]


def test_hostile_segment_name_is_escaped(campaigner):
    response = campaigner.submit("/staff/supporters/segments/new", segment_form(name=HOSTILE))
    assert response.status_code == 302
    page = text_of(campaigner.get("/staff/supporters/segments"))
    assert HOSTILE not in page and "&lt;img" in page


def test_delete_asks_first_and_refuses_a_segment_in_use(campaigner):
    free = Segment(name="Free", definition={})
    used = Segment(name="Used", definition={})
    db.session.add_all([free, used])
    db.session.flush()
    make_mailing(audience={"segments": [used.id]}, status=MailingStatus.DRAFT)

    assert "Delete segment" in text_of(
        campaigner.get(f"/staff/supporters/segments/{free.id}/delete")
    )
    assert campaigner.submit(f"/staff/supporters/segments/{free.id}/delete").status_code == 302
    refused = campaigner.submit(
        f"/staff/supporters/segments/{used.id}/delete", follow_redirects=True
    )
    assert "Mailings still use this segment" in text_of(refused)
    db.session.expire_all()
    assert db.session.get(Segment, free.id) is None
    assert db.session.get(Segment, used.id) is not None


@pytest.mark.parametrize(
    "path", ["/staff/supporters/segments/424242", "/staff/supporters/segments/424242/delete"]
)
def test_unknown_segment_is_a_404_page(campaigner, path):
    assert campaigner.get(path).status_code == 404
