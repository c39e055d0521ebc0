"""The url enricher against known answers."""

from __future__ import annotations

import json

from helpers.enrichers import enrich


def test_a_utm_link_is_taken_apart() -> None:
    url = (
        "https://www.shop.example.co.uk/products/shoes?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=spring_sale&utm_term=red+shoes&utm_content=hero&size=42&tag=a&tag=b"
    )
    [row] = enrich("url", [{"url": url, "referrer": None}])
    assert row == {
        "url_scheme": "https",
        "url_host": "www.shop.example.co.uk",
        "url_domain": "example.co.uk",
        "url_suffix": "co.uk",
        "url_path": "/products/shoes",
        "url_query": row["url_query"],
        "url_utm_source": "newsletter",
        "url_utm_medium": "email",
        "url_utm_campaign": "spring_sale",
        "url_utm_term": "red shoes",
        "url_utm_content": "hero",
        "url_referrer_class": "direct",
    }
    assert json.loads(row["url_query"]) == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring_sale",
        "utm_term": "red shoes",
        "utm_content": "hero",
        "size": "42",
        "tag": ["a", "b"],
    }


def test_hosts_ports_and_bare_urls() -> None:
    rows = enrich(
        "url",
        [
            {"url": "HTTP://Blog.Example.COM:8080/a/b"},
            {"url": "www.example.org/pricing"},
            {"url": "/relative/path?x=1"},
            {"url": "http://localhost:3000/"},
            {"url": "http://[::1"},
            {"url": None},
            {"url": "https://foo.github.io/x"},
        ],
        referrer_field=None,
    )
    got = [
        (r["url_scheme"], r["url_host"], r["url_domain"], r["url_suffix"], r["url_path"])
        for r in rows
    ]
    assert got == [
        ("http", "blog.example.com", "example.com", "com", "/a/b"),
        (None, "www.example.org", "example.org", "org", "/pricing"),
        (None, None, None, None, "/relative/path"),
        ("http", "localhost", None, None, "/"),
        (None, None, None, None, None),
        (None, None, None, None, None),
        # the ICANN section of the list only: github.io is a private suffix
        ("https", "foo.github.io", "github.io", "io", "/x"),
    ]
    assert "url_referrer_class" not in rows[0]


def test_referrer_classes() -> None:
    page = "https://www.example.com/landing"
    referrers = {
        "https://www.google.co.uk/search?q=shoes": "search",
        "https://duckduckgo.com/": "search",
        "https://www.bing.com/search?q=x": "search",
        "https://t.co/abc": "social",
        "https://m.facebook.com/": "social",
        "https://www.linkedin.com/feed/": "social",
        "https://shop.example.com/cart": "internal",
        "https://www.example.com/": "internal",
        "https://news.ycombinator.com/": "other",
        "": "direct",
        None: "direct",
    }
    rows = enrich("url", [{"url": page, "referrer": r} for r in referrers])
    assert [r["url_referrer_class"] for r in rows] == list(referrers.values())


def test_options_name_the_field_and_the_prefix() -> None:
    [row] = enrich(
        "url",
        [{"page_url": "https://a.example.net/?utm_source=x", "ref": "https://a.example.net/"}],
        field="page_url",
        referrer_field="ref",
        prefix="page_",
    )
    assert row["page_domain"] == "example.net"
    assert row["page_utm_source"] == "x"
    assert row["page_referrer_class"] == "internal"


def test_answers_are_the_same_when_cached() -> None:
    rows = [{"url": f"https://s{i % 3}.example.com/p?i={i % 2}"} for i in range(10)]
    assert enrich("url", rows) == enrich("url", rows[::-1])[::-1]
