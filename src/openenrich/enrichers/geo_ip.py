"""The `geo_ip` enricher: where an IP address is.

The country comes from iptocc, which bundles the five regional internet registries'
delegation files (offline; its Rust lookup answers ~10 million addresses a second). City,
region and autonomous system come from MaxMind-format databases when the operator names
them (`geoip_city_mmdb`, `geoip_asn_mmdb`): GeoLite2/GeoIP2 City and ASN, or any database
with the same record layout (DB-IP's lite files have it). Without them those columns are
null.

`anonymize_ip` is also the mask step's `truncate` for addresses: IPv4 keeps its /24 (the
last octet becomes 0), IPv6 its /48.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import iptocc
import maxminddb
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from openenrich.enrichers.columns import DistinctCache, strings
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)


def anonymize_ip(value: str) -> str | None:
    """The address with its host part zeroed (IPv4 /24, IPv6 /48); None if not an IP."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def open_mmdb(path: Path) -> maxminddb.Reader:
    try:
        return maxminddb.open_database(str(path), maxminddb.MODE_MMAP)
    except (OSError, maxminddb.InvalidDatabaseError) as error:
        raise ValueError(f"cannot open the MaxMind database {path}: {error}") from None


def _name(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    names = record.get("names")
    english = names.get("en") if isinstance(names, dict) else None
    return english if isinstance(english, str) else None


def _lookup(reader: maxminddb.Reader | None, ip: str) -> dict[str, Any] | None:
    if reader is None:
        return None
    try:
        record = reader.get(ip.strip())
    except ValueError:  # not an address
        return None
    return record if isinstance(record, dict) else None


@register
class GeoIpEnricher(Enricher):
    name = "geo_ip"
    version = 1
    description = (
        "Country of an IP address (bundled registry data); city, region and ASN from the "
        "operator's MaxMind-format databases; optionally the address truncated"
    )

    class Options(EnricherOptions):
        field: str = Field(default="ip", min_length=1)
        prefix: str = "geo_"
        anonymize: bool = False  # add `ip_anonymized`: the address truncated to /24 or /48

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        settings = env.settings
        self._city = self._asn = None
        if settings.geoip_city_mmdb is not None:
            path = settings.geoip_city_mmdb
            self._city = env.shared(f"mmdb:{path}", lambda: open_mmdb(path))
        if settings.geoip_asn_mmdb is not None:
            path_asn = settings.geoip_asn_mmdb
            self._asn = env.shared(f"mmdb:{path_asn}", lambda: open_mmdb(path_asn))
        self._places = DistinctCache(self._place)
        self._anonymized = DistinctCache(lambda ip: (anonymize_ip(ip),))

    def inputs(self) -> list[str]:
        return [self.options.field]

    def outputs(self) -> list[OutputColumn]:
        p = self.options.prefix
        columns = [
            OutputColumn(f"{p}country", "string", "ISO 3166-1 alpha-2 country code (US)"),
            OutputColumn(f"{p}region", "string", "region or state (city database)"),
            OutputColumn(f"{p}region_code", "string", "its ISO 3166-2 code part (CA)"),
            OutputColumn(f"{p}city", "string", "city, in English (city database)"),
            OutputColumn(f"{p}asn", "int64", "autonomous system number (ASN database)"),
            OutputColumn(f"{p}as_org", "string", "the autonomous system's organisation"),
        ]
        if self.options.anonymize:
            columns.append(
                OutputColumn("ip_anonymized", "string", "the address truncated to /24 or /48")
            )
        return columns

    def _place(self, ip: str) -> tuple[Any, ...]:
        city = _lookup(self._city, ip) or {}
        subdivisions = city.get("subdivisions")
        region = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else {}
        asn = _lookup(self._asn, ip) or {}
        number = asn.get("autonomous_system_number")
        return (
            _name(region),
            region.get("iso_code") if isinstance(region, dict) else None,
            _name(city.get("city")),
            number if isinstance(number, int) else None,
            asn.get("autonomous_system_organization"),
        )

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        p = self.options.prefix
        ips = strings(table, self.options.field)
        encoded = pc.dictionary_encode(ips)
        distinct = encoded.dictionary.to_pylist()
        countries = pa.array(iptocc.country_code([ip.strip() for ip in distinct]), pa.string())
        result = {f"{p}country": countries.take(encoded.indices)}
        if self._city is not None or self._asn is not None:
            types = [pa.string(), pa.string(), pa.string(), pa.int64(), pa.string()]
            places = self._places.apply(ips, types)
        else:
            places = [pa.nulls(len(ips), t) for t in (pa.string(),) * 3 + (pa.int64(), pa.string())]
        names = ("region", "region_code", "city", "asn", "as_org")
        result.update({f"{p}{name}": values for name, values in zip(names, places, strict=True)})
        if self.options.anonymize:
            (result["ip_anonymized"],) = self._anonymized.apply(ips, [pa.string()])
        return result
