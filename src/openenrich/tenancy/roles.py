from __future__ import annotations

import enum


class Environment(enum.StrEnum):
    LIVE = "live"
    TEST = "test"


class Role(enum.StrEnum):
    ADMIN = "admin"  # manages keys, webhooks, workflows, plans
    MEMBER = "member"  # reads and writes the organisation's data
    READ = "read"  # GET only


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
