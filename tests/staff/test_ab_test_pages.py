"""The staff A/B test pages: set up a draft's test by form, preview and test-send a variant,
read the test's state and figures, and pick the winner (campaigners; analysts only read)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from app.auth.models import AuditEntry, Role
from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.abtest.decision import decide_due_tests
from app.mailings.abtest.design import configure_ab_test
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.models import AbTest, Delivery, DeliveryStatus, MailingStatus, MailingVariant
from app.tracking.machine import Verdict
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_list, make_mailing, make_supporters

PERSON = Verdict(machine=False, reason="", ua_class="browser")
B_SUBJECT = "Three children wait for their parents, {{ first_name | default('friend') }}"
B_BODY = (
    "<mj-section><mj-column><mj-text>Write to the Acting Director today: "
    '<a href="https://example.org/write-now">write now</a></mj-text></mj-column></mj-section>'
)


@pytest.fixture
def campaigner(staff_client):
    return staff_client(Role.CAMPAIGNER)


@pytest.fixture
def network():
    network = make_list()
    make_supporters(20, mailing_list=network)
    return network


def _variant_fields(index: int, **fields) -> dict:
    names = ("subject", "from_name", "preheader", "body_mjml", "body_text")
    return {f"variants-{index}-{name}": fields.get(name, "") for name in names}


def _ab_form(**fields) -> dict:
    """The A/B form as a browser sends it: B's subject changed, C to E left empty."""
    data = {
        "test_percent": "20",
        "wait": "2",
        "wait_unit": "hours",
        "metric": "opens",
        "selection": "auto",
        "min_confidence": "",
        "max_unsubscribe_percent": "",
        "max_complaint_percent": "",
        "breaker_min_sent": "100",
    }
    data |= _variant_fields(0, subject=B_SUBJECT)
    for index in (1, 2, 3):
        data |= _variant_fields(index)
    return data | fields


def _audit(mailing_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "mailing", AuditEntry.subject_id == mailing_id)
            .order_by(AuditEntry.id)
        )
    )


