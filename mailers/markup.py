"""What a frozen mail's HTML gets besides the staff's own markup: title, language, landmark,
the hidden preheader, the honeypot link and the open pixel (lxml, once per mailing)."""

from __future__ import annotations

import re

from lxml import etree

DEFAULT_LANG = "en"
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_HIDDEN_STYLE = (
    "display:none;visibility:hidden;mso-hide:all;font-size:0;line-height:0;max-height:0;"
    "max-width:0;width:0;height:0;opacity:0;overflow:hidden"
)


def set_title(head: etree._Element, protected_subject: str) -> None:
    # Screen readers announce the title first, and "view in browser" shows it in the tab. The
    # subject's merge fields stay tokens here, so each recipient's title is their own subject,
    # autoescaped like the rest of the HTML; lxml escapes the literal text around them.
    title = head.find("title")
    if title is None:
        title = etree.SubElement(head, "title")
    title.text = protected_subject


def set_language(root: etree._Element) -> None:
    # The mailing's language is what its MJML declares (<mjml lang="de">); MJML writes "und"
    # when it declares none, which tells a screen reader nothing, so English is assumed then.
    # Not the supporter's language: a German supporter sent an English alert gets English text.
    declared = (root.get("lang") or "").strip()
    lang = declared if _LANGUAGE_TAG.fullmatch(declared) and declared != "und" else DEFAULT_LANG
    root.set("lang", lang)
    for element in root.iterfind(".//body//*[@lang]"):
        if element.get("lang") in ("und", declared):
            element.set("lang", lang)


def add_main_landmark(body: etree._Element) -> None:
    # MJML wraps the message in one role="article" div; a main landmark around it lets a screen
    # reader jump straight to the content and keeps every visible part inside a landmark.
    main = etree.Element("div", {"role": "main"})
    main.extend(list(body))  # moves the children, with their tail text
    main.text, body.text = body.text, None
    body.append(main)


def add_preheader(body: etree._Element, protected_preheader: str) -> None:
    if not protected_preheader:
        return
    span = etree.Element("span", {"class": "preheader", "style": _HIDDEN_STYLE})
    span.text = protected_preheader
    body.insert(0, span)


def add_honeypot(body: etree._Element, href_token: str) -> None:
    # A link no person can see or reach by keyboard; link scanners follow it, so a click on it
    # marks the click as a machine's (FrozenLink.is_honeypot).
    wrapper = etree.Element("div", {"style": _HIDDEN_STYLE, "aria-hidden": "true"})
    etree.SubElement(
        wrapper,
        "a",
        {
            "href": href_token,
            "tabindex": "-1",
            "aria-hidden": "true",
            "data-clarion-honeypot": "1",
            "style": _HIDDEN_STYLE,
        },
    )
    body.insert(0, wrapper)


def add_open_pixel(body: etree._Element, src_token: str) -> None:
    etree.SubElement(
        body,
        "img",
        {
            "src": src_token,
            "width": "1",
            "height": "1",
            "alt": "",
            "style": "display:block;border:0;width:1px;height:1px",
        },
    )
