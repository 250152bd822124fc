"""The HTTP boundary: sends a protocol's request and turns every httpx failure into ours, once.

Everything above this module sees events and errors.* exceptions, never httpx types. Messages
name provider and model and say what to do; keys are scrubbed from them by redaction.redact.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import errors
from ..conversation import Conversation
from ..events import Event, ReasoningDelta, TextDelta, clean_text
from ..redaction import is_secret_header, mask, mask_urls, redact
from ..safetext import visible
from .base import HttpRequest, Protocol, Target, valid_text
from .sse import without_bom

if TYPE_CHECKING:
    import httpx

    from .proxy import ProxyEnv

MAX_RETRY_AFTER = 60.0
_ERROR_BODY_LIMIT = 64 * 1024
_clients: dict[tuple[bool, ProxyEnv], httpx.Client] = {}


def client(url: str = "https:") -> httpx.Client:
    """One pooled client per process (per scheme and proxy setting), so consecutive turns reuse the
    connection. A proxy variable that cannot be used is a ConfigError naming it.

    Plain-http URLs (local servers) get a client that never loads the CA bundle: that is a third
    of a local one-shot's start-up cost and buys nothing without TLS.
    """
    import httpx

    from .proxy import Router, from_environment

    tls = not url.startswith("http:")
    # Proxies come from the environment, but are routed by us: this machine (all of 127/8, ::1)
    # never goes through a corporate HTTP_PROXY, and a dead proxy is reported as the proxy's.
    proxies = from_environment(os.environ)
    if (tls, proxies) not in _clients:
        _clients[(tls, proxies)] = httpx.Client(
            follow_redirects=False, headers={"User-Agent": "modelswitch"}, verify=tls,
            transport=Router(proxies, verify=tls),
        )
    return _clients[(tls, proxies)]


def stream(
    protocol: Protocol,
    target: Target,
    conversation: Conversation,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 300.0,
    debug: bool = False,
) -> Iterator[Event]:
    """Send the conversation to `target` and yield its events as they arrive (`debug`: log the
    request to stderr, secrets masked).

    Closing the generator (Ctrl-C, or the caller stopping early) closes the HTTP stream at once.
    """
    request = protocol.build_request(target, conversation)
    label = f"{target.provider}/{target.model_id}"
    started = False
    try:
        with _open(request, connect_timeout, read_timeout, debug) as response:
            if response.status_code >= 300:
                raise _status_error(protocol, target, response)
            _reject_html(response, label)
            watchdog = _Watchdog(read_timeout, getattr(protocol, "keepalive_lines", frozenset()))
            chunks = without_bom(watchdog.watch(response.iter_bytes()))
            for event in valid_text(protocol.parse_stream(chunks, target)):
                if not started and isinstance(event, (TextDelta, ReasoningDelta)):
                    started = True
                    watchdog.started = True
                yield event
    except errors.ProviderError as exc:
        raise _named(exc, target) from None
    except errors.ProtocolError as exc:
        raise errors.StreamError(
            f"{label}: the stream broke: {exc.message}", provider=target.provider, model=target.model_id
        ) from None
    except Exception as exc:  # httpx's tree; imported lazily so it is matched by module name
        mapped = _map_httpx(exc, target, started, getattr(protocol, "unreachable_hint", ""))
        if mapped is None:
            raise
        raise mapped from None


_NOT_PROGRESS = (b"", b":", b"\n", b"\r")


class _Watchdog:
    """Ends a stream whose bytes keep the socket alive but carry nothing for longer than the read
    timeout: SSE comments (": keep-alive"), blank lines, or a dribble that never completes a line.
    httpx's own read timeout restarts at every byte, so such a server would hold an answer forever.
    Progress is a completed line that is neither blank nor a comment, in every protocol's framing,
    nor one of the protocol's own keep-alive lines (Anthropic's `event: ping`).
    """

    __slots__ = ("limit", "last", "started", "_open", "_keep", "_cap")

    def __init__(self, limit: float, keepalive: frozenset[bytes] = frozenset()) -> None:
        self.limit = limit
        self.last = time.monotonic()
        self.started = False
        self._keep = keepalive
        # Enough of a line to tell a keep-alive line from a longer one, and no more: a line of
        # megabytes is never buffered here.
        self._cap = max((len(k) for k in keepalive), default=0) + 1
        self._open = b""  # the start of the line still open (up to _cap bytes)

    def watch(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            now = time.monotonic()
            if not self._open and not self._keep and chunk[:1] not in _NOT_PROGRESS and chunk[-1:] == b"\n":
                # The common read: whole lines, the first one real (`data: ...`), the last one
                # ended, so no line is left open. Progress, without scanning for line ends (a
                # protocol with keep-alive lines of its own takes the scan).
                self.last = now
            elif self._progress(chunk):
                self.last = now
            elif now - self.last > self.limit:
                what = f"nothing but keep-alives for {self.limit:g} s"
                if self.started:
                    raise errors.StreamError(f"read timed out mid-answer: {what}")
                raise errors.ProviderTimeoutError(f"read timed out waiting for the first token: {what}")
            yield chunk

    def _progress(self, chunk: bytes) -> bool:
        found = False
        pos = 0
        while not found:
            lf, cr = chunk.find(b"\n", pos), chunk.find(b"\r", pos)
            end = lf if cr < 0 else cr if lf < 0 else min(lf, cr)
            if end < 0:
                break
            line = (self._open + chunk[pos:min(end, pos + self._cap)])[:self._cap]
            found = line[:1] not in (b"", b":") and line not in self._keep
            self._open, pos = b"", end + 1
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last >= 0:
            self._open = chunk[last + 1 : last + 1 + self._cap]
        elif len(self._open) < self._cap:
            self._open += chunk[:self._cap - len(self._open)]
        return found


def fetch(request: HttpRequest, *, timeout: float = 2.0) -> bytes:
    """A small non-streaming request (e.g. a local server's model list); failures are ConnectError."""
    try:
        response = client(request.url).request(request.method, request.url, headers=request.headers,
                                               timeout=timeout)
        response.raise_for_status()
        return response.content
    except errors.ModelSwitchError:
        raise  # a bad proxy setting is the user's to fix (exit 2), not an unreachable server
    except Exception as exc:
        raise errors.ConnectError(_scrub(f"{request.url}: {_describe(exc)}")) from None


def get_page(url: str, *, timeout: float, max_bytes: int, redirects: int = 5) -> tuple[bytes, str]:
    """A web page's body (at most `max_bytes`, or a UsageError) and its Content-Type, through the
    same pooled client as every request: the proxies and loopback routing apply. Redirects are
    followed here, a few at most, because the shared client does not follow them for the APIs."""
    import httpx

    seen = url
    for _ in range(redirects + 1):
        try:
            with client(seen).stream("GET", seen, headers={"Accept": "text/html, text/*;q=0.9, image/*;q=0.8, */*;q=0.5"},
                                     timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))) as response:
                if response.is_redirect and response.headers.get("location"):
                    seen = str(response.url.join(response.headers["location"]))
                    if not seen.startswith(("http://", "https://")):
                        raise errors.UsageError(f"{url} redirects to {visible(seen)[:200]}, which is not a web page")
                    continue
                if response.status_code >= 400:
                    word = response.reason_phrase or "error"  # not STATUS_WORDS: those speak of models
                    raise errors.UsageError(f"cannot fetch {url}: {response.status_code} {word}")
                size = response.headers.get("content-length", "")
                if size.isdigit() and int(size) > max_bytes:
                    raise errors.UsageError(f"{url} is {int(size) / 1e6:.1f} MB; attach at most {max_bytes // 1_000_000} MB")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise errors.UsageError(f"{url} is more than {max_bytes // 1_000_000} MB; not attached")
                return bytes(body), response.headers.get("content-type", "")
        except errors.ModelSwitchError:
            raise
        except Exception as exc:
            raise errors.ConnectError(_scrub(f"cannot fetch {url}: {_describe(exc)}")) from None
    raise errors.UsageError(f"{url} redirects more than {redirects} times; not attached")


