"""The clickstream template end to end over HTTP: known answers for every enricher, and
sessions that split at a 31-minute gap and carry across flushes and a restart."""

from __future__ import annotations

import httpx

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
T0 = 1_765_000_000_000  # ms
MINUTE = 60_000


def ingest(client: httpx.Client, key: str, events: list[dict[str, object]]) -> None:
    response = client.post(
        "/ingest", headers=bearer(key), json={"stream_id": "clicks", "data": events}
    )
    assert response.status_code == 200, response.text


def flush(client: httpx.Client, key: str) -> None:
    assert client.post("/streams/clicks/flush", headers=bearer(key)).status_code == 200


def rows(client: httpx.Client, key: str, sql: str) -> list[list[object]]:
    response = client.post("/query", headers=bearer(key), json={"sql": sql})
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


def test_clickstream_enriches_and_sessions_survive_a_restart(
    settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    first = {
        "event": "page_view",
        "url": "https://shop.example.co.uk/p/1?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=xmas",
        "referrer": "https://www.google.com/search?q=shoes",
        "user_agent": CHROME,
        "ip": "8.8.8.8",
        "user_id": "alice",
        "timestamp": T0,
    }
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        created = client.post(
            "/streams",
            headers=bearer(key),
            json={"stream_id": "clicks", "template": "clickstream"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["template"] == "clickstream"
        ingest(
            client,
            key,
            [
                first,
                {
                    **first,
                    "url": "https://shop.example.co.uk/p/2",
                    "timestamp": T0 + 10 * MINUTE,
                    "referrer": "https://shop.example.co.uk/p/1",
                },
                {
                    **first,
                    "user_id": "bot",
                    "user_agent": GOOGLEBOT,
                    "ip": "1.1.1.1",
                    "referrer": "",
                    "timestamp": T0,
                },
            ],
        )
        flush(client, key)
        # 29 minutes after her last event: the same session, in another flush.
        ingest(
            client,
            key,
            [{**first, "url": "https://shop.example.co.uk/p/3", "timestamp": T0 + 39 * MINUTE}],
        )
        flush(client, key)

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        # After a restart: 31 minutes after her last event is a new session.
        ingest(
            client,
            key,
            [{**first, "url": "https://shop.example.co.uk/p/4", "timestamp": T0 + 70 * MINUTE}],
        )
        flush(client, key)
        enriched = rows(
            client,
            key,
            "SELECT url_scheme, url_host, url_domain, url_suffix, url_path, url_utm_source, "
            "url_utm_medium, url_utm_campaign, url_referrer_class, ua_browser, ua_os, ua_is_bot, "
            "geo_country FROM clicks WHERE url_path = '/p/1' AND user_id = 'alice'",
        )
        assert enriched == [
            [
                "https",
                "shop.example.co.uk",
                "example.co.uk",
                "co.uk",
                "/p/1",
                "newsletter",
                "email",
                "xmas",
                "search",
                "Chrome",
                "Windows",
                False,
                "US",
            ]
        ]
        assert rows(
            client, key, "SELECT url_referrer_class FROM clicks WHERE url_path = '/p/2'"
        ) == [["internal"]]
        assert rows(
            client, key, "SELECT ua_is_bot, geo_country FROM clicks WHERE user_id = 'bot'"
        ) == [[True, "AU"]]
        sessions = rows(
            client,
            key,
            "SELECT url_path, session_id, session_seq, session_is_new FROM clicks "
            "WHERE user_id = 'alice' ORDER BY timestamp",
        )
    paths = [path for path, _, _, _ in sessions]
    assert paths == ["/p/1", "/p/2", "/p/3", "/p/4"]
    ids = [session for _, session, _, _ in sessions]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert [(seq, new) for _, _, seq, new in sessions] == [
        (1, True),
        (2, False),
        (3, False),
        (1, True),
    ]
