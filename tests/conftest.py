"""Shared test setup: tests never read a developer's ``BACKBEAT_*`` settings."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BACKBEAT_"):
            monkeypatch.delenv(name)
