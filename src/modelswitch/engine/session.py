"""A live chat: the conversation, the current model, switching, retry, undo, attachments.

Drawing is not done here: the REPL iterates an Answer and hands events to render.py, then calls
`finish` so the turn lands in history (and in the session database) whatever its status.
"""

from __future__ import annotations

import random
from contextlib import suppress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import errors
from .answer import Answer, Settings
from ..config.load import Config, ModelSpec
from ..conversation import Attachment, Conversation, Message, Role
from ..events import finish_status
from ..config.pricing import Cost, message_cost
from ..vocab import SETTINGS, TEMPERATURE_RANGE, parse_reasoning
from .attach import Confirm, check_images, load
from .catalog import can_search, mcp_search_tool, no_search_line, no_tools_line, takes_tools
from .choice import ensure_usable
from .context import Fit, Meter, split_for_summary, summary_pair, summary_request, trim
from .tools import ToolAnswer, ToolLimits

if TYPE_CHECKING:
    from ..events import ToolCall
    from .tools import Toolbox
    from ..store.chatlog import ChatLog
    from ..store.records import Turn, Vote

# What ChatLog.replace_turns returns: this chat's store indices before, and the rows written.
_Record = tuple[list[tuple[Role, int | None]], list[int]]



@dataclass(frozen=True, slots=True)
class Arena:
    """A blind comparison: lane "1" is lanes[0], and so on. Which model wrote which answer, and
    what each cost and how fast it was, stay hidden until the user votes."""

    lanes: tuple[ModelSpec, ...]
    tag: str | None = None


def blind(specs: Sequence[ModelSpec], tag: str | None = None, rng: random.Random | None = None) -> Arena:
    """The models in random order, so the lane number says nothing about who is in it."""
    names = [s.name for s in specs]
    if len(specs) < 2 or len(set(names)) != len(names):
        raise errors.UsageError("an arena needs two or more different models")
    lanes = list(specs)
    (rng or random.SystemRandom()).shuffle(lanes)
    return Arena(tuple(lanes), tag)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What /vote did: the vote, each lane's answer and cost (revealed now), the answer kept."""

    vote: Vote
    lanes: tuple[tuple[ModelSpec, Message, Cost | None], ...]
    kept: Message | None
    saved: bool


