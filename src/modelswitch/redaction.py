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
# `scheme://user:password@`: the userinfo of any URL in a message (base_url, a proxy). It runs to
# the LAST `@` of the address: a password may hold an unencoded `@`, `/`, `#` or `?` (base64),
# which would otherwise end the match early and leave the password in view. Masking a path's `@`
# too (`/@user/`) is the safe way to be wrong in an error line.
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s\"']*@")
# The scheme, or a mangled one (`https//`, `https:/`), before the userinfo of one configured address.
_SCHEME_HEAD = re.compile(r"[a-zA-Z][a-zA-Z0-9+-]*:?/+")


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


def mask_url(url: str) -> str:
    """One configured address (a base_url, an MCP url, a proxy) fit to show: its user:password
    masked as `***@`, also without the `scheme://` that `mask_urls` needs to find a URL, or with a
    password holding a space. Only for a value known to be an address: in free text `a:b@c` is no
    secret."""
    at = url.rfind("@")
    if at < 0:
        return url
    sep = url.find("://")
    head = None if sep >= 0 else _SCHEME_HEAD.match(url)  # none, or a mangled one (`https//`)
    start = sep + 3 if sep >= 0 else head.end() if head else 0
    # user:password comes before the host: a `:` before the first `/`. Without one the `@` is in a
    # path or a query (`host/v1?to=a@b`), not credentials.
    if ":" not in url[start:at].split("/", 1)[0]:
        return url
    return url[:start] + "***" + url[at:]


def redact_json(value: object) -> object:
    """`redact` through parsed JSON (tool arguments): every string, keys of objects included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_json(v) for k, v in value.items()}
    return value


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
        self._before = ""  # the character shown just before the held tail

    def feed(self, text: str) -> str:
        """What of `held + text` can be shown now, masked."""
        if not _known:
            return text
        text = self._held + text
        if any(key in text for key in _known):
            text = redact(text)
        cut = _key_start(text)
        if cut:
            self._before = text[cut - 1]
        self._held = text[cut:]
        return text[:cut]

    def pending(self) -> str:
        """What `flush` would release. A cut-off key (the stream ended, or Ctrl-C came, inside it)
        shows no more than its whole mask would: the `sk-` that mask shows, then `…`."""
        if self._before.isalnum() and len(self._held) <= _WORD_END:
            # The tail ends a word ("seen" while a key begins `en`): masking here would eat the
            # end of an ordinary answer. Only a few characters, though: a longer tail is most of a
            # key glued to the word before it (`id42sk-proj-ABCD…`), and is masked.
            return self._held
        return _cut_off(self._held)

    def flush(self) -> str:
        out = self.pending()
        self._held = self._before = ""
        return out


_WORD_END = 3  # as long as the prefix a key's mask shows (`sk-`): releasing it shows no more


def _cut_off(held: str) -> str:
    """`held`, the start of some known key, as far as that key's mask shows it: all of it while
    it is no longer than the prefix the mask keeps (`s`, `sk-`), else that prefix and `…`. Never
    `mask(held)`: its last four characters would be real characters from the middle of the key.
    A single character always passes: one letter of a key is no more use than none, and the
    answer "option A" keeps its `A` while a key begins with one."""
    if not held:
        return held
    starts = [key for key in _known if key.startswith(held)]
    if not starts:  # not held for a key (no known key begins so): nothing to hide
        return held
    shown = [mask(key).partition("…")[0] for key in starts]
    if any(len(held) <= max(len(prefix), 1) for prefix in shown):
        return held
    return min(shown, key=len) + "…"


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
