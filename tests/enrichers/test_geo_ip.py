"""The geo_ip enricher: the country from bundled registry data, city/region/ASN from
.mmdb files the test writes, and the address truncated."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.mmdb import write_asn, write_city
from helpers.enrichers import enrich
from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.geo_ip import anonymize_ip
from openenrich.enrichers.registry import EnricherEnv
from openenrich.errors import BadRequest


def test_the_country_comes_from_the_bundled_registry_data() -> None:
    rows = enrich(
        "geo_ip",
        [
            {"ip": "8.8.8.8"},
            {"ip": " 2001:4860:4860::8888 "},
            {"ip": "81.2.69.142"},
            {"ip": "10.0.0.1"},
            {"ip": "not an ip"},
            {"ip": None},
        ],
    )
    assert [r["geo_country"] for r in rows] == ["US", "US", "GB", None, None, None]
    # Without databases, the rest is null.
    assert {r["geo_city"] for r in rows} == {None}
    assert {r["geo_asn"] for r in rows} == {None}


def test_city_region_and_asn_come_from_the_operators_databases(tmp_path: Path) -> None:
    settings = Settings(
        geoip_city_mmdb=write_city(tmp_path / "city.mmdb"),
        geoip_asn_mmdb=write_asn(tmp_path / "asn.mmdb"),
    )
    rows = enrich(
        "geo_ip",
        [{"ip": "8.8.8.8"}, {"ip": "81.2.69.142"}, {"ip": "2a02:8070::1"}, {"ip": "1.1.1.1"}],
        settings,
    )
    got = [
        (
            r["geo_country"],
            r["geo_region"],
            r["geo_region_code"],
            r["geo_city"],
            r["geo_asn"],
            r["geo_as_org"],
        )
        for r in rows
    ]
    assert got == [
        ("US", "California", "CA", "Mountain View", 15169, "GOOGLE"),
        ("GB", "England", "ENG", "London", None, None),
        ("DE", "Bavaria", "BY", "Munich", 3209, "Vodafone GmbH"),
        ("AU", None, None, None, None, None),
    ]


def test_a_database_that_cannot_be_read_is_refused_when_built(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    env = EnricherEnv(Settings(geoip_city_mmdb=broken))
    with pytest.raises(BadRequest, match="enricher 'geo_ip': cannot open the MaxMind database"):
        registry.build("geo_ip", {}, env)


def test_anonymize_truncates_to_24_and_48_bits() -> None:
    rows = enrich(
        "geo_ip",
        [
            {"client_ip": "203.0.113.77"},
            {"client_ip": "2001:db8:abcd:12:1:2:3:4"},
            {"client_ip": "x"},
        ],
        field="client_ip",
        anonymize=True,
    )
    assert [r["ip_anonymized"] for r in rows] == ["203.0.113.0", "2001:db8:abcd::", None]
    assert anonymize_ip("8.8.4.4") == "8.8.4.0"


@pytest.mark.anyio
async def test_the_process_holds_one_env_and_closes_its_readers(tmp_path: Path) -> None:
    from openenrich.enrichers.component import lifespan
    from openenrich.http.state import AppState

    state = AppState(Settings(geoip_city_mmdb=write_city(tmp_path / "city.mmdb")))
    async with lifespan(state):
        env = state.get(EnricherEnv)
        first = registry.build("geo_ip", {}, env)
        second = registry.build("geo_ip", {"prefix": "g_"}, env)
        assert first._city is second._city  # one reader for every stream
    with pytest.raises(ValueError, match="closed"):
        first._city.get("8.8.8.8")  # type: ignore[union-attr]
