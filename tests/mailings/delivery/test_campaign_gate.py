"""A scheduled mailing whose campaign stops being open never goes out: it pauses, saying why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.campaigns.models import CampaignStatus
from app.db import utcnow
from app.extensions import db
from app.mailings.delivery import campaign_gate
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.delivery.ticks import sweep
from app.mailings.models import MailingStatus
from tests.factories import make_campaign, make_list, make_mailing, make_supporters


def _scheduled(settings, campaign, *, in_seconds=3600):
    audience = make_list()
    make_supporters(3, mailing_list=audience)
    mailing = make_mailing(audience, campaign_id=campaign.id)
    request_send(mailing, settings, at=utcnow() + timedelta(seconds=in_seconds))
    db.session.commit()
    assert mailing.status == MailingStatus.SCHEDULED
    return mailing


def _make_due(mailing):
    mailing.scheduled_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def test_the_start_job_pauses_a_mailing_whose_campaign_closed(settings, redis_conn, smtp_sink):
    campaign = make_campaign()
    mailing = _scheduled(settings, campaign)
    campaign.status = CampaignStatus.CLOSED  # e.g. through the staff app, behind our back
    _make_due(mailing)

    assert not start_mailing(mailing.id, settings)
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED
    assert mailing.started_at is None and mailing.total_recipients == 0
    assert mailing.status_reason == (
        f'Not started: Campaign {campaign.id} "Reunite a family seeking safety" is closed: '
        f'reopen it (PATCH /api/v1/campaigns/{campaign.id} {{"status": "open"}}) or link the '
        "mailing to an open campaign. Then resume the mailing."
    )
    assert send_batch(mailing.id, 0, settings).sent == 0
    assert smtp_sink.messages == []
    assert not start_mailing(mailing.id, settings)  # run twice: still nothing


def test_the_sweep_pauses_it_when_the_deadline_passes_before_it_is_due(settings, redis_conn):
    campaign = make_campaign()
    mailing = _scheduled(settings, campaign)
    assert sweep(settings)["held"] == 0
    campaign.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()

    outcome = sweep(settings)
    assert outcome["held"] == 1 and outcome["started"] == 0
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED
    assert "passed its deadline" in mailing.status_reason


def test_the_sweep_holds_a_due_mailing_whose_campaign_went_back_to_draft(settings, redis_conn):
    campaign = make_campaign()
    mailing = _scheduled(settings, campaign)
    campaign.status = CampaignStatus.DRAFT
    _make_due(mailing)

    outcome = sweep(settings)
    assert outcome["held"] == 1 and outcome["started"] == 0
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED and "is a draft" in mailing.status_reason


def test_a_mailing_whose_campaign_stays_open_starts(settings, redis_conn):
    campaign = make_campaign()
    mailing = _scheduled(settings, campaign)
    _make_due(mailing)
    assert start_mailing(mailing.id, settings)
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENDING and mailing.total_recipients == 3


def test_an_unwired_campaign_gate_refuses_rather_than_sends(settings, redis_conn, monkeypatch):
    """Mailings asks the campaigns domain through app/routes.py; unwired, it must not guess."""
    campaign = make_campaign()
    mailing = _scheduled(settings, campaign)
    _make_due(mailing)
    monkeypatch.setattr(campaign_gate, "_campaign_gate", None)

    with pytest.raises(RuntimeError, match="whether a campaign is open"):
        start_mailing(mailing.id, settings)
    db.session.rollback()
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SCHEDULED


def test_create_app_wires_the_campaign_gate(app):
    with app.app_context():
        assert campaign_gate.linked_campaign(None) is None
        assert campaign_gate._campaign_gate is not None
