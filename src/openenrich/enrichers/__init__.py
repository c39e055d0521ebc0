"""Enrichers: named functions from records to added fields, built on the platform below
them (`web` to read pages, `llm` to ask models). Stream templates, lead columns and
verification tools are to be built from them; the registry of enrichers will live here.

scrape.py      scrape_and_extract(): read a page and have a model pull named fields out
               of it, or hand both steps to a Firecrawl-compatible API
firecrawl.py   the client of a Firecrawl-compatible scrape/extract API
"""
