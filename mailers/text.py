"""Turn a rendered HTML mail into a readable plain-text part."""

from __future__ import annotations

import re

from lxml import etree

_SKIP = {"head", "style", "script", "title", "noscript"}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "hr"}
_LINES = {"div", "table", "tbody", "thead", "tr", "td", "th", "li", "section", "center"}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_PARAGRAPH = "\x00P"  # sentinels, turned into blank lines / line breaks at the end
_LINE = "\x00L"
_BREAKS = re.compile(r"\s*(?:\x00[PL]\s*)+")


def html_to_text(root: etree._Element) -> str:
    """Return the visible text of an HTML tree: paragraphs, headings, lists, `text (url)` links."""
    out: list[str] = []
    body = root.find(".//body")
    _walk(body if body is not None else root, out)
    return _tidy("".join(out))


def _walk(element: etree._Element, out: list[str]) -> None:
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else None
        if tag is not None and tag.lower() not in _SKIP and not _is_hidden(child):
            _element(child, tag.lower(), out)
        if child.tail:
            out.append(_SPACES.sub(" ", child.tail))


def _element(element: etree._Element, tag: str, out: list[str]) -> None:
    if tag == "br":
        out.append(_LINE)
        return
    if tag == "img":
        alt = (element.get("alt") or "").strip()
        if alt:
            out.append(alt)
        return
    if tag == "a":
        out.append(_link(element))
        return
    boundary = _PARAGRAPH if tag in _PARAGRAPHS else _LINE if tag in _LINES else ""
    out.append(boundary)
    if tag == "li":
        out.append("- ")
    if element.text:
        out.append(_SPACES.sub(" ", element.text))
    _walk(element, out)
    out.append(boundary)


def _link(element: etree._Element) -> str:
    inner: list[str] = []
    if element.text:
        inner.append(_SPACES.sub(" ", element.text))
    _walk(element, inner)
    label = _SPACES.sub(" ", "".join(inner).replace(_LINE, " ").replace(_PARAGRAPH, " ")).strip()
    href = (element.get("href") or "").strip()
    if href.startswith("mailto:"):
        href = href[len("mailto:") :]
    if not href or href == label:
        return label or href
    return f"{label} ({href})" if label else href


def _is_hidden(element: etree._Element) -> bool:
    return bool(_HIDDEN.search(element.get("style") or "")) or element.get("hidden") is not None


def _tidy(text: str) -> str:
    text = _BREAKS.sub(lambda m: "\n\n" if _PARAGRAPH in m.group() else "\n", text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip() + "\n"
