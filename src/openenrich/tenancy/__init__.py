"""Organisations, their live and test environments, API keys, roles, plans and rate limits."""
