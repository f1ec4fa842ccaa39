"""The command line's grammar around Typer: usage errors in one line, several values after a
repeatable option.

:class:`BackbeatGroup` is the class of the app and of its sub-apps. A usage error (a bad flag
value, an unknown option or command, a missing argument) is one line on stderr and exit code
1, like every other error of a command (``error: --users: 'abc' is not a valid integer``),
instead of Typer's box and exit code 2; ``--help`` and a bare ``backbeat`` still show help.
A repeatable option takes every value up to the next option, so ``--input a b`` is
``--input a --input b`` (in commands without positional arguments, where that cannot be
ambiguous).

Next: ``__init__.py`` (the app), ``common.py`` (the one-line errors of command bodies).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from typer._click.core import Command, Context
from typer._click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from backbeat.commands.common import fail

_RANGES = {
    "greater_than_equal": ("too small", "at least", "ge"),
    "greater_than": ("too small", "more than", "gt"),
    "less_than_equal": ("too large", "at most", "le"),
    "less_than": ("too large", "less than", "lt"),
}
_KINDS = {
    "int_parsing": "a valid integer",
    "int_from_float": "a valid integer",
    "float_parsing": "a valid number",
    "bool_parsing": "true or false",
}


class BackbeatGroup(TyperGroup):
    """A Typer group whose usage errors are one line and exit code 1, and whose commands'
    repeatable options take several values."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _one_line():
            return super().invoke(ctx)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return name, command, rest if command is None else spread(command, rest)


def spread(command: Command, args: Sequence[str]) -> list[str]:
    """``args`` with each value after a repeatable option's first one given its own flag
    (``--input a b`` -> ``--input a --input b``), up to the next option or ``--``. Commands
    with positional arguments are left alone (their arguments could not be told apart)."""
    if any(isinstance(p, TyperArgument) for p in command.params):
        return list(args)
    repeatable = {
        name for p in command.params if isinstance(p, TyperOption) and p.multiple for name in p.opts
    }
    out: list[str] = []
    current: str | None = None  # the repeatable option the values go to
    takes_value = False  # the token is the value of the option just before it
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        if takes_value:
            out.append(arg)
            takes_value = False
        elif arg.startswith("-") and arg != "-":
            name, eq, _ = arg.partition("=")
            current = name if name in repeatable else None
            takes_value = current is not None and not eq
            out.append(arg)
        else:
            out.extend([current, arg] if current is not None else [arg])
    return out


@contextmanager
def _one_line() -> Iterator[None]:
    """Turn a usage error into one line on stderr and exit code 1 (help is left as it is)."""
    try:
        yield
    except NoArgsIsHelpError:
        raise
    except UsageError as exc:  # with --debug too: its traceback would say nothing more
        fail("error", describe(exc))
        raise typer.Exit(1) from None


def describe(exc: UsageError) -> str:
    """A usage error as one line naming the flag and the value, and what it should be."""
    if (
        isinstance(exc, BadParameter)
        and not isinstance(exc, MissingParameter)
        and exc.param is not None
    ):
        return f"{_flag(exc.param, exc.ctx)}: {_problem(exc)}"
    text = " ".join(exc.format_message().split()).rstrip(".")
    text = text[:1].lower() + text[1:] if text[1:2].islower() else text
    return text if exc.ctx is None else f"{text} (see {exc.ctx.command_path} --help)"


def _flag(param: Any, ctx: Context | None) -> str:
    """How the user wrote a parameter: its long option, else the command it is given to."""
    if isinstance(param, TyperOption) and param.opts:
        return max(param.opts, key=len)
    return ctx.command_path if ctx is not None else str(param.name)


def _problem(exc: BadParameter) -> str:
    """What is wrong with the value, from the validation error behind ``exc`` when there is
    one (Typer validates values with pydantic)."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return exc.message
    first: dict[str, Any] = errors()[0]
    value, kind, limits = first.get("input"), first.get("type", ""), first.get("ctx") or {}
    if kind in _RANGES:
        size, bound, key = _RANGES[kind]
        return f"{value!r} is {size} ({bound} {limits.get(key):g})"
    if kind in _KINDS:
        return f"{value!r} is not {_KINDS[kind]}"
    if kind == "value_error" and "error" in limits:
        return str(limits["error"]).rstrip(".")
    return f"{value!r}: {str(first.get('msg', exc.message)).replace('Input should', 'should')}"
