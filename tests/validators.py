"""Loopback stand-ins for real APIs: they reject what the real API rejects, in its error shape.

Each fake is a `LoopbackServer.default` handler. A request that breaks one of the API's rules is
answered with the status and error body the real service sends (and kept in `rejected`); a valid
one is kept in `accepted` and answered with a stream in the real framing. Thinking signatures
are issued here and checked when they come back: only one this fake issued, for the same model
and the same thinking text, passes (the real APIs verify theirs cryptographically).

Where a rule is stricter than the API's documentation today, the comment says so: a request that
passes the stricter rule passes the real one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.loopback import Received, Reply


@dataclass(frozen=True)
class Problem:
    status: int
    message: str
    kind: str = "invalid_request_error"


@dataclass
class FakeAPI:
    """Shared bookkeeping; subclasses supply `matches`, `validate` and `answer`."""

    key: str = "test-key"
    accepted: list[dict] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, rec: Received) -> Reply:
        try:
            body = json.loads(rec.raw) if rec.raw else {}
        except ValueError:
            body = None
        problem = self.validate(rec, body) if isinstance(body, dict) else Problem(400, "invalid JSON body")
        if problem is not None:
            self.rejected.append((problem.status, problem.message))
            return self.error_reply(problem)
        self.accepted.append(body)
        return self.answer(rec, body)

    def matches(self, rec: Received) -> bool:
        raise NotImplementedError

    def validate(self, rec: Received, body: dict) -> Problem | None:
        raise NotImplementedError

    def answer(self, rec: Received, body: dict) -> Reply:
        raise NotImplementedError

    def error_reply(self, problem: Problem) -> Reply:
        raise NotImplementedError


def router(*apis: FakeAPI) -> Callable[[Received], Reply]:
    """One loopback server speaking every protocol: the path picks the API."""

    def handle(rec: Received) -> Reply:
        for api in apis:
            if api.matches(rec):
                return api(rec)
        return Reply.json(404, {"error": f"loopback: nothing serves {rec.path}"})

    return handle


def tool_to_call(body: dict) -> str | None:
    """The fakes' model: offered tools and not just given results, it calls the first tool."""
    tools = body.get("tools") or []
    if not tools:
        return None
    first = tools[0]
    name = first.get("name") or (first.get("function") or {}).get("name")
    if not name and first.get("functionDeclarations"):
        name = first["functionDeclarations"][0]["name"]
    return name


def _sig(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}{uuid.uuid4().hex}"


def _nonblank(text: object) -> bool:
    return isinstance(text, str) and bool(text.strip())


# The image types every one of these APIs documents (PNG, JPEG, WebP, GIF).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8"}


def _image_problem(media_type: object, data: object) -> str | None:
    """What a server decoding this image would reject: an unknown type, bad base64, bytes that are
    not what the type says. None if it is a real image of that type."""
    import base64
    import binascii

    if media_type not in IMAGE_TYPES:
        return f"unsupported image type {media_type!r}"
    if not isinstance(data, str) or not data:
        return "image data must be a non-empty base64 string"
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "image data is not valid base64"
    magic = _MAGIC.get(str(media_type))
    if magic and not raw.startswith(magic) or media_type == "image/webp" and raw[8:12] != b"WEBP":
        return f"image data is not {media_type}"
    return None


# -- Anthropic -------------------------------------------------------------------------------

_ANTHROPIC_KEYS = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences",
    "stream", "metadata", "thinking", "tools", "tool_choice", "service_tier",
}


