"""A stored session as text: JSON that round-trips, Markdown that reads well, per-model stats.

Pure functions over store_records values; no database, no printing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..conversation import CALL_CANCELLED, CALL_NOT_STARTED, Attachment, Message, ModelRef, Timing
from ..errors import UsageError
from ..events import ReplayState, Usage
from ..config.pricing import Cost
from .records import ModelHealth, SessionInfo, Turn, citation_dict, citations_from, rounds_from, rounds_json

FORMAT = "modelswitch-session"
FORMAT_VERSION = 1
MAX_INT = 2**63 - 1
EARLIEST, LATEST = 1970, 9998


# -- JSON ----------------------------------------------------------------------------------------


def turn_count(turns: Sequence[Turn]) -> str:
    """"8 turns": what /history would number; compare answers not kept (alternates) are not turns."""
    n = sum(not t.alternate for t in turns)
    return f"{n} turn{'' if n == 1 else 's'}"


def aside_count(n: int) -> str:
    """Answers on record but not in the conversation (compared and not kept, undone, retried)."""
    return f"{n} answer{'' if n == 1 else 's'} not kept"


def turns_cell(turns: int, aside: int) -> str:
    """The turns column of a session list: "4", or "0 (+2 not kept)" with answers set aside."""
    return f"{turns} (+{aside} not kept)" if aside else str(turns)


def to_json(info: SessionInfo, turns: Sequence[Turn]) -> dict[str, Any]:
    """Everything stored about a session; `from_json` reads it back."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "session": {
            "id": info.id, "name": info.name, "created": info.created.isoformat(),
            "updated": info.updated.isoformat(), "model": info.model, "system": info.system,
        },
        "turns": [_turn_json(t) for t in turns],
    }


def _turn_json(t: Turn) -> dict[str, Any]:
    m, u, tm = t.message, t.message.usage, t.message.timing
    return {
        "idx": t.idx,
        "role": m.role,
        "model": None if m.model is None else {
            "alias": m.model.alias, "provider": m.model.provider, "id": m.model.id,
            "protocol": m.model.protocol,
        },
        "text": m.text,
        "reasoning": m.reasoning,
        "status": m.status,
        "alternate": t.alternate,
        # The same shapes as `ask --json`.
        "usage": None if u is None else {
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens, "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens, "cache_write_1h_tokens": u.cache_write_1h_tokens,
            "reasoning_tokens_estimated": u.reasoning_estimated,
        },
        "cost": None if t.cost is None else {"amount": t.cost.amount, "currency": t.cost.currency},
        "timing": None if tm is None else {
            "ttft_s": tm.ttft_s, "total_s": tm.total_s, "tokens_per_s": tm.tokens_per_s,
        },
        "finish_reason": m.finish_reason,
        "fallback_from": m.fallback_from,
        "error": m.error,
        "replay": [{"protocol": r.protocol, "model": r.model, "data": r.data} for r in m.replay],
        "citations": [citation_dict(c) for c in m.citations],
        "created": t.created.isoformat() if t.created else None,
        # Embedded whole (base64, images and text alike) so an import restores them byte for byte.
        "attachments": [
            {"name": a.name, "kind": a.kind, "media_type": a.media_type, "note": a.note,
             "sha256": a.digest, "size": a.size, "data": a.base64}
            for a in m.attachments
        ],
        # Tool rounds before the text: calls, results, approvals (as the store keeps them).
        "tools": json.loads(rounds_json(m.rounds)),
    }


