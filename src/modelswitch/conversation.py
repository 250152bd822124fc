"""Provider-neutral conversation: who said what, with which model, and how it went."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from typing import Literal

from .events import Citation, ReplayState, ToolCall, Usage
from .redaction import redact

Role = Literal["user", "assistant"]
Status = Literal["complete", "interrupted", "error"]
# What the user attached: an image, a text file, a directory's text files, a web page, a
# command's output; "withheld" is an image a model without vision gets as a placeholder.
AttachmentKind = Literal["image", "text", "directory", "url", "command", "withheld"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attached thing, as sent: its bytes, what they are, and the name the user gave it.

    `name` is what the user typed (a path, a URL, `!git diff`); `note` says what a directory
    attachment left out, or for a withheld image the model it was not sent to.
    """

    name: str
    kind: AttachmentKind
    media_type: str
    data: bytes
    note: str = ""

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def digest(self) -> str:
        """sha256 of the bytes: how a session stores each attachment once."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def label(self) -> str:
        """The last part of the name: `error.png`, not the whole path."""
        name = self.name.rstrip("/")
        return name if self.kind in ("url", "command") else name.rsplit("/", 1)[-1] or name

    @property
    def summary(self) -> str:
        """`error.png (image/png; 12,345 bytes)`: how /file, /history and exports name it."""
        if self.kind == "directory":
            return f"{self.name} ({self.note})"
        what = {"image": self.media_type, "command": self.note or "command output", "url": "web page",
                "withheld": f"not sent to {self.note}"}.get(self.kind, "text")
        return f"{self.name} ({what}; {self.size:,} bytes)"

    def as_text(self) -> str:
        """The attachment as prompt text (images are sent as image parts, never through here)."""
        if self.kind == "withheld":
            return f"[image: {self.label}, not sent to {self.note}]"
        text = self.data.decode("utf-8", "replace").rstrip()
        if self.kind == "directory":  # already one fenced block per file
            return f"Directory {self.name} ({self.note}):\n\n{text}"
        head = {"url": "Web page", "command": "Output of"}.get(self.kind, "File")
        return f"{head} {self.name}:\n```\n{text}\n```"

    def withheld(self, model: str) -> Attachment:
        return Attachment(self.name, "withheld", self.media_type, b"", note=model)


class ModelNames:
    """How a model is called, for anything naming one by provider profile, id and alias (the
    config's ModelSpec, a turn's ModelRef): one rule, so a table and a saved turn agree."""

    __slots__ = ()
    provider: str
    id: str
    alias: str | None

    @property
    def name(self) -> str:
        """What a user calls it: the alias, else provider/id."""
        return self.alias or f"{self.provider}/{self.id}"

    @property
    def full_id(self) -> str:
        return f"{self.provider}/{self.id}"


@dataclass(frozen=True, slots=True)
class ModelRef(ModelNames):
    """The model that wrote a turn: its alias (if any), provider profile, id and protocol."""

    provider: str
    id: str
    protocol: str
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    ttft_s: float | None = None
    total_s: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and a JSON Schema for its arguments."""

    name: str
    description: str = ""
    parameters: str = '{"type": "object", "properties": {}}'  # JSON Schema text (frozen values)


