#!/usr/bin/env python3
"""The Python floor: the least a Python client must do to stream the same answer to stdout.

    python benchmarks/floor.py URL   (URL: an OpenAI-style /v1/chat/completions endpoint)

httpx, one POST, SSE lines split and JSON-decoded, content deltas written as they come. What
modelswitch spends above this is its own cost, not Python's or httpx's.
"""

import json
import sys

import httpx

body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]}
out = sys.stdout
with httpx.stream("POST", sys.argv[1], json=body, timeout=60) as response:
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    out.write(text)
                    out.flush()
