"""mailing_stats: distinct recipients, people and machines apart, surviving erasure."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.links.tokens import Purpose
from app.mailings.models import DeliveryStatus
from app.privacy import erase_supporter
from app.tracking.models import TrackingEvent
from app.tracking.stats import mailing_stats
from tests.factories import make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import drain

BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
}
MPP = {"User-Agent": "Mozilla/5.0"}


def setup_mailing(tokens, count=3):
    mailing = make_sent_mailing()
    people = []
    for n in range(count):
        supporter = make_supporter(f"p{n}@example.org")
        make_delivery(mailing, supporter, sent_ago=timedelta(hours=2))
        people.append(supporter.id)
    mailing_id = mailing.id
    db.session.commit()

    def path(purpose, supporter_id, suffix=""):
        prefix = {Purpose.OPEN: "o", Purpose.CLICK: "c", Purpose.UNSUBSCRIBE: "u"}[purpose]
        return f"/{prefix}/{tokens.dumps(purpose, mailing_id, supporter_id)}{suffix}"

    return mailing_id, people, path


def test_counts_distinct_recipients_humans_and_machines(client, tokens):
    mailing_id, (a, b, c), path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=MPP)
    client.get(path(Purpose.OPEN, b, ".gif"), headers=MPP)
    client.get(path(Purpose.CLICK, a, "/1"), headers=BROWSER)
    client.get(path(Purpose.CLICK, a, "/2"), headers=BROWSER)
    client.get(path(Purpose.CLICK, c, "/1"), headers={"User-Agent": "python-requests/2.32.3"})
    client.post(path(Purpose.UNSUBSCRIBE, c), data={"List-Unsubscribe": "One-Click"})
    drain()
    stats = mailing_stats(mailing_id)
    assert stats["opens"] == {"all": 3, "human": 1}  # c's open is implied by its click
    assert stats["clicks"] == {"all": 2, "human": 1}
    assert stats["unsubscribes"] == {"all": 1, "human": 1}
    assert stats["actions"] == {"all": 0, "human": 0}
    assert stats["deliveries"]["sent"] == 3 and stats["deliveries"]["total"] == 3
    assert stats["deliveries"][DeliveryStatus.QUEUED.value] == 0


def test_counts_survive_erasing_the_supporter(client, tokens):
    mailing_id, (a, b, _), path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=MPP)
    client.get(path(Purpose.CLICK, a, "/1"), headers=BROWSER)
    client.get(path(Purpose.CLICK, a, "/2"), headers=BROWSER)
    client.get(path(Purpose.OPEN, b, ".gif"), headers=BROWSER)
    drain()
    before = mailing_stats(mailing_id)

    from app.supporters.models import Supporter

    db.session.delete(db.session.get(Supporter, a))  # plain delete, as the brief asks
    erase_supporter(db.session.get(Supporter, b))  # and the GDPR erasure service
    db.session.commit()
    rows = db.session.scalars(select(TrackingEvent)).all()
    assert len(rows) == 5 and all(r.supporter_id is None for r in rows)
    # a had two open rows and two click rows; still one recipient each, not four.
    assert mailing_stats(mailing_id) == before
    assert before["opens"] == {"all": 2, "human": 2}
    assert before["clicks"] == {"all": 1, "human": 1}


def test_unknown_mailing_has_zero_counts():
    stats = mailing_stats(987654321)
    assert stats["opens"] == {"all": 0, "human": 0}
    assert stats["deliveries"]["total"] == 0


def test_stats_endpoint_reports_counts_to_analysts(client, tokens, api_token):
    mailing_id, (a, b, _), path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    client.get(path(Purpose.OPEN, b, ".gif"), headers=MPP)
    drain()
    response = client.get(f"/api/v1/mailings/{mailing_id}/stats", headers=api_token("analyst"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["opens"] == {"all": 2, "human": 1}
    assert body["deliveries"]["sent"] == 3
    # Rates over the 3 delivered: 2 of 3 opened, 1 of them a person.
    assert body["rates"]["open_rate"] == {"all": 2 / 3, "human": 1 / 3}
    assert body["rates"]["click_rate"] == {"all": 0.0, "human": 0.0}
    assert body["rates"]["bounce_rate"] == 0.0
    assert client.get(f"/api/v1/mailings/{mailing_id}/stats").status_code == 401
    missing = client.get("/api/v1/mailings/999999/stats", headers=api_token("analyst"))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
