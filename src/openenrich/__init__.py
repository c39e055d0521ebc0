"""OpenEnrich: a self-hosted data-enrichment server."""

__version__ = "0.1.0"
