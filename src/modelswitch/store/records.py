"""What a stored session is, as values: SessionInfo, Turn, SessionSummary. No SQL here.

Kept apart from store.py so formatting code (show, export) can use the values without the
database; store.py re-exports every name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..config.pricing import Cost
from ..conversation import Attachment, Message, ModelRef, Timing, ToolResult, ToolRound
from ..errors import UsageError
from ..events import Citation, ReplayState, ToolCall, Usage, clean_text
from ..redaction import redact

MAX_NAME_LEN = 100


class SessionNotFoundError(UsageError):
    """No session by that name or id (exit 2, like any bad name on the command line)."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    name: str | None
    created: datetime
    updated: datetime
    model: str | None = None
    system: str | None = None
    # A branch (`/fork`, `/edit N`): the session it was forked from, and how many of that
    # session's turns it started with. None for a session that is not a branch.
    parent: int | None = None
    fork_at: int | None = None

    @property
    def label(self) -> str:
        """What a user types to refer to it: the name, else `#id`."""
        return self.name or f"#{self.id}"


@dataclass(frozen=True, slots=True)
class Turn:
    """A message as stored: its cost, and whether it is a compare answer that was not kept.

    `idx` and `created` are None until the turn has been written.
    """

    message: Message
    cost: Cost | None = None
    alternate: bool = False
    idx: int | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One row of `sessions list`. Usage and cost include alternates: they were paid for."""

    info: SessionInfo
    turns: int
    models: tuple[ModelRef, ...]
    usage: Usage
    costs: tuple[Cost, ...]
    # Answers stored as alternates (compared and not kept, undone, retried): paid for, on
    # record, not turns. A chat that only compared has 0 turns and these.
    alternates: int = 0


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """One model's record over the stored answers (`modelswitch stats`): how it served.

    `model` is provider/model-id (one upstream, whatever alias named it); `fell_back` counts the
    requests to it that another model answered instead (their turns are stored under the other).
    """

    model: str
    aliases: tuple[str, ...]
    answers: int
    errors: int
    interrupted: int
    fallbacks: int  # answers it gave in place of another model
    fell_back: int
    ttft_median: float | None
    ttft_p95: float | None
    tokens_per_s: float | None  # median over answers that measured it
    output_tokens: int
    costs: tuple[Cost, ...]

    @property
    def error_rate(self) -> float:
        return self.errors / self.answers if self.answers else 0.0

    @property
    def fallback_rate(self) -> float:
        """Of the requests made to this model, the share another model answered."""
        asked = self.answers + self.fell_back
        return self.fell_back / asked if asked else 0.0


VOTE_OUTCOMES = ("win", "tie", "none")


@dataclass(frozen=True, slots=True)
class Vote:
    """One blind-arena verdict. `models` in lane order; `winner` is one of them for a win."""

    models: tuple[str, ...]
    outcome: str  # one of VOTE_OUTCOMES
    winner: str | None = None
    tag: str | None = None
    session: int | None = None
    created: datetime | None = None


def check_name(name: str) -> str:
    """A usable session name (stripped), or UsageError saying why not."""
    name = name.strip()
    if not name:
        raise UsageError("a session name cannot be empty")
    if len(name) > MAX_NAME_LEN:
        raise UsageError(f"a session name is at most {MAX_NAME_LEN} characters")
    if any(not c.isprintable() for c in name):
        raise UsageError("a session name cannot contain control characters")
    # Digits and '#digits' refer to session ids; a name shaped like one would be ambiguous.
    if name.lstrip("#").isdigit() or name.startswith("#"):
        raise UsageError(f"'{name}' looks like a session id; names cannot start with '#' or be all digits")
    return name


# -- values <-> flat rows (store.py binds these to SQL) ----------------------------------------

# The turns table's columns after `session`, in the order turn_row() fills and row_turn() reads;
# SESSION_COLUMNS likewise for row_session().
SESSION_COLUMNS = ("id", "name", "created", "updated", "model", "system", "parent", "fork_at")
TURN_COLUMNS = (
    "idx", "role", "text", "reasoning", "model_alias", "model_id", "provider", "protocol",
    "status", "input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens",
    "cost_amount", "cost_currency", "ttft_s", "total_s", "tokens_per_s", "finish_reason",
    "fallback_from", "error", "replay", "alternate", "created",
    "cache_write_tokens", "cache_write_1h_tokens", "citations", "tools", "reasoning_estimated",
)


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def redacted(text: str | None) -> str | None:
    """Every text bound for the file goes through here: keys never reach the disk, and neither
    does a lone UTF-16 surrogate (SQLite cannot encode one; an imported file may hold one)."""
    return redact(clean_text(text)) if text else text


def _replay_list(states: Sequence[ReplayState]) -> list[dict]:
    kept = []
    for s in states:
        # Masking part of a signature would corrupt it and the provider would reject the whole
        # request on replay; dropping the state only loses that turn's thinking blocks.
        if redact(s.data) != s.data:
            continue
        kept.append({"protocol": redacted(s.protocol), "model": redacted(s.model), "data": s.data})
    return kept


def _replay_json(states: Sequence[ReplayState]) -> str:
    return json.dumps(_replay_list(states), ensure_ascii=False)


def _states(items: Sequence[dict]) -> tuple[ReplayState, ...]:
    return tuple(ReplayState(d["protocol"], d["model"], d["data"]) for d in items)


def rounds_json(rounds: Sequence[ToolRound]) -> str:
    """An answer's tool rounds for the `tools` column: calls, results and approvals, every text
    redacted (a key a tool printed never reaches the disk)."""
    out = []
    for r in rounds:
        ref = r.model
        out.append({
            "text": redacted(r.text) or "", "reasoning": redacted(r.reasoning) or "",
            "model": None if ref is None else {"provider": ref.provider, "id": ref.id, "protocol": ref.protocol,
                                               "alias": ref.alias},
            "replay": _replay_list(r.replay),
            "calls": [{"id": c.id, "name": redacted(c.name), "arguments": redacted(c.arguments)} for c in r.calls],
            "results": [{"call_id": x.call_id, "name": redacted(x.name), "content": redacted(x.content) or "",
                         "is_error": x.is_error, "server": redacted(x.server) or "", "approved": x.approved,
                         "duration_s": x.duration_s} for x in r.results],
        })
    return json.dumps(out, ensure_ascii=False)


def rounds_from(text: str | None) -> tuple[ToolRound, ...]:
    rounds = []
    for r in json.loads(text or "[]"):
        m = r.get("model")
        ref = ModelRef(m["provider"], m["id"], m["protocol"], m.get("alias")) if m else None
        rounds.append(ToolRound(
            r["text"], r["reasoning"], ref,
            tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in r["calls"]),
            tuple(ToolResult(x["call_id"], x["name"], x["content"], x["is_error"], x["server"], x["approved"],
                             x["duration_s"]) for x in r["results"]),
            _states(r["replay"]),
        ))
    return tuple(rounds)


def citations_json(citations: Sequence[Citation]) -> str:
    return json.dumps([citation_dict(c) for c in citations], ensure_ascii=False)


def citation_dict(c: Citation) -> dict[str, str]:
    """A source as stored and exported; its text is scrubbed like every other text."""
    return {"title": redacted(c.title) or "", "url": redacted(c.url) or "", "cited_text": redacted(c.cited_text) or ""}


def citations_from(items: object) -> tuple[Citation, ...]:
    """Sources read back (the store, an imported file): anything not shaped like one is left out."""
    out = []
    for d in items if isinstance(items, list) else ():
        if isinstance(d, dict) and isinstance(d.get("url"), str) and d["url"]:
            title, text = d.get("title"), d.get("cited_text")
            out.append(Citation(title if isinstance(title, str) else "", d["url"], text if isinstance(text, str) else ""))
    return tuple(out)


def turn_row(turn: Turn, created: str) -> tuple[object, ...]:
    """Column values after `idx`, in TURN_COLUMNS order."""
    m, u, t, c, ref = turn.message, turn.message.usage, turn.message.timing, turn.cost, turn.message.model
    return (
        m.role, redacted(m.text) or "", redacted(m.reasoning) or "",
        redacted(ref.alias) if ref else None, redacted(ref.id) if ref else None,
        redacted(ref.provider) if ref else None, redacted(ref.protocol) if ref else None,
        m.status,
        u.input_tokens if u else None, u.output_tokens if u else None,
        u.reasoning_tokens if u else None, u.cached_tokens if u else None,
        c.amount if c else None, c.currency if c else None,
        t.ttft_s if t else None, t.total_s if t else None, t.tokens_per_s if t else None,
        redacted(m.finish_reason), redacted(m.fallback_from), redacted(m.error),
        _replay_json(m.replay), int(turn.alternate), created,
        u.cache_write_tokens if u else None, u.cache_write_1h_tokens if u else None,
        citations_json(m.citations),
        rounds_json(m.rounds),
        int(bool(u and u.reasoning_estimated)),
    )


def row_turn(row: Sequence[Any]) -> Turn:
    (idx, role, text, reasoning, alias, model_id, provider, protocol, status, inp, out, rsn, cached,
     amount, currency, ttft, total, tps, finish, fallback, error, replay, alternate, created,
     written, written_1h, citations, tools, estimated) = row
    model = ModelRef(provider, model_id, protocol or "", alias) if model_id is not None else None
    usage = (Usage(inp or 0, out or 0, rsn or 0, cached or 0, written or 0, written_1h or 0,
                   reasoning_estimated=bool(estimated))
             if inp is not None or out is not None else None)
    timing = Timing(ttft, total, tps) if (ttft, total, tps) != (None, None, None) else None
    states = _states(json.loads(replay or "[]"))
    message = Message(
        role=role, text=text, reasoning=reasoning or "", model=model, status=status, replay=states,
        usage=usage, timing=timing, finish_reason=finish, fallback_from=fallback, error=error,
        citations=citations_from(json.loads(citations or "[]")),
        rounds=rounds_from(tools),
    )
    cost = Cost(amount, currency) if amount is not None and currency else None
    return Turn(message, cost, bool(alternate), idx, datetime.fromisoformat(created))


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    """One attachment as stored: its turn-side name and kind, and its content by digest."""

    name: str
    kind: str
    note: str
    media_type: str
    data: bytes
    digest: str


def attachment_rows(message: Message) -> list[AttachmentRow]:
    """A turn's attachments bound for the file. Text is redacted like every other text (a
    key in an attached .env must not reach the disk); images are bytes and kept as they are.
    A placeholder ("withheld") exists only inside a request and is never stored."""
    rows = []
    for a in message.attachments:
        if a.kind == "withheld":
            continue
        data = a.data if a.is_image else (redacted(a.data.decode("utf-8", "replace")) or "").encode("utf-8")
        stored = Attachment(redacted(a.name) or "", a.kind, a.media_type, data, redacted(a.note) or "")
        rows.append(AttachmentRow(stored.name, stored.kind, stored.note, stored.media_type, data, stored.digest))
    return rows


def row_attachment(name: str, kind: str, note: str, media_type: str, data: bytes) -> Attachment:
    known = ("image", "text", "directory", "url", "command")
    return Attachment(name, kind if kind in known else "text", media_type, bytes(data), note)  # type: ignore[arg-type]


def with_attachments(turn: Turn, attachments: tuple[Attachment, ...]) -> Turn:
    if not attachments:
        return turn
    return replace(turn, message=replace(turn.message, attachments=attachments))


def row_session(row: Sequence[Any]) -> SessionInfo:
    sid, name, created, updated, model, system, parent, fork_at = row
    return SessionInfo(sid, name, datetime.fromisoformat(created), datetime.fromisoformat(updated), model, system,
                       parent, fork_at)