def _open(
    request: HttpRequest, connect_timeout: float, read_timeout: float, debug: bool
) -> AbstractContextManager[httpx.Response]:
    import httpx

    body = None
    if request.body is not None:
        text = json.dumps(request.body, ensure_ascii=False)
        # A lone UTF-16 half (from an older session or an import) must not stop the request.
        body = clean_text(text).encode("utf-8")
    headers = {"Accept-Encoding": "identity", **request.headers}
    if debug:
        _debug_log(request, headers, body)
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout, write=30.0, pool=connect_timeout)
    return client(request.url).stream(request.method, request.url, content=body, headers=headers, timeout=timeout)


def _debug_log(request: HttpRequest, headers: dict[str, str], body: bytes | None) -> None:
    """`--debug`: what is sent, with every secret masked (credential headers' values entirely)."""
    import sys

    shown = {k: (mask(v) if is_secret_header(k) else v) for k, v in headers.items()}
    sys.stderr.write(_scrub(f"debug: {request.method} {request.url}\ndebug: headers {shown}\n"))
    if body is not None:  # it holds earlier answers, and JSON leaves C1 controls and DEL as they are
        sys.stderr.write(visible(redact(f"debug: body {body[:2000].decode('utf-8', 'replace')}\n")))
    sys.stderr.flush()