# What the model is told about a call that Ctrl-C stopped: while it ran, or before it started
# (at an approval question). Records tell the two apart by these words.
CALL_CANCELLED = "cancelled: the user interrupted this tool call before it finished"
CALL_NOT_STARTED = "cancelled before it ran: the user interrupted (Ctrl-C) before this tool call started"
CALL_DECLINED = "the user declined to run this tool call"
# Nobody could be asked (`ask` without --yes, a piped chat): not the user's no, and the model is
# told so, or it would apologise for something the user never said.
CALL_UNAPPROVED = "not run: tool calls need approval, and none could be given here"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one tool call gave back, kept beside the call it answers (`call_id`).

    `approved` is None when no one was asked (a trusted tool), else the user's answer; a call
    that was refused, cancelled or failed still has a result: the model must see what happened.
    """

    call_id: str
    name: str
    content: str
    is_error: bool = False
    server: str = ""
    approved: bool | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class ToolRound:
    """One step of an answer that used tools: what the model said and thought before calling,
    its provider state (signatures), the calls, and their results in the same order."""

    text: str
    reasoning: str
    model: ModelRef | None
    calls: tuple[ToolCall, ...]
    results: tuple[ToolResult, ...] = ()
    replay: tuple[ReplayState, ...] = ()

    def replay_for(self, protocol: str, model_id: str) -> tuple[ReplayState, ...]:
        return tuple(r for r in self.replay if r.protocol == protocol and r.model == model_id)


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. Assistant turns carry the model that wrote them and their reasoning apart."""

    role: Role
    text: str
    reasoning: str = ""
    model: ModelRef | None = None
    status: Status = "complete"
    replay: tuple[ReplayState, ...] = ()
    usage: Usage | None = None
    timing: Timing | None = None
    finish_reason: str | None = None
    fallback_from: str | None = None
    error: str | None = None
    # The sources of a searched answer, numbered from 1 in this order (the answer's [n] markers).
    citations: tuple[Citation, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    # The tool rounds that came before `text` within this one answer (provider-neutral).
    rounds: tuple[ToolRound, ...] = ()

    @property
    def images(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.is_image)

    @property
    def prompt_text(self) -> str:
        """The text to send: text attachments (and placeholders) first, then what was typed."""
        parts = [a.as_text() for a in self.attachments if not a.is_image]
        return "\n\n".join(parts + [self.text]) if parts else self.text
    # For a model with routes: the provider/model-id that answered (not stored: `model` holds it).
    route: str | None = None

    @property
    def has_answer(self) -> bool:
        """An assistant turn that gave an answer worth sending as context: some text, not a failure.

        A refusal or a blocked prompt arrives as a complete turn with no text, so it is covered.
        An interrupted answer with partial text counts: the user saw it. So does one that called
        tools: the calls ran, and the model must see them and their results again.
        """
        return self.role == "assistant" and self.status != "error" and (bool(self.text.strip()) or bool(self.rounds))

    def text_with_sources(self) -> str:
        """The answer followed by its numbered sources as plain text: what another model is sent,
        so the [n] markers and the sources stay readable after a switch (no provider's blocks)."""
        if not self.citations:
            return self.text
        return self.text.rstrip() + "\n\n" + sources_text(self.citations)

    def replay_for(self, protocol: str, model_id: str) -> tuple[ReplayState, ...]:
        """Provider state this turn may hand back to exactly that protocol and model."""
        return tuple(r for r in self.replay if r.protocol == protocol and r.model == model_id)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A system prompt and the turns so far. Immutable: every change returns a new value."""

    system: str | None = None
    messages: tuple[Message, ...] = field(default_factory=tuple)

    def add(self, message: Message) -> Conversation:
        return replace(self, messages=self.messages + (message,))

    def with_system(self, system: str | None) -> Conversation:
        return replace(self, system=system or None)

    def without_last_exchange(self) -> Conversation:
        """Drop the last assistant answer and the user message it answered."""
        msgs = list(self.messages)
        if msgs and msgs[-1].role == "assistant":
            msgs.pop()
        if msgs and msgs[-1].role == "user":
            msgs.pop()
        return replace(self, messages=tuple(msgs))

    def for_request(self) -> tuple[Message, ...]:
        """Messages worth sending: an exchange that produced no answer is history, not context.

        A failed, refused or blocked turn drops out with the question it answered: sending that
        question again would repeat it beside the user's retyped one (`q\n\nq`), and a prompt a
        provider refused would keep every later turn refused. Both stay in `messages` (history,
        the store); only requests leave them out.
        """
        msgs = self.messages
        out: list[Message] = []
        for i, m in enumerate(msgs):
            if m.role == "assistant":
                if m.has_answer:
                    out.append(m)
            elif not (i + 1 < len(msgs) and msgs[i + 1].role == "assistant" and not msgs[i + 1].has_answer):
                out.append(m)
        return tuple(out)

    @property
    def has_images(self) -> bool:
        return any(m.images for m in self.messages)

    def without_images(self, model: str, max_bytes: int | None = None) -> Conversation:
        """Images replaced by a placeholder naming `model`: every one for a model without vision,
        or (with `max_bytes`) those larger than its API takes."""
        if not self.has_images:
            return self

        def send(a: Attachment) -> Attachment:
            if not a.is_image or (max_bytes is not None and a.size <= max_bytes):
                return a
            return a.withheld(model)

        msgs = tuple(replace(m, attachments=tuple(send(a) for a in m.attachments)) if m.images else m
                     for m in self.messages)
        return replace(self, messages=msgs)

    def without_tool_rounds(self) -> Conversation:
        """Each answer's tool rounds as text at the head of its answer, for a model that takes no
        tools: its API refuses calls and `tool` messages (Perplexity takes only system, user and
        assistant, alternating), yet the answer after them must still read right. One assistant
        turn stays one assistant turn, so user/assistant alternate as before."""
        if not any(m.rounds for m in self.messages):
            return self
        msgs = tuple(replace(m, rounds=(), text="\n\n".join(t for t in (rounds_text(m.rounds), m.text) if t.strip()))
                     if m.rounds else m for m in self.messages)
        return replace(self, messages=msgs)


def rounds_text(rounds: tuple[ToolRound, ...]) -> str:
    """What was said and done in tool rounds, as plain text: per round its words, then each call
    with its arguments and what it gave back (the way sources become text after a switch)."""
    parts: list[str] = []
    for rnd in rounds:
        if rnd.text.strip():
            parts.append(rnd.text.strip())
        for call, result in zip(rnd.calls, rnd.results):
            outcome = "failed" if result.is_error else "returned"
            parts.append(f"[tool call] {call.name} {call.arguments} {outcome}:\n{result.content}")
    return "\n\n".join(parts)


def sources_text(citations: tuple[Citation, ...]) -> str:
    """"Sources:" and one "[n] title — url" line per source: the plain form, for pipes and history."""
    lines = ["Sources:"]
    for n, c in enumerate(citations, 1):
        title, url = " ".join(redact(c.title).split()), redact(c.url)  # a page's address may carry a key
        lines.append(f"[{n}] {title} — {url}" if title and title != url else f"[{n}] {url}")
    return "\n".join(lines)
