import email
import email.policy
import http.server
import threading

import pytest
from lxml import etree

from mailers.merge import allowed_fields
from mailers.render import FreezeError, FrozenLink, FrozenMailing
from tests.mailers.conftest import ORGANISATION, freeze_mailing, make_factory, make_recipient

BODY = """
<mj-section><mj-column>
  <mj-text>
    <h1>Big news</h1>
    <p>Dear {{ first_name | default("Friend") }}, read
    <a href="https://example.org/report?a=1&amp;b=2">the report</a> or
    <a href="mailto:press@example.org">email us</a>.</p>
    <p>Again: <a href="https://example.org/report?a=1&amp;b=2">report</a>,
    <a href="https://example.org/town/{{ town }}">your town</a>.</p>
  </mj-text>
  <mj-button href="{{ action_url }}">Act now</mj-button>
</mj-column></mj-section>
"""


def _tree(frozen):
    return etree.fromstring(frozen.html_source, etree.HTMLParser())


def test_links_are_tracked_in_order_and_per_recipient_urls_left_alone():
    frozen = freeze_mailing("Hello", None, BODY, honeypot_url="https://example.org/")
    assert frozen.links == (
        FrozenLink(0, "https://example.org/", True),
        FrozenLink(1, "https://example.org/report?a=1&b=2", False),
        FrozenLink(2, "https://example.org/report?a=1&b=2", False),
    )
    hrefs = [a.get("href") for a in _tree(frozen).iter("a")]
    assert "{{ click_url }}/1" in hrefs and "{{ click_url }}/2" in hrefs
    assert "{{ action_url }}" in hrefs
    assert "mailto:press@example.org" in hrefs
    # Built from a merge field, so it cannot be a fixed tracked URL: left as written.
    assert "https://example.org/town/{{ town }}" in hrefs
    assert "{{ unsubscribe_url }}" in hrefs and "{{ preferences_url }}" in hrefs
    assert not any("%7B" in h for h in hrefs)


def test_exactly_one_hidden_honeypot_link():
    frozen = freeze_mailing("Hello", None, BODY)
    pots = [a for a in _tree(frozen).iter("a") if a.get("data-clarion-honeypot")]
    assert len(pots) == 1
    pot = pots[0]
    assert pot.get("href") == "{{ click_url }}/0"
    assert pot.get("tabindex") == "-1" and pot.get("aria-hidden") == "true"
    assert "display:none" in pot.get("style")
    assert "display:none" in pot.getparent().get("style")
    assert [link for link in frozen.links if link.is_honeypot] == [
        FrozenLink(0, "https://example.org/report?a=1&b=2", True)
    ]


def test_footer_preheader_and_pixel_are_added():
    frozen = freeze_mailing("Hello", "Read {{ first_name }}'s <news>", BODY)
    html = frozen.html_source
    assert 'href="{{ unsubscribe_url }}"' in html
    assert ORGANISATION in html and "311 W 43rd Street" in html
    assert "Why you got this" in html
    body = _tree(frozen).find(".//body")
    preheader = body.find(".//span[@class='preheader']")
    assert "display:none" in preheader.get("style")
    assert preheader.text == "Read {{ first_name }}'s <news>"
    last = body[-1]
    assert last.tag == "img" and last.get("src") == "{{ open_url }}"
    assert (last.get("width"), last.get("height"), last.get("alt")) == ("1", "1", "")


def test_css_is_inlined():
    frozen = freeze_mailing("Hello", None, BODY)
    paragraph = _tree(frozen).find(".//p")
    assert "margin" in paragraph.get("style")


def test_text_part_is_derived_once_with_links():
    frozen = freeze_mailing("Hello", "hidden preheader", BODY)
    text = frozen.text_source
    assert text.startswith('Big news\n\nDear {{ first_name | default("Friend") }}, read')
    assert "the report ({{ click_url }}/1)" in text
    assert "email us (press@example.org)" in text
    assert "Act now ({{ action_url }})" in text
    assert "Unsubscribe ({{ unsubscribe_url }})" in text
    assert "hidden preheader" not in text
    rendered = frozen.text_template.render(click_url="https://t.example/c/x")
    assert "Dear Friend, read the report (https://t.example/c/x/1)" in rendered


def test_staff_text_gets_the_footer_and_tracked_links():
    frozen = freeze_mailing(
        "Hello", None, BODY, "Read https://example.org/report?a=1&b=2. Or https://example.org/new"
    )
    assert frozen.text_source.startswith(
        "Read {{ click_url }}/1. Or {{ click_url }}/3\n\n--\nWhy you got this"
    )
    assert "Unsubscribe: {{ unsubscribe_url }}" in frozen.text_source
    assert FrozenLink(3, "https://example.org/new", False) in frozen.links


def test_layout_supplies_subject_and_body_and_mailing_overrides():
    frozen = freeze_mailing(None, None, None, None, "action_alert")
    assert (
        frozen.subject_source == '{{ first_name | default("Friend") }}, your action is needed today'
    )
    assert ORGANISATION in frozen.html_source
    assert 'href="{{ action_url }}"' in frozen.html_source
    own = freeze_mailing("Own subject", None, None, None, "action_alert")
    assert own.subject_source == "Own subject"


def test_demo_mailing_freezes(demo_frozen):
    assert "28 children" in demo_frozen.subject_source
    assert '{{ first_name | default("Friend") }}' in demo_frozen.html_source
    assert "Act now ({{ action_url }})" in demo_frozen.text_source


