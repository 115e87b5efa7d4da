"""Machine rules on real user-agent strings seen on open pixels and tracked links."""

from __future__ import annotations

import pytest

from app.tracking.machine import Verdict, classify, is_burst, user_agent_class

# Sources: the UA strings Gmail's and Yahoo's proxies announce (also listed in uap-core and
# many trackers' tests), Apple MPP's bare "Mozilla/5.0" (ua-parser/uap-core#509), scanner
# strings from Braze's and Mautic's bot-click documentation and issues.
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MPP = "Mozilla/5.0"
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OUTLOOK = (
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; "
    ".NET4.0E; Microsoft Outlook 16.0.17928; Microsoft Outlook 16.0.17928; ms-office; "
    "MSOffice 16)"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
ANDROID_GMAIL_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240905.003; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)

SCANNERS = {
    "Barracuda Sentinel (EE)": "scanner:barracuda",
    "python-requests/2.32.3": "scanner:python",
    "Python/3.10 aiohttp/3.8.1": "scanner:python",
    "curl/8.5.0": "scanner:curl",
    "Wget/1.21.4": "scanner:wget",
    "Go-http-client/1.1": "scanner:go-http-client",
    "Go-http-client/2.0": "scanner:go-http-client",
    "okhttp/4.10.0": "scanner:java",
    "Java/1.8.0_381": "scanner:java",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)": "scanner:java",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36": "scanner:headless-chrome",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) "
    "BingPreview/1.0b": "scanner:bingpreview",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0": "scanner:fake-edge",
    "Microsoft Office Existence Discovery": "scanner:ms-office",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)": "scanner:ms-office",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "scanner:bot",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": "scanner:bot",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": (
        "scanner:preview"
    ),
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "scanner:preview",
    "Mozilla/5.0 (compatible; Proofpoint)": "scanner:proofpoint",
    "Mimecast URL Protect": "scanner:mimecast",
}


@pytest.mark.parametrize("ua,expected", sorted(SCANNERS.items()))
def test_known_scanners_are_machines_on_opens_and_clicks(ua, expected):
    assert user_agent_class(ua) == expected
    for kind in ("open", "click"):
        verdict = classify(kind, ua, "GET", 3600, [], False)
        assert verdict == Verdict(True, expected, expected)


@pytest.mark.parametrize(
    "ua", [APPLE_MAIL, IPHONE_SAFARI, CHROME, THUNDERBIRD, ANDROID_GMAIL_WEBVIEW, CUBOT_PHONE]
)
def test_people_are_people(ua):
    assert user_agent_class(ua) == "browser"
    assert classify("open", ua, "GET", 5, [], False) == Verdict(False, "", "browser")
    assert classify("click", ua, "GET", 3600, [(1, 0.0)], False) == Verdict(False, "", "browser")


def test_outlook_desktop_opens_are_people_but_its_link_probes_are_not():
    # Outlook's image fetch also says "ms-office", like Office's link probes: the "Microsoft
    # Outlook" token tells them apart.
    assert user_agent_class(OUTLOOK) == "outlook"
    assert classify("open", OUTLOOK, "GET", 60, [], False) == Verdict(False, "", "outlook")
    assert classify("click", OUTLOOK, "GET", 3600, [], False).machine


def test_apple_mail_privacy_protection_opens_are_machine():
    assert classify("open", APPLE_MPP, "GET", 5, [], False) == Verdict(
        True, "apple-mpp", "apple-mpp"
    )
    assert classify("click", APPLE_MPP, "GET", 3600, [], False).machine


def test_gmail_and_yahoo_proxies_open_for_people_but_never_click():
    assert classify("open", GMAIL, "GET", 30, [], False) == Verdict(False, "", "gmail-proxy")
    assert classify("open", YAHOO, "GET", 30, [], False) == Verdict(False, "", "yahoo-proxy")
    assert classify("click", GMAIL, "GET", 3600, [], False).reason == "image-fetcher-click"


def test_honeypot_and_head_are_machines_whatever_the_user_agent():
    assert classify("click", CHROME, "GET", 3600, [], True) == Verdict(True, "honeypot", "browser")
    assert classify("click", CHROME, "HEAD", 3600, [], False).reason == "head-request"
    assert classify("open", CHROME, "head", None, [], False).reason == "head-request"


def test_missing_user_agent_is_a_machine():
    assert classify("open", "", "GET", None, [], False) == Verdict(True, "no-user-agent", "unknown")
    assert classify("click", None, "GET", None, [], False).machine


def test_click_within_ten_seconds_of_delivery_is_a_machine():
    assert classify("click", CHROME, "GET", 9.9, [], False).reason == "too-fast"
    assert not classify("click", CHROME, "GET", 10.0, [], False).machine
    assert not classify("click", CHROME, "GET", None, [], False).machine
    # Opens are not timed: Gmail's proxy fetches the moment a fast reader opens.
    assert not classify("open", GMAIL, "GET", 2, [], False).machine


def test_three_distinct_links_within_two_seconds_is_a_burst():
    burst = [(1, 1.5), (2, 0.7), (3, 0.0)]
    assert classify("click", CHROME, "GET", 600, burst, False).reason == "burst"
    assert not is_burst([(1, 1.0), (1, 0.5), (2, 0.0)])  # same link twice is two links
    assert not is_burst([(1, 2.5), (2, 1.0), (3, 0.0)])  # the first is outside the window
    assert is_burst([(1, 2.0), (2, 1.0), (3, 0.0), (4, 0.0)])
