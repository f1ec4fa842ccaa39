"""Typed settings: flags > environment (``BACKBEAT_*``) > defaults.

The CLI builds one :class:`Settings` per command and passes the parts each layer needs;
library code never reads the environment itself. Tests construct settings explicitly, so a
developer's environment never leaks into them.

Next: ``cli.py`` (where flags are merged in).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings.

    Attributes:
        store: where results go: a folder (the embedded DuckDB store) or a store URL.
        lateness_ms: allowed lateness of events behind a partition's event time.
        max_batch_events: messages per micro-batch at most.
        log_level: Python logging level name.
        api_token: when set, the API and the dashboard require it (``BACKBEAT_API_TOKEN``).
    """

    model_config = SettingsConfigDict(env_prefix="BACKBEAT_", extra="ignore")

    store: str = "backbeat-data"
    lateness_ms: int = Field(default=120_000, ge=0)
    max_batch_events: int = Field(default=500_000, ge=1)
    log_level: str = "WARNING"
    api_token: SecretStr | None = None