def _scrub(text: str) -> str:
    """A message fit to show: no configured key, and no user:password of a base_url (connect errors
    quote it)."""
    return mask_urls(redact(text))


def _named(exc: errors.ProviderError, target: Target) -> errors.ProviderError:
    """An error raised inside a protocol parser, with provider and model put in front."""
    label = f"{target.provider}/{target.model_id}"
    message = exc.message if exc.message.startswith(label) else f"{label}: {exc.message}"
    new = type(exc)(
        _scrub(message), provider=target.provider, model=target.model_id, status=exc.status,
        retry_after=exc.retry_after,
    )
    return new


STATUS_WORDS = {
    400: "rejected the request",
    401: "the API key was rejected",
    403: "access denied",
    402: "insufficient balance",
    404: "model not found",
    408: "request timeout",
    409: "conflict",
    413: "request too large",
    422: "rejected the request",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "server busy",
    504: "gateway timeout",
    529: "overloaded",
}


def _status_error(protocol: Protocol, target: Target, response: httpx.Response) -> errors.ProviderError:
    status = response.status_code
    label = f"{target.provider}/{target.model_id}"
    raw = b""
    try:
        for chunk in response.iter_bytes():
            raw += chunk
            if len(raw) >= _ERROR_BODY_LIMIT:
                break
    except Exception:  # a body that breaks off still leaves us the status to report
        pass
    detail = ""
    if not _looks_html(response, raw):
        detail = protocol.error_message(status, raw).strip()
    elif status >= 500:
        detail = "HTML error page (a proxy or gateway in the way?)"
    words = STATUS_WORDS.get(status, "redirected" if 300 <= status < 400 else "failed")
    head = f"{label}: {words} ({status})"
    if detail and detail.lower() != words:
        head += f": {_one_line(detail)}"

    cls, tail = _status_class(protocol, target, status, response.headers.get("location", "?"))
    retry_after = parse_retry_after(response.headers.get("retry-after")) if cls.retryable else None
    return cls(
        _scrub(head + tail), provider=target.provider, model=target.model_id, status=status,
        retry_after=retry_after,
    )


# Model ids a vendor retired, per provider (by preset name or API host), and what replaced them: a
# saved session or an old config still naming one gets a 4xx whose body does not say why (DeepSeek:
# 400 "Model Not Exist"). Matched on the id sent and the status, never on the vendor's wording.
_RETIRED: dict[tuple[str, str], str] = {
    ("deepseek", "deepseek-chat"): "DeepSeek retired deepseek-chat on 2026-07-24: use deepseek-flash with "
    "reasoning off (`reasoning = false`, the v3 preset)",
    ("deepseek", "deepseek-reasoner"): "DeepSeek retired deepseek-reasoner on 2026-07-24: use deepseek-flash "
    "with reasoning on (`reasoning = true`, the r1 preset)",
}
_VENDOR_HOSTS = {"api.deepseek.com": "deepseek"}
# 4xx statuses that say something other than "no such model": the key, the balance, the pace.
_NOT_ABOUT_MODEL = frozenset({401, 402, 403, 408, 429})


def _retired(target: Target, status: int) -> str | None:
    """What replaced a retired model id, when the vendor that retired it refused it."""
    if not 400 <= status < 500 or status in _NOT_ABOUT_MODEL:
        return None
    host = (urlsplit(target.base_url).hostname or "").lower()
    for vendor in (target.provider, _VENDOR_HOSTS.get(host, "")):
        if (advice := _RETIRED.get((vendor, target.model_id))) is not None:
            return advice
    return None


