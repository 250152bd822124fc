"""Loopback stand-ins for each provider's own web search, built from the vendors' documented shapes.

Each fake rejects what its API rejects (an unknown field, a malformed tool, a search block it did
not issue) in that API's error shape, and answers a searching request with the stream shape the
vendor documents: Anthropic's server_tool_use / web_search_tool_result blocks and citations_delta,
Gemini's groundingMetadata, `url_citation` annotations (OpenAI, OpenRouter), Perplexity's
`citations` / `search_results`, Hunyuan's `search_info`, Zhipu's chunk `web_search` list, and
Qwen's enable_search answer, which carries no sources on the OpenAI-compatible path.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from tests.loopback import Received, Reply
from tests.validators import FakeAnthropic, FakeAPI, FakeGemini, Problem

SOURCES = [
    ("Pelican - Wikipedia", "https://en.wikipedia.org/wiki/Pelican",
     "Pelicans are a genus of large water birds that make up the family Pelecanidae."),
    ("Brown pelican | Audubon", "https://www.audubon.org/field-guide/bird/brown-pelican",
     "The Brown Pelican is found along the coasts."),
]
QUERY = "pelican facts"

_WEB_SEARCH_TOOL = re.compile(r"web_search_\d{8}$")
_WEB_SEARCH_KEYS = {"type", "name", "max_uses", "allowed_domains", "blocked_domains", "user_location",
                    "cache_control"}


@dataclass
class FakeAnthropicSearch(FakeAnthropic):
    """The Messages API with the web_search server tool."""

    search_issued: dict[str, dict] = field(default_factory=dict)  # block id -> the block as sent

    def validate(self, rec: Received, body: dict) -> Problem | None:
        tools = body.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                return Problem(400, "tools: Input should be a valid list")
            for i, tool in enumerate(tools):
                if not isinstance(tool, dict) or not _WEB_SEARCH_TOOL.match(str(tool.get("type"))):
                    return Problem(400, f"tools.{i}: Input tag does not match any of the expected tags")
                extra = set(tool) - _WEB_SEARCH_KEYS
                if extra:
                    return Problem(400, f"tools.{i}.{sorted(extra)[0]}: Extra inputs are not permitted")
                if tool.get("name") != "web_search":
                    return Problem(400, f"tools.{i}.name: Input should be 'web_search'")
                uses = tool.get("max_uses")
                if uses is not None and (not isinstance(uses, int) or uses < 1):
                    return Problem(400, f"tools.{i}.max_uses: Input should be greater than 0")
        # Search blocks in history: checked here, then taken out for the thinking/text rules.
        searching = bool(tools)
        rest: list = []  # the messages without their search blocks, for the parent's rules
        for i, m in enumerate(body.get("messages") or []):
            content = m.get("content") if isinstance(m, dict) else None
            if not isinstance(content, list):
                rest.append(m)
                continue
            kept = []
            for j, block in enumerate(content):
                kind = block.get("type") if isinstance(block, dict) else None
                if kind not in ("server_tool_use", "web_search_tool_result"):
                    kept.append(block)
                    continue
                where = f"messages.{i}.content.{j}"
                if m.get("role") != "assistant":
                    return Problem(400, f"{where}.type: {kind} blocks may only appear in assistant messages")
                if not searching:
                    # Stricter than documented, so a pass here passes there: a block naming a tool
                    # the request does not offer.
                    return Problem(400, f"{where}: {kind} names the web_search tool, which is not in `tools`")
                key = block.get("id") if kind == "server_tool_use" else block.get("tool_use_id")
                issued = self.search_issued.get(f"{kind}:{key}")
                if issued != block:
                    return Problem(400, f"{where}: this {kind} block was not issued by the API (or was changed)")
            rest.append({**m, "content": kept})
        return super().validate(rec, {**body, "messages": rest} if "messages" in body else body)

    def answer(self, rec: Received, body: dict) -> Reply:
        if not body.get("tools"):
            return super().answer(rec, body)
        n, model = len(self.accepted), body["model"]
        tool_id = f"srvtoolu_{uuid.uuid4().hex[:24]}"
        results = [{"type": "web_search_result", "title": t, "url": u, "encrypted_content": f"Eq{uuid.uuid4().hex}",
                    "page_age": None} for t, u, _ in SOURCES]
        self.search_issued[f"server_tool_use:{tool_id}"] = {"type": "server_tool_use", "id": tool_id,
                                                             "name": "web_search", "input": {"query": QUERY}}
        self.search_issued[f"web_search_tool_result:{tool_id}"] = {"type": "web_search_tool_result",
                                                                    "tool_use_id": tool_id, "content": results}
        events: list[dict] = [
            {"type": "message_start", "message": {"id": f"msg_{n}", "type": "message", "role": "assistant",
             "model": model, "content": [], "usage": {"input_tokens": 2037, "output_tokens": 1}}},
        ]

        def block(start: dict, *deltas: dict) -> None:
            index = sum(e["type"] == "content_block_start" for e in events)
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
            events.append({"type": "content_block_stop", "index": index})

        block({"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {}},
              {"type": "input_json_delta", "partial_json": ""},
              {"type": "input_json_delta", "partial_json": '{"query": "peli'},
              {"type": "input_json_delta", "partial_json": 'can facts"}'})
        block({"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results})
        block({"type": "text", "text": ""}, {"type": "text_delta", "text": "Here is what I found. "})

        def cite(k: int) -> dict:
            title, url, quote = SOURCES[k]
            return {"type": "citations_delta", "citation": {"type": "web_search_result_location", "cited_text": quote,
                                                            "url": url, "title": title, "encrypted_index": "Eo8BCioI"}}

        block({"type": "text", "text": "", "citations": []}, cite(0),
              {"type": "text_delta", "text": "Pelicans are large water birds"})
        block({"type": "text", "text": ""}, {"type": "text_delta", "text": ", and "})
        block({"type": "text", "text": "", "citations": []}, cite(1), cite(0),
              {"type": "text_delta", "text": "the brown pelican lives on coasts"})
        block({"type": "text", "text": ""}, {"type": "text_delta", "text": "."})
        events += [{"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 60, "server_tool_use": {"web_search_requests": 1}}},
                   {"type": "message_stop"}]
        return Reply(chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


@dataclass
class FakeGeminiSearch(FakeGemini):
    """generateContent with Grounding with Google Search."""

    def validate(self, rec: Received, body: dict) -> Problem | None:
        tools = body.get("tools")
        if tools is not None:
            if not isinstance(tools, list) or not tools:
                return Problem(400, "Invalid value at 'tools'", "INVALID_ARGUMENT")
            for i, tool in enumerate(tools):
                if not isinstance(tool, dict) or len(tool) != 1:
                    return Problem(400, f"Invalid value at 'tools[{i}]'", "INVALID_ARGUMENT")
                (name, value), = tool.items()
                if name not in ("google_search", "googleSearch") or value != {}:
                    return Problem(400, f'Invalid JSON payload received. Unknown name "{name}" at \'tools[{i}]\': '
                                        "Cannot find field.", "INVALID_ARGUMENT")
        return super().validate(rec, body)

    def answer(self, rec: Received, body: dict) -> Reply:
        if not body.get("tools"):
            return super().answer(rec, body)
        text = "Pelicans are large water birds. The brown pelican lives on coasts."
        objs = [
            {"candidates": [{"content": {"role": "model", "parts": [{"text": text[:31]}]}, "index": 0}]},
            {"candidates": [{"content": {"role": "model", "parts": [{"text": text[31:]}]}, "finishReason": "STOP",
                             "index": 0, "groundingMetadata": {
                                 "webSearchQueries": [QUERY, "brown pelican habitat"],
                                 "searchEntryPoint": {"renderedContent": "<style>.container{}</style>"},
                                 "groundingChunks": [{"web": {"uri": u, "title": t}} for t, u, _ in SOURCES],
                                 "groundingSupports": [
                                     {"segment": {"startIndex": 0, "endIndex": 31, "text": text[:31]},
                                      "groundingChunkIndices": [0]},
                                     {"segment": {"startIndex": 32, "endIndex": 67, "text": text[32:]},
                                      "groundingChunkIndices": [1, 0]},
                                 ]}}],
             "usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 37, "toolUsePromptTokenCount": 308,
                               "totalTokenCount": 362}},
        ]
        return Reply(chunks=[f"data: {json.dumps(o)}\r\n\r\n".encode() for o in objs])


_CHAT_KEYS = {"model", "messages", "stream", "stream_options", "temperature", "max_tokens", "reasoning_effort"}
# What each vendor adds to Chat Completions for search, and how each value must look.
_VENDOR_KEYS: dict[str, dict[str, object]] = {
    "openrouter": {"plugins": [{"id": "web"}]},
    "openai": {"web_search_options": {}},
    "perplexity": {},
    "qwen": {"enable_search": True},
    "hunyuan": {"enable_enhancement": True, "citation": True, "search_info": True},
    "zhipu": {"tools": [{"type": "web_search", "web_search": {"enable": True, "search_result": True}}]},
}


@dataclass
class FakeChatSearch(FakeAPI):
    """One OpenAI-compatible vendor's Chat Completions with its own search fields."""

    vendor: str = "openrouter"
    key: str = "sk-test"
    prefix: str = ""  # only paths under it: beside another OpenAI-shaped fake on one server

    def matches(self, rec: Received) -> bool:
        return rec.path.startswith(self.prefix) and rec.path.split("?")[0].endswith("/chat/completions")

    def error_reply(self, p: Problem) -> Reply:
        return Reply.json(p.status, {"error": {"message": p.message, "type": p.kind, "code": None}})

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if rec.headers.get("authorization") != f"Bearer {self.key}":
            return Problem(401, "Incorrect API key provided", "authentication_error")
        allowed = _VENDOR_KEYS[self.vendor]
        for k, value in body.items():
            if k in _CHAT_KEYS:
                continue
            if k not in allowed:
                return Problem(400, f"Unrecognized request argument supplied: {k}")
            if value != allowed[k]:
                return Problem(400, f"Invalid value for '{k}': {json.dumps(value)[:80]}")
        if self.vendor == "openai" and "web_search_options" in body and "search" not in str(body.get("model")):
            return Problem(400, "web_search_options is only supported by search models")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Problem(400, "messages: at least one message is required")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                return Problem(400, f"messages[{i}].role: invalid")
            if not isinstance(m.get("content"), str) or not m["content"].strip():
                return Problem(400, f"messages[{i}].content: expected a non-empty string")
        if self.vendor == "perplexity":
            # docs.perplexity.ai (chat completions, `messages`): after the optional system
            # message(s), user and assistant alternate, and the last one is the user's.
            roles = [m["role"] for m in messages if m["role"] != "system"]
            if any(a == b for a, b in zip(roles, roles[1:])) or roles[:1] != ["user"] or roles[-1] != "user":
                return Problem(400, "After the (optional) system message(s), user and assistant roles should be "
                                    "alternating, starting and ending with a user message.")
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        n, model = len(self.accepted), body["model"]
        searched = any(k in body for k in _VENDOR_KEYS[self.vendor]) or self.vendor == "perplexity"

        def chunk(delta: dict, finish: str | None = None, **top: object) -> dict:
            return {"id": f"c{n}", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **top}

        text = ["Pelicans are large water birds", " [1]; the brown pelican lives on coasts [2]."]
        if not searched:
            return Reply.sse(chunk({"role": "assistant", "content": f"{model} answer {n}"}), chunk({}, "stop"))
        chunks: list[dict] = []
        v = self.vendor
        if v in ("openrouter", "openai"):
            # Annotations arrive on a delta of their own, after the text they cite.
            notes = [{"type": "url_citation", "url_citation": {
                "url": u, "title": t, "start_index": 0, "end_index": 30, **({"content": q} if v == "openrouter" else {}),
            }} for t, u, q in SOURCES]
            chunks += [chunk({"role": "assistant", "content": text[0]}), chunk({"content": text[1]}),
                       chunk({"content": "", "annotations": notes}), chunk({}, "stop")]
        elif v == "perplexity":
            top = {"citations": [u for _, u, _ in SOURCES],
                   "search_results": [{"title": t, "url": u, "date": "2025-01-01"} for t, u, _ in SOURCES]}
            chunks += [chunk({"role": "assistant", "content": text[0]}, **top), chunk({"content": text[1]}, **top),
                       chunk({}, "stop", **top)]
        elif v == "hunyuan":
            info = {"search_results": [{"index": i + 1, "title": t, "url": u, "icon": ""}
                                       for i, (t, u, _) in enumerate(SOURCES)]}
            chunks += [chunk({"role": "assistant", "content": text[0]}, search_info=info),
                       chunk({"content": text[1]}), chunk({}, "stop")]
        elif v == "zhipu":
            found = [{"icon": "", "title": t, "link": u, "media": "", "refer": f"ref_{i + 1}", "content": q}
                     for i, (t, u, q) in enumerate(SOURCES)]
            chunks += [chunk({"role": "assistant", "content": ""}, web_search=found),
                       chunk({"content": text[0]}), chunk({"content": text[1]}), chunk({}, "stop")]
        else:  # qwen: the answer is searched, but no sources come back on this endpoint
            chunks += [chunk({"role": "assistant", "content": text[0]}), chunk({"content": text[1]}), chunk({}, "stop")]
        chunks.append({"id": f"c{n}", "object": "chat.completion.chunk", "model": model, "choices": [],
                       "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50}})
        return Reply.sse(*chunks)


# Kimi's $web_search: the declared tool, and what the model's call carries (Moonshot documents
# `search_result.search_id` and `usage.total_tokens`, the tokens the results take as input).
KIMI_TOOL = {"type": "builtin_function", "function": {"name": "$web_search"}}
KIMI_SEARCH_TOKENS = 3869


@dataclass
class FakeKimiSearch(FakeAPI):
    """Moonshot's Chat Completions with the `$web_search` builtin function.

    A request that declares it and asks anew gets a streamed `$web_search` call (finish_reason
    tool_calls); the next one must carry that call back, then a `tool` message with its id, its
    name and its arguments unchanged: then the model answers. Anything else (a missing, altered or
    unknown echo, a $web_search round in a request that does not declare the tool, a `$` in a
    function's name) is a 400 in Moonshot's error shape.

    Built from Moonshot's guide (platform.moonshot.cn/docs/guide/use-web-search: the tool, the
    echo with `name`, `usage.total_tokens` in the arguments) and its pricing page for $web_search;
    no recorded real exchange was found in public test suites. Usage inside the choice is
    Moonshot's streaming shape (openai.py reads it there).
    """

    key: str = "sk-kimi"
    issued: dict[str, str] = field(default_factory=dict)  # call id -> arguments as sent
    # What the search round streams besides its call: the model's words before it (K2 often says
    # what it will look up, as any Chat Completions model may put content before tool_calls),
    # and the round's own usage.
    preamble: str = ""
    search_usage: dict = field(default_factory=lambda: {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20})

    def matches(self, rec: Received) -> bool:
        return rec.path.split("?")[0].endswith("/chat/completions")

    def error_reply(self, p: Problem) -> Reply:
        return Reply.json(p.status, {"error": {"message": p.message, "type": p.kind}})

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if rec.headers.get("authorization") != f"Bearer {self.key}":
            return Problem(401, "Invalid Authentication", "invalid_authentication_error")
        extra = set(body) - _CHAT_KEYS - {"tools"}
        if extra:
            return Problem(400, f"Invalid request: unknown field {sorted(extra)[0]}")
        searching = False
        for i, tool in enumerate(body.get("tools") or []):
            if tool == KIMI_TOOL:
                searching = True
            elif not (isinstance(tool, dict) and tool.get("type") == "function"
                      and not str((tool.get("function") or {}).get("name", "$")).startswith("$")):
                return Problem(400, f"Invalid request: tools[{i}] is not a valid function or builtin_function")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Problem(400, "Invalid request: messages must not be empty")
        waiting: list[dict] = []  # the calls of the last assistant message not answered yet
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            if waiting and role != "tool":
                return Problem(400, f"Invalid request: tool_call_id {waiting[0].get('id')} has no tool message")
            if role == "tool":
                if not waiting or m.get("tool_call_id") != waiting[0].get("id"):
                    return Problem(400, f"Invalid request: messages[{i}] answers no tool call")
                call = waiting.pop(0)
                if call["function"]["name"] == "$web_search":
                    if m.get("name") != "$web_search" or m.get("content") != self.issued.get(call["id"]):
                        return Problem(400, f"Invalid request: messages[{i}] must return the $web_search arguments as they were")
                elif not isinstance(m.get("content"), str):
                    return Problem(400, f"Invalid request: messages[{i}].content must be a string")
            elif role == "assistant" and m.get("tool_calls"):
                for call in m["tool_calls"]:
                    fn = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(fn, dict) or not isinstance(fn.get("arguments"), str):
                        return Problem(400, f"Invalid request: messages[{i}].tool_calls is malformed")
                    if fn.get("name") == "$web_search":
                        if not searching:
                            return Problem(400, "Invalid request: $web_search is not declared in tools")
                        if call.get("type") != "builtin_function" or self.issued.get(call.get("id")) != fn["arguments"]:
                            return Problem(400, f"Invalid request: messages[{i}] carries a $web_search call that was not issued (or was changed)")
                    waiting.append(call)
            elif role in ("system", "user", "assistant"):
                if not isinstance(m.get("content"), str) or not m["content"].strip():
                    return Problem(400, f"Invalid request: messages[{i}].content must not be empty")
            else:
                return Problem(400, f"Invalid request: messages[{i}].role is invalid")
        if waiting:
            return Problem(400, f"Invalid request: tool_call_id {waiting[0].get('id')} has no tool message")
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        n, model = len(self.accepted), body["model"]
        last = body["messages"][-1]

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
            choice: dict = {"index": 0, "delta": delta, "finish_reason": finish}
            if usage:
                choice["usage"] = usage  # Moonshot reports usage inside the choice
            return {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "model": model, "choices": [choice]}

        if KIMI_TOOL in (body.get("tools") or []) and last.get("role") == "user":
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            arguments = json.dumps({"search_result": {"search_id": uuid.uuid4().hex},
                                    "usage": {"total_tokens": KIMI_SEARCH_TOKENS}})
            self.issued[call_id] = arguments
            cut = len(arguments) // 2
            return Reply.sse(
                chunk({"role": "assistant", "content": self.preamble}),
                chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "builtin_function",
                                       "function": {"name": "$web_search", "arguments": arguments[:cut]}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[cut:]}}]}),
                chunk({}, "tool_calls", self.search_usage),
            )
        searched = last.get("role") == "tool" and last.get("name") == "$web_search"
        text = "Pelicans are large water birds; the brown pelican lives on coasts." if searched else f"{model} answer {n}"
        prompt = 12 + KIMI_SEARCH_TOKENS if searched else 12
        return Reply.sse(chunk({"role": "assistant", "content": text[:20]}), chunk({"content": text[20:]}),
                         chunk({}, "stop", {"prompt_tokens": prompt, "completion_tokens": 30,
                                            "total_tokens": prompt + 30}))