@pytest.mark.parametrize("layout", ["../secrets", "nope", "Action_Alert", ""])
def test_unknown_or_unsafe_layouts_are_refused(layout):
    with pytest.raises(FreezeError):
        freeze_mailing(None, None, None, None, layout or "x/../..")


def test_javascript_links_are_refused():
    body = '<mj-section><mj-column><mj-text><a href="javascript:alert(1)">x</a></mj-text></mj-column></mj-section>'
    with pytest.raises(FreezeError, match="http"):
        freeze_mailing("Hi", None, body)


def test_tag_dropped_by_mjml_is_reported():
    body = '<mj-section><mj-column><mj-image src="https://example.org/a.png" width="{{ town }}" /></mj-column></mj-section>'
    with pytest.raises(FreezeError, match="was lost"):
        freeze_mailing("Hi", None, body)


def test_validation_errors_are_raised_together():
    with pytest.raises(FreezeError) as info:
        freeze_mailing("Hi {{ shoe }}", None, BODY, allowed_fields=allowed_fields({"town"}))
    assert "subject: line 1: unknown merge field 'shoe'" in str(info.value)


def test_missing_subject_or_body_is_refused():
    with pytest.raises(FreezeError, match="subject"):
        freeze_mailing("", None, BODY)
    with pytest.raises(FreezeError, match="body"):
        freeze_mailing("Hi", None, None)


def test_a_frozen_mailing_without_unsubscribe_is_impossible(demo_frozen):
    html = demo_frozen.html_source.replace('href="{{ unsubscribe_url }}"', 'href="#"')
    with pytest.raises(FreezeError, match="unsubscribe"):
        FrozenMailing.from_sources("s", html, demo_frozen.text_source, [])
    text = demo_frozen.text_source.replace("{{ unsubscribe_url }}", "")
    with pytest.raises(FreezeError, match="unsubscribe"):
        FrozenMailing.from_sources("s", demo_frozen.html_source, text, [])


def test_rebuilding_from_stored_strings_renders_the_same(demo_frozen):
    rebuilt = FrozenMailing.from_sources(
        demo_frozen.subject_source,
        demo_frozen.html_source,
        demo_frozen.text_source,
        [tuple(link) for link in demo_frozen.links],
    )
    context = {"first_name": "Ana", "action_url": "https://a.example/x"}
    assert rebuilt.html_template.render(context) == demo_frozen.html_template.render(context)
    assert rebuilt.links == demo_frozen.links


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red; }")

    def log_message(self, *args):
        pass


def test_freezing_never_fetches_anything_over_the_network():
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        body = f"""<mjml><mj-head>
          <mj-font name="Remote" href="{url}/font.css" />
          <mj-style>@import url({url}/import.css); p {{ margin: 0; }}</mj-style>
          </mj-head><mj-body><mj-raw><link rel="stylesheet" href="{url}/link.css"></mj-raw>
          <mj-section><mj-column><mj-text font-family="Remote, Arial"><p>Hi</p>
          <img src="{url}/image.png" alt="pic"></mj-text></mj-column></mj-section>
          </mj-body></mjml>"""
        frozen = freeze_mailing("Hi", None, body)
    finally:
        server.shutdown()
        server.server_close()
    assert _CountingHandler.hits == []
    assert "link.css" not in frozen.html_source and "@import" not in frozen.html_source


def _html_for(frozen, **fields) -> str:
    data = make_factory(frozen).build(make_recipient(**fields)).data
    message = email.message_from_bytes(data, policy=email.policy.default)
    return message.get_body(("html",)).get_content()


def test_every_mail_has_its_subject_as_title_per_recipient_and_escaped():
    frozen = freeze_mailing('{{ first_name | default("Friend") }}, news & <views>', None, BODY)
    html = _html_for(frozen, first_name="<b>Eve</b>")
    [title] = etree.fromstring(html, etree.HTMLParser()).iter("title")
    assert title.text == "<b>Eve</b>, news & <views>"
    assert "<title>&lt;b&gt;Eve&lt;/b&gt;, news &amp; &lt;views&gt;</title>" in html
    assert "<title>Friend, news" in _html_for(frozen, first_name="")


@pytest.mark.parametrize(
    ("mjml", "lang"),
    [
        (BODY, "en"),  # a fragment: Clarion's own wrapper says English
        (f"<mjml><mj-body>{BODY}</mj-body></mjml>", "en"),  # MJML alone would say "und"
        (f'<mjml lang="de-CH"><mj-body>{BODY}</mj-body></mjml>', "de-CH"),
        (f'<mjml lang="de&quot; onload=&quot;x"><mj-body>{BODY}</mj-body></mjml>', "en"),
    ],
    ids=["fragment", "undeclared", "declared", "garbage"],
)
def test_html_lang_is_the_mailings_language(mjml, lang):
    root = _tree(freeze_mailing("Hello", None, mjml))
    assert root.get("lang") == lang
    assert {e.get("lang") for e in root.iterfind(".//body//*[@lang]")} <= {lang}


def test_the_visible_mail_sits_in_one_main_landmark(demo_frozen):
    body = _tree(demo_frozen).find(".//body")
    [main] = body.iterfind(".//*[@role='main']")
    assert main.getparent() is body
    assert main.find("div[@role='article']") is not None
    for outside in body:
        if outside is not main:
            assert "display:none" in (outside.get("style") or "") or outside.get("alt") == ""