def _error_of(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="error" id="{re.escape(field_id)}-error">([^<]*)</p>', html)
    assert match, f"no error shown for {field_id}"
    return match.group(1)


def test_campaigner_sets_up_an_ab_test_through_the_form(campaigner, network):
    mailing = make_mailing(network)
    base = f"/staff/mailings/{mailing.id}"
    assert "Set up an A/B test" in campaigner.get(base).get_data(as_text=True)
    page = campaigner.get(f"{base}/ab-test")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Variant A: the mailing as written" in html and "Set up the A/B test" in html
    assert 'name="variants-3-subject"' in html  # B to E
    assert 'value="20"' in html  # the default share

    saved = campaigner.submit(
        f"{base}/ab-test",
        _ab_form(
            selection="manual",
            min_confidence="95",
            max_unsubscribe_percent="1",
            max_complaint_percent="0.3",
            breaker_min_sent="50",
        )
        | _variant_fields(1, from_name="Denise at Clarion"),
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    assert saved.headers["Location"].endswith(f"{base}/ab-test")
    test = db.session.get(AbTest, mailing.id)
    assert (test.test_fraction, test.wait_minutes, test.metric) == (0.2, 120, "opens")
    assert (test.selection, test.min_confidence, test.breaker_min_sent) == ("manual", 0.95, 50)
    assert (test.max_unsubscribe_rate, test.max_complaint_rate) == (0.01, 0.003)
    a, b, c = mailing.variants
    assert (a.subject, a.from_name, a.body_mjml) == (None, None, None)
    assert (b.subject, b.from_name) == (B_SUBJECT, None)
    assert (c.subject, c.from_name) == (None, "Denise at Clarion")
    assert _audit(mailing.id) == ["ab_test_configured"]

    again = campaigner.get(f"{base}/ab-test").get_data(as_text=True)
    assert "Save the A/B test" in again and "Remove the A/B test" in again
    assert 'value="2"' in again and '<option selected value="hours">' in again
    assert 'value="95"' in again and 'value="0.3"' in again
    assert 'value="Denise at Clarion"' in again
    assert 'id="preview-heading">Preview of variant A' in again
    assert "Change the A/B test (3 variants)" in campaigner.get(f"{base}/edit").get_data(True)

    check = campaigner.get(f"{base}/check").get_data(as_text=True)
    split = re.search(r'<dd class="ab-split">(.*?)</dd>', check, re.S).group(1)
    assert "20 % of the audience, 4 of 20, is split at random between A, B and C" in split
    assert "(1 or one more each)" in split
    assert "After 2 hours the variant with the most people who opened goes to the other 16" in split
    assert "once staff pick it" in split

    shown = campaigner.get(base).get_data(as_text=True)
    assert "20 % of the audience will be split between A, B and C; after 2 hours" in shown
    assert "Send A to the rest" not in shown  # nothing to pick before it is sent


def test_refusals_show_per_field_errors_keep_what_was_typed_and_change_nothing(campaigner, network):
    mailing = make_mailing(network)
    url = f"/staff/mailings/{mailing.id}/ab-test"

    numbers = campaigner.submit(
        url, _ab_form(test_percent="1", wait="0", wait_unit="minutes", max_complaint_percent="100")
    )
    assert numbers.status_code == 422
    html = numbers.get_data(as_text=True)
    assert "The A/B test was not saved" in html
    assert _error_of(html, "test_percent") == "Give a number of at least 2 % and at most 100 %."
    assert _error_of(html, "wait") == "Wait at least 1 minute and at most 7 days."
    assert (
        _error_of(html, "max_complaint_percent")
        == "Give a number of more than 0 % and less than 100 %."
    )
    assert 'aria-invalid="true"' in html
    assert "Three children wait for their parents" in html  # what was typed stays

    typo = campaigner.submit(url, _ab_form(**_variant_fields(0, subject="Hi {{ frist_name }}")))
    assert typo.status_code == 422
    assert "unknown merge field &#39;frist_name&#39;" in _error_of(
        typo.get_data(as_text=True), "variants-0-subject"
    )

    # C filled in and B left empty: B is then the mailing itself, and the service says so on B.
    gap = campaigner.submit(
        url, _ab_form(**_variant_fields(0), **_variant_fields(1, subject="Only C"))
    )
    assert gap.status_code == 422
    html = gap.get_data(as_text=True)
    assert "Variant B is the same as variant A" in _error_of(html, "variant-B")
    assert 'value="Only C"' in html

    not_numbers = campaigner.submit(url, _ab_form(test_percent="lots", wait=""))
    assert not_numbers.status_code == 422
    html = not_numbers.get_data(as_text=True)
    assert "Not a valid float value." in _error_of(html, "test_percent")
    assert "Say how long the test runs" in _error_of(html, "wait")
    forged = campaigner.submit(url, _ab_form(metric="loudest", wait_unit="weeks"))
    assert forged.status_code == 422
    assert "Not a valid choice" in _error_of(forged.get_data(as_text=True), "wait_unit")

    assert db.session.scalar(select(func.count()).select_from(AbTest)) == 0
    assert db.session.scalar(select(func.count()).select_from(MailingVariant)) == 0
    assert _audit(mailing.id) == []

    # A refused change leaves the saved test as it was.
    assert campaigner.submit(url, _ab_form()).status_code == 302
    assert campaigner.submit(url, _ab_form(test_percent="0")).status_code == 422
    db.session.expire_all()
    assert db.session.get(AbTest, mailing.id).test_fraction == 0.2
    assert [v.subject for v in db.session.get(AbTest, mailing.id).mailing.variants] == [
        None,
        B_SUBJECT,
    ]


def test_removing_the_test_makes_it_a_plain_mailing_again(campaigner, network):
    mailing = make_mailing(network)
    base = f"/staff/mailings/{mailing.id}"
    assert campaigner.submit(f"{base}/ab-test", _ab_form()).status_code == 302
    removed = campaigner.submit(f"{base}/ab-test/remove")
    assert removed.status_code == 302 and removed.headers["Location"].endswith(f"{base}/edit")
    db.session.expire_all()
    assert db.session.get(AbTest, mailing.id) is None
    assert db.session.scalars(select(MailingVariant)).all() == []
    assert _audit(mailing.id) == ["ab_test_configured", "ab_test_removed"]
    assert "Set up an A/B test" in campaigner.get(base).get_data(as_text=True)


def test_preview_and_test_send_one_variant(
    campaigner, network, app, settings, smtp_sink, monkeypatch
):
    monkeypatch.setitem(app.config, "CLARION", replace(settings, smtp_url=smtp_sink.url))
    mailing = make_mailing(network)
    configure_ab_test(
        mailing,
        {
            "test_fraction": 0.5,
            "wait_minutes": 60,
            "variants": [{}, {"subject": B_SUBJECT, "body_mjml": B_BODY}],
        },
        actor="test",
    )
    db.session.commit()
    base = f"/staff/mailings/{mailing.id}"

    b_preview = campaigner.get(f"{base}/preview?variant=B").get_data(as_text=True)
    assert "Write to the Acting Director today" in b_preview
    a_preview = campaigner.get(f"{base}/preview?variant=A").get_data(as_text=True)
    assert "Write to the Acting Director today" not in a_preview
    assert campaigner.get(f"{base}/preview?variant=Z").status_code == 404

    page = campaigner.get(f"{base}?variant=B").get_data(as_text=True)
    assert f'src="{base}/preview?variant=B"' in page
    assert re.search(r'aria-current="page">Variant B</a>', page)
    assert '<option selected value="B">Variant B</option>' in page  # the test send offers it
    chosen = campaigner.submit(f"{base}/preview-as", {"back": "ab_test", "variant": "B"})
    assert chosen.headers["Location"] == f"{base}/ab-test?variant=B#preview"

    sent = campaigner.submit(f"{base}/test", {"to": "maya@example.org", "variant": "B"})
    assert sent.status_code == 200 and 'class="badge sent"' in sent.get_data(as_text=True)
    [message] = [m.message for m in smtp_sink.messages]
    assert message["Subject"] == "[TEST] Three children wait for their parents, Jane"
    assert "Write to the Acting Director today" in message.get_body(("html",)).get_content()
    wrong = campaigner.submit(f"{base}/test", {"to": "maya@example.org", "variant": "Q"})
    assert wrong.status_code == 422
    assert "Choose one of the variants." in _error_of(wrong.get_data(as_text=True), "variant")
    assert len(smtp_sink.messages) == 1


def _sent_test(network, settings, smtp_sink, **test):
    """An A/B-tested mailing whose test share (half of 20) was sent; the rest is held."""
    mailing = make_mailing(network)
    data = {"test_fraction": 0.5, "wait_minutes": 90, "metric": "opens"} | test
    configure_ab_test(mailing, data | {"variants": [{}, {"subject": B_SUBJECT}]}, actor="test")
    db.session.commit()
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)
    sending = replace(settings, smtp_url=smtp_sink.url)
    for batch_no in range(mailing.ab_test.test_batch_count):
        send_batch(mailing.id, batch_no, sending)
    db.session.refresh(mailing)
    return mailing


def _people_open(mailing, label: str, count: int) -> None:
    variant = next(v for v in mailing.variants if v.label == label)
    supporters = db.session.scalars(
        select(Delivery.supporter_id).where(Delivery.variant_id == variant.id).limit(count)
    )
    for supporter_id in supporters:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PERSON)
    db.session.commit()