class _Doc:
    """Typed access to untrusted JSON; every complaint names the path, e.g. `turns[3].usage`."""

    def __init__(self, value: object, where: str) -> None:
        self.value = value
        self.where = where

    def fail(self, what: str) -> UsageError:
        return UsageError(f"not a modelswitch session export: {self.where}: {what}")

    def obj(self) -> Mapping[str, object]:
        if not isinstance(self.value, Mapping):
            raise self.fail("expected an object")
        return self.value

    def get(self, key: str) -> _Doc:
        return _Doc(self.obj().get(key), f"{self.where}.{key}" if self.where else key)

    def opt(self, key: str) -> _Doc | None:
        d = self.get(key)
        return None if d.value is None else d

    def text(self, optional: bool = False) -> Any:
        if self.value is None and optional:
            return None
        if not isinstance(self.value, str):
            raise self.fail("expected a string" + (" or null" if optional else ""))
        try:
            # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 file can hold.
            self.value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.fail("a string with an invalid character (a lone surrogate)") from None
        return self.value

    def number(self, kind: type = float, optional: bool = False) -> Any:
        v = self.value
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise self.fail("expected " + ("an integer" if kind is int else "a number"))
        if kind is int:
            # SQLite's INTEGER is 64-bit: a larger one would fail deep inside the insert.
            if not 0 <= v <= MAX_INT:
                raise self.fail(f"expected an integer from 0 to {MAX_INT}")
            return v
        try:
            number = float(v)
        except OverflowError:  # an integer literal with hundreds of digits
            number = math.inf
        if not math.isfinite(number):  # NaN, Infinity and 1e999 parse, but are no amount or time
            raise self.fail("expected a finite number")
        return number

    def items(self) -> list[_Doc]:
        if not isinstance(self.value, list):
            raise self.fail("expected a list")
        return [_Doc(v, f"{self.where}[{i}]") for i, v in enumerate(self.value)]

    def when(self, optional: bool = False) -> Any:
        text = self.text(optional)
        if text is None:
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail("expected an ISO 8601 time") from None
        out_of_range = self.fail(f"expected a time between the years {EARLIEST} and {LATEST}")
        try:
            # Stored as UTC and shown in local time: both conversions must stay inside datetime's
            # years 1-9999, which a crafted offset or year 9999 would leave.
            when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise out_of_range from None
        if not EARLIEST <= when.year <= LATEST:
            raise out_of_range
        return when

    def choice(self, *options: str) -> Any:
        if self.value not in options:
            raise self.fail("expected one of " + ", ".join(options))
        return self.value



def from_json(doc: object) -> tuple[SessionInfo, tuple[Turn, ...]]:
    """Read what `to_json` wrote; UsageError (naming the bad field) for anything else."""
    root = _Doc(doc, "")
    if root.get("format").value != FORMAT:
        raise root.fail(f'"format" is not "{FORMAT}"')
    if root.get("version").number(int) > FORMAT_VERSION:
        raise UsageError("this export is from a newer modelswitch; upgrade to import it")
    s = root.get("session")
    info = SessionInfo(
        id=s.get("id").number(int, optional=True) or 0, name=s.get("name").text(optional=True),
        created=s.get("created").when(), updated=s.get("updated").when(),
        model=s.get("model").text(optional=True), system=s.get("system").text(optional=True),
    )
    items = root.get("turns").items()
    if not items:
        raise root.get("turns").fail("no turns; an empty session is not imported")
    turns = tuple(_turn_from(t) for t in items)
    # What `chat -c` resumes must start with a question, as every conversation we write does.
    first = next((i for i, t in enumerate(turns) if not t.alternate), None)
    if first is not None and turns[first].message.role != "user":
        raise items[first].get("role").fail("the conversation must start with a user turn")
    return info, turns


