"""One exception tree for everything modelswitch reports to a user.

    ModelSwitchError                 exit_code 1 unless a subclass says otherwise
    ├── ConfigError                  exit 2: bad config file, unknown model, missing key
    ├── UsageError                   exit 2: bad command-line or REPL input
    │   └── ContextWindowError       exit 2: the conversation would not fit the model's window
    ├── StoreError                   the session database cannot be used
    ├── ProtocolError                bytes that are not the wire format (decoders raise only this)
    └── ProviderError                the provider failed; names provider and model
        ├── AuthError                401/403, or no key at all
        ├── QuotaError               402 insufficient balance
        ├── BadRequestError          400/422: the provider rejected the request
        ├── ModelNotFoundError       404
        ├── RateLimitError           429               (retryable)
        ├── OverloadedError          5xx, 529, overloaded_error events (retryable)
        ├── ProviderTimeoutError     408, connect/read timeouts      (retryable)
        ├── ConnectError             refused, TLS                    (retryable)
        │   └── UnresolvedHostError  DNS (not retried: it cannot heal in seconds)
        ├── StreamError              the stream broke after it began (dropped, bad JSON, error event)
        └── NoAnswerError            the stream ended well but held no answer text

Every message is one or two plain lines a person can act on. Nothing here may contain an API key:
callers redact before building messages (see `redaction.redact`).
"""

from __future__ import annotations

from .events import clean_text


class ModelSwitchError(Exception):
    """Base of every error modelswitch shows to a user."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        # Messages quote provider text, which may hold a lone UTF-16 half: one in a message
        # would make printing it as JSON, or saving it, fail in turn.
        message = clean_text(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ModelSwitchError):
    """The configuration is unusable; names the file and the key path when known."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(where + message)
        self.path = path
        self.key = key


class UsageError(ModelSwitchError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class ContextWindowError(UsageError):
    """The conversation would not fit the model's context window: refused before sending (exit 2,
    like other input the user must change; the provider would have answered 400)."""


class StoreError(ModelSwitchError):
    """The session database is unreadable, locked for too long, or from a newer version."""


class ProtocolError(ModelSwitchError):
    """Bytes from the network are not valid for the wire format being decoded."""


class ProviderError(ModelSwitchError):
    """A provider call failed. `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after


class AuthError(ProviderError):
    pass


class QuotaError(ProviderError):
    pass


class BadRequestError(ProviderError):
    pass


class ModelNotFoundError(ProviderError):
    pass


class RateLimitError(ProviderError):
    retryable = True


class OverloadedError(ProviderError):
    retryable = True


class ProviderTimeoutError(ProviderError):
    retryable = True


class ConnectError(ProviderError):
    retryable = True


class UnresolvedHostError(ConnectError):
    """The host name does not resolve: offline or a typo, neither heals in the seconds a retry waits."""

    retryable = False


class StreamError(ProviderError):
    """The stream began and then broke; whatever arrived before is kept by the caller."""


class NoAnswerError(ProviderError):
    """A stream that ended normally without one character of answer (only [DONE], or reasoning
    alone): saved as an error, so it is neither taken for an answer nor sent back as one."""


class StdoutError(OSError):
    """stdout cannot take the command's output (closed, full, an I/O error); EPIPE stays
    BrokenPipeError: a reader that left is not a failure (`... | head`)."""
