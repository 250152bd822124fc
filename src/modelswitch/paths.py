"""Where modelswitch keeps its files. Both XDG variables are honoured so tests run in temp dirs."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelswitch"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "modelswitch"


def config_path(explicit: str | None = None) -> Path:
    """--config PATH, else MODELSWITCH_CONFIG, else $XDG_CONFIG_HOME/modelswitch/config.toml."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("MODELSWITCH_CONFIG")
    if env:
        return Path(env).expanduser()
    return config_dir() / "config.toml"


def config_named(explicit: str | None = None) -> bool:
    """Whether the user named the config file (--config, MODELSWITCH_CONFIG): then it must exist."""
    return bool(explicit or os.environ.get("MODELSWITCH_CONFIG"))
