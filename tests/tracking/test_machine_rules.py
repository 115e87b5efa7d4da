"""Pin machine.py rule by rule: a user agent for every scanner pattern, and each rule's precedence.

tests/tracking/test_machine.py has the story per client; this file is the table a refactor of
the rules must keep. The strings are ones these clients send (from the vendors' documentation,
uap-core and bot-click reports) or their documented product tokens.

These tests need no database (the mutation runner runs them with --noconftest).
"""

from __future__ import annotations

import dataclasses

import pytest

from app.tracking.machine import (
    BURST_LINKS,
    BURST_WINDOW_SECONDS,
    CLICK_TOO_FAST_SECONDS,
    Verdict,
    classify,
    is_burst,
    user_agent_class,
)
from tests.tracking.test_machine import APPLE_MPP, CHROME, GMAIL, OUTLOOK, YAHOO

# Every alternative of every scanner pattern, with the class it must get.
SCANNER_TABLE = [
    ("barracuda", "Barracuda Sentinel (EE)"),
    ("barracuda", "Mozilla/5.0 (compatible; BarracudaCentral)"),
    ("mimecast", "Mimecast URL Protect"),
    ("proofpoint", "Mozilla/5.0 (compatible; Proofpoint URL Defense)"),
    ("symantec", "Symantec Email Security.cloud link scanner"),
    ("symantec", "MessageLabs ClickTime"),
    ("cisco", "Mozilla/5.0 (compatible; IronPort Web Reputation)"),
    ("cisco", "Cisco Secure Email URL Analysis"),
    ("trend-micro", "Trend Micro Email Security"),
    ("trend-micro", "TrendMicro Link Scanner"),
    ("trend-micro", "Mozilla/5.0 (compatible; TMES 1.0)"),
    ("fortinet", "FortiMail URL Click Protection"),
    ("fortinet", "FortiGuard Web Filter"),
    ("fortinet", "Fortinet-Sandbox/4.2"),
    ("sophos", "Sophos Email Time-of-Click"),
    ("safelinks", "Microsoft SafeLinks Detonation"),
    ("ms-office", "Microsoft Office Existence Discovery"),
    ("ms-office", "Mozilla/4.0 (compatible; ms-office; MSOffice rmj)"),
    ("ms-office", "Microsoft Office Word 2014 (compatible; MSOffice 16)"),
    (
        "bingpreview",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    ),
    (
        "fake-edge",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0",
    ),
    (
        "headless-chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
    ),
    (
        "phantomjs",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
    ),
    ("curl", "curl/7.81.0"),
    ("wget", "Wget/1.21.2"),
    ("python", "python-requests/2.31.0"),
    ("python", "Python-urllib/3.11"),
    ("python", "python-httpx/0.27.0"),
    ("python", "aiohttp/3.9.5"),
    ("python", "Python/3.12 websockets/12.0"),
    ("go-http-client", "Go-http-client/1.1"),
    ("java", "Java/17.0.9"),
    ("java", "Apache-HttpClient/5.2.1 (Java/17.0.9)"),
    ("java", "okhttp/4.12.0"),
    ("node", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"),
    ("node", "axios/1.6.7"),
    ("node", "undici"),
    ("perl", "libwww-perl/6.72"),
    ("preview", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
    ("preview", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
    ("preview", "WhatsApp/2.23.20.0"),
    ("preview", "TelegramBot (like TwitterBot)"),
    ("preview", "Twitterbot/1.0"),
    # Discordbot/2.0 is also "<name>bot/<digit>": the preview rule comes first.
    ("preview", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
    ("bot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ("bot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"),
    ("bot", "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"),
    ("bot", "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)"),
    ("bot", "Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/crawler)"),
]

# Look like a scanner pattern but are not: the anchors and word boundaries matter.
NOT_SCANNERS = [
    "Mozilla/5.0 (X11; Linux x86_64) libcurl/8.5.0",  # curl only at the start
    "Mozilla/5.0 Wget/1.21",  # wget only at the start
    "Mozilla/5.0 (Linux; Android 14) Java/21 Mobile",  # Java/ only at the start
    "Mozilla/5.0 (compatible; robot-arm 2.0)",  # not "<name>bot/<digit>"
    "Mozilla/5.0 (Windows NT 10.0) Edge/12.246 Mozilla/5.0 Chrome",  # fake Edge is at the end
]

SEEN = 3600.0  # seconds since delivery: late enough to be a person


@pytest.mark.parametrize("name, ua", SCANNER_TABLE, ids=[ua[:40] for _, ua in SCANNER_TABLE])
def test_every_scanner_pattern_names_its_scanner(name, ua):
    expected = f"scanner:{name}"
    assert user_agent_class(ua) == expected
    assert user_agent_class(ua.upper()) == expected  # patterns ignore case
    for kind in ("open", "click"):
        assert classify(kind, ua, "GET", SEEN, [], False) == Verdict(True, expected, expected)


@pytest.mark.parametrize("ua", NOT_SCANNERS)
def test_lookalikes_are_browsers(ua):
    assert user_agent_class(ua) == "browser"


@pytest.mark.parametrize(
    "ua, expected",
    [
        (APPLE_MPP, "apple-mpp"),
        (" Mozilla/5.0 \t", "apple-mpp"),
        ("mozilla/5.0", "browser"),
        ("Mozilla/5.0 (Macintosh)", "browser"),
        (GMAIL, "gmail-proxy"),
        (YAHOO, "yahoo-proxy"),
        (OUTLOOK, "outlook"),  # also says ms-office: image fetchers are checked first
        ("Microsoft Outlook 16.0.5; ms-office; MSOffice 16", "outlook"),
        (None, "unknown"),
        ("", "unknown"),
        ("   ", "unknown"),
        (CHROME, "browser"),
    ],
)
def test_user_agent_classes(ua, expected):
    assert user_agent_class(ua) == expected


# (kind, user agent, method, seconds since delivery, recent clicks, honeypot) -> verdict
RULES = [
    # the honeypot beats everything, on clicks only
    (("click", CHROME, "GET", SEEN, [], True), Verdict(True, "honeypot", "browser")),
    (("click", "curl/8.5.0", "HEAD", 1, [], True), Verdict(True, "honeypot", "scanner:curl")),
    (("click", None, "GET", 1, [], True), Verdict(True, "honeypot", "unknown")),
    (("open", CHROME, "GET", SEEN, [], True), Verdict(False, "", "browser")),
    # HEAD beats the user agent, on opens and clicks, in any case
    (
        ("click", "curl/8.5.0", "HEAD", SEEN, [], False),
        Verdict(True, "head-request", "scanner:curl"),
    ),
    (("open", GMAIL, "HEAD", SEEN, [], False), Verdict(True, "head-request", "gmail-proxy")),
    (("open", CHROME, "Head", SEEN, [], False), Verdict(True, "head-request", "browser")),
    (("open", CHROME, None, SEEN, [], False), Verdict(False, "", "browser")),
    (("open", CHROME, "", SEEN, [], False), Verdict(False, "", "browser")),
    (("open", CHROME, "POST", SEEN, [], False), Verdict(False, "", "browser")),
    # scanners beat the timing rules
    (("click", "curl/8.5.0", "GET", 1, [], False), Verdict(True, "scanner:curl", "scanner:curl")),
    # Apple MPP
    (("open", APPLE_MPP, "GET", SEEN, [], False), Verdict(True, "apple-mpp", "apple-mpp")),
    (("click", APPLE_MPP, "GET", SEEN, [], False), Verdict(True, "bare-user-agent", "apple-mpp")),
    # image fetchers: opens are people, clicks are not, however late
    (("open", GMAIL, "GET", 1, [], False), Verdict(False, "", "gmail-proxy")),
    (("open", YAHOO, "GET", 1, [], False), Verdict(False, "", "yahoo-proxy")),
    (("open", OUTLOOK, "GET", 1, [], False), Verdict(False, "", "outlook")),
    (("click", GMAIL, "GET", SEEN, [], False), Verdict(True, "image-fetcher-click", "gmail-proxy")),
    (("click", YAHOO, "GET", SEEN, [], False), Verdict(True, "image-fetcher-click", "yahoo-proxy")),
    (("click", OUTLOOK, "GET", SEEN, [], False), Verdict(True, "image-fetcher-click", "outlook")),
    (("click", GMAIL, "GET", 1, [], False), Verdict(True, "image-fetcher-click", "gmail-proxy")),
    # no user agent
    (("open", None, "GET", SEEN, [], False), Verdict(True, "no-user-agent", "unknown")),
    (("click", "  ", "GET", 1, [], False), Verdict(True, "no-user-agent", "unknown")),
    # too fast, clicks only; it beats the burst rule
    (("click", CHROME, "GET", 0, [], False), Verdict(True, "too-fast", "browser")),
    (("click", CHROME, "GET", -5, [], False), Verdict(True, "too-fast", "browser")),
    (("click", CHROME, "GET", 9.999, [], False), Verdict(True, "too-fast", "browser")),
    (("click", CHROME, "GET", 10.0, [], False), Verdict(False, "", "browser")),
    (("click", CHROME, "GET", None, [], False), Verdict(False, "", "browser")),
    (
        ("click", CHROME, "GET", 1, [(1, 0.2), (2, 0.1), (3, 0.0)], False),
        Verdict(True, "too-fast", "browser"),
    ),
    (("open", CHROME, "GET", 0, [], False), Verdict(False, "", "browser")),
    # bursts, clicks only
    (
        ("click", CHROME, "GET", SEEN, [(1, 2.0), (2, 1.0), (3, 0.0)], False),
        Verdict(True, "burst", "browser"),
    ),
    (
        ("click", CHROME, "GET", None, [(1, 2.0), (2, 1.0), (3, 0.0)], False),
        Verdict(True, "burst", "browser"),
    ),
    (
        ("open", CHROME, "GET", SEEN, [(1, 2.0), (2, 1.0), (3, 0.0)], False),
        Verdict(False, "", "browser"),
    ),
    (
        ("click", CHROME, "GET", SEEN, [(1, 2.01), (2, 1.0), (3, 0.0)], False),
        Verdict(False, "", "browser"),
    ),
]


@pytest.mark.parametrize("args, verdict", RULES, ids=[str(i) for i in range(len(RULES))])
def test_rule_table(args, verdict):
    assert classify(*args) == verdict


@pytest.mark.parametrize(
    "clicks, burst",
    [
        ([], False),
        ([(1, 0.0), (2, 0.0)], False),
        ([(1, 0.0), (2, 0.0), (3, 0.0)], True),
        ([(1, 2.0), (2, 2.0), (3, 2.0)], True),  # the window includes its edge
        ([(1, 2.001), (2, 0.0), (3, 0.0)], False),
        ([(1, -0.5), (2, 0.0), (3, 0.0)], False),  # a click from the future is not counted
        ([(1, 0.0), (1, 0.1), (2, 0.2), (2, 0.3)], False),  # distinct links, not clicks
        ([(7, 0.5), (8, 0.5), (9, 0.5), (10, 0.5)], True),
    ],
)
def test_burst_counts_distinct_links_inside_the_window(clicks, burst):
    assert is_burst(clicks) is burst


def test_thresholds():
    assert (CLICK_TOO_FAST_SECONDS, BURST_WINDOW_SECONDS, BURST_LINKS) == (10.0, 2.0, 3)


def test_verdicts_are_immutable_values():
    verdict = classify("open", CHROME, "GET", SEEN, [], False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.machine = True  # type: ignore[misc]
    assert not hasattr(verdict, "__dict__")
    assert hash(verdict) == hash(Verdict(False, "", "browser"))
