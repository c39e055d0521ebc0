"""Enrichers: named functions from records to added fields, built on the platform below
them. Stream templates and pipeline steps run the batch enrichers of the registry; lead
columns use the scrape enricher; the verification tools share the pure checks (phone
numbers, identifiers, Luhn) with them. docs/enrichers.md documents each one.

registry.py      the registry: Enricher, OutputColumn, EnricherEnv, StreamScope, @register,
                 get/registered/build (options checked with a clear 400)
columns.py       Arrow helpers: a column whatever its type, per-distinct-value answers
url.py, user_agent.py, geo_ip.py, session.py, currency.py, phone.py, email_domain.py,
identifiers.py   the built-in batch enrichers (session keeps state in models.py's table)
mask.py          detect(array, kind) and mask(array, method, …) for the mask step, and the
                 `mask` enricher
templates.py     BUILTIN_TEMPLATES: clickstream and transaction
component.py     the session table and its housekeeping
scrape.py        scrape_and_extract(): read a page and have a model pull named fields out
                 of it, or hand both steps to a Firecrawl-compatible API
firecrawl.py     the client of a Firecrawl-compatible scrape/extract API
"""
