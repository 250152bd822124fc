"""`modelswitch config init|path|show|validate`."""

from __future__ import annotations

import os
import sys
from importlib import resources

from .. import errors, paths
from ..engine.choice import load_config, warn
from ..redaction import is_secret_header, mask, mask_urls, redact
from ..ui.render import print_error, print_info


def init(explicit: str | None, *, force: bool) -> int:
    target = paths.config_path(explicit)
    if target.exists() and not force:
        raise errors.UsageError(f"{target} already exists; use --force to overwrite it")
    text = resources.files("modelswitch.config").joinpath("starter.toml").read_text("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)  # never a half-written config, even if interrupted
    print_info(f"wrote {target}")
    return 0


def path(explicit: str | None) -> int:
    target = paths.config_path(explicit)
    print_info(str(target))
    if not target.exists():
        print_info("(no file there yet: built-in presets are used; `modelswitch config init` writes one)",
                   out=sys.stderr)
    return 0


def _redacted(value: object, key: str = "", parent: str = "") -> object:
    if isinstance(value, dict):
        return {k: _redacted(v, k, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, "", key) for v in value]
    secret = key == "api_key" or (parent in ("headers", "env") and is_secret_header(key))
    if secret and isinstance(value, str):
        return mask(value)
    return value


def show(explicit: str | None) -> int:
    import tomllib

    import tomli_w

    config = load_config(explicit)
    print_info(f"# {config.path}" + ("" if config.exists else " (not found: built-in presets only)"))
    if config.exists:
        data = tomllib.loads(config.path.read_text("utf-8"))
        sys.stdout.write(mask_urls(redact(tomli_w.dumps({k: _redacted(v, k) for k, v in data.items()}))))
    default = config.default_model()
    print_info(f"# default model: {default.name + ' (' + default.full_id + ')' if default else 'none available'}")
    return 0


def _command_problem(command: tuple[str, ...], cwd: str | None) -> str | None:
    """Why an MCP server's program cannot be found (None when it can): checked without running it."""
    import shutil

    if not command:
        return None
    program = os.path.expanduser(command[0])
    if os.sep in program:
        where = os.path.join(os.path.expanduser(cwd), program) if cwd else program
        return None if os.path.exists(where) else f"{command[0]!r} does not exist"
    return None if shutil.which(program) else f"{command[0]!r} is not on PATH"


def validate(explicit: str | None) -> int:
    from ..config.load import problems

    warnings: list[str] = []
    found = problems(paths.config_path(explicit), required=paths.config_named(explicit), warnings=warnings)
    if found:  # without errors, loading below warns as every command does
        for w in warnings:
            warn(redact(f"warning: {w}"))
    for problem in found:
        print_error(redact(problem.message))
    if found:
        return 2
    config = load_config(explicit)
    if not config.exists:
        print_info(f"no config file at {config.path}; built-in presets are valid")
        return 0
    for server in config.mcp:
        if (why := _command_problem(server.command, server.cwd)) is not None:
            warn(f"warning: [mcp.{server.name}] command: {why}")
    user_models = sum(len(p.models) for p in config.providers.values() if not p.from_preset)
    noun = "model" if user_models == 1 else "models"
    print_info(f"ok: {config.path} ({user_models} {noun} configured"
          + (f", default {config.default})" if config.default else ")"))
    return 0