def _turn_from(t: _Doc) -> Turn:
    from ..providers import PROTOCOL_NAMES

    model = usage = timing = cost = None
    if (m := t.opt("model")) is not None:
        model = ModelRef(provider=m.get("provider").text(), id=m.get("id").text(),
                         protocol=m.get("protocol").choice(*PROTOCOL_NAMES),
                         alias=m.get("alias").text(optional=True))
    if (u := t.opt("usage")) is not None:
        estimated = u.get("reasoning_tokens_estimated").value  # absent from older exports: counted
        if estimated is not None and not isinstance(estimated, bool):
            raise u.get("reasoning_tokens_estimated").fail("expected true or false")
        usage = Usage(*(u.get(k).number(int) for k in
                        ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens")),
                      # Absent from exports written before cache writes were priced.
                      *(u.get(k).number(int, optional=True) or 0 for k in
                        ("cache_write_tokens", "cache_write_1h_tokens")))
        usage = replace(usage, reasoning_estimated=estimated is True)
        usage = None if usage.unknown else usage  # an absurd count: unknown, as on the wire
    if (tm := t.opt("timing")) is not None:
        timing = Timing(*(tm.get(k).number(optional=True) for k in ("ttft_s", "total_s", "tokens_per_s")))
    if (c := t.opt("cost")) is not None:
        amount = c.get("amount")
        if amount.number() < 0:  # a crafted refund would make every total and stat wrong
            raise amount.fail("expected a number of 0 or more")
        cost = Cost(amount.number(), c.get("currency").text())
    replay = tuple(
        ReplayState(r.get("protocol").text(), r.get("model").text(), r.get("data").text())
        for r in (t.opt("replay") or _Doc([], "")).items()
    )
    attachments = tuple(_attachment_from(a) for a in (t.opt("attachments") or _Doc([], "")).items())
    tools = t.opt("tools")
    try:
        rounds = rounds_from(json.dumps(tools.value)) if tools is not None else ()
    except (KeyError, TypeError, AttributeError, ValueError):
        raise t.get("tools").fail("expected the tool rounds an export writes") from None
    alternate = t.get("alternate").value
    if not isinstance(alternate, bool):
        raise t.get("alternate").fail("expected true or false")
    message = Message(
        role=t.get("role").choice("user", "assistant"), text=t.get("text").text(),
        reasoning=t.get("reasoning").text(optional=True) or "", model=model,
        status=t.get("status").choice("complete", "interrupted", "error"), replay=replay,
        usage=usage, timing=timing, finish_reason=t.get("finish_reason").text(optional=True),
        fallback_from=t.get("fallback_from").text(optional=True), error=t.get("error").text(optional=True),
        # Absent from exports written before search; a malformed entry is left out, not fatal.
        citations=citations_from(getattr(t.opt("citations"), "value", [])),
        attachments=attachments,
        rounds=rounds,
    )
    return Turn(message, cost, alternate, t.get("idx").number(int, optional=True),
                t.get("created").when(optional=True))


def _attachment_from(a: _Doc) -> Attachment:
    import base64
    import binascii

    try:
        data = base64.b64decode(a.get("data").text(), validate=True)
    except (binascii.Error, ValueError):
        raise a.get("data").fail("expected base64") from None
    kind = a.get("kind").choice("image", "text", "directory", "url", "command")
    found = Attachment(a.get("name").text(), kind, a.get("media_type").text(), data,
                       a.get("note").text(optional=True) or "")
    if found.digest != a.get("sha256").text():
        raise a.get("sha256").fail("does not match the data (the export was changed or damaged)")
    return found


# -- Markdown ------------------------------------------------------------------------------------


def speaker(message: Message) -> str:
    """`**You**`, or `**r1** (deepseek/deepseek-flash)`: who said it, in Markdown."""
    ref = message.model
    if message.role == "user":
        return "**You**"
    if ref is None:
        return "**Assistant**"
    who = f"**{ref.alias}** ({ref.full_id})" if ref.alias else f"**{ref.full_id}**"
    return who + (f" instead of {message.fallback_from}" if message.fallback_from else "")


def to_markdown(
    info: SessionInfo, turns: Sequence[Turn], *, reasoning: bool = False, details: bool = False
) -> str:
    """The conversation as Markdown; `details` adds each answer's tokens, speed and cost."""
    models = _distinct(t.message.model for t in turns if t.message.model is not None)
    head = [f"# {info.name or f'Session #{info.id}'}", ""]
    # Answers not kept are said too ("0 turns, 2 answers not kept"): a chat that only compared is not empty.
    aside = sum(t.alternate and t.message.role == "assistant" for t in turns)
    meta = [turn_count(turns) + (f", {aside_count(aside)}" if aside else ""), f"started {local(info.created)}"]
    if models:
        meta.append("models: " + ", ".join(_label(m) for m in models))
    head += ["*" + " · ".join(meta) + "*", ""]
    if info.system:
        head += ["**System prompt:**", "", _quote(info.system), ""]
    parts = ["\n".join(head).rstrip()]
    for t in turns:
        parts.append(_turn_markdown(t, reasoning=reasoning, details=details))
    return "\n\n---\n\n".join(parts) + "\n"


# Ctrl-C at an approval question never ran the call: not "failed", and not cut short either.
_CANCEL_WORDS = {CALL_NOT_STARTED: "cancelled before running", CALL_CANCELLED: "interrupted while running"}


def _turn_markdown(t: Turn, *, reasoning: bool, details: bool) -> str:
    m = t.message
    label = speaker(m)
    notes = []
    if t.alternate:
        notes.append("not kept")
    if details and m.role == "assistant":
        notes += _details(m, t.cost)
    lines = [label + "".join(f" · {n}" for n in notes), ""]
    for rnd in m.rounds:
        if reasoning and rnd.reasoning.strip():
            lines += ["> *Reasoning*", ">", _quote(rnd.reasoning), ""]
        if rnd.text.strip():
            lines += [rnd.text.rstrip(), ""]
        for call, result in zip(rnd.calls, rnd.results):
            where = f"{result.server}." if result.server else ""
            said = " ".join(result.content.split())
            said = said if len(said) <= 200 else said[:199] + "…"
            how = _CANCEL_WORDS.get(result.content) or ("failed" if result.is_error else "ran")
            if result.approved is False and result.content not in _CANCEL_WORDS:
                # The user's no, or no one could be asked (its result says so).
                how = "not run" if result.content.startswith("not run:") else "declined"
            lines += [f"> ⚙ `{where}{call.name}` `{call.arguments}` ({how}): {said}", ""]
    if reasoning and m.reasoning.strip():
        lines += ["> *Reasoning*", ">", _quote(m.reasoning), ""]
    if m.text:
        lines += [m.text.rstrip(), ""]
    if m.citations:
        lines += ["Sources:", "", *_sources_markdown(m), ""]
    if m.attachments:
        # Listed, not inlined: the JSON export carries the contents.
        lines += [f"*Attached:* {a.summary}  " for a in m.attachments] + [""]
    if m.status == "interrupted":
        lines.append("*(interrupted: the answer above is partial)*")
    elif m.status == "error":
        lines.append(f"*(failed: {m.error or 'no answer'})*")
    return "\n".join(lines).rstrip()


def _sources_markdown(m: Message) -> list[str]:
    """One numbered link per source; brackets in a title and spaces in a URL cannot break the link."""
    lines = []
    for n, c in enumerate(m.citations, 1):
        title = " ".join(c.title.split()).replace("[", "\\[").replace("]", "\\]") or c.url
        lines.append(f"{n}. [{title}](<{c.url.replace('<', '%3C').replace('>', '%3E')}>)")
    return lines


def _details(m: Message, cost: Cost | None) -> list[str]:
    out = []
    if m.usage is not None and m.usage.output_tokens:
        out.append(f"{m.usage.output_tokens} tokens")
    if m.timing is not None and m.timing.ttft_s is not None:
        out.append(f"{m.timing.ttft_s:.1f} s to first token")
    if m.timing is not None and m.timing.tokens_per_s:
        out.append(f"{m.timing.tokens_per_s:.0f} tok/s")
    if cost is not None:
        out.append(str(cost))
    return out


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())