def _variant_cell(html: str, label: str, column: str) -> str:
    row = re.search(rf'<tr data-variant="{label}">(.*?)</tr>', html, re.S).group(1)
    return re.search(rf'<td class="num" data-figure="{column}">([^<]*)</td>', row).group(1)


def test_campaigner_picks_the_winner_the_analyst_only_reads(
    campaigner, staff_client, network, settings, smtp_sink, redis_conn
):
    mailing = _sent_test(network, settings, smtp_sink, selection="manual")
    _people_open(mailing, "B", 4)
    _people_open(mailing, "A", 1)
    base = f"/staff/mailings/{mailing.id}"
    analyst = staff_client(Role.ANALYST)

    page = campaigner.get(base).get_data(as_text=True)
    state = re.search(r'<p class="ab-state" data-state="testing">(.*?)</p>', page, re.S).group(1)
    assert "Testing until" in state
    assert "50 % of 20 split between A and B (10 recipients); the other 10 get the winner" in state
    assert (_variant_cell(page, "A", "sent"), _variant_cell(page, "B", "sent")) == ("5", "5")
    assert (_variant_cell(page, "A", "human_opens"), _variant_cell(page, "B", "human_opens")) == (
        "1",
        "4",
    )
    assert _variant_cell(page, "B", "rate") == "80.0%"
    assert "leading" in re.search(r'<tr data-variant="B">(.*?)</tr>', page, re.S).group(1)
    assert "Send A to the rest" in page and "Send B to the rest" in page
    assert "Held for the A/B winner" in page

    # The wait is over: a manual test waits for staff, and says so.
    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 0
    waiting = campaigner.get(base).get_data(as_text=True)
    assert "Waiting for you to pick</strong>: The test is over: pick the winner. B leads" in waiting

    read_only = analyst.get(base).get_data(as_text=True)
    assert "Waiting for a campaigner to pick" in read_only
    assert _variant_cell(read_only, "B", "human_opens") == "4"
    assert "to the rest</button>" not in read_only
    for path, data in (("ab-test/winner", {"variant": "B"}), ("ab-test", _ab_form())):
        assert analyst.submit(f"{base}/{path}", data).status_code == 403
    assert analyst.get(f"{base}/ab-test").status_code == 403
    assert analyst.submit(f"{base}/ab-test/remove").status_code == 403
    db.session.expire_all()
    assert db.session.get(AbTest, mailing.id).decided_at is None

    nonsense = campaigner.submit(f"{base}/ab-test/winner", {"variant": "Z"}, follow_redirects=True)
    assert "No variant &#39;Z&#39;; this test has A, B." in nonsense.get_data(as_text=True)
    picked = campaigner.submit(f"{base}/ab-test/winner", {"variant": "B"})
    assert picked.status_code == 302 and picked.headers["Location"].endswith(f"{base}#ab-test")
    db.session.expire_all()
    test = db.session.get(AbTest, mailing.id)
    assert test.winner.label == "B" and test.decided_by == f"staff:{campaigner.user.email}"
    held = db.session.scalar(
        select(func.count()).where(
            Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.HELD
        )
    )
    assert held == 0  # the rest is queued for B

    after = campaigner.get(base).get_data(as_text=True)
    assert "Variant B is the winner: it goes to the other 10 recipients now." in after
    decided = re.search(r'<p class="ab-state" data-state="decided">(.*?)</p>', after, re.S)
    assert re.search(
        rf"<strong>B won</strong> with a \d+\.\d% probability to be best, picked by "
        rf"{re.escape(campaigner.user.email)} at <time[^>]*>[^<]+</time>, sent to the other 10\.",
        decided.group(1),
    )
    assert "to the rest</button>" not in after
    twice = campaigner.submit(f"{base}/ab-test/winner", {"variant": "A"}, follow_redirects=True)
    assert "The winner was already picked: B." in twice.get_data(as_text=True)
    assert campaigner.get(f"{base}/ab-test", follow_redirects=True).request.path == base

    report = analyst.get(f"/staff/results/{mailing.id}").get_data(as_text=True)
    variants = re.search(r'<section id="variants".*?</section>', report, re.S).group(0)
    assert "<strong>B won</strong>" in variants
    assert _variant_cell(variants, "B", "opens") == "4"
    assert _variant_cell(variants, "A", "human_opens") == "1"
    assert re.search(r'p = <span class="p-value">0\.\d{3}</span>', variants)
    assert "winner</span>" in re.search(r'<tr data-variant="B">(.*?)</tr>', variants, re.S).group(1)


