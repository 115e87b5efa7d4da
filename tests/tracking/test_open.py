"""The open pixel: always the GIF, an event only for a good token."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.links.tokens import Purpose
from app.tracking.models import EventKind, TrackingEvent
from app.tracking.views import PIXEL
from tests.tracking.conftest import drain

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
APPLE_MPP = "Mozilla/5.0"


def events(kind=None):
    drain()
    query = select(TrackingEvent).order_by(TrackingEvent.id)
    if kind:
        query = query.where(TrackingEvent.kind == kind)
    return db.session.scalars(query).all()


def test_pixel_is_a_43_byte_gif_that_is_never_cached(client, recipient):
    response = client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": THUNDERBIRD})
    assert response.status_code == 200
    assert response.data == PIXEL and len(PIXEL) == 43 and PIXEL.startswith(b"GIF89a")
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Cache-Control"] == (
        "no-store, no-cache, must-revalidate, private, max-age=0"
    )
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Expires"] == "0"


def test_open_is_recorded_once_as_human(client, recipient):
    for _ in range(3):
        client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": THUNDERBIRD})
    (event,) = events()
    assert event.kind == EventKind.OPEN
    assert (event.mailing_id, event.supporter_id) == (recipient.mailing_id, recipient.supporter_id)
    assert event.delivery_id == recipient.delivery_id
    assert event.machine is False and event.machine_reason is None
    assert event.user_agent_class == "browser"
    assert event.link_id is None


def test_apple_privacy_proxy_open_is_a_machine_beside_the_human_one(client, recipient):
    client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": APPLE_MPP})
    client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": THUNDERBIRD})
    client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": APPLE_MPP})
    rows = [(e.machine, e.machine_reason, e.user_agent_class) for e in events()]
    assert rows == [(True, "apple-mpp", "apple-mpp"), (False, None, "browser")]


def test_head_request_is_a_machine(client, recipient):
    response = client.head(recipient.path(Purpose.OPEN), headers={"User-Agent": THUNDERBIRD})
    assert response.status_code == 200
    (event,) = events()
    assert event.machine and event.machine_reason == "head-request"


def test_bad_tokens_still_get_the_gif_and_record_nothing(client, recipient):
    good = recipient.token(Purpose.OPEN)
    for path in (
        f"/o/{good[:-10]}{'A' if good[-10] != 'A' else 'B'}{good[-9:]}.gif",  # tampered
        f"/o/{good[:12]}.gif",  # truncated
        f"/o/{recipient.token(Purpose.CLICK)}.gif",  # another purpose
        "/o/not-a-token.gif",
    ):
        response = client.get(path, headers={"User-Agent": THUNDERBIRD})
        assert response.status_code == 200 and response.data == PIXEL, path
    assert events() == []


def test_token_of_erased_supporter_records_nothing(client, recipient):
    db.session.delete(recipient.supporter)
    db.session.commit()
    response = client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": THUNDERBIRD})
    assert response.status_code == 200 and response.data == PIXEL
    assert drain() == 1  # queued, then dropped at drain time: no delivery names them
    assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 0
