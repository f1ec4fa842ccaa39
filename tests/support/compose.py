"""``deploy/compose.yaml`` as the tests read it: its services, which of them run backbeat,
their argument lists, and a check that an argument list parses with the CLI.

:func:`parse_cli` walks backbeat's Typer app as Click would for ``backbeat ARGS`` — the root
options, then each sub-command — building every context (options converted and checked:
unknown flags, bad values, out-of-range numbers fail) without running anything.
:func:`with_flags` replaces the values of flags in an argument list (``--port 8000`` ->
``--port 43121``; ``--sink-option lake.endpoint=...`` by its key), which is how the smoke
test points a service's real command at the suite's local servers.

Next: ``tests/deploy/test_compose.py`` (the file's structure), ``tests/deploy/test_stack.py``
(its commands run).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import typer
import yaml
from typer._click.core import Context
from typer.core import TyperGroup

from backbeat.commands import app

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"
DEPLOY = COMPOSE.parent


def compose() -> dict[str, Any]:
    """The compose file as YAML (anchors and merge keys resolved, ``${...}`` left as is)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def runs_backbeat(service: Mapping[str, Any]) -> bool:
    """Does the service run the project's image with its ``backbeat`` entrypoint?"""
    return str(service.get("image", "")).startswith(("${BACKBEAT_IMAGE", "${BACKBEAT_SPARK_IMAGE"))


def backbeat_commands() -> dict[str, list[str]]:
    """``{service: argv after 'backbeat'}`` for every service whose command is backbeat's
    (those with another entrypoint, such as Spark's ``spark-class``, are left out)."""
    return {
        name: [str(arg) for arg in service["command"]]
        for name, service in services().items()
        if runs_backbeat(service) and "entrypoint" not in service
    }


def healthcheck_commands() -> dict[str, list[str]]:
    """``{service: argv after 'backbeat'}`` of every healthcheck that runs ``backbeat``."""
    found = {}
    for name, service in services().items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "backbeat"]:
            found[name] = [str(arg) for arg in test[2:]]
    return found


class CliParseError(Exception):
    """An argument list the CLI refuses (the one-line error it prints)."""


def parse_cli(argv: list[str]) -> Context:
    """Parse ``backbeat *argv`` down to its leaf command without running it; the leaf's
    context (its ``params``).

    Raises:
        CliParseError: the CLI refuses it (an unknown command or flag, a bad value), with
            the one-line error the CLI prints.
    """
    errors = io.StringIO()
    try:
        with redirect_stderr(errors):
            command = typer.main.get_command(app)
            ctx = command.make_context("backbeat", list(argv))
            while isinstance(command, TyperGroup):
                rest = [*ctx._protected_args, *ctx.args]
                name, found, rest = command.resolve_command(ctx, rest)
                if found is None:
                    raise CliParseError(f"backbeat {argv}: no command {name!r}")
                command = found
                ctx = command.make_context(str(name), rest, parent=ctx)
    except (typer.Exit, Exception) as exc:
        if isinstance(exc, CliParseError):
            raise
        said = " ".join(errors.getvalue().split()) or repr(exc)
        raise CliParseError(f"backbeat {' '.join(argv)}: {said}") from None
    if ctx.args:
        raise CliParseError(f"backbeat {' '.join(argv)}: unexpected arguments {ctx.args}")
    return ctx


def with_flags(argv: list[str], values: Mapping[str, str]) -> list[str]:
    """``argv`` with the value after each flag of ``values`` replaced. A key ``--flag`` names
    a flag; ``--flag KEY=`` (a space, then a prefix) names the ``KEY=...`` value of a
    repeatable flag. A key that matches nothing raises ``KeyError`` (the file changed)."""
    out = list(argv)
    for key, value in values.items():
        flag, _, prefix = key.partition(" ")
        hits = [
            i + 1 for i, arg in enumerate(out[:-1]) if arg == flag and out[i + 1].startswith(prefix)
        ]
        if not hits:
            raise KeyError(f"{key!r} is not in {argv}")
        for index in hits:
            out[index] = value
    return out


_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """``${NAME}``, ``${NAME:-default}`` and ``${NAME-default}`` replaced as Compose does
    (``variables`` stand for the shell and ``.env``)."""

    def one(found: re.Match[str]) -> str:
        name, how, default = found.group(1), found.group(2), found.group(3) or ""
        given = variables.get(name)
        if how == ":-" and not given:
            return default
        if how == "-" and given is None:
            return default
        return given or ""

    return _VARIABLE.sub(one, value)


def service_env(service: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    """A service's ``environment:`` as the container gets it: interpolated, and a key
    without a value (passed through from the shell) taken from ``variables`` or left out."""
    env: dict[str, str] = {}
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            if key in variables:
                env[key] = variables[key]
            continue
        env[key] = interpolate(str(value), variables)
    return env


def without_flags(argv: list[str], *flags: str) -> list[str]:
    """``argv`` without each of ``flags`` and the value after it."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return out
