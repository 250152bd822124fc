"""The first run: nothing is ready, a person is at the terminal, so ask before anything long.

Offered in this order: a local server found running, a key for a listed provider (saved with
`keys`, the chat then starts on that provider's first model), the bundled offline model (with
this machine's estimate). Not at a terminal nothing is asked: `choose_model` then uses a running
server or fails with one message listing the same three ways.
"""

from __future__ import annotations

import os
import sys

from .. import errors
from ..config.load import Config
from ..engine.choice import FirstRun, first_run_options, no_model_help, reload


def _say(text: str) -> None:
    from ..ui.render import print_info

    print_info(text, out=sys.stderr)


def _ask(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.strip()


def setup_estimate(options: FirstRun) -> str:
    if options.engine_cached:
        return "about a minute: the engine is already built on this machine"
    cores = os.cpu_count() or 1
    return (f"about {max(1, round(options.setup_minutes))} min on this machine ({cores} cores, longer if it is "
            "busy): builds the llama.cpp server once, with progress")


def first_run(config: Config, wanted: str | None) -> tuple[Config, str | None]:
    """The config and model to chat with, after asking when nothing is ready; unchanged otherwise."""
    options = first_run_options(config, wanted)
    if options is None or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return config, wanted
    choices: list[tuple[str, str]] = []  # (what, label)
    for p, models in options.servers:
        choices.append((f"server:{p.name}", f"chat with {p.name}, running at {p.base_url} ({models[0].id})"))
    if options.keyed:
        names = ", ".join(p.name for p in options.keyed[:8])
        choices.append(("key", f"enter an API key ({names}, …); saved with `modelswitch keys`"))
    choices.append(("offline", "set up the bundled offline model (llama.cpp + SmolLM2-135M, no key): "
                    + setup_estimate(options)))
    _say("No model is ready yet. How do you want to start?")
    for i, (_, label) in enumerate(choices, 1):
        _say(f"  {i}) {label}")
    try:
        picked = _pick(choices)
        if picked is None:
            raise errors.ConfigError(no_model_help(config))
        if picked.startswith("server:"):
            name = picked.split(":", 1)[1]
            server = next(models for p, models in options.servers if p.name == name)
            return config, server[0].full_id
        if picked == "key":
            return _enter_key(config, options)
    except EOFError:
        raise errors.ConfigError(no_model_help(config)) from None
    from ..ui.progress import setup_with_progress

    setup_with_progress()
    return reload(config), None


def _pick(choices: list[tuple[str, str]]) -> str | None:
    while True:
        answer = _ask(f"Choose 1-{len(choices)} (q quits): ").lower()
        if answer in ("q", "quit", "exit"):
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return choices[int(answer) - 1][0]
        _say(f"  type a number from 1 to {len(choices)}, or q")


def _enter_key(config: Config, options: FirstRun) -> tuple[Config, str | None]:
    import getpass

    from ..config.keystore import set_key

    for i, p in enumerate(options.keyed, 1):
        _say(f"  {i:>2}) {p.name:<12} {p.models[0].name}")
    by_name = {p.name: p for p in options.keyed}
    while True:
        answer = _ask("Provider (number or name): ")
        if answer.isdigit() and 1 <= int(answer) <= len(options.keyed):
            provider = options.keyed[int(answer) - 1]
            break
        if answer in by_name:
            provider = by_name[answer]
            break
        _say(f"  not one of the {len(options.keyed)} listed; type its number or name")
    while True:
        try:
            key = getpass.getpass(f"API key for {provider.name} (input hidden): ")
            path = set_key(provider.name, key)
            break
        except errors.ConfigError as exc:
            _say(f"  {exc.message}")
    model = provider.models[0]
    _say(f"saved in {path}; chatting with {model.name} ({model.full_id}). "
         "`modelswitch keys` lists, replaces or removes keys.")
    return reload(config), model.name
