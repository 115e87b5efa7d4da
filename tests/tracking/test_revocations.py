"""Which links a revocation voids, and how soon: the service on its own."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.links.tokens import LinkClaims, Purpose, TokenService
from app.supporters.models import Supporter
from app.tracking import revocations
from app.tracking.problems import LinkProblem
from app.tracking.revocations import LinkRevocation, check_not_revoked, is_revoked
from tests.factories import make_mailing, make_supporter


def at(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(int(time.time() - seconds_ago), UTC)


@pytest.fixture
def ids():
    mailing, other_mailing = make_mailing(), make_mailing(name="Another alert")
    supporter, other_supporter = make_supporter(), make_supporter("omar@example.org")
    return mailing.id, other_mailing.id, supporter.id, other_supporter.id


def test_a_mailing_revocation_voids_its_links_signed_before_it_only(ids):
    mailing_id, other_mailing_id, supporter_id, _ = ids
    revocations.revoke_mailing_links(mailing_id, actor="test", reason="forwarded to a list")
    assert is_revoked(LinkClaims(mailing_id, supporter_id), at(60))
    assert not is_revoked(LinkClaims(other_mailing_id, supporter_id), at(60))
    assert not is_revoked(LinkClaims(mailing_id, supporter_id), at(-2))


def test_a_supporter_revocation_voids_their_links_in_every_mailing(ids):
    mailing_id, other_mailing_id, supporter_id, other_supporter_id = ids
    revocations.revoke_supporter_links(supporter_id, actor="test")
    assert is_revoked(LinkClaims(mailing_id, supporter_id), at(60))
    assert is_revoked(LinkClaims(other_mailing_id, supporter_id), at(60))
    assert not is_revoked(LinkClaims(mailing_id, other_supporter_id), at(60))


def test_a_token_signed_in_the_second_of_the_revocation_counts_as_revoked(ids, settings):
    mailing_id, _, supporter_id, _ = ids
    token = TokenService(settings.secret_keys).dumps(Purpose.VIEW, mailing_id, supporter_id)
    revocation = revocations.revoke_mailing_links(mailing_id, actor="test")
    claims, signed_at = TokenService(settings.secret_keys).loads_with_timestamp(Purpose.VIEW, token)
    assert signed_at <= revocation.revoked_at
    assert is_revoked(claims, signed_at)


def test_pages_answer_410_pixels_and_clicks_record_nothing_unsubscribe_always_works(ids):
    mailing_id, _, supporter_id, _ = ids
    revocations.revoke_supporter_links(supporter_id, actor="test")
    claims, old = LinkClaims(mailing_id, supporter_id), at(60)
    for purpose in (Purpose.ACTION, Purpose.PREFERENCES, Purpose.VIEW):
        with pytest.raises(LinkProblem) as problem:
            check_not_revoked(purpose, claims, old)
        assert problem.value.status == 410
        assert problem.value.title == "This link has been withdrawn"
    assert check_not_revoked(Purpose.OPEN, claims, old) is False
    assert check_not_revoked(Purpose.CLICK, claims, old) is False
    assert check_not_revoked(Purpose.UNSUBSCRIBE, claims, old) is True
    for purpose in Purpose:
        assert check_not_revoked(purpose, claims, at(-2)) is True


def test_other_processes_see_a_revocation_once_their_cache_expires(ids, monkeypatch):
    mailing_id, _, supporter_id, _ = ids
    claims = LinkClaims(mailing_id, supporter_id)
    assert not is_revoked(claims, at(60))  # loads an empty snapshot
    # Another web process revokes: a row appears, this process's cache does not know yet.
    db.session.add(LinkRevocation(mailing_id=mailing_id, revoked_by="elsewhere"))
    db.session.flush()
    assert not is_revoked(claims, at(60))
    monkeypatch.setattr(revocations, "CACHE_SECONDS", 0.0)
    assert is_revoked(claims, at(60))


def test_the_latest_revocation_counts(ids):
    mailing_id, _, supporter_id, _ = ids
    first = revocations.revoke_supporter_links(supporter_id, actor="test")
    first.revoked_at = datetime.now(UTC) - timedelta(days=2)
    revocations.revoke_supporter_links(supporter_id, actor="test")
    db.session.flush()
    revocations.clear_cache()
    assert is_revoked(LinkClaims(mailing_id, supporter_id), at(3600))


def test_unknown_targets_are_refused_and_nothing_is_stored():
    with pytest.raises(revocations.UnknownTarget, match="No mailing with id 987654"):
        revocations.revoke_mailing_links(987654, actor="test")
    with pytest.raises(revocations.UnknownTarget, match="No supporter with id 987654"):
        revocations.revoke_supporter_links(987654, actor="test")
    assert db.session.scalars(select(LinkRevocation)).all() == []


def test_a_revocation_names_exactly_one_target(ids):
    mailing_id, _, supporter_id, _ = ids
    for row in (
        LinkRevocation(revoked_by="test"),
        LinkRevocation(mailing_id=mailing_id, supporter_id=supporter_id, revoked_by="test"),
    ):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.add(row)
            db.session.flush()


def test_revocations_go_with_their_supporter(ids):
    _, _, supporter_id, _ = ids
    revocations.revoke_supporter_links(supporter_id, actor="test", reason="  ")
    [row] = db.session.scalars(select(LinkRevocation)).all()
    assert row.reason is None and row.revoked_by == "test"
    db.session.delete(db.session.get(Supporter, supporter_id))
    db.session.flush()
    db.session.expire_all()
    assert db.session.scalars(select(LinkRevocation)).all() == []