def test_the_clock_s_pick_reads_as_automatic(campaigner, network, settings, smtp_sink, redis_conn):
    mailing = _sent_test(network, settings, smtp_sink, test_fraction=0.2, wait_minutes=1)
    _people_open(mailing, "B", 2)
    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 1
    page = campaigner.get(f"/staff/mailings/{mailing.id}").get_data(as_text=True)
    assert re.search(
        r"<strong>B won</strong> with a [\d.]+% probability to be best, picked automatically at "
        r"<time[^>]*>[^<]+</time>, sent to the other 16\.",
        page,
    )
    assert "to the rest</button>" not in page


def test_a_sent_mailing_s_test_cannot_be_changed(
    campaigner, network, settings, smtp_sink, redis_conn
):
    mailing = _sent_test(network, settings, smtp_sink)
    base = f"/staff/mailings/{mailing.id}"
    changed = campaigner.submit(f"{base}/ab-test", _ab_form(test_percent="90"))
    assert changed.status_code == 302 and changed.headers["Location"].endswith(f"{base}#ab-test")
    removed = campaigner.submit(f"{base}/ab-test/remove", follow_redirects=True)
    assert "Only a draft can be changed; this mailing is sending." in removed.get_data(True)
    db.session.expire_all()
    assert db.session.get(AbTest, mailing.id).test_fraction == 0.5
    assert mailing.status == MailingStatus.SENDING


def test_a_stopped_variant_says_why_and_cannot_be_sent_to_the_rest(
    campaigner, network, settings, smtp_sink, redis_conn
):
    mailing = _sent_test(network, settings, smtp_sink)
    reason = "unsubscribe rate 40.00% (2 of 5 sent) passed the limit of 1.00%"
    db.session.execute(
        update(MailingVariant)
        .where(MailingVariant.mailing_id == mailing.id, MailingVariant.position == 1)
        .values(stopped_at=utcnow(), stopped_reason=reason)
    )
    db.session.commit()
    page = campaigner.get(f"/staff/mailings/{mailing.id}").get_data(as_text=True)
    row = re.search(r'<tr data-variant="B">(.*?)</tr>', page, re.S).group(1)
    assert f'<td data-figure="stopped">{reason}</td>' in row
    assert "Send A to the rest" in page and "Send B to the rest" not in page
    refused = campaigner.submit(
        f"/staff/mailings/{mailing.id}/ab-test/winner", {"variant": "B"}, follow_redirects=True
    )
    assert f"Variant B was stopped: {reason}" in refused.get_data(as_text=True)