def local(when: datetime) -> str:
    """A stored (UTC) time in the reader's time zone, to the minute."""
    return f"{when.astimezone():%Y-%m-%d %H:%M}"


def _distinct(refs: Iterable[ModelRef]) -> list[ModelRef]:
    """Each model choice once (aliases of one id are different choices), in order of first use."""
    seen: dict[tuple[str | None, str, str], ModelRef] = {}
    for r in refs:
        seen.setdefault(_choice(r), r)
    return list(seen.values())


def _choice(ref: ModelRef) -> tuple[str | None, str, str]:
    """What the user chose: the alias with what it names, or provider/id with no alias."""
    return (ref.alias, ref.provider, ref.id)


# -- stats ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Totals over the answers one model wrote (alternates included: they were paid for)."""

    name: str
    turns: int
    usage: Usage
    costs: tuple[Cost, ...]
    mean_ttft_s: float | None
    mean_tokens_per_s: float | None
    # How many of the answers reported usage: with none, the token columns are unknown ("-"),
    # not 0. With some, `usage` sums the known ones (the rest are left out, not guessed).
    with_usage: int = 0


def model_stats(turns: Sequence[Turn]) -> tuple[list[ModelStats], ModelStats]:
    """Per model the user chose (alias, else provider/id) in order of first answer, and the total.

    Two aliases of one model id (`sonnet`, `sonnet-think`) are two choices with their own settings,
    so two rows.
    """
    groups: dict[tuple[str | None, str, str], list[Turn]] = {}
    labels: dict[tuple[str | None, str, str], str] = {}
    for t in turns:
        ref = t.message.model
        if t.message.role == "assistant" and ref is not None:
            key = _choice(ref)
            groups.setdefault(key, []).append(t)
            labels.setdefault(key, _label(ref))
    answers = [t for t in turns if t.message.role == "assistant"]
    return [_stats(labels[k], g) for k, g in groups.items()], _stats("total", answers)


def _label(ref: ModelRef) -> str:
    return f"{ref.name} ({ref.full_id})" if ref.alias else ref.full_id


