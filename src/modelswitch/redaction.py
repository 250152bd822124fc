"""Secrets kept out of every output: the configured and resolved keys, masked in any text.

Core, not config: the wire (transport), the store and the CLI all scrub text, and none of them
should depend on how keys are configured to do it. Only those values are scrubbed: masking
anything key-shaped would also rewrite the user's own words (`.sk-folding-cube`), and a resumed
chat would then resend altered text.
"""

from __future__ import annotations

import re

_known: set[str] = set()
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
    if len(key) >= 8:
        _known.add(key)
    return key


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential (Authorization, X-Api-Key, X-Auth-Token, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_HEADER_WORDS)
