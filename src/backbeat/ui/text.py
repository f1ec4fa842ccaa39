"""Data as terminal text: shown as written, never read as rich markup, control characters
made visible.

Event text is data: a song named ``Song [feat. Dorian Electra]`` must print as such (rich
would read ``[feat. ...]`` as a style, and ``[/x]`` as a closing tag that fails), and a name
holding ``ESC [31m``, a bell or a C1 control must not move, colour or retitle the terminal.
:func:`visible` turns a value into a string whose control and invisible characters are
escapes (``\\x1b``, ``\\r``, ``\\u202e``: the form ``query dead-letters`` uses for raw
records), and :func:`plain` wraps that in a :class:`rich.text.Text`, which rich never parses
for markup. Every value that reaches a rich console goes through one of them; ``--json``
output does not (JSON escapes it exactly).

Next: ``backbeat.commands.common`` (tables, results and errors), ``live.py`` (the demo view).
"""

from __future__ import annotations

import re
from typing import Final

from rich.style import Style
from rich.text import Text

INVISIBLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""Characters a terminal acts on or hides: C0 (ESC, BEL, CR...), DEL, C1 (CSI ``\\x9b``...),
zero-width characters, bidi overrides and isolates, line and paragraph separators, BOM."""

_SHORT: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def visible(value: object) -> str:
    """``str(value)`` with each control or invisible character (:data:`INVISIBLE`) as an
    escape: ``\\t``, ``\\n``, ``\\r``, ``\\x1b``, ``\\u202e``. Everything else, backslashes and
    square brackets included, is left as written."""
    return INVISIBLE.sub(_escape, str(value))


def plain(value: object, style: str | Style = "") -> Text:
    """``value`` as rich text: :func:`visible`, never markup, in ``style`` when given."""
    return Text(visible(value), style=style)


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
