"""Abuse control on the public forms (issue #9.3).

The probe that found it: one client made 300 actions in 3.9 s, so 300 new subscribed supporters
and 300 letters to the real target, whose hourly letter cap then held back real supporters'.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app import create_app
from app.campaigns import confirmations
from app.campaigns.guards import client_hash, client_network
from app.campaigns.models import Action, Letter, PendingAction
from app.extensions import db, init_limiter
from app.supporters.models import Supporter
from tests.campaigns.conftest import aged, confirm_path, form_of, pending_for, public_form
from tests.factories import make_campaign, make_recipient, make_supporter


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def limits(app, settings, monkeypatch):
    """Return a function that sets the app's public-form limits for this test."""

    def set_limits(**changes):
        monkeypatch.setitem(app.config, "CLARION", replace(settings, **changes))

    return set_limits


def post_from(client, path, form, address="198.51.100.7"):
    return client.post(path, data=form, environ_base={"REMOTE_ADDR": address})


def test_thirty_posts_from_one_client_are_refused_after_the_limit(client, settings, campaign):
    path = f"/campaigns/{campaign.slug}"
    answers = [
        post_from(
            client,
            path,
            public_form(
                client, settings, campaign.slug, name="Bot", email=f"b{n}@example.org", consent="1"
            ),
        )
        for n in range(30)
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * 10 + [429] * 20  # PUBLIC_FORM_RATE_PER_IP: 10/minute
    refused = answers[-1]
    assert refused.mimetype == "text/html" and "Please wait a moment" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # The over-limit requests stored nothing; the others only hold unconfirmed actions.
    assert count(PendingAction) == 10
    assert count(Supporter) == count(Action) == count(Letter) == 0
    # The budget is the client's across every public form, the confirmation link included.
    [pending] = pending_for("b0@example.org")
    assert post_from(client, confirm_path(settings, pending), {}).status_code == 429
    # Another client is not held up.
    assert post_from(client, path, {}, address="203.0.113.9").status_code == 400


def test_per_campaign_limit_holds_a_distributed_flood_but_not_signed_links(
    client, settings, limits
):
    limits(public_form_rate_per_campaign="5/hour")
    flooded = make_campaign(slug="flooded")
    make_campaign(slug="other")
    answers = [
        post_from(
            client,
            "/campaigns/flooded",
            public_form(client, settings, "flooded", name="B", email=f"b{n}@x.org", consent="1"),
            address=f"10.0.{n}.1",
        ).status_code
        for n in range(8)
    ]
    assert answers == [200] * 5 + [429] * 3
    form = public_form(client, settings, "other", name="B", email="b@x.org", consent="1")
    assert post_from(client, "/campaigns/other", form).status_code == 200
    # "Not Jane?" on a mail of the flooded campaign shares its budget ...
    recipient = make_recipient(settings, flooded, make_supporter("jane@example.org"))
    not_me = recipient.path + "?not_me=1"
    form = aged(form_of(client.get(not_me).text), settings, not_me)
    assert post_from(client, not_me, form, address="10.9.9.9").status_code == 429
    # ... but Jane acting through her own signed link is never held by a flood.
    own = form_of(client.get(recipient.path).text)
    assert post_from(client, recipient.path, own, address="10.9.9.9").status_code == 200
    assert count(Action) == 1


def test_fifty_public_submissions_create_no_letters(client, settings, campaign, limits):
    limits(public_form_rate_per_ip="1000/minute")
    for n in range(50):
        form = public_form(
            client, settings, campaign.slug, name="Bot", email=f"bot{n}@example.org", consent="1"
        )
        assert post_from(client, f"/campaigns/{campaign.slug}", form).status_code == 200
    # Unconfirmed, they never reach a target's hourly letter cap.
    assert count(Letter) == 0 and count(Action) == 0 and count(Supporter) == 0
    flagged = db.session.scalars(
        select(PendingAction).where(PendingAction.flagged_reason.is_not(None))
    ).all()
    assert len(flagged) == 50 - confirmations.BURST_PER_CLIENT
    assert {p.flagged_reason for p in flagged} == {confirmations.FLAG_CLIENT_BURST}
    # The stored hash is of the network, keyed: not the address itself.
    assert flagged[0].client_hash == client_hash(settings.secret_keys[0], "198.51.100.7")
    assert "198.51.100.7" not in flagged[0].client_hash


def test_staff_see_waiting_and_flagged_counts(client, settings, campaign, limits, api_token):
    limits(public_form_rate_per_ip="1000/minute")
    for n in range(7):
        form = public_form(
            client, settings, campaign.slug, name="B", email=f"b{n}@example.org", consent="1"
        )
        post_from(client, f"/campaigns/{campaign.slug}", form)
    url = f"/api/v1/campaigns/{campaign.id}/pending"
    assert client.get(url, headers=api_token("analyst")).status_code == 403
    summary = client.get(url, headers=api_token("campaigner")).get_json()
    assert summary["waiting"] == 7 and summary["flagged"] == 2 and summary["confirmed"] == 0
    assert summary["flagged_reasons"] == {confirmations.FLAG_CLIENT_BURST: 2}
    assert summary["last_hour"] == 7
    assert client.get("/api/v1/campaigns/999999/pending", headers=api_token()).status_code == 404


def test_a_honeypot_or_a_too_quick_post_is_refused_politely_keeping_the_text(
    client, settings, campaign
):
    path = f"/campaigns/{campaign.slug}"
    page = client.get(path).text
    assert 'tabindex="-1"' in page and 'aria-hidden="true"' in page
    assert 'name="website"' in page and 'autocomplete="off"' in page
    details = {"name": "Lee", "email": "lee@example.org", "consent": "1", "letter": "My words"}
    too_quick = client.post(path, data={**form_of(page), **details})
    assert too_quick.status_code == 422
    assert "quicker than we expected" in too_quick.text and "My words" in too_quick.text
    assert 'value="lee@example.org"' in too_quick.text
    filled = client.post(
        path, data={**aged(form_of(page), settings, path), **details, "website": "x"}
    )
    assert filled.status_code == 422 and "My words" in filled.text
    forged_stamp = {**form_of(page), **details, "started": "1.2.3"}
    assert client.post(path, data=forged_stamp).status_code == 422
    # A stamp for another page does not count either.
    other = aged(form_of(page), settings, "/campaigns/another")
    assert client.post(path, data={**other, **details}).status_code == 422
    assert count(PendingAction) == 0
    assert (
        client.post(path, data={**aged(form_of(page), settings, path), **details}).status_code
        == 200
    )


def test_the_forms_stay_open_when_the_limiter_cannot_reach_redis(app, settings, campaign):
    dead = replace(settings, redis_url="redis://127.0.0.1:1/0")
    db.session.commit()  # a savepoint release: the other app's requests remove the session
    try:
        dead_client = create_app(dead, {"TESTING": True}).test_client()
        path = f"/campaigns/{campaign.slug}"
        form = form_of(dead_client.get(path).text)
        for _ in range(12):  # past the limit: nothing is counted, nothing breaks
            answer = dead_client.post(path, data={**form, "name": "Lee", "email": "l@x.org"})
            assert answer.status_code == 422
    finally:
        init_limiter(app, settings)  # one limiter object: point it back at the test Redis


def test_client_networks_group_ipv6_by_64():
    assert client_network("2001:db8:1:2:aaaa::1") == client_network("2001:db8:1:2:bbbb::9")
    assert client_network("2001:db8:1:2::1") != client_network("2001:db8:1:3::1")
    assert client_network("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_network("198.51.100.7") == "198.51.100.7"
    assert client_network(None) == "unknown"
