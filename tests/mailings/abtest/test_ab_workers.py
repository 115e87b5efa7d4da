"""An A/B test decided by the clock of a real `clarion worker`, and the rest sent by its jobs."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.abtest.design import configure_ab_test
from app.mailings.delivery.launch import request_send
from app.mailings.models import AbTest, Delivery, DeliveryStatus, Mailing, MailingStatus
from app.tracking.machine import Verdict
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_list, make_mailing, make_supporters
from tests.worker_processes import WorkerProcess, wait_until, worker_env

PERSON = Verdict(machine=False, reason="", ua_class="browser")
SCANNER = Verdict(machine=True, reason="scanner:proofpoint", ua_class="scanner:proofpoint")


@pytest.mark.integration
def test_the_workers_clock_picks_the_winner_and_every_recipient_gets_one_mail(
    settings, test_database_url, smtp_sink, redis_conn, tmp_path
):
    audience = make_list()
    make_supporters(250, mailing_list=audience)
    mailing = make_mailing(audience)
    configure_ab_test(
        mailing,
        {
            "test_fraction": 0.2,
            "wait_minutes": 60,
            "metric": "clicks",
            "variants": [{}, {"subject": "Write to the Minister before Friday"}],
        },
        actor="test",
    )
    db.session.commit()
    request_send(mailing, settings)
    db.session.commit()
    worker = WorkerProcess(
        worker_env(settings, test_database_url, smtp_sink.url, SEND_BATCH_SIZE=20),
        tmp_path / "worker.log",
    )
    try:

        def test_portion_sent():
            db.session.rollback()
            return (
                db.session.scalar(
                    select(func.count()).where(
                        Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.SENT
                    )
                )
                == 50
            )

        wait_until(
            test_portion_sent, 60, interval=0.5, message="test portion sent", workers=[worker]
        )
        assert len(smtp_sink.messages) == 50
        variant_of = dict(
            db.session.execute(
                select(Delivery.supporter_id, Delivery.variant_id).where(
                    Delivery.mailing_id == mailing.id, Delivery.variant_id.is_not(None)
                )
            ).all()
        )
        a, b = (v.id for v in db.session.get(Mailing, mailing.id).variants)
        # A's clicks are all a link scanner's; in B, 9 people click.
        for supporter_id in sorted(s for s, v in variant_of.items() if v == a):
            record_event(EventKind.CLICK, LinkClaims(mailing.id, supporter_id), SCANNER)
        for supporter_id in sorted(s for s, v in variant_of.items() if v == b)[:9]:
            record_event(EventKind.CLICK, LinkClaims(mailing.id, supporter_id), PERSON)
        db.session.commit()
        assert (
            db.session.scalar(
                select(func.count()).where(
                    Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.HELD
                )
            )
            == 200
        )
        # The hour of waiting, passed: the clock decides on its next tick.
        db.session.execute(
            update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
        )
        db.session.commit()

        def mailing_sent():
            db.session.rollback()
            return db.session.get(Mailing, mailing.id).status == MailingStatus.SENT

        wait_until(mailing_sent, 90, interval=0.5, message="the rest sent", workers=[worker])
    finally:
        worker.stop()
    db.session.rollback()
    test = db.session.get(AbTest, mailing.id)
    assert test.winner.label == "B" and test.decided_by == "clock"
    assert test.confidence > 0.99
    received = Counter(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert len(received) == 250 and max(received.values()) == 1
    subjects = Counter(m.message["Subject"] for m in smtp_sink.messages)
    assert subjects["Write to the Minister before Friday"] == 25 + 200
