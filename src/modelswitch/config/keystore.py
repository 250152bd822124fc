"""The keys file (`modelswitch keys`): $XDG_CONFIG_HOME/modelswitch/keys.toml, one line per provider.

Created 0600 and rewritten whole through a temporary file, so an interrupted write never leaves
half a file and the keys are never readable by other users, not even for a moment.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

from .. import paths
from ..errors import ConfigError


def keys_path() -> Path:
    return paths.config_dir() / "keys.toml"


def read_keys(path: Path | None = None) -> dict[str, str]:
    """Provider name -> key; nothing when there is no file. A broken file is an error naming it."""
    path = path or keys_path()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the keys file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message names a line, never the text (it holds keys).
        raise ConfigError(f"the keys file {path} is not valid TOML ({str(exc).split('(')[-1].rstrip(')')}); "
                          "fix or remove it (`modelswitch keys remove PROVIDER`)") from None
    return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}


def set_key(provider: str, key: str, path: Path | None = None) -> Path:
    """Save (or replace) a provider's key; one that could never be sent is refused, unshown."""
    key = key.strip()
    if not key:
        raise ConfigError(f"no key given for '{provider}' (nothing was saved)")
    if not key.isascii() or any(not c.isprintable() for c in key):
        raise ConfigError(f"the key for '{provider}' holds control characters or non-ASCII text, which "
                          "cannot be sent in an HTTP header (nothing was saved; the value is not shown)")
    path = path or keys_path()
    keys = read_keys(path)
    keys[provider] = key
    _write(path, keys)
    return path


def remove_key(provider: str, path: Path | None = None) -> bool:
    path = path or keys_path()
    keys = read_keys(path)
    if provider not in keys:
        return False
    del keys[provider]
    _write(path, keys)
    return True


def _write(path: Path, keys: dict[str, str]) -> None:
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# API keys written by `modelswitch keys set`; keep this file private (mode 600).\n"
    text += tomli_w.dumps(dict(sorted(keys.items())))
    fd, tmp = tempfile.mkstemp(prefix=".keys-", suffix=".tmp", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
