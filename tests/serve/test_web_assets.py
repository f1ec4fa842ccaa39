"""The dashboard's files as shipped in the package: everything a page loads is local, nothing is
inline (the CSP forbids it), the vendored chart library is the version web/package.json pins,
the login form posts ``token``.

Fast: no server, no browser (``test_dashboard_browser.py`` drives the page itself).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest

WEB = files("backbeat.serve") / "web"
ROOT = Path(__file__).resolve().parents[2]


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.inline: list[str] = []  # what a CSP without 'unsafe-inline' would block

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href", "action") and v]
        if tag == "form":
            self.forms.append(found)
        if tag == "input":
            self.inputs.append(found)
        if tag == "style" or (tag == "script" and not found.get("src")):
            self.inline.append(f"<{tag}>")
        self.inline += [f"{tag} {k}=" for k in found if k == "style" or k.startswith("on")]


def _parse(name: str) -> _Refs:
    parser = _Refs()
    parser.feed((WEB / name).read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("page", ["index.html", "login.html"])
def test_pages_load_only_files_of_this_server(page: str) -> None:
    refs = _parse(page).refs
    assert refs
    for ref in refs:
        assert ref.startswith(("/", "data:")), ref
        assert not ref.startswith("//"), ref
        if ref.startswith("/static/"):
            assert (WEB / "static" / ref.removeprefix("/static/")).is_file(), ref


@pytest.mark.parametrize("page", ["index.html", "login.html"])
def test_pages_have_no_inline_script_or_style(page: str) -> None:
    """The Content-Security-Policy of pages (``serve/headers.py``) allows none."""
    assert _parse(page).inline == []


@pytest.mark.parametrize("name", ["app.js", "foryou.js", "app.css", "login.js"])
def test_scripts_and_styles_name_no_other_host(name: str) -> None:
    text = (WEB / "static" / name).read_text(encoding="utf-8")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text), name


def test_vendored_chart_library_is_the_pinned_version_with_its_licence() -> None:
    pinned = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]["chart.js"]
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/chart.js"]["version"] == pinned
    vendor = WEB / "static" / "vendor"
    head = (vendor / "chart.umd.min.js").read_text(encoding="utf-8")[:200]
    assert f"Chart.js v{pinned}" in head
    assert "MIT License" in (vendor / "chart.js.LICENSE.md").read_text(encoding="utf-8")


def test_swagger_ui_for_docs_is_vendored_too() -> None:
    vendor = WEB / "static" / "vendor"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui.LICENSE"):
        assert (vendor / name).is_file(), name


def test_login_form_posts_a_token_field() -> None:
    login = _parse("login.html")
    assert [(f.get("method"), f.get("action")) for f in login.forms] == [("post", "/login")]
    assert [i.get("name") for i in login.inputs] == ["token"]
