"""Secrets kept out of every output: the configured and resolved keys, masked in any text.

Core, not config: the wire (transport), the store and the CLI all scrub text, and none of them
should depend on how keys are configured to do it. Only those values are scrubbed: masking
anything key-shaped would also rewrite the user's own words (`.sk-folding-cube`), and a resumed
chat would then resend altered text.
"""

from __future__ import annotations

import re

_known: set[str] = set()
# What StreamMask needs on every chunk, kept with _known so a chunk costs a find or two.
_firsts: set[str] = set()
_longest = 0
# Header names whose values are credentials: masked by `config show` and `--debug` alike.
# Substrings, so "auth" also covers Authorization, X-Auth-Token, Proxy-Authenticate-style names.
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "passwd", "cookie", "session",
                        "signature", "credential", "bearer", "jwt")
# `scheme://user:password@`: the userinfo of any URL in a message (base_url, a proxy), up to the
# last `@` before the path, so an unencoded `@` in the password is masked too.
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")


def mask(key: str) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if len(key) <= 8:
        return "…"
    prefix = key[:3] if key[:3].isascii() and key[2:3] in "-_" else ""
    return f"{prefix}…{key[-4:]}"


def redact(text: str) -> str:
    """`text` with every configured or resolved key masked (longest first, so no key is half-masked)."""
    for key in sorted(_known, key=len, reverse=True):
        if key in text:
            text = text.replace(key, mask(key))
    return text


def mask_urls(text: str) -> str:
    """`text` with the user:password of every URL in it shown as `***@`: a base_url or a proxy may
    carry credentials, which no message, `config show` or `--debug` line may print."""
    return _USERINFO.sub(r"\1***@", text)


def remember(key: str) -> str:
    # A placeholder such as `ollama` for a local server is no secret, and masking it would rewrite
    # every mention of the word in the user's chats.
    global _longest
    if len(key) >= 8:
        _known.add(key)
        _firsts.add(key[0])
        _longest = max(_longest, len(key))
    return key


class StreamMask:
    """`redact` for text that arrives in pieces (an answer streamed chunk by chunk): a key split
    across two chunks is masked too. The tail of a chunk that could be the start of a key is held
    back until the next chunk (or `flush`) tells; everything else passes at once, unchanged."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """What of `held + text` can be shown now, masked."""
        if not _known:
            return text
        text = self._held + text
        if any(key in text for key in _known):
            text = redact(text)
        cut = _key_start(text)
        self._held = text[cut:]
        return text[:cut]

    def pending(self) -> str:
        """What `flush` would release; a cut-off key (the stream ended inside it) is still masked."""
        return mask(self._held) if len(self._held) >= 8 else self._held

    def flush(self) -> str:
        out = self.pending()
        self._held = ""
        return out


def _key_start(text: str) -> int:
    """Where the longest tail of `text` that is a proper start of a known key begins; len(text) if
    none. A key starting further back would lie wholly inside `text`: redact already had it."""
    best = len(text)
    lo = max(0, best - _longest + 1)
    for first in _firsts:
        i = text.find(first, lo)
        while 0 <= i < best:
            tail = text[i:]
            if any(key.startswith(tail) for key in _known):
                best = i
                break
            i = text.find(first, i + 1)
    return best


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential (Authorization, X-Api-Key, X-Auth-Token, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_HEADER_WORDS)
