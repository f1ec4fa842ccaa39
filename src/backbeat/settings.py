"""Typed settings: flags > environment (``BACKBEAT_*``) > defaults.

The CLI builds one :class:`Settings` per command and passes the parts each layer needs;
library code never reads the environment itself. Tests construct settings explicitly, so a
developer's environment never leaks into them.

Next: ``cli.py`` (where flags are merged in), ``serve/auth.py`` (what the web server makes of
the login settings; ``docs/security.md`` explains them).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings.

    Attributes:
        store: where results go: a folder (the embedded DuckDB store) or a store URL.
        lateness_ms: allowed lateness of events behind a partition's event time.
        max_batch_events: messages per micro-batch at most.
        log_level: Python logging level name.
        log_format: ``text`` (for people) or ``json`` (one JSON object per line, for a log
            collector; ``BACKBEAT_LOG_FORMAT``).
        metrics_host, metrics_port: where ``stream`` serves Prometheus metrics
            (``BACKBEAT_METRICS_HOST``, ``BACKBEAT_METRICS_PORT``); no port: not served.
        api_token: when set, the API and the dashboard require it (``BACKBEAT_API_TOKEN``);
            an empty value is an error, never "no token".
        api_token_previous: a second token accepted while clients move to a new one
            (``BACKBEAT_API_TOKEN_PREVIOUS``); removing it ends the sessions it opened.
        trusted_proxies: addresses or networks of reverse proxies whose ``X-Forwarded-For``
            and ``X-Forwarded-Proto`` are believed (``BACKBEAT_TRUSTED_PROXIES``, commas).
        allowed_hosts: host names served besides ``localhost`` and IP addresses; checked
            when no token is set or when this list is set (``BACKBEAT_ALLOWED_HOSTS``, commas).
        auth_failures_per_minute: failed logins per client address and minute before its
            requests get 429 (``BACKBEAT_AUTH_FAILURES_PER_MINUTE``).
        session_max_age_s: life of a dashboard login (``BACKBEAT_SESSION_MAX_AGE_S``).
    """

    model_config = SettingsConfigDict(env_prefix="BACKBEAT_", extra="ignore")

    store: str = "backbeat-data"
    lateness_ms: int = Field(default=120_000, ge=0)
    max_batch_events: int = Field(default=500_000, ge=1)
    log_level: str = "WARNING"
    log_format: Literal["text", "json"] = "text"
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    api_token: SecretStr | None = None
    api_token_previous: SecretStr | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auth_failures_per_minute: int = Field(default=10, ge=1)
    session_max_age_s: int = Field(default=43_200, ge=1)

    @field_validator("api_token", "api_token_previous")
    @classmethod
    def _not_empty(cls, token: SecretStr | None) -> SecretStr | None:
        """An empty token would silently mean "no auth": refuse it (surrounding blanks, such
        as the newline of a file, are dropped). The error never quotes the token."""
        if token is None:
            return None
        value = token.get_secret_value().strip()
        if not value:
            raise ValueError(
                "is empty, which would serve without a token: set a token "
                "(e.g. `openssl rand -base64 32`) or unset the variable"
            )
        return SecretStr(value)

    @field_validator("trusted_proxies", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [host.lower().rstrip(".") for host in value]
