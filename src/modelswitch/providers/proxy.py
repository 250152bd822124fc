"""Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), checked and routed here.

httpx would read them itself, but it turns a setting it cannot use (`ftp://`, or `socks5://`
without socksio) into an internal error on every request, bypasses only the loopback names it is
given, and reports a dead proxy as the provider's failure. Here a bad setting is a ConfigError
naming the variable, all of 127.0.0.0/8 and ::1 go direct, and a proxy that fails says so.
Imported only when the HTTP client is built: it needs httpx.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigError
from ..redaction import mask_urls

SCHEMES = ("http", "https", "socks5", "socks5h")


@dataclass(frozen=True, slots=True)
class ProxySetting:
    variable: str  # the environment variable it came from, as the user spelled it
    url: str

    @property
    def shown(self) -> str:
        """The proxy's address for messages: any user:password in it masked."""
        parts = urlsplit(self.url)
        return mask_urls(f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True, slots=True)
class ProxyEnv:
    """Which proxy each URL scheme uses, and the hosts that go direct. Hashable: the client cache key."""

    http: ProxySetting | None = None
    https: ProxySetting | None = None
    no_proxy: tuple[str, ...] = ()

    def for_url(self, scheme: str, host: str) -> ProxySetting | None:
        setting = self.https if scheme == "https" else self.http
        if setting is None or bypasses(host, self.no_proxy):
            return None
        return setting


def from_environment(env: Mapping[str, str]) -> ProxyEnv:
    """The proxy settings in `env`, each checked; lower-case names win, as in curl and urllib."""

    def pick(name: str) -> tuple[str, str] | None:
        for var in (name.lower(), name.upper()):
            value = env.get(var, "").strip()
            if value:
                return var, value
        return None

    found: dict[str, ProxySetting | None] = {}
    for scheme in ("http", "https"):
        chosen = pick(f"{scheme}_proxy") or pick("all_proxy")
        found[scheme] = _checked(*chosen) if chosen else None
    no_proxy_var = pick("no_proxy")
    no_proxy = tuple(e.strip().lower() for e in no_proxy_var[1].split(",") if e.strip()) if no_proxy_var else ()
    return ProxyEnv(found["http"], found["https"], no_proxy)


def _checked(variable: str, value: str) -> ProxySetting:
    # Never quotes the value: a proxy URL may carry a password.
    url = value if "://" in value else f"http://{value}"  # `proxy.corp:3128`, as curl reads it
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"unsupported proxy scheme '{scheme}://' (use http://, https://, socks5:// or "
                          "socks5h://, or unset it)", key=variable)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        httpx.Proxy(url)
    except (ValueError, httpx.InvalidURL):
        raise ConfigError("not a valid proxy address (expected scheme://host:port)", key=variable) from None
    if not parts.hostname:
        raise ConfigError("the proxy address names no host (expected scheme://host:port)", key=variable)
    return ProxySetting(variable, url)


def bypasses(host: str, no_proxy: tuple[str, ...] = ()) -> bool:
    """Whether requests to `host` go direct: this machine always, and whatever NO_PROXY names."""
    host = host.strip("[]").lower().rstrip(".")
    address = _ip(host)
    if host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback):
        return True
    for entry in no_proxy:
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # `host:port` -> host
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class ProxyFailed(httpx.ProxyError):
    """The proxy, not the provider, failed: its message names the proxy (credentials masked)."""


class Router(httpx.BaseTransport):
    """Sends each request direct or through the proxy its scheme and host call for."""

    def __init__(self, env: ProxyEnv, *, verify: bool) -> None:
        self.env = env
        self.direct = httpx.HTTPTransport(verify=verify)
        self.proxied: dict[ProxySetting, httpx.HTTPTransport] = {}
        for setting in {s for s in (env.http, env.https) if s is not None}:
            self.proxied[setting] = httpx.HTTPTransport(verify=verify, proxy=httpx.Proxy(setting.url))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        setting = self.env.for_url(request.url.scheme, request.url.host)
        if setting is None:
            return self.direct.handle_request(request)
        try:
            return self.proxied[setting].handle_request(request)
        except (httpx.ProxyError, httpx.ConnectTimeout) as exc:
            raise ProxyFailed(_failure(setting, exc)) from None
        except httpx.ConnectError as exc:
            # Through a tunnel, the TLS handshake is with the provider: its failure is the provider's.
            lowered = str(exc).lower()
            if any(word in lowered for word in ("ssl", "certificate", "tls")) and not setting.url.startswith("https"):
                raise
            raise ProxyFailed(_failure(setting, exc)) from None

    def close(self) -> None:
        self.direct.close()
        for transport in self.proxied.values():
            transport.close()


def _failure(setting: ProxySetting, exc: Exception) -> str:
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if isinstance(exc, httpx.TimeoutException):
        why = "timed out"
    elif "refused" in lowered:
        why = "connection refused"
    elif any(s in lowered for s in ("name or service not known", "nodename", "getaddrinfo", "name resolution")):
        why = "cannot resolve its host"
    else:
        why = text[:200] or type(exc).__name__
    return f"the proxy {setting.shown} (from {setting.variable}) failed: {why} — check or unset {setting.variable}"
