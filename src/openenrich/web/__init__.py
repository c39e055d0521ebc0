"""Outbound HTTP: the SSRF guard every request to a user-given URL passes."""
