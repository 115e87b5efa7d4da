"""An erased supporter's deliveries forget who they were, and a deleted mailing's go with it: by
trigger, not by foreign keys (migration 0018); and an erasure and an audience snapshot running at once wait for each other,
so no delivery is left pointing at a supporter who is gone.

The two concurrent tests use real PostgreSQL connections and commit (integration).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import delete, func, insert, select, text

from app.extensions import db
from app.mailings.delivery.launch import snapshot_audience
from app.mailings.models import Delivery, Mailing
from app.supporters.models import ListMembership, Supporter
from tests.factories import make_list, make_mailing, make_supporters


def _recipients(mailing_id: int) -> dict[int | None, int]:
    rows = db.session.execute(
        select(Delivery.supporter_id, func.count())
        .where(Delivery.mailing_id == mailing_id)
        .group_by(Delivery.supporter_id)
    )
    return dict(rows.all())


def _audience(count: int) -> tuple[Mailing, list[int]]:
    network = make_list("Network")
    ids = make_supporters(count, mailing_list=network)
    return make_mailing(network), ids


def test_deleting_supporters_unlinks_their_deliveries_and_only_theirs():
    mailing, ids = _audience(3)
    snapshot_audience(mailing, batch_size=10)
    db.session.execute(delete(Supporter).where(Supporter.id.in_(ids[:2])))
    db.session.expire_all()
    assert _recipients(mailing.id) == {None: 2, ids[2]: 1}  # the rows and counts stay


def test_deleting_a_mailing_deletes_its_deliveries_and_only_its():
    mailing, ids = _audience(2)
    others = make_list("Other")
    db.session.execute(insert(ListMembership), [{"list_id": others.id, "supporter_id": ids[0]}])
    other = make_mailing(others)
    snapshot_audience(mailing, batch_size=10)
    snapshot_audience(other, batch_size=10)
    db.session.execute(delete(Mailing).where(Mailing.id == mailing.id))
    db.session.expire_all()
    assert _recipients(mailing.id) == {}
    assert _recipients(other.id) == {ids[0]: 1}


def _wait_for_advisory_lock_waiter(timeout: float = 20.0) -> None:
    """Return once some backend waits on an advisory lock (the other side of the test)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND wait_event = 'advisory' AND datname = current_database()"
                )
            )
            if waiting:
                return
            conn.rollback()
            time.sleep(0.05)
    pytest.fail("the other transaction never waited on the snapshot/erasure lock")


def _in_thread(target) -> tuple[threading.Thread, list]:
    errors: list = []

    def run():
        try:
            target()
        except Exception as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.integration
def test_an_erasure_waits_for_a_snapshot_under_way_and_unlinks_its_rows():
    mailing, (gone, stays) = _audience(2)
    db.session.commit()
    snapshot_audience(mailing, batch_size=10)  # uncommitted: holds the lock shared
    engine = db.engine  # the thread has no app context

    def erase():
        with engine.connect() as conn:
            conn.execute(delete(Supporter).where(Supporter.id == gone))
            conn.commit()

    thread, errors = _in_thread(erase)
    _wait_for_advisory_lock_waiter()
    db.session.commit()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    db.session.expire_all()
    assert _recipients(mailing.id) == {None: 1, stays: 1}


@pytest.mark.integration
def test_a_snapshot_waits_for_an_erasure_under_way_and_leaves_the_person_out(app):
    mailing, (gone, stays) = _audience(2)
    db.session.commit()
    mailing_id = mailing.id
    erasure = db.engine.connect()
    erasure.execute(delete(Supporter).where(Supporter.id == gone))  # uncommitted, lock held

    def snapshot():
        with app.app_context():
            snapshot_audience(db.session.get(Mailing, mailing_id), batch_size=10)
            db.session.commit()

    try:
        thread, errors = _in_thread(snapshot)
        _wait_for_advisory_lock_waiter()
        erasure.commit()
    finally:
        erasure.close()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    db.session.expire_all()
    assert _recipients(mailing_id) == {stays: 1}
    assert db.session.get(Mailing, mailing_id).total_recipients == 1
