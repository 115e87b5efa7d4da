"""Tell opens and clicks made by people from those made by proxies, scanners and scripts.

One pure function, `classify`, so every rule is unit-tested on real user-agent strings. The
rules, in order:

- a click on the honeypot link (hidden from people and keyboards) is a machine;
- a HEAD request is a machine: browsers and mail clients GET, link checkers HEAD;
- known scanners, link previewers, HTTP libraries and headless browsers are machines;
- a bare "Mozilla/5.0" is Apple Mail Privacy Protection: it fetches every image of every mail
  on delivery, whether or not anyone reads it, so its opens say nothing about a person;
- Gmail's and Yahoo's image proxies and Outlook desktop fetch images when the person opens the
  mail, so their opens count as human (they never follow links: a click with their UA is a
  machine probing the link, the person's own click comes from their browser);
- a request with no user agent at all is a machine;
- a click within CLICK_TOO_FAST_SECONDS of the delivery's sent_at is a gateway scanning the
  mail on its way in (Safe Links, Mimecast, Proofpoint … fetch with browser-like UAs);
- BURST_LINKS or more distinct links of one mail clicked by one recipient within
  BURST_WINDOW_SECONDS is a scanner following every link; a later click is judged on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLICK_TOO_FAST_SECONDS = 10.0
BURST_WINDOW_SECONDS = 2.0
BURST_LINKS = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    machine: bool
    reason: str  # "" for a person
    # apple-mpp, gmail-proxy, yahoo-proxy, outlook, scanner:<name>, browser, unknown
    ua_class: str


# (class name, pattern) — checked in order, first match wins. Substrings that real people's
# browsers and mail clients never send.
_SCANNERS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("barracuda", r"barracuda"),
        ("mimecast", r"mimecast"),
        ("proofpoint", r"proofpoint"),
        ("symantec", r"symantec|messagelabs"),
        ("cisco", r"ironport|cisco"),
        ("trend-micro", r"trend ?micro|\bTMES\b"),
        ("fortinet", r"fortimail|fortiguard|fortinet"),
        ("sophos", r"sophos"),
        ("safelinks", r"safelinks"),
        # Office apps probing a link before opening it ("Microsoft Office Existence Discovery",
        # "Mozilla/4.0 (compatible; ms-office; MSOffice 16)").
        ("ms-office", r"existence discovery|\bms-office\b|\bMSOffice \d"),
        ("bingpreview", r"BingPreview"),
        # A browser string with a second "Mozilla/5.0" glued on: a long-lived scanner fingerprint.
        ("fake-edge", r"Edge/12\.246 Mozilla/5\.0$"),
        ("headless-chrome", r"HeadlessChrome"),
        ("phantomjs", r"PhantomJS"),
        ("curl", r"^curl/"),
        ("wget", r"^Wget/"),
        ("python", r"python-requests|python-urllib|python-httpx|aiohttp|^Python/"),
        ("go-http-client", r"Go-http-client"),
        ("java", r"^Java/|Apache-HttpClient|okhttp"),
        ("node", r"node-fetch|axios/|undici"),
        ("perl", r"libwww-perl"),
        ("preview", r"Slackbot|facebookexternalhit|WhatsApp|TelegramBot|Twitterbot|Discordbot"),
        # Crawlers announce themselves as "<name>bot/<version>" (Googlebot/2.1, bingbot/2.0 …).
        ("bot", r"[a-z]bot/\d|\bcrawler\b|\bspider\b"),
    )
)

_APPLE_MPP = "Mozilla/5.0"
# Fetch images when a person opens the mail, but never follow links: links open in a browser.
_IMAGE_FETCHERS = (
    ("gmail-proxy", "GoogleImageProxy"),
    ("yahoo-proxy", "YahooMailProxy"),
    ("outlook", "Microsoft Outlook"),
)


def user_agent_class(user_agent: str | None) -> str:
    """Name the kind of client a user agent belongs to."""
    ua = (user_agent or "").strip()
    if not ua:
        return "unknown"
    if ua == _APPLE_MPP:
        return "apple-mpp"
    for name, marker in _IMAGE_FETCHERS:
        if marker in ua:
            return name
    for name, pattern in _SCANNERS:
        if pattern.search(ua):
            return f"scanner:{name}"
    return "browser"


def classify(
    kind: str,
    user_agent: str | None,
    method: str,
    seconds_since_delivery: float | None,
    recent_clicks: list[tuple[int, float]],
    is_honeypot: bool,
) -> Verdict:
    """Decide whether an event was made by a machine.

    `recent_clicks` are (link id, seconds ago) of the recipient's clicks on this mailing,
    this click included (at 0 seconds ago).
    """
    ua_class = user_agent_class(user_agent)
    is_click = kind == "click"
    if is_click and is_honeypot:
        return Verdict(True, "honeypot", ua_class)
    if (method or "GET").upper() == "HEAD":
        return Verdict(True, "head-request", ua_class)
    if ua_class.startswith("scanner:"):
        return Verdict(True, ua_class, ua_class)
    if ua_class == "apple-mpp":
        return Verdict(True, "bare-user-agent" if is_click else "apple-mpp", ua_class)
    if ua_class in ("gmail-proxy", "yahoo-proxy", "outlook") and is_click:
        return Verdict(True, "image-fetcher-click", ua_class)
    if ua_class == "unknown":
        return Verdict(True, "no-user-agent", ua_class)
    if is_click:
        if seconds_since_delivery is not None and seconds_since_delivery < CLICK_TOO_FAST_SECONDS:
            return Verdict(True, "too-fast", ua_class)
        if is_burst(recent_clicks):
            return Verdict(True, "burst", ua_class)
    return Verdict(False, "", ua_class)


def is_burst(recent_clicks: list[tuple[int, float]]) -> bool:
    """Return whether enough distinct links were clicked within the burst window."""
    links = {link for link, ago in recent_clicks if 0 <= ago <= BURST_WINDOW_SECONDS}
    return len(links) >= BURST_LINKS
