"""Secrets kept out of every output: keys seen so far, and key-shaped strings, masked in any text.

Core, not config: the wire (transport), the store and the CLI all scrub text, and none of them
should depend on how keys are configured to do it.
"""

from __future__ import annotations

import re

_known: set[str] = set()
# Shapes of well-known keys, scrubbed even if we never resolved them ourselves.
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,})")


def mask(key: str) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if len(key) <= 8:
        return "…"
    prefix = key[:3] if key[:3].isascii() and key[2:3] in "-_" else ""
    return f"{prefix}…{key[-4:]}"


def redact(text: str) -> str:
    """`text` with every known or key-shaped secret masked."""
    for key in _known:
        if key in text:
            text = text.replace(key, mask(key))
    return _KEY_SHAPES.sub(lambda m: mask(m.group(0)), text)


def remember(key: str) -> str:
    if len(key) >= 6:
        _known.add(key)
    return key
