"""The enrichers' part of the server: the session state table, and its housekeeping."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.enrichers import models
from openenrich.enrichers.session import purge_sessions

COMPONENT = Component(name="enrichers", models=models, housekeeping=[purge_sessions])
