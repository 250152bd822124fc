"""What a model and a provider are, as frozen values: the shapes config/load.py fills from TOML.

Apart from load.py so that keys.py, which resolves a provider's key, can name ProviderSpec
without importing the loader that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conversation import ModelNames

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_RETRIES = 2
DEFAULT_HEDGE_AFTER = 3.0


@dataclass(frozen=True, slots=True)
class Price:
    """List price per million tokens."""

    input: float
    output: float
    currency: str
    cached_input: float | None = None
    date: str | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec(ModelNames):
    provider: str
    id: str
    alias: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    reasoning: bool | str | int | None = None
    price: Price | None = None
    fallback: tuple[str, ...] = ()
    context_window: int | None = None
    retries: int | None = None
    # Search the web by default (the provider's own search); `/search` and `ask --search` override.
    search: bool = False
    vision: bool = False  # takes images; without it they are refused, or sent as placeholders
    # Other provider/model-ids serving the same model, and how to choose among them.
    routes: tuple[str, ...] = ()
    strategy: str = "fallback"
    hedge_after: float = DEFAULT_HEDGE_AFTER
    # Takes function calling (a `tools` list): True, False (never offered tools: the API would
    # answer 400), or None, not declared: tools are offered and the API decides.
    tools: bool | None = None
    # Inside a tool-call span, every assistant message must carry its `reasoning_content` back
    # (DeepSeek's thinking mode); None: the provider's setting decides (see ProviderSpec).
    reasoning_passback: bool | None = None
    # The API switches thinking by `{"thinking": {"type": "enabled"|"disabled"}}` (DeepSeek's);
    # None: the provider's setting decides (see ProviderSpec).
    thinking_toggle: bool | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    type: str
    base_url: str
    api_key_env: str | None = None
    api_key_cmd: str | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    models: tuple[ModelSpec, ...] = ()
    local: bool = False
    managed: bool = False  # modelswitch runs this server itself: local.ensure_running() has its URL
    from_preset: bool = False
    # Whose web search an OpenAI-compatible endpoint speaks ("openrouter", "qwen", ...), for a relay
    # or a host modelswitch cannot tell by name; None: told by the base_url's host.
    search: str | None = None
    # The provider's models need `reasoning_content` passed back in tool-call spans (a model's own
    # `reasoning_passback` overrides); None: only a base_url on api.deepseek.com does.
    reasoning_passback: bool | None = None
    # The provider takes DeepSeek's `thinking` field, so `reasoning` on/off is sent as it (a model's
    # own `thinking_toggle` overrides); False: never sent (OpenAI answers 400 to it); None: only to
    # a base_url on api.deepseek.com.
    thinking_toggle: bool | None = None

    @property
    def needs_key(self) -> bool:
        return bool(self.api_key_env or self.api_key_cmd or self.api_key)
