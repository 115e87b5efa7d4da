"""View in browser: the supporter's own mail, with no open counted."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.links.tokens import Purpose
from app.tracking.models import TrackingEvent


def test_view_renders_the_mail_for_the_supporter_without_the_pixel(client, recipient, settings):
    response = client.get(recipient.path(Purpose.VIEW))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Dear Zoë," in page
    assert f"{settings.base_url}/c/" in page  # links stay tracked: clicks from here are real
    assert f"{settings.base_url}/u/" in page
    assert "/o/" not in page and "data:image/gif;base64," in page
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 0


def test_view_with_bad_token_is_400_and_erased_is_410(client, recipient):
    assert client.get(f"/v/{recipient.token(Purpose.OPEN)}").status_code == 400
    db.session.delete(recipient.supporter)
    db.session.commit()
    assert client.get(recipient.path(Purpose.VIEW)).status_code == 410