def _status_class(
    protocol: Protocol, target: Target, status: int, location: str
) -> tuple[type[errors.ProviderError], str]:
    """The error class for an HTTP status, and what to tell the user to do about it."""
    if (advice := _retired(target, status)) is not None:
        return errors.ModelNotFoundError, f" — {advice}"
    if 300 <= status < 400:
        return errors.BadRequestError, f" to {location} — check base_url for provider '{target.provider}'"
    if status in (401, 403):
        fix = f"check {target.key_hint}" if target.key_hint else "check the provider's API key"
        return errors.AuthError, f" — {fix}"
    if status == 402:
        return errors.QuotaError, f" — top up the account at {target.provider}"
    if status == 404:
        hint = getattr(protocol, "not_found_hint", "see `modelswitch models`")
        return errors.ModelNotFoundError, " — " + hint.replace("{model}", target.model_id)
    if status == 408:
        return errors.ProviderTimeoutError, ""
    if status == 429:
        return errors.RateLimitError, ""
    if status == 409 or status >= 500:
        return errors.OverloadedError, ""
    return errors.BadRequestError, ""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date, capped at a minute."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _looks_html(response: httpx.Response, raw: bytes) -> bool:
    ctype = response.headers.get("content-type", "")
    return "html" in ctype or raw.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))


def _reject_html(response: httpx.Response, label: str) -> None:
    if "text/html" in response.headers.get("content-type", ""):
        raise errors.StreamError(
            f"{label}: the server answered with an HTML page, not a stream — check base_url"
        )


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _describe(exc: BaseException) -> str:
    """An exception as one line, never quoting a header value (h11's "Illegal header value b'…'"
    would print the API key)."""
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, (httpx.LocalProtocolError, UnicodeEncodeError)):
        return _BAD_HEADER
    if "header" in text.lower():  # whatever else names a header may quote one too
        return "an HTTP header was malformed"
    return _one_line(text, 200)


_BAD_HEADER = "a request header could not be sent (check the API key and headers in the config)"


def _map_httpx(
    exc: Exception, target: Target, started: bool, unreachable_hint: str
) -> errors.ProviderError | None:
    mapped = _classify_httpx(exc, target, started, unreachable_hint)
    if mapped is None:
        return None
    cls, what = mapped
    return cls(_scrub(f"{target.provider}/{target.model_id}: {what}"), provider=target.provider,
               model=target.model_id)


def _classify_httpx(
    exc: Exception, target: Target, started: bool, unreachable_hint: str
) -> tuple[type[errors.ProviderError], str] | None:
    import httpx

    from .proxy import ProxyFailed

    text = _describe(exc)
    if isinstance(exc, (httpx.LocalProtocolError, UnicodeEncodeError)):
        return errors.BadRequestError, _BAD_HEADER
    if isinstance(exc, ProxyFailed):
        return errors.ConnectError, text
    if isinstance(exc, httpx.ProxyError):
        return errors.ConnectError, f"the proxy failed: {text}"
    if isinstance(exc, httpx.ConnectTimeout):
        return errors.ProviderTimeoutError, f"connection timed out ({target.base_url})"
    if isinstance(exc, httpx.ReadTimeout):
        if started:
            return errors.StreamError, "read timed out mid-answer"
        return errors.ProviderTimeoutError, "read timed out waiting for the first token"
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            return errors.ConnectError, f"TLS error talking to {target.base_url}: {text}"
        if any(s in lowered for s in ("name or service not known", "nodename", "getaddrinfo", "name resolution")):
            return errors.UnresolvedHostError, f"cannot resolve the host in {target.base_url} (offline?)"
        if "refused" in lowered:
            hint = unreachable_hint or "is the server running?"
            return errors.ConnectError, f"connection refused at {target.base_url} — {hint}"
        return errors.ConnectError, f"cannot connect to {target.base_url}: {text}"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        if started:
            return errors.StreamError, "connection dropped mid-answer"
        return errors.ConnectError, "connection dropped before the answer began"
    if isinstance(exc, httpx.TimeoutException):
        return errors.ProviderTimeoutError, "timed out"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return errors.ConnectError, f"bad base_url {target.base_url}: {text}"
    if isinstance(exc, httpx.HTTPError):
        return errors.ConnectError, text
    return None