_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@dataclass
class FakeAnthropic(FakeAPI):
    key: str = "sk-ant-test"
    tool_args: dict = field(default_factory=dict)  # what its tool calls pass
    output_limits: dict[str, int] = field(default_factory=dict)  # model -> max output tokens
    redacted: bool = False  # also answer with a redacted_thinking block
    issued: dict[str, tuple[str, str]] = field(default_factory=dict)  # signature -> (model, text)
    images: int = 0  # image blocks seen in valid requests

    def matches(self, rec: Received) -> bool:
        return rec.path.split("?")[0].endswith("/v1/messages")

    def error_reply(self, p: Problem) -> Reply:
        body = {"type": "error", "error": {"type": p.kind, "message": p.message}, "request_id": "req_loop"}
        return Reply.json(p.status, body)

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if rec.headers.get("x-api-key") != self.key:
            return Problem(401, "invalid x-api-key", "authentication_error")
        if not rec.headers.get("anthropic-version"):
            return Problem(400, "anthropic-version: header is required")
        for k in body:
            if k not in _ANTHROPIC_KEYS:
                return Problem(400, f"{k}: Extra inputs are not permitted")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return Problem(400, "model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return Problem(400, "max_tokens: Field required")
        if max_tokens < 1:
            return Problem(400, "max_tokens: Input should be greater than or equal to 1")
        limit = self.output_limits.get(model, 64000)
        if max_tokens > limit:
            return Problem(400, f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed "
                                f"number of output tokens for {model}")
        system = body.get("system")
        if system is not None and not isinstance(system, (str, list)):
            return Problem(400, "system: Input should be a valid string")
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 1:
            return Problem(400, "temperature: Input should be less than or equal to 1")
        return self._thinking(body) or self._messages(body, model)

    def _thinking(self, body: dict) -> Problem | None:
        thinking = body.get("thinking")
        if thinking is None:
            return None
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            return Problem(400, "thinking: Input tag does not match any of the expected tags: "
                                "'enabled', 'disabled', 'adaptive'")
        if kind != "enabled":
            return None
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int):
            return Problem(400, "thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            return Problem(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if body["max_tokens"] <= budget:
            return Problem(400, "`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                                "consult our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                                "extended-thinking#max-tokens-and-context-window-size")
        if body.get("temperature", 1) != 1:
            return Problem(400, "`temperature` may only be set to 1 when thinking is enabled or in "
                                "adaptive mode.")
        if "top_k" in body:
            return Problem(400, "`top_k` must be unset when thinking is enabled.")
        return None

    def _messages(self, body: dict, model: str) -> Problem | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Problem(400, "messages: at least one message is required")
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                return Problem(400, f"messages.{i}: Input should be a valid dictionary")
            for k in m:
                if k not in ("role", "content"):
                    return Problem(400, f"messages.{i}.{k}: Extra inputs are not permitted")
            if m.get("role") not in ("user", "assistant"):
                return Problem(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            # Stricter than today's documentation, which merges consecutive turns and allows an
            # assistant first; these were the API's own errors and every API here needs them kept.
            if i == 0 and m["role"] != "user":
                return Problem(400, 'messages: first message must use the "user" role')
            if i and messages[i - 1].get("role") == m["role"]:
                return Problem(400, 'messages: roles must alternate between "user" and "assistant", '
                                    f'but found multiple "{m["role"]}" roles in a row')
            problem = self._content(i, m, model, last=i == len(messages) - 1, body=body)
            if problem:
                return problem
        return self._tool_pairs(messages, body)

    def _tool_pairs(self, messages: list, body: dict) -> Problem | None:
        """Every tool_use answered by a tool_result (first) in the very next message; inside a
        tool loop with thinking on, the assistant turn being continued starts with thinking."""
        def blocks(m: dict) -> list:
            return m["content"] if isinstance(m["content"], list) else []

        for i, m in enumerate(messages):
            uses = [b["id"] for b in blocks(m) if b.get("type") == "tool_use"]
            nxt = blocks(messages[i + 1]) if i + 1 < len(messages) else []
            results = [b.get("tool_use_id") for b in nxt if b.get("type") == "tool_result"]
            if m["role"] == "assistant" and uses and (i + 1 == len(messages) or sorted(results) != sorted(uses)):
                return Problem(400, f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                                    f"immediately after: {', '.join(uses)}. Each `tool_use` block must have a "
                                    "corresponding `tool_result` block in the next message.")
            if m["role"] == "user" and results:
                prev = blocks(messages[i - 1]) if i else []
                known = {b.get("id") for b in prev if b.get("type") == "tool_use"}
                if any(r not in known for r in results):
                    return Problem(400, f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                                        "blocks. Each `tool_result` block must have a corresponding `tool_use` "
                                        "block in the previous message.")
                kinds = [b.get("type") for b in blocks(m)]
                if kinds[: len(results)] != ["tool_result"] * len(results):
                    return Problem(400, f"messages.{i}: tool_result blocks must come first in the message")
        if not body.get("tools") and any(b.get("type") in ("tool_use", "tool_result") for m in messages
                                         for b in blocks(m)):
            return Problem(400, "Requests which include `tool_use` or `tool_result` blocks must define tools.")
        declared = {t.get("name") for t in body.get("tools") or ()}
        for m in messages:
            for b in blocks(m):
                if b.get("type") == "tool_use" and b.get("name") not in declared:
                    return Problem(400, f"tool_use block names a tool that is not defined: {b.get('name')}")
        last = messages[-1]
        thinking_on = (body.get("thinking") or {}).get("type") == "enabled"
        if thinking_on and last["role"] == "user" and any(b.get("type") == "tool_result" for b in blocks(last)):
            first = blocks(messages[-2])[0].get("type") if len(messages) > 1 and blocks(messages[-2]) else None
            if first not in ("thinking", "redacted_thinking"):
                return Problem(400, f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
                                    f"`redacted_thinking`, but found `{first}`. When `thinking` is enabled, a final "
                                    "`assistant` message must start with a thinking block.")
        return None

    def _content(self, i: int, m: dict, model: str, *, last: bool, body: dict) -> Problem | None:
        content = m.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list) or (not content and not (last and m["role"] == "assistant")):
            return Problem(400, f"messages.{i}: all messages must have non-empty content except for "
                                "the optional final assistant message")
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            where = f"messages.{i}.content.{j}"
            if kind == "text":
                if not _nonblank(block.get("text")):
                    return Problem(400, "messages: text content blocks must contain non-whitespace text")
            elif kind == "image":
                # {"type": "image", "source": {"type": "base64", "media_type": ..., "data": ...}}
                source = block.get("source")
                if set(block) != {"type", "source"} or not isinstance(source, dict):
                    return Problem(400, f"{where}.source: Field required")
                if source.get("type") != "base64" or set(source) != {"type", "media_type", "data"}:
                    return Problem(400, f"{where}.source: Input tag does not match any of the expected tags")
                bad = _image_problem(source.get("media_type"), source.get("data"))
                if bad:
                    return Problem(400, f"{where}.source.base64: {bad}")
                if len(source["data"]) > 5 * 1024 * 1024:
                    return Problem(400, f"{where}.source.base64: image exceeds 5 MB maximum")
                self.images += 1
            elif kind in ("thinking", "redacted_thinking"):
                if m["role"] != "assistant":
                    return Problem(400, f"{where}.type: thinking blocks may only appear in assistant messages")
                expected = {"type", "thinking", "signature"} if kind == "thinking" else {"type", "data"}
                if set(block) != expected:
                    extra = sorted(set(block) - expected) or sorted(expected - set(block))
                    return Problem(400, f"{where}.{extra[0]}: Extra inputs are not permitted")
                token = block["signature"] if kind == "thinking" else block["data"]
                text = block.get("thinking", "")
                if self.issued.get(token) != (model, text):
                    what = "`signature` in `thinking`" if kind == "thinking" else "`data` in `redacted_thinking`"
                    return Problem(400, f"{where}: Invalid {what} block")
            elif kind == "tool_use" and m["role"] == "assistant":
                if set(block) != {"type", "id", "name", "input"} or not isinstance(block["input"], dict):
                    return Problem(400, f"{where}: a tool_use block needs exactly type, id, name and an object input")
                if not _TOOL_ID.match(str(block["id"])):
                    return Problem(400, f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            elif kind == "tool_result" and m["role"] == "user":
                if not set(block) <= {"type", "tool_use_id", "content", "is_error"} or "tool_use_id" not in block:
                    return Problem(400, f"{where}: Extra inputs are not permitted")
            else:
                return Problem(400, f"{where}.type: Input tag '{kind}' found using 'type' does not match "
                                    "any of the expected tags")
        thinking_on = (body.get("thinking") or {}).get("type") == "enabled"
        if last and m["role"] == "assistant" and thinking_on and content[0].get("type") == "text":
            return Problem(400, f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                                "but found `text`. When `thinking` is enabled, a final `assistant` message "
                                "must start with a thinking block.")
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        n, model = len(self.accepted), body["model"]
        events: list[dict] = [
            {"type": "message_start", "message": {"id": f"msg_{n}", "type": "message", "role": "assistant",
             "model": model, "content": [], "usage": {"input_tokens": 10 * n, "cache_read_input_tokens": 2,
                                                      "output_tokens": 1}}},
            {"type": "ping"},
        ]

        def block(start: dict, *deltas: dict) -> None:
            index = sum(e["type"] == "content_block_start" for e in events)
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
            events.append({"type": "content_block_stop", "index": index})

        if (body.get("thinking") or {}).get("type") == "enabled":
            thought, sig = f"{model} thinks privately, turn {n}", _sig("EqQB")
            self.issued[sig] = (model, thought)
            block({"type": "thinking", "thinking": "", "signature": ""},
                  {"type": "thinking_delta", "thinking": thought}, {"type": "signature_delta", "signature": sig})
            if self.redacted:
                data = _sig("RED")
                self.issued[data] = (model, "")
                block({"type": "redacted_thinking", "data": data})
        last = body["messages"][-1]
        given = isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"])
        tool = None if given else tool_to_call(body)
        if tool:
            args = json.dumps(self.tool_args)
            block({"type": "tool_use", "id": f"toolu_{n}x{uuid.uuid4().hex[:8]}", "name": tool, "input": {}},
                  {"type": "input_json_delta", "partial_json": args[: len(args) // 2]},
                  {"type": "input_json_delta", "partial_json": args[len(args) // 2 :]})
        else:
            block({"type": "text", "text": ""}, {"type": "text_delta", "text": f"{model} answer {n}"})
        stop = "tool_use" if tool else "end_turn"
        events += [{"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 20}},
                   {"type": "message_stop"}]
        return Reply(chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


# -- Gemini ----------------------------------------------------------------------------------

_GEMINI_KEYS = {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
                "toolConfig", "cachedContent"}
_GEMINI_CONFIG_KEYS = {"temperature", "maxOutputTokens", "topP", "topK", "stopSequences",
                       "candidateCount", "responseMimeType", "thinkingConfig", "seed"}
_GEMINI_PART_KEYS = {"text", "thought", "thoughtSignature", "inlineData", "fileData",
                     "functionCall", "functionResponse"}
_GEMINI_PATH = re.compile(r"/v1beta/models/([^/:?]+):streamGenerateContent")


# Google's documented placeholder for a call whose signature it never issued.
GEMINI_PLACEHOLDER = "skip_thought_signature_validator"


@dataclass
class FakeGemini(FakeAPI):
    key: str = "gm-test"
    tool_args: dict = field(default_factory=dict)
    issued: dict[str, str] = field(default_factory=dict)  # thoughtSignature -> model

    def matches(self, rec: Received) -> bool:
        return bool(_GEMINI_PATH.search(rec.path))

    def error_reply(self, p: Problem) -> Reply:
        return Reply.json(p.status, {"error": {"code": p.status, "message": p.message, "status": p.kind}})

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if not rec.headers.get("x-goog-api-key"):
            return Problem(403, "Method doesn't allow unregistered callers (callers without established "
                                "identity). Please use API Key or other form of API consumer identity to "
                                "call this API.", "PERMISSION_DENIED")
        if rec.headers["x-goog-api-key"] != self.key:
            return Problem(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        bad = _unknown(body, _GEMINI_KEYS, "") or _unknown(body.get("generationConfig") or {},
                                                            _GEMINI_CONFIG_KEYS, "generation_config")
        if bad:
            return bad
        model = _GEMINI_PATH.search(rec.path).group(1)
        system = body.get("systemInstruction")
        if system is not None and not (isinstance(system, dict) and isinstance(system.get("parts"), list)):
            return Problem(400, "Invalid value at 'system_instruction'", "INVALID_ARGUMENT")
        return self._thinking(model, body) or self._contents(model, body)

    def _thinking(self, model: str, body: dict) -> Problem | None:
        config = (body.get("generationConfig") or {}).get("thinkingConfig")
        if config is None:
            return None
        bad = _unknown(config, {"includeThoughts", "thinkingBudget", "thinkingLevel"}, "thinking_config")
        if bad:
            return bad
        if "thinkingBudget" in config and "thinkingLevel" in config:
            return Problem(400, "You can only set one of thinking budget and thinking level.", "INVALID_ARGUMENT")
        budget = config.get("thinkingBudget")
        if budget == 0 and "pro" in model:
            return Problem(400, "Budget 0 is invalid. This model only works in thinking mode.", "INVALID_ARGUMENT")
        low, high = (128, 32768) if "pro" in model else (0, 24576)
        if budget is not None and budget != -1 and not (budget == 0 or low <= budget <= high):
            return Problem(400, f"The thinking budget {budget} is invalid. Please choose a value between "
                                f"{low} and {high}.", "INVALID_ARGUMENT")
        return None

    def _contents(self, model: str, body: dict) -> Problem | None:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return Problem(400, "* GenerateContentRequest.contents: contents is not specified", "INVALID_ARGUMENT")
        for i, c in enumerate(contents):
            bad = _unknown(c, {"role", "parts"}, f"contents[{i}]")
            if bad:
                return bad
            if c.get("role") not in ("user", "model"):
                return Problem(400, "Please use a valid role: user, model.", "INVALID_ARGUMENT")
            # Stricter than today's API, which tolerates repeats; older models demanded alternation.
            if i and contents[i - 1].get("role") == c["role"]:
                return Problem(400, "Please ensure that multiturn requests alternate between user and model.",
                               "INVALID_ARGUMENT")
            parts = c.get("parts")
            if not isinstance(parts, list) or not parts:
                return Problem(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not "
                                    "be empty.", "INVALID_ARGUMENT")
            for j, p in enumerate(parts):
                bad = _unknown(p, _GEMINI_PART_KEYS, f"contents[{i}].parts[{j}]")
                if bad:
                    return bad
                if "inlineData" in p:
                    inline = p["inlineData"]
                    bad = _unknown(inline, {"mimeType", "data"}, f"contents[{i}].parts[{j}].inline_data")
                    if bad:
                        return bad
                    problem = _image_problem(inline.get("mimeType"), inline.get("data"))
                    if problem:
                        return Problem(400, f"Invalid value at 'contents[{i}].parts[{j}].inline_data': {problem}",
                                       "INVALID_ARGUMENT")
                sig = p.get("thoughtSignature")
                placeholder = sig == GEMINI_PLACEHOLDER and "functionCall" in p
                if sig is not None and not placeholder and (c["role"] != "model" or self.issued.get(sig) != model):
                    return Problem(400, "Corrupted thought signature.", "INVALID_ARGUMENT")
                if ("functionCall" in p) != (c["role"] == "model") and ("functionCall" in p):
                    return Problem(400, "functionCall parts belong to the model role.", "INVALID_ARGUMENT")
                if "text" in p and not _nonblank(p["text"]) and sig is None:
                    return Problem(400, "Unable to submit request because it has an empty text parameter. "
                                        "Add a value to the parameter and try again.", "INVALID_ARGUMENT")
            calls = [p for p in parts if "functionCall" in p]
            # Gemini 3: the first function call of a step carries the signature (the model's, or
            # the placeholder); stricter than the docs, which check the current turn only.
            if calls and "gemini-3" in model and "thoughtSignature" not in calls[0]:
                return Problem(400, f"Function call `{calls[0]['functionCall'].get('name')}` in the {i}. content "
                                    "block is missing a `thought_signature`.", "INVALID_ARGUMENT")
            answers = [p for p in parts if "functionResponse" in p]
            before = [p for p in contents[i - 1]["parts"] if "functionCall" in p] if i else []
            if answers and len(answers) != len(before):
                return Problem(400, "Please ensure that the number of function response parts is equal to the "
                                    "number of function call parts of the function call turn.", "INVALID_ARGUMENT")
            after = contents[i + 1]["parts"] if i + 1 < len(contents) else None
            if calls and after is not None and sum("functionResponse" in p for p in after) != len(calls):
                return Problem(400, "Please ensure that function call turn comes immediately after a user turn "
                                    "or after a function response turn.", "INVALID_ARGUMENT")
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        n = len(self.accepted)
        model = _GEMINI_PATH.search(rec.path).group(1)
        show = ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts")
        sig = _sig("CiIB")
        self.issued[sig] = model
        usage = {"promptTokenCount": 30 + n, "candidatesTokenCount": 7, "thoughtsTokenCount": 40,
                 "cachedContentTokenCount": 5, "totalTokenCount": 82 + n}
        objs = []
        last = body["contents"][-1]["parts"]
        tool = None if any("functionResponse" in p for p in last) else tool_to_call(body)
        if tool:
            part = {"functionCall": {"name": tool, "args": self.tool_args}, "thoughtSignature": sig}
            objs.append({"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                                         "index": 0}], "usageMetadata": usage})
            return Reply(chunks=[f"data: {json.dumps(o)}\r\n\r\n".encode() for o in objs])
        if show:
            objs.append({"candidates": [{"content": {"role": "model", "parts": [
                {"text": f"{model} muses, turn {n}", "thought": True}]}, "index": 0}]})
        objs.append({"candidates": [{"content": {"role": "model", "parts": [
            {"text": f"{model} answer", "thoughtSignature": sig}]}, "index": 0}]})
        objs.append({"candidates": [{"content": {"role": "model", "parts": [{"text": f" {n}"}]},
                                     "finishReason": "STOP", "index": 0}], "usageMetadata": usage})
        if "alt=sse" in rec.path:
            return Reply(chunks=[f"data: {json.dumps(o)}\r\n\r\n".encode() for o in objs])
        return Reply(chunks=[("[" + "\n,\n".join(json.dumps(o, indent=2) for o in objs) + "]").encode()],
                     content_type="application/json")


def _unknown(obj: object, allowed: set[str], where: str) -> Problem | None:
    if not isinstance(obj, dict):
        return Problem(400, f"Invalid value at '{where}'", "INVALID_ARGUMENT")
    for k in obj:
        if k not in allowed:
            at = f" at '{where}'" if where else ""
            return Problem(400, f'Invalid JSON payload received. Unknown name "{k}"{at}: Cannot find field.',
                           "INVALID_ARGUMENT")
    return None


def _sniff(data: str) -> str:
    import base64
    import binascii

    try:
        raw = base64.b64decode(data[:64], validate=False)
    except (binascii.Error, ValueError):
        return ""
    for kind, magic in _MAGIC.items():
        if raw.startswith(magic):
            return kind
    return "image/webp" if raw[8:12] == b"WEBP" else ""


# -- Ollama ----------------------------------------------------------------------------------


@dataclass
class FakeOllama(FakeAPI):
    tool_args: dict = field(default_factory=dict)
    # name -> whether it can think (Ollama refuses `think` for a model that cannot)
    models: dict[str, bool] = field(default_factory=lambda: {"qwen3:8b": True, "llama3.2": False})
    vision: dict[str, bool] = field(default_factory=dict)  # name -> takes images

    def matches(self, rec: Received) -> bool:
        return rec.path.split("?")[0] in ("/api/chat", "/api/tags")

    def error_reply(self, p: Problem) -> Reply:
        return Reply.json(p.status, {"error": p.message})

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if rec.path == "/api/tags":
            return None
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return Problem(400, "model is required")
        if model not in self.models:
            return Problem(404, f"model '{model}' not found")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return Problem(400, "json: cannot unmarshal messages into Go struct field ChatRequest.messages")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(
                m.get("content", ""), str
            ):
                return Problem(400, "json: cannot unmarshal message into Go value of type api.Message")
            images = m.get("images", [])
            if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
                return Problem(400, "json: cannot unmarshal images into Go struct field Message.images of type []byte")
            for x in images:
                # Go decodes []byte from standard base64; Ollama then sniffs the image format.
                bad = _image_problem(_sniff(x), x)
                if bad:
                    return Problem(400, f"illegal base64 data or image format: {bad}")
            if images and not self.vision.get(body.get("model"), False):
                return Problem(500, "this model is missing data required for image input")
            for call in m.get("tool_calls") or ():
                if not isinstance((call.get("function") or {}).get("arguments"), dict):
                    return Problem(400, "json: cannot unmarshal string into Go struct field "
                                        "ToolCallFunction.messages.tool_calls.function.arguments of type "
                                        "api.ToolCallFunctionArguments")
        think = body.get("think")
        if think is not None and not (isinstance(think, bool) or think in ("low", "medium", "high")):
            return Problem(400, f"invalid think value: {think!r}")
        if think and not self.models[model]:
            return Problem(400, f'"{model}" does not support thinking')
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        if rec.path == "/api/tags":
            models = [{"name": m, "model": m, "size": 1} for m in self.models]
            return Reply.json(200, {"models": models})
        n, model = len(self.accepted), body["model"]
        lines = []
        if body.get("think"):
            lines.append({"message": {"role": "assistant", "content": "", "thinking": f"{model} ponders {n}"}})
        tool = None if body["messages"][-1]["role"] == "tool" else tool_to_call(body)
        if tool:
            lines.append({"message": {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": tool, "arguments": self.tool_args}}]}})
        else:
            lines += [{"message": {"role": "assistant", "content": f"{model} answer"}},
                      {"message": {"role": "assistant", "content": f" {n}"}}]
        stats = {"done_reason": "stop", "prompt_eval_count": 50 + n, "eval_count": 12,
                 "eval_duration": 400_000_000, "total_duration": 900_000_000}
        lines.append({"message": {"role": "assistant", "content": ""}, **stats})
        out = [json.dumps({"model": model, "created_at": "2026-01-01T00:00:00Z", "done": "done_reason" in ln, **ln})
               for ln in lines]
        return Reply(chunks=[(o + "\n").encode() for o in out], content_type="application/x-ndjson")


# -- DeepSeek (OpenAI shape) -----------------------------------------------------------------


@dataclass
class FakeDeepSeek(FakeAPI):
    key: str = "sk-ds-test"
    models: tuple[str, ...] = ("deepseek-chat", "deepseek-reasoner", "deepseek-v4-flash", "deepseek-flash",
                               "deepseek-v4-pro")
    prefix: str = ""  # only paths under it: two OpenAI-shaped fakes behind one server
    tool_args: dict = field(default_factory=dict)
    args_by_tool: dict[str, dict] = field(default_factory=dict)  # tool name -> its arguments
    # Models in thinking mode: each assistant message of a tool-call span needs its reasoning_content
    # (a relay may serve DeepSeek's model under another name).
    # Today's ids think unless the request says `thinking: {type: disabled}`.
    thinking: tuple[str, ...] = ("deepseek-v4-flash", "deepseek-flash", "deepseek-v4-pro")

    @staticmethod
    def thinks(body: dict) -> bool:
        return body.get("thinking") != {"type": "disabled"}

    def matches(self, rec: Received) -> bool:
        return rec.path.startswith(self.prefix) and rec.path.split("?")[0].endswith("/chat/completions")

    def error_reply(self, p: Problem) -> Reply:
        return Reply.json(p.status, {"error": {"message": p.message, "type": p.kind, "param": None,
                                               "code": "invalid_request_error"}})

    def validate(self, rec: Received, body: dict) -> Problem | None:
        if rec.headers.get("authorization") != f"Bearer {self.key}":
            return Problem(401, "Authentication Fails, Your api key is invalid", "authentication_error")
        if body.get("model") not in self.models:
            return Problem(400, "Model Not Exist")
        # api-docs.deepseek.com/guides/thinking_mode: {"thinking": {"type": "enabled"|"disabled"}},
        # {"reasoning_effort": "low"|"high"|"max"} (minimal, medium and xhigh mapped onto those).
        thinking = body.get("thinking")
        if thinking is not None and (not isinstance(thinking, dict) or set(thinking) != {"type"}
                                     or thinking["type"] not in ("enabled", "disabled")):
            return Problem(422, "Failed to deserialize the JSON body into the target type: thinking: "
                                "expected {\"type\": \"enabled\" | \"disabled\"}")
        if body.get("reasoning_effort", "high") not in ("minimal", "low", "medium", "high", "xhigh", "max"):
            return Problem(422, "Failed to deserialize the JSON body into the target type: reasoning_effort: "
                                "unknown variant")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Problem(400, "Empty input messages")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
                return Problem(422, f"Failed to deserialize the JSON body into the target type: messages[{i}]: "
                                    "unknown variant, expected one of `system`, `user`, `assistant`, `tool`")
            calling = m.get("role") == "assistant" and m.get("tool_calls")
            if not isinstance(m.get("content"), str) and not (calling and m.get("content") is None):
                return Problem(422, f"Failed to deserialize the JSON body into the target type: messages[{i}]: "
                                    "invalid type: expected a string")
            if calling and body["model"] in self.thinking and self.thinks(body) \
                    and not isinstance(m.get("reasoning_content"), str):
                # The thinking mode's rule (api-docs.deepseek.com/guides/thinking_mode#tool-calls).
                return Problem(400, f"Missing reasoning_content field in the assistant message at message index {i}. "
                                    "For more information, please refer to "
                                    "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls")
            if m.get("role") == "tool":
                asked = next((x for x in reversed(messages[:i]) if x.get("role") != "tool"), {})
                ids = [c.get("id") for c in asked.get("tool_calls") or ()]
                if m.get("tool_call_id") not in ids:
                    return Problem(400, "Messages with role 'tool' must be a response to a preceding message "
                                        "with 'tool_calls'")
            if calling:
                answered = {x.get("tool_call_id") for x in messages[i + 1 :] if x.get("role") == "tool"}
                if any(c.get("id") not in answered for c in m["tool_calls"]):
                    return Problem(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                                        "responding to each 'tool_call_id'.")
        if body["model"] != "deepseek-reasoner":
            return None
        if any("reasoning_content" in m for m in messages):
            # R1's documented rule: its chain of thought must not be sent back as input.
            return Problem(400, "The reasoning_content is an intermediate result for display purposes only "
                                "and will not be included in the context for inference. Please remove the "
                                "reasoning_content from your input messages.")
        turns = [(i, m["role"]) for i, m in enumerate(messages) if m["role"] != "system"]
        if not turns or turns[0][1] != "user":
            return Problem(400, "The first message (except the system message) of deepseek-reasoner must be a "
                                "user message, but an assistant message detected.")
        for (a, ra), (b, rb) in zip(turns, turns[1:]):
            if ra == rb:
                return Problem(400, f"deepseek-reasoner does not support successive user or assistant messages "
                                    f"(messages[{a}] and messages[{b}] in your input). You should interleave "
                                    "the user/assistant messages in the message sequence.")
        return None

    def answer(self, rec: Received, body: dict) -> Reply:
        n, model = len(self.accepted), body["model"]

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
            return {"id": f"c{n}", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage}

        chunks = [chunk({"role": "assistant", "content": None, "reasoning_content": ""})]
        if model != "deepseek-chat" and self.thinks(body):
            chunks.append(chunk({"content": None, "reasoning_content": f"{model} reasons {n}"}))
        tool = None if body["messages"][-1]["role"] == "tool" else tool_to_call(body)
        if tool:
            args = json.dumps(self.args_by_tool.get(tool, self.tool_args))
            call_id = f"call_00_{uuid.uuid4().hex[:12]}"
            chunks += [
                chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                       "function": {"name": tool, "arguments": ""}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[: len(args) // 2]}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[len(args) // 2 :]}}]}),
            ]
        else:
            chunks += [chunk({"content": f"{model} answer"}), chunk({"content": f" {n}"})]
        usage = {"prompt_tokens": 40 + n, "completion_tokens": 30, "total_tokens": 70 + n,
                 "prompt_cache_hit_tokens": 8, "prompt_cache_miss_tokens": 32 + n,
                 "completion_tokens_details": {"reasoning_tokens": 18}}
        chunks.append(chunk({"content": ""}, "tool_calls" if tool else "stop", usage))
        return Reply.sse(*chunks)


@dataclass
class FakeOpenAIVision(FakeDeepSeek):
    """OpenAI Chat Completions with vision: a user message's content may be a list of parts,
    `{"type": "text", "text"}` and `{"type": "image_url", "image_url": {"url": "data:...;base64,..."}}`."""

    key: str = "sk-oa-test"
    models: tuple[str, ...] = ("gpt-4o-mini",)
    images: int = 0

    def validate(self, rec: Received, body: dict) -> Problem | None:
        messages = body.get("messages")
        if isinstance(messages, list):
            flat = []
            for i, m in enumerate(messages):
                content = m.get("content") if isinstance(m, dict) else None
                if isinstance(content, list):
                    if m.get("role") != "user":
                        return Problem(400, f"Invalid 'messages[{i}]': image parts are only for user messages")
                    problem = self._parts(i, content)
                    if problem:
                        return problem
                    m = {**m, "content": " ".join(p.get("text", "") for p in content)}
                flat.append(m)
            body = {**body, "messages": flat}
        return super().validate(rec, body)

    def _parts(self, i: int, content: list) -> Problem | None:
        if not content:
            return Problem(400, f"Invalid 'messages[{i}].content': empty array.")
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and set(part) == {"type", "text"} and isinstance(part["text"], str):
                continue
            if kind != "image_url" or set(part) != {"type", "image_url"} or not isinstance(part["image_url"], dict):
                return Problem(400, f"Invalid '{where}': expected a text or image_url part")
            url = part["image_url"].get("url")
            match = re.fullmatch(r"data:([a-z/]+);base64,(.*)", url or "", re.S)
            if not match:
                return Problem(400, f"Invalid '{where}.image_url.url': expected a URL or a base64 data URL")
            bad = _image_problem(match.group(1), match.group(2))
            if bad:
                return Problem(400, f"Invalid image in '{where}': {bad}")
            self.images += 1
        return None


# -- driving a protocol ----------------------------------------------------------------------


def drive(protocol: object, target: object, conversation: object) -> list:
    """All events of one turn, through the real transport (httpx iter_raw if it is not there)."""
    try:
        from modelswitch.providers.transport import stream
    except ImportError:  # pragma: no cover - only while transport.py is being written
        import httpx

        request = protocol.build_request(target, conversation)  # type: ignore[attr-defined]
        with httpx.Client() as client:
            with client.stream(request.method, request.url, json=request.body, headers=request.headers) as r:
                if r.status_code >= 300:
                    raise AssertionError(f"{r.status_code}: {r.read()!r}")
                return list(protocol.parse_stream(r.iter_raw(), target))  # type: ignore[attr-defined]
    return list(stream(protocol, target, conversation))  # type: ignore[arg-type]


def splits(data: bytes, seeds: range = range(6)) -> list[list[bytes]]:
    """The same bytes whole, byte by byte, and cut at random places (seeded, so reproducible)."""
    import random

    out = [[data], [data[i : i + 1] for i in range(len(data))]]
    for seed in seeds:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 40))))
        out.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])])
    return out