def _stats(name: str, turns: Sequence[Turn]) -> ModelStats:
    usage = sum((t.message.usage for t in turns if t.message.usage), Usage())
    costs: dict[str, float] = {}
    for t in turns:
        if t.cost is not None:
            costs[t.cost.currency] = costs.get(t.cost.currency, 0.0) + t.cost.amount
    ttfts = [t.message.timing.ttft_s for t in turns if t.message.timing and t.message.timing.ttft_s is not None]
    speeds = [t.message.timing.tokens_per_s for t in turns if t.message.timing and t.message.timing.tokens_per_s]
    return ModelStats(
        name, len(turns), usage, tuple(Cost(round(a, 8), c) for c, a in sorted(costs.items())),
        sum(ttfts) / len(ttfts) if ttfts else None, sum(speeds) / len(speeds) if speeds else None,
        sum(1 for t in turns if t.message.usage),
    )


STATS_HEADERS = ["model", "answers", "input", "output", "reasoning", "cost", "mean ttft", "mean tok/s"]


def stats_rows(turns: Sequence[Turn]) -> list[list[str]]:
    """Table rows of `model_stats`, one per model then the total (`sessions show --stats`, /cost).

    Token columns are "-" for a row none of whose answers reported usage; a row with some
    known shows the sum of those (an answer without usage adds nothing rather than a guess).
    """
    per_model, total = model_stats(turns)
    if not per_model:
        return []

    def tokens(s: ModelStats, count: int, mark: str = "") -> str:
        return mark + str(count) if s.with_usage else "-"

    return [
        [s.name, str(s.turns), tokens(s, s.usage.input_tokens), tokens(s, s.usage.output_tokens),
         # `~`: some of it was estimated from the text, not counted by the provider.
         tokens(s, s.usage.reasoning_tokens, "~" if s.usage.reasoning_estimated else ""), costs_text(s.costs),
         "-" if s.mean_ttft_s is None else f"{s.mean_ttft_s:.2f} s",
         "-" if s.mean_tokens_per_s is None else f"{s.mean_tokens_per_s:.1f}"]
        for s in [*per_model, total]
    ]


def tokens_text(s: ModelStats) -> str:
    """`1,234 tokens`; `1,234+ tokens` when some answers reported no usage (their tokens are not
    guessed), `tokens unknown` when none did: the toolbar's word for /cost's `-`."""
    used = s.usage.input_tokens + s.usage.output_tokens
    if s.turns and not s.with_usage:
        return "tokens unknown"
    return f"{used:,}{'+' if s.with_usage < s.turns else ''} tokens"


def costs_text(costs: Sequence[Cost]) -> str:
    """`¥0.0123 + $0.0040`, or `-` when no price was known."""
    return " + ".join(str(c) for c in costs) or "-"


# -- health (`modelswitch stats`) ------------------------------------------------------------------

HEALTH_HEADERS = ["model", "answers", "ttft p50", "ttft p95", "tok/s", "errors", "fell back", "cost"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def health_rows(rows: Sequence[ModelHealth]) -> list[list[str]]:
    return [
        [f"{h.model} ({', '.join(h.aliases)})" if h.aliases else h.model, str(h.answers),
         _seconds(h.ttft_median), _seconds(h.ttft_p95),
         "-" if h.tokens_per_s is None else f"{h.tokens_per_s:.1f}",
         f"{h.error_rate:.1%}", f"{h.fallback_rate:.1%}", costs_text(h.costs)]
        for h in rows
    ]


def health_json(h: ModelHealth) -> dict[str, Any]:
    return {
        "model": h.model, "aliases": list(h.aliases), "answers": h.answers, "errors": h.errors,
        "interrupted": h.interrupted, "error_rate": round(h.error_rate, 6),
        "fallbacks": h.fallbacks, "fell_back": h.fell_back, "fallback_rate": round(h.fallback_rate, 6),
        "ttft_median_s": h.ttft_median, "ttft_p95_s": h.ttft_p95, "tokens_per_s_median": h.tokens_per_s,
        "output_tokens": h.output_tokens,
        "cost": [{"amount": c.amount, "currency": c.currency} for c in h.costs],
    }


HEALTH_COLUMNS = ["ttft p50", "errors", "answers"]  # what `/models` and `models` add, last 30 days


def health_columns(rows: Sequence[ModelHealth], choices: Sequence[tuple[str | None, str]]) -> list[list[str]]:
    """For each (alias, provider/model-id) row of the models table, its health cells from `rows`
    grouped by alias (`Store.health(by_alias=True)`); blank when it has no saved answers."""
    by = {(h.aliases[0] if h.aliases else None, h.model): h for h in rows}
    return [
        [_seconds(h.ttft_median), f"{h.error_rate:.0%}", str(h.answers)] if (h := by.get(c)) else ["", "", ""]
        for c in choices
    ]
