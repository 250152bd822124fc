"""Remote text made harmless for a terminal: control characters become visible stand-ins.

A model's answer, its reasoning, a provider's error body, a model id a server lists, an imported
session: any of them may carry escape sequences (OSC 0 sets the window title, OSC 52 writes the
clipboard, CSI 2J clears the screen). Everything drawn on a terminal or written to stderr passes
through `visible` first; piped stdout of `ask` and `sessions export` stay byte for byte (data).

The stand-ins, chosen to be readable and inert:
- C0 controls (U+0000-U+001F) except newline and tab: the Unicode Control Pictures, so ESC
  shows as "␛", BEL as "␇", NUL as "␀";
- a carriage return ends a CRLF line ending silently (CRLF becomes LF); a lone one, which could
  only overwrite the line it is on, shows as "␍";
- DEL (U+007F): "␡";
- C1 controls (U+0080-U+009F): "␛" and the character of their 7-bit form (CSI, U+009B, is
  "␛[", its 7-bit equivalent being ESC [), so what was sent stays legible.

Imports nothing of ours: every layer that draws may use it.
"""

from __future__ import annotations

import re

_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
_TABLE[0x7F] = "\u2421"
_TABLE.update({c: "\u241b" + chr(c - 0x40) for c in range(0x80, 0xA0)})

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character but newline and tab replaced by a visible stand-in."""
    if _CONTROL.search(text) is None:
        return text  # the common case: nothing to do, and no copy
    return text.replace("\r\n", "\n").translate(_TABLE)


_JSON_UNSAFE = re.compile("[\x7f-\x9f]")


def json_escaped(text: str) -> str:
    """The output of `json.dumps(..., ensure_ascii=False)` with DEL and the C1 controls written as
    \\uXXXX escapes too (json escapes only C0): a raw CSI (U+009B) is an escape sequence to many
    terminals. Still the same JSON: those code points can only occur inside its strings."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

