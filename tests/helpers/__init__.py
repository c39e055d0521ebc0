"""Test support: a real server on loopback, tenants and keys, subprocess servers."""
