"""The user_agent enricher against known answers."""

from __future__ import annotations

from helpers.enrichers import enrich

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.109 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)


def test_known_user_agents() -> None:
    rows = enrich(
        "user_agent",
        [
            {"user_agent": CHROME_WINDOWS},
            {"user_agent": SAFARI_IPHONE},
            {"user_agent": FIREFOX_LINUX},
            {"user_agent": GOOGLEBOT},
            {"user_agent": HEADLESS},
            {"user_agent": None},
            {"user_agent": CHROME_WINDOWS},
        ],
    )
    assert rows[0] == {
        "ua_browser": "Chrome",
        "ua_browser_version": "120.0.6099",
        "ua_os": "Windows",
        "ua_os_version": "10",
        "ua_device": "Other",
        "ua_is_bot": False,
    }
    assert rows[1] == {
        "ua_browser": "Mobile Safari",
        "ua_browser_version": "17.1",
        "ua_os": "iOS",
        "ua_os_version": "17.1",
        "ua_device": "iPhone",
        "ua_is_bot": False,
    }
    assert (rows[2]["ua_browser"], rows[2]["ua_browser_version"], rows[2]["ua_os"]) == (
        "Firefox",
        "121.0",
        "Linux",
    )
    assert (rows[3]["ua_browser"], rows[3]["ua_device"], rows[3]["ua_is_bot"]) == (
        "Googlebot",
        "Spider",
        True,
    )
    assert rows[4]["ua_is_bot"] is True
    assert set(rows[5].values()) == {None}
    assert rows[6] == rows[0]
