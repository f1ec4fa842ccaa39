"""A Dockerfile read as data: its stages, each with its instructions (continuation lines
joined, comments dropped), so tests can check what an image is without a container engine.

Only what the tests ask is modelled: ``FROM image AS name``, an instruction's keyword, its
flags (``--mount=...``, ``--interval=...``) and its arguments, and the exec form (``["a",
"b"]``) of ENTRYPOINT, CMD and HEALTHCHECK.

Next: ``tests/deploy/test_image.py``, the ``Dockerfile``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``keyword`` upper-cased, ``args`` after the flags, on one line."""

    keyword: str
    args: str
    flags: tuple[str, ...]
    line: int

    def exec_form(self) -> list[str]:
        """The arguments as the JSON array of the exec form (``HEALTHCHECK CMD [...]``: the
        array after ``CMD``); AssertionError for the shell form."""
        text = (
            self.args.removeprefix("CMD ").strip() if self.keyword == "HEALTHCHECK" else self.args
        )
        assert text.startswith("["), f"line {self.line}: {self.keyword} is not in exec form"
        value = json.loads(text)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not a list"
        assert all(isinstance(v, str) for v in value), f"line {self.line}: not all strings"
        return [str(v) for v in value]


@dataclass
class Stage:
    """``FROM base AS name`` and what follows it up to the next FROM."""

    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with ``keyword``, in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each instruction, continuations joined, comments dropped
    (a comment inside a continued instruction included, as Docker does)."""
    joined: list[tuple[int, str]] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        joined.append((start, " ".join(p for p in parts if p)))
        parts = []
    assert not parts, "the Dockerfile ends inside a continued instruction"
    return joined


_FLAG = re.compile(r"--[a-z-]+=\S+")


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, in order; AssertionError on an instruction before FROM."""
    stages: list[Stage] = []
    for line, content in _logical_lines(text):
        keyword, _, rest = content.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        flags: list[str] = []
        while (found := _FLAG.match(rest)) is not None:
            flags.append(found.group(0))
            rest = rest[found.end() :].strip()
        if keyword == "FROM":
            words = shlex.split(rest)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=words[0], name=name))
            continue
        if keyword == "ARG" and not stages:  # an ARG before the first FROM
            continue
        assert stages, f"line {line}: {keyword} before FROM"
        stages[-1].instructions.append(Instruction(keyword, rest, tuple(flags), line))
    return stages


def chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage ``name`` and the stages it derives from, the outermost (an image) first."""
    by_name = {s.name: s for s in stages}
    found = [by_name[name]]
    while found[0].base in by_name:
        found.insert(0, by_name[found[0].base])
    return found


def effective(stages: list[Stage], name: str, keyword: str) -> list[Instruction]:
    """The ``keyword`` instructions that shape the image of stage ``name``, inherited ones
    first (the last USER, CMD, ENTRYPOINT or HEALTHCHECK is the one that counts)."""
    return [i for stage in chain(stages, name) for i in stage.all(keyword)]


def env(stages: list[Stage], name: str) -> dict[str, str]:
    """The ENV of stage ``name``'s image (``KEY=value`` forms only), inherited ones first."""
    found: dict[str, str] = {}
    for instruction in effective(stages, name, "ENV"):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: write ENV KEY=value"
            found[key] = value
    return found
