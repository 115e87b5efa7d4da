"""Composing mailings: validation at save time, preview as a supporter, test sends."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.mailings.compose import previews, services
from app.mailings.compose.services import MailingError
from app.mailings.delivery.launch import request_send
from app.mailings.models import Delivery, Mailing, MailingStatus
from app.supporters.models import Segment, Supporter, Tag
from tests.factories import make_list, make_mailing, make_supporters

BODY = """<mj-section><mj-column><mj-text>
<p>Dear {{ first_name | default("Friend") }},</p>
<p><a href="https://example.org/report">Read the report</a></p>
</mj-text><mj-button href="{{ action_url }}">Act now</mj-button></mj-column></mj-section>"""


def _data(**overrides):
    data = {"name": "Test alert", "subject": "Hello {{ first_name }}", "body_mjml": BODY}
    data.update(overrides)
    return data


def _errors(data, mailing=None) -> dict:
    with pytest.raises(MailingError) as caught:
        if mailing is None:
            services.create_mailing(data)
        else:
            services.update_mailing(mailing, data)
    assert caught.value.status == 422
    return caught.value.details


def test_create_stores_a_draft_with_a_normalised_audience():
    network, other = make_list(), make_list("Newsletter")
    mailing = services.create_mailing(
        _data(
            preheader="  ",
            from_email="alerts@clarion.test",
            audience={"include_lists": [other.id, network.id, network.id]},
            send_rate=12.5,
        )
    )
    assert mailing.id and mailing.status == MailingStatus.DRAFT
    assert mailing.audience == {"include_lists": sorted([network.id, other.id])}
    assert mailing.preheader is None and mailing.send_rate == 12.5
    assert mailing.frozen_at is None and mailing.links == []


def test_unknown_merge_field_in_subject_is_named():
    errors = _errors(_data(subject="Hi {{ frist_name }}"))
    assert errors == {"subject": ["line 1: unknown merge field 'frist_name'"]}


def test_template_syntax_error_gives_the_line():
    errors = _errors(_data(body_mjml=BODY + "\n<mj-text>{% if first_name %}</mj-text>"))
    assert list(errors) == ["body_mjml"]
    assert errors["body_mjml"][0].startswith("line 5: Unexpected end of template")


def test_custom_fields_are_known_merge_fields():
    from app.supporters.models import CustomField

    db.session.add(CustomField(name="town"))
    db.session.flush()
    mailing = services.create_mailing(_data(subject="News for {{ town }}"))
    assert mailing.subject == "News for {{ town }}"


def test_bad_layout_and_missing_body():
    errors = _errors({"name": "x", "subject": "y", "layout": "no_such_layout"})
    assert "Unknown layout 'no_such_layout'" in errors["layout"][0]
    assert "demo_28_children" in errors["layout"][0]
    assert _errors({"name": "x", "subject": "y"}) == {
        "body_mjml": ["A mailing needs a body: give body_mjml or a layout."]
    }


def test_mjml_that_cannot_render_is_refused_at_save():
    errors = _errors(_data(body_mjml="<mj-section><mj-column>"))
    assert errors["body_mjml"][0].startswith("the MJML could not be rendered")
    bad_link = '<mj-section><mj-column><mj-text><a href="javascript:alert(1)">x</a></mj-text>'
    errors = _errors(_data(body_mjml=bad_link + "</mj-column></mj-section>"))
    assert "links must be http(s)" in errors["body_mjml"][0]


def test_audience_ids_must_exist_and_keys_are_known():
    tag = Tag(name="donor")
    db.session.add(tag)
    db.session.flush()
    errors = _errors(
        _data(audience={"include_lists": [999999], "exclude_tags": [tag.id], "segments": [888]})
    )
    assert errors == {
        "audience": {
            "include_lists": ["No list with id 999999."],
            "segments": ["No segment with id 888."],
        }
    }
    assert "lists" in _errors(_data(audience={"lists": [1]}))["audience"]


def test_addresses_and_send_rate_are_checked():
    errors = _errors(_data(from_email="not an address", reply_to="a@b@c.org"))
    assert set(errors) == {"from_email", "reply_to"}
    assert "'not an address' is not a usable email address" in errors["from_email"][0]
    assert set(_errors(_data(send_rate=0))) == {"send_rate"}
    assert services.create_mailing(_data(send_rate=None, reply_to="x@clarion.test")).reply_to


def test_update_validates_the_result_and_keeps_the_stored_values_on_error():
    mailing = services.create_mailing(_data())
    _errors({"subject": "{{ nope }}"}, mailing)
    assert mailing.subject == "Hello {{ first_name }}"
    services.update_mailing(mailing, {"subject": "Changed", "layout": "demo_28_children"})
    assert (mailing.subject, mailing.layout, mailing.body_mjml) == (
        "Changed",
        "demo_28_children",
        BODY,
    )


def test_only_drafts_are_edited_or_deleted(settings):
    audience = make_list()
    make_supporters(2, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings)
    for action in (
        lambda: services.update_mailing(mailing, {"name": "new"}),
        lambda: services.delete_mailing(mailing),
        lambda: services.send_mailing(mailing, settings, actor="test"),
    ):
        with pytest.raises(MailingError) as caught:
            action()
        assert caught.value.status == 409
    assert mailing.name == "28 children alert"


def test_send_refuses_an_empty_audience(settings):
    mailing = make_mailing(make_list())
    with pytest.raises(MailingError, match="audience is empty"):
        services.send_mailing(mailing, settings, actor="test")
    assert mailing.status == MailingStatus.DRAFT and mailing.frozen_at is None


def test_send_refuses_a_deleted_segment(settings):
    segment = Segment(name="gone", definition={})
    db.session.add(segment)
    db.session.flush()
    mailing = make_mailing(audience={"segments": [segment.id]})
    db.session.delete(segment)
    db.session.flush()
    with pytest.raises(MailingError) as caught:
        services.send_mailing(mailing, settings, actor="test")
    assert caught.value.details == {"audience": {"segments": [f"No segment with id {segment.id}."]}}


# --- preview ---------------------------------------------------------------------------------


def test_preview_escapes_merge_fields_and_freezes_nothing(settings):
    supporter = Supporter(email="s@example.org", first_name="<script>", last_name="X")
    db.session.add(supporter)
    db.session.flush()
    mailing = services.create_mailing(_data(subject="For {{ first_name }}"))

    shown = previews.preview(mailing, supporter, settings)
    assert shown["subject"] == "For <script>"
    assert "Dear &lt;script&gt;," in shown["html"] and "<script>" not in shown["html"]
    assert "Dear <script>," in shown["text"]
    # Links lead straight to their destination; nothing would be recorded.
    assert 'href="https://example.org/report"' in shown["html"]
    assert "/c/" not in shown["html"] and "/o/" not in shown["html"]
    assert f"{settings.base_url}/a/" in shown["html"]
    assert mailing.frozen_at is None and mailing.frozen_html is None and not mailing.links
    assert not db.session.dirty


def test_preview_without_a_supporter_uses_a_sample(settings):
    mailing = make_mailing()
    shown = previews.preview(mailing, None, settings)
    assert shown["subject"] == "Jane, 28 children could be deported"
    assert settings.organisation_name in shown["text"]


def test_preview_of_a_frozen_mailing_uses_its_frozen_sources(settings):
    audience = make_list()
    ids = make_supporters(1, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings)
    # Stored sources win over the (no longer used) composed fields.
    mailing.frozen_subject = "Frozen subject for {{ first_name }}"
    shown = previews.preview(mailing, db.session.get(Supporter, ids[0]), settings)
    assert shown["subject"] == "Frozen subject for Name0"


# --- test send -------------------------------------------------------------------------------


def test_test_send_goes_to_the_sink_and_counts_nothing(settings, smtp_sink):
    settings = replace(settings, smtp_url=smtp_sink.url)
    mailing = services.create_mailing(_data(subject="Hello {{ first_name | default('x') }}"))
    results = previews.test_send(mailing, ["one@example.org", " two@example.org "], settings)

    assert [r["address"] for r in results] == ["one@example.org", "two@example.org"]
    assert all(r["ok"] and r["message_id"] and r["error"] is None for r in results)
    received = smtp_sink.messages
    assert sorted(m.rcpt_tos[0] for m in received) == ["one@example.org", "two@example.org"]
    message = received[0].message
    assert message["Subject"] == "[TEST] Hello Jane"
    html = message.get_body(("html",)).get_content()
    assert 'href="https://example.org/report"' in html and "/c/" not in html
    assert not db.session.scalar(select(func.count()).select_from(Delivery))
    assert mailing.status == MailingStatus.DRAFT and mailing.frozen_at is None


def test_test_send_uses_the_chosen_supporters_fields_but_not_their_tokens(settings, smtp_sink):
    from app.links.tokens import Purpose, TokenService

    settings = replace(settings, smtp_url=smtp_sink.url)
    ids = make_supporters(1)
    mailing = make_mailing()
    previews.test_send(
        mailing, ["staff@example.org"], settings, supporter=db.session.get(Supporter, ids[0])
    )
    message = smtp_sink.messages[0].message
    assert message["Subject"].startswith("[TEST] Name0, 28 children")
    text = message.get_body(("plain",)).get_content()
    token = re.search(re.escape(settings.base_url) + r"/a/([\w.-]+)", text).group(1)
    claims = TokenService(settings.secret_keys).loads(Purpose.ACTION, token)
    assert (claims.mailing_id, claims.supporter_id) == (mailing.id, 0)


def test_test_send_refuses_too_many_or_bad_addresses(settings):
    mailing = make_mailing()
    with pytest.raises(MailingError, match="at most 20"):
        previews.test_send(mailing, [f"a{n}@example.org" for n in range(21)], settings)
    with pytest.raises(MailingError) as caught:
        previews.test_send(mailing, ["ok@example.org", "nope"], settings)
    assert list(caught.value.details) == ["to"] and "'nope'" in caught.value.details["to"][0]
    with pytest.raises(MailingError):
        previews.test_send(mailing, [], settings)


def test_test_send_reports_smtp_refusals_per_address(settings, smtp_sink):
    settings = replace(settings, smtp_url=smtp_sink.url)
    smtp_sink.handler.reply_for = lambda rcpt: "550 5.1.1 no such user" if "bad" in rcpt else None
    results = previews.test_send(make_mailing(), ["bad@example.org", "good@example.org"], settings)
    assert [(r["address"], r["ok"]) for r in results] == [
        ("bad@example.org", False),
        ("good@example.org", True),
    ]
    assert "550" in results[0]["error"]


def test_test_send_reports_an_unreachable_server_for_every_address(settings):
    from tests.smtp_sink import free_port

    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}?timeout=2")
    results = previews.test_send(make_mailing(), ["a@example.org", "b@example.org"], settings)
    assert [r["ok"] for r in results] == [False, False]
    assert all("cannot connect" in r["error"] for r in results)


def test_demo_mailing_is_loaded_once(settings):
    from app.demo import load_demo_data, load_demo_mailing

    load_demo_data(db.session)
    assert load_demo_mailing(db.session, settings) == 1
    assert load_demo_mailing(db.session, settings) == 0
    mailing = db.session.scalar(select(Mailing).where(Mailing.name == "28 children — act now"))
    assert mailing.status == MailingStatus.DRAFT and mailing.layout == "demo_28_children"
    assert services.audience_size(mailing) > 0


def test_local_http_base_url_can_test_send(settings, smtp_sink):
    # A local run serves on http://127.0.0.1; production insists on https (see config).
    settings = replace(settings, smtp_url=smtp_sink.url, base_url="http://127.0.0.1:5000")
    mailing = make_mailing()
    assert "http://127.0.0.1:5000/a/" in previews.preview(mailing, None, settings)["html"]
    results = previews.test_send(mailing, ["a@example.org"], settings)
    assert results[0]["ok"], results
    message = smtp_sink.messages[0].message
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:5000/u/")