class ChatSession:
    def __init__(
        self,
        config: Config,
        model: ModelSpec,
        *,
        conversation: Conversation | None = None,
        log: ChatLog | None = None,
        debug: bool = False,
    ) -> None:
        self.config = config
        self.debug = debug
        self.model = model
        self.conversation = conversation or Conversation()
        self.settings = Settings()
        self.think = "collapse"
        self.attachments: list[Attachment] = []
        self.log = log  # a chatlog.ChatLog, or None when sessions cannot be saved
        # Every answer this chat paid for, kept or not (compare alternates, retried and undone
        # answers), each with the cost recorded for it: what /cost and the toolbar total, and
        # for a resumed chat the same turns `sessions show --stats` counts.
        self.answered: list[Turn] = self._paid_for(log)
        self.held: tuple[Message, tuple[Message, ...]] | None = None  # a compare awaiting /keep
        self.meter = Meter().learn(self.conversation)
        # The conversation before the last /compact or /trim, what replaced it, and the store's
        # record of both: /undo right after brings the turns back.
        self.replaced: tuple[Conversation, Conversation, _Record | None] | None = None
        # The MCP tools (None: no [mcp.*] servers), and the tools the user said `a` (always) to.
        self.toolbox: Toolbox | None = None
        self.always: set[str] = set()
        self.arena: Arena | None = None  # set while the held comparison is a blind one awaiting /vote
        # Whether the MCP search tool was offered already (it is asked once a session), and what
        # the user's yes turned on (the tool, and its server if it was off): /search off turns
        # those off again, /search on turns them back on without asking twice.
        self.search_offered = False
        self.search_taken: tuple[str, ...] = ()
        # Models told "does not take tools" this session (at /model or an answer): said once each.
        self.told_no_tools: set[str] = set()

    # -- models ----------------------------------------------------------------------------
    def resolve(self, name: str) -> ModelSpec:
        """A usable model or a UsageError/ConfigError saying why not (current model unchanged)."""
        spec = self.config.resolve(name)
        ensure_usable(self.config, spec)
        return spec

    def switch(self, name: str) -> str:
        spec = self.resolve(name)
        self.model = spec
        if self.log is not None:
            self.log.set_model(spec.name)
        n = len(self.conversation.for_request())
        kept = f"history kept ({n} turn{'s' if n != 1 else ''})" if n else "new conversation"
        withheld = self.withheld_images(spec)
        if withheld:
            kept += (f"; {spec.name} does not take images: {withheld} image{'s' if withheld != 1 else ''} in"
                     " the history will be sent as a placeholder")
        said = f"switched to {spec.name} ({spec.full_id}); {kept}"
        if self.searching and not can_search(self.config, spec):
            said += "\n" + no_search_line(self.config, spec)
        if self.tools_refused(spec):
            said += "\n" + no_tools_line(spec)
            self.told_no_tools.add(spec.name)
        return said

    def saved_line(self) -> str:
        """On leaving: where this chat was saved and how to go on with it; "" if it was not."""
        log = self.log
        if log is None or log.session_id is None:
            return ""
        n = log.session_id
        named = f" ({log.name})" if log.name else ""
        return f"saved as session #{n}{named} — `modelswitch -c` or `modelswitch --session {n}` continues it"

    def tools_refused(self, spec: ModelSpec | None = None) -> bool:
        """Tools are on (MCP servers configured) but `spec` (default: the current model) is
        declared not to take them, so its answers come without (see catalog.offered_tools)."""
        spec = spec or self.model
        return self.toolbox is not None and spec is not None and not takes_tools(spec)

    # -- web search ------------------------------------------------------------------------
    @property
    def searching(self) -> bool:
        """Whether answers ask for the provider's web search: `/search`, else the model's `search`."""
        return self.settings.search if self.settings.search is not None else self.model.search

    @property
    def search_tool(self) -> str:
        """"server.tool": the MCP tool the config names as a web search, if the toolbox offers it
        now (its server serving, the tool on); "". Read from the toolbox each time, so /tools
        on|off and a server that died are never contradicted."""
        found = mcp_search_tool(self.config)
        if found is None or self.toolbox is None:
            return ""
        server, tool = found
        return f"{server}.{tool}" if self.toolbox.server_of(tool) == server else ""

    def take_search_tool(self) -> str:
        """The user said yes to the MCP search tool: its server (if off) and the tool go on.
        Returns "server.tool"; a UsageError if the server has no such tool."""
        from .mcpclient import McpToolbox

        found, box = mcp_search_tool(self.config), self.toolbox
        if found is None or not isinstance(box, McpToolbox):
            raise errors.UsageError("no MCP tool is named as a web search ([mcp.NAME] search = \"TOOL\")")
        server, tool = found
        if box.paused:  # `/tools off` alone: turning one tool on would not offer it
            raise errors.UsageError(f"every tool is off (/tools off): /tools on first, then {server}.{tool} can search")
        serving = any(st.name == server and st.state == "ready" for st in box.status())
        box.set_enabled(server, True)
        try:
            box.set_enabled(f"{server}.{tool}", True)
        except KeyError:
            raise errors.UsageError(f"the MCP server {server!r} has no tool {tool!r} (see /tools; [mcp.{server}] search "
                                    "names it)") from None
        self.search_taken = (f"{server}.{tool}",) if serving else (f"{server}.{tool}", server)
        return f"{server}.{tool}"

    def set_search(self, on: bool) -> str:
        self.settings = replace(self.settings, search=on)
        offered = self.search_tool
        if not on:
            if not (self.search_taken and offered):
                return "web search off"
            from .mcpclient import McpToolbox

            assert isinstance(self.toolbox, McpToolbox)  # search_taken: take_search_tool ran
            for name in self.search_taken:
                self.toolbox.set_enabled(name, False)
            return f"web search off; the MCP tool {offered} is no longer offered (/search on offers it again)"
        if can_search(self.config, self.model):
            return f"web search on ({self.model.name} searches with its provider's own search)"
        again = ""
        if not offered and self.search_taken:  # the yes given earlier this session holds
            with suppress(errors.UsageError):
                offered, again = self.take_search_tool(), " again"
        if offered:
            return f"web search on ({self.model.name} cannot search itself: it is offered the MCP tool {offered}{again})"
        # Said whole: that search is on all the same, and the stand-in a config can name.
        stand_in = "" if mcp_search_tool(self.config) else \
            '; or name an MCP tool to search for it: [mcp.NAME] search = "TOOL"'
        return (f"{no_search_line(self.config, self.model)}\n"
                f"search is on: it applies when you switch to a model that can{stand_in}")

    # -- turns -----------------------------------------------------------------------------
    def attach(self, source: str, *, confirm: Confirm | None = None) -> str:
        """`/file SOURCE`: a file, image, directory, URL or `!command` for the next message.

        An image for a model without vision is refused here, naming models that have it, and so
        is one larger than the current provider takes; `confirm` is asked before a command runs.
        """
        attachment = load(source, confirm=confirm)
        if attachment.is_image and self.model is not None:
            self.check_images((attachment,), self.model)
        self.attachments.append(attachment)
        return f"attached {_shown(attachment)} to your next message"

    def check_images(self, images: tuple[Attachment, ...], spec: ModelSpec) -> None:
        """A UsageError unless `spec` takes these images: vision, and each within its API's limit."""
        check_images(self.config, images, spec)

    def withheld_images(self, spec: ModelSpec) -> int:
        """How many images in the history `spec` will get as placeholders (it has no vision)."""
        return 0 if spec.vision else sum(len(m.images) for m in self.conversation.messages)

    def user_message(self, text: str) -> Message:
        """The user's text with the pending attachments (they are sent with it once, then cleared)."""
        attachments, self.attachments = tuple(self.attachments), []
        return Message(role="user", text=text, attachments=attachments)

    def ask(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True,
            replacing: bool = False) -> Answer | ToolAnswer:
        """Start an answer to `user` on `model` (default: the current model); not yet in history.

        `replacing` (a /retry): the answer is to the last exchange's question, so the context is
        the history before it — the old answer stays in history until `finish` replaces it.
        With MCP servers configured it is a ToolAnswer: the caller sets its `approve` (the
        default declines every call a server does not trust, and every call the user has not
        said `a` to).
        """
        spec = model or self.model
        self.check_images(user.images, spec)
        base = self.conversation.without_last_exchange() if replacing else self.conversation
        if self.toolbox is not None:
            t = self.config.tools
            return ToolAnswer(self.config, base.add(user), spec, self.toolbox, self._always_only,
                              limits=ToolLimits(t.max_rounds, t.timeout, t.max_result_chars),
                              settings=self.settings, fallback=fallback, debug=self.debug,
                              told=self.told_no_tools)
        return Answer(self.config, base.add(user), spec, settings=self.settings, fallback=fallback,
                      debug=self.debug)

    def _always_only(self, call: ToolCall, server: str) -> bool:
        return call.name in self.always

    def finish(self, user: Message, answer: Answer | ToolAnswer, *, replacing: bool = False) -> Message:
        """Put the exchange into history and the database, whatever its status.

        With `replacing`, a new answer that did not succeed replaces nothing: the earlier exchange
        stays, and the attempt is saved (paid for) as an alternate (see `keeps_earlier`).
        """
        from ..store.records import Turn

        message = answer.message
        if message.model is not None:
            self.meter.calibrate(message.model.full_id, answer.conversation, message)
        cost = self.cost_for(message)
        keep_earlier = replacing and self.keeps_earlier(message)
        self.held = None
        self.arena = None
        self.answered.append(Turn(message, cost))
        # Hedged routes that lost the race were paid for too: counted, kept out of the history.
        spent = [(m, self.cost_for(m)) for m in answer.losers]
        self.answered.extend(Turn(m, c) for m, c in spent)
        if keep_earlier:
            if self.log is not None:
                self.log.record_alternate(user, message, cost)
        else:
            if replacing:
                self.conversation = self.conversation.without_last_exchange()
                if self.log is not None:
                    self.log.drop_last_exchange()
            self.conversation = self.conversation.add(user).add(message)
            if self.log is not None:
                self.log.record(user, message, cost)
        if spent and self.log is not None:
            self.log.record_spent(spent)
        return message

    def keeps_earlier(self, retried: Message) -> bool:
        """Whether a retry's answer leaves the last exchange in place: only a complete answer
        replaces one that had an answer (a failure may replace a failure)."""
        pair = self.last_exchange()
        return pair is not None and pair[1].has_answer and not _replaces(retried)

    def retry_target(self) -> tuple[Message, bool]:
        """The question /retry asks again, and whether its answer replaces the last exchange.

        A comparison awaiting /keep is the latest question asked: it is the one retried (its
        answers stay saved as alternates); otherwise the last exchange in history.
        """
        if self.held is not None:
            return self.held[0], False
        pair = self.last_exchange()
        if pair is None:
            raise errors.UsageError("nothing to retry yet")
        return pair[0], True

    def stats(self) -> list[Turn]:
        """Every paid-for answer with its cost, for the per-model tables (sessions_format)."""
        return list(self.answered)

    def _paid_for(self, log: ChatLog | None) -> list[Turn]:
        """A resumed chat's stored answers, alternates included, at their recorded cost."""
        from ..store.records import Turn

        if log is not None:
            return list(log.answers)
        return [Turn(m, self.cost_for(m)) for m in self.conversation.messages if m.role == "assistant"]

    def hold_compare(self, user: Message, answers: list[tuple[Message, Cost | None]],
                     arena: Arena | None = None, spent: tuple[Message, ...] = ()) -> None:
        """Compared answers wait outside the history (and are saved as alternates) until /keep
        (or, for a blind arena, /vote). `spent`: what the lanes paid for besides their answers
        (hedged routes, a search round given up, a tool round cut short), counted and on record."""
        from ..store.records import Turn

        self.answered.extend(Turn(m, c) for m, c in answers)
        paid = [(m, self.cost_for(m)) for m in spent]
        self.answered.extend(Turn(m, c) for m, c in paid)
        self.held = (user, tuple(m for m, _ in answers))
        self.arena = arena
        if self.log is not None:
            self.log.record_compare(user, answers)
            if paid:
                self.log.record_spent(paid)

    def keep(self, ref: str) -> Message:
        """`/keep N` or `/keep NAME`: that compared answer becomes the assistant turn."""
        if self.held is None:
            raise errors.UsageError("nothing to keep: /keep follows a /compare")
        user, answers = self.held
        index = None
        if ref.isdigit() and 1 <= int(ref) <= len(answers):
            index = int(ref) - 1
        else:
            for i, m in enumerate(answers):
                if m.model and ref in (m.model.alias, m.model.full_id, m.model.name):
                    index = i
                    break
        if index is None:
            raise errors.UsageError(f"no compared answer '{ref}' (1-{len(answers)} or a model name)")
        chosen = answers[index]
        if not _keepable(chosen):
            raise errors.UsageError(f"answer {index + 1} is empty; keep another")
        self.held = None
        self.arena = None  # kept without a vote: the arena ends unrated
        self.conversation = self.conversation.add(user).add(chosen)
        if self.log is not None:
            self.log.keep(index, user, chosen, self.cost_for(chosen))
        return chosen

    def vote(self, verdict: str) -> Verdict:
        """`/vote N|tie|none` after an /arena: record the vote, reveal the lanes, keep the winner."""
        from ..store.records import Vote

        arena, held = self.arena, self.held
        if arena is None or held is None:
            raise errors.UsageError("nothing to vote on: /vote follows an /arena")
        names = tuple(s.name for s in arena.lanes)
        word = verdict.strip().lower()
        if word in ("tie", "none"):
            vote = Vote(names, word, None, arena.tag)
        elif word.isdigit() and 1 <= int(word) <= len(names):
            if not _keepable(held[1][int(word) - 1]):
                raise errors.UsageError(f"answer {word} is empty; vote for another, or tie or none")
            vote = Vote(names, "win", names[int(word) - 1], arena.tag)
        else:
            raise errors.UsageError(f"usage: /vote 1-{len(names)}|tie|none")
        lanes = tuple((s, m, self.cost_for(m)) for s, m in zip(arena.lanes, held[1]))
        saved = self.log is not None and self.log.record_vote(vote)
        kept = self.keep(word) if vote.winner is not None else None
        self.arena = None
        return Verdict(vote, lanes, kept, saved)

    def cost_for(self, message: Message) -> Cost | None:
        return message_cost(self.config, message)

    def last_exchange(self) -> tuple[Message, Message] | None:
        msgs = self.conversation.messages
        if len(msgs) >= 2 and msgs[-1].role == "assistant" and msgs[-2].role == "user":
            return msgs[-2], msgs[-1]
        return None

    def undo_replacement(self) -> str | None:
        """/undo right after /compact or /trim: the earlier turns come back. None if not that case."""
        if self.replaced is None or self.replaced[1] != self.conversation:
            return None
        before, _, record = self.replaced
        self.replaced = None
        self.conversation = before
        if self.log is not None and record is not None:
            self.log.restore(*record)
        return f"the {len(before.messages)} turns from before the /compact or /trim are back"

    def pop_last_exchange(self) -> Message:
        """For /retry and /undo: drop the last answer and the question it answered."""
        pair = self.last_exchange()
        if pair is None:
            raise errors.UsageError("nothing to undo yet")
        self.conversation = self.conversation.without_last_exchange()
        if self.log is not None:
            self.log.drop_last_exchange()
        return pair[0]

    # -- the context window ------------------------------------------------------------------
    def fit(self, spec: ModelSpec | None = None, pending: Message | None = None,
            conversation: Conversation | None = None) -> Fit:
        """How the conversation (with `pending` about to be sent) fits `spec`'s window."""
        spec = spec or self.model
        conv = conversation if conversation is not None else self.conversation
        if pending is not None:
            conv = conv.add(pending)
        return self.meter.fit(conv, spec, self.settings.max_tokens)

    def replace_conversation(self, new: Conversation) -> None:
        """Put `new` in place of the conversation (compact, trim), undoable with /undo."""
        before = self.conversation
        record = self.log.replace_turns(new.messages) if self.log is not None else None
        self.conversation = new
        self.held = None
        self.replaced = (before, new, record)

    def trim_to(self, keep: int) -> int:
        """Keep the system prompt and the last `keep` exchanges; the number of turns dropped."""
        new = trim(self.conversation, keep)
        dropped = len(self.conversation.messages) - len(new.messages)
        if dropped:
            self.replace_conversation(new)
        return dropped

    def summariser(self) -> ModelSpec:
        """The model /compact uses by default: the cheapest configured model with a key, priced
        in the current model's currency (prices in different currencies are not compared)."""
        from ..config.keys import key_available

        current = self.model.price
        best = self.model
        for m in self.config.models():
            if m.price is None or current is None or m.price.currency != current.currency:
                continue
            try:
                provider = self.config.provider(m.provider)
            except errors.UsageError:
                continue
            if provider.managed or not key_available(provider):
                continue
            assert best.price is not None
            if m.price.input + m.price.output < best.price.input + best.price.output:
                best = m
        return best

    def compaction(self, spec: ModelSpec, keep: int = 1) -> tuple[Answer, int] | None:
        """An Answer that summarises all but the last `keep` exchanges on `spec`, and how many
        turns it replaces; None when there is nothing older to summarise. Not yet applied:
        the caller consumes the answer, then calls `apply_compaction`."""
        older, _ = split_for_summary(self.conversation, keep)
        if not any(m.role == "assistant" and m.has_answer for m in older):
            return None
        request = Conversation().add(Message(role="user", text=summary_request(older)))
        fit = self.meter.fit(request, spec, self.settings.max_tokens)
        if not fit.ok:
            raise errors.UsageError(f"cannot summarise on {spec.name}: {fit.refusal()}; /compact MODEL picks another")
        return Answer(self.config, request, spec, settings=self.settings, fallback=False, debug=self.debug), len(older)

    def apply_compaction(self, answer: Answer, keep: int = 1) -> Message:
        """Replace the older turns by the marked summary `answer` wrote (kept, exported, undoable)."""
        summary = answer.message
        if summary.status != "complete" or not summary.has_answer:
            raise errors.UsageError("the summary did not complete; nothing was compacted")
        older, kept = split_for_summary(self.conversation, keep)
        self.answered.append(_turn(summary, self.cost_for(summary)))
        note, text = summary_pair(len(older), summary, summary.model.name if summary.model else "a model")
        self.replace_conversation(Conversation(self.conversation.system, (note, text, *kept)))
        return summary

    def fork(self, at: int, name: str | None = None) -> str:
        """Branch this chat at turn `at` into a new saved session and go on in the branch."""
        if self.log is None:
            raise errors.UsageError("sessions cannot be saved right now, so there is nothing to branch")
        n = len(self.conversation.messages)
        if not 0 <= at <= n:
            raise errors.UsageError(f"turn {at} does not exist (this chat has {n} turns)")
        branch = self.log.fork(at, name or self._branch_name(at))
        parent = self.log.name or f"#{self.log.session_id}"  # the fork saved an unsaved chat
        self.resume(branch)
        return f"branched {parent} at turn {at} into '{branch.name}'; you are on the branch (/load {parent} goes back)"

    def _branch_name(self, at: int) -> str:
        assert self.log is not None
        base = self.log.name or (f"s{self.log.session_id}" if self.log.session_id else "chat")
        taken = set(self.log.names())
        name, k = f"{base}@{at}", 2
        while name in taken:
            name, k = f"{base}@{at}-{k}", k + 1
        return name

    def set_system(self, text: str | None) -> None:
        self.conversation = self.conversation.with_system(text)
        if self.log is not None:
            self.log.set_system(text)

    def clear(self) -> None:
        """A new conversation (and a new saved session); the model and settings stay."""
        system = self.conversation.system
        self.conversation = Conversation(system)
        self.answered = []
        self.replaced = None
        self.held = None  # a comparison awaiting /keep belongs to the old conversation
        self.arena = None
        if self.log is not None:
            self.log = self.log.fresh(model=self.model.name, system=system)

    def resume(self, log: ChatLog) -> None:
        """Continue a saved conversation (`/load`) in this chat."""
        self.log = log
        self.conversation = log.conversation
        self.answered = self._paid_for(log)
        self.held = None
        self.replaced = None
        self.meter.learn(self.conversation)
        self.arena = None

    def set(self, key: str, value: str) -> str:
        key = key.strip().lower()
        if key == "temperature":
            t = _number(value, key)
            low, high = TEMPERATURE_RANGE
            if not low <= t <= high:
                raise errors.UsageError(f"temperature must be between {low:g} and {high:g}")
            self.settings = replace(self.settings, temperature=t)
        elif key == "max_tokens":
            try:
                n = int(value)  # not via float: 1.5 would quietly become 1, 1e30 an absurd number
            except ValueError:
                raise errors.UsageError(f"max_tokens needs a whole number of tokens, not '{value}'") from None
            if n <= 0:
                raise errors.UsageError("max_tokens must be greater than 0")
            self.settings = replace(self.settings, max_tokens=n)
        elif key == "reasoning":
            self.settings = replace(self.settings, reasoning=parse_reasoning(value))
        else:
            raise errors.UsageError(f"unknown setting '{key}' ({', '.join(SETTINGS)})")
        return f"{key} = {value}"


def _shown(a: Attachment) -> str:
    """How /file confirms an attachment: `notes.txt (1,234 bytes)`, `error.png (image/png; 12 bytes)`."""
    if a.kind == "text":
        return f"{a.label} ({a.size:,} bytes)"
    return a.summary


def _turn(message: Message, cost: Cost | None) -> Turn:
    from ..store.records import Turn

    return Turn(message, cost)


def _keepable(answer: Message) -> bool:
    """A compared answer /keep can put into the conversation: text, or the tool rounds it ran (a
    lane stopped at its approval keeps them, answered as cancelled)."""
    return bool(answer.text or answer.rounds)


def _replaces(message: Message) -> bool:
    """Whether a retried answer may replace the earlier one: complete, with an answer in it, and
    finished normally. One cut short (length, content_filter, insufficient resources...) is
    saved as an alternate instead: the earlier answer stays unless the new one succeeds."""
    finished = finish_status(message.finish_reason) == "complete" or (
        message.finish_reason == "tool_calls" and bool(message.rounds))  # its calls ran: done
    return message.status == "complete" and message.has_answer and finished


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise errors.UsageError(f"{key} needs a number, not '{value}'") from None
