"""Attachments: images as each protocol's image part, vision-aware switching, directories with a
.gitignore, web pages, command output, and sessions that keep them.

Every request goes through the real protocol and transport to a loopback fake that validates like
the receiving API (tests/validators.py); the PNGs are written here with zlib.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest

from modelswitch import errors, redaction
from modelswitch.config import load as config_mod
from modelswitch.conversation import Attachment, Conversation, Message
from modelswitch.engine import attach as attach_mod
from modelswitch.engine.session import ChatSession
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.store import db as db_mod
from modelswitch.store.db import SCHEMA_VERSION, Store
from modelswitch.store.export import from_json, to_json, to_markdown
from tests.loopback import LoopbackServer, Reply, command_env
from tests.validators import FakeAnthropic, FakeDeepSeek, FakeGemini, FakeOllama, FakeOpenAIVision, drive, router


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG: signature, IHDR, one zlib-compressed IDAT, IEND, each chunk with its CRC."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png()
B64 = base64.b64encode(PNG).decode()
SHOT = Attachment("shot.png", "image", "image/png", PNG)
NOTES = Attachment("notes.txt", "text", "text/plain", b"line one\n")
PROMPT_TEXT = "File notes.txt:\n```\nline one\n```\n\nwhat is wrong?"


def asked() -> Conversation:
    return Conversation("Be brief.").add(Message("user", "what is wrong?", attachments=(NOTES, SHOT)))


# -- the wire: each protocol's documented image part -------------------------------------------


def test_openai_sends_an_image_url_part_with_a_base64_data_url(server: LoopbackServer) -> None:
    api = FakeOpenAIVision()
    server.default = router(api)
    drive(get_protocol("openai"), Target("openai", f"{server.url}/v1", "gpt-4o-mini", api_key="sk-oa-test"), asked())
    assert api.rejected == [] and api.images == 1
    assert api.accepted[-1]["messages"][-1] == {"role": "user", "content": [
        {"type": "text", "text": PROMPT_TEXT},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}},
    ]}


def test_anthropic_sends_an_image_block_with_a_base64_source(server: LoopbackServer) -> None:
    api = FakeAnthropic()
    server.default = router(api)
    drive(get_protocol("anthropic"), Target("anthropic", server.url, "claude-haiku-4-5", api_key="sk-ant-test"),
          asked())
    assert api.rejected == [] and api.images == 1
    assert api.accepted[-1]["messages"][-1] == {"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}},
        {"type": "text", "text": PROMPT_TEXT},
    ]}


def test_gemini_sends_inline_data(server: LoopbackServer) -> None:
    api = FakeGemini()
    server.default = router(api)
    drive(get_protocol("gemini"), Target("gemini", server.url, "gemini-2.5-flash", api_key="gm-test"), asked())
    assert api.rejected == []
    assert api.accepted[-1]["contents"][-1] == {"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": B64}}, {"text": PROMPT_TEXT},
    ]}


def test_ollama_sends_images_beside_the_content(server: LoopbackServer) -> None:
    api = FakeOllama(models={"llava": False}, vision={"llava": True})
    server.default = router(api)
    drive(get_protocol("ollama"), Target("ollama", server.url, "llava"), asked())
    assert api.rejected == []
    assert api.accepted[-1]["messages"][-1] == {"role": "user", "content": PROMPT_TEXT, "images": [B64]}


def test_the_fakes_reject_what_the_apis_reject(server: LoopbackServer) -> None:
    """A pass above means something: a wrong type, a broken data URL, an image to a text-only
    model are each refused in the API's own way."""
    anthropic, openai, deepseek = FakeAnthropic(), FakeOpenAIVision(), FakeDeepSeek()
    server.default = router(anthropic, openai)
    fake_gif = Attachment("x.gif", "image", "image/gif", PNG)  # says GIF, is a PNG
    conv = Conversation().add(Message("user", "look", attachments=(fake_gif,)))
    with pytest.raises(errors.BadRequestError):
        drive(get_protocol("anthropic"), Target("anthropic", server.url, "claude-haiku-4-5", api_key="sk-ant-test"), conv)
    assert "image data is not image/gif" in anthropic.rejected[-1][1]
    with pytest.raises(errors.BadRequestError):
        drive(get_protocol("openai"), Target("openai", f"{server.url}/v1", "gpt-4o-mini", api_key="sk-oa-test"), conv)
    server.default = router(deepseek)
    with pytest.raises(errors.ProviderError):
        drive(get_protocol("openai"), Target("deepseek", f"{server.url}/v1", "deepseek-chat", api_key="sk-ds-test"),
              asked())
    assert deepseek.rejected and "expected a string" in deepseek.rejected[-1][1]


# -- vision per model ----------------------------------------------------------------------------


def config_text(url: str) -> str:
    """DeepSeek without vision, OpenAI and Anthropic with it, each behind its own path."""
    return f"""
[providers.deepseek]
base_url = "{url}/ds"
api_key_env = "DS_KEY"
retries = 0
[providers.deepseek.models.v3]
id = "deepseek-chat"
[providers.oa]
base_url = "{url}/oa/v1"
api_key_env = "OA_KEY"
retries = 0
[providers.oa.models.mini]
id = "gpt-4o-mini"
vision = true
[providers.an]
type = "anthropic"
base_url = "{url}/an"
api_key_env = "AN_KEY"
retries = 0
[providers.an.models.haiku]
id = "claude-haiku-4-5"
vision = true
"""


@pytest.fixture
def chat(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> ChatSession:
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    monkeypatch.setenv("AN_KEY", "sk-ant-test")
    server.default = router(FakeDeepSeek(prefix="/ds/"), FakeOpenAIVision(prefix="/oa/"), FakeAnthropic())
    cfg = config_mod.build(tomllib.loads(config_text(server.url)), Path("t.toml"), presets={})
    return ChatSession(cfg, cfg.resolve("v3"))


def exchange(chat: ChatSession, text: str) -> tuple[Message, list[str]]:
    user = chat.user_message(text)
    answer = chat.ask(user)
    notices = [e.text for e in answer if type(e).__name__ == "Notice"]
    return chat.finish(user, answer), notices


def test_an_image_for_a_model_without_vision_is_refused_naming_models_with_it(chat: ChatSession, tmp_path: Path) -> None:
    shot = tmp_path / "error.png"
    shot.write_bytes(PNG)
    with pytest.raises(errors.UsageError) as exc:
        chat.attach(str(shot))
    assert exc.value.message == "v3 does not take images; models that do: mini, haiku"
    assert chat.attachments == []


def test_switching_to_a_model_without_vision_sends_a_placeholder(chat: ChatSession, server: LoopbackServer,
                                                                 tmp_path: Path) -> None:
    shot = tmp_path / "error.png"
    shot.write_bytes(PNG)
    chat.switch("mini")
    assert chat.attach(str(shot)) == f"attached {shot} (image/png; {len(PNG):,} bytes) to your next message"
    answer, _ = exchange(chat, "what does it say?")
    assert answer.status == "complete"
    assert "switched to v3 (deepseek/deepseek-chat); history kept (2 turns); v3 does not take images: " \
           "1 image in the history will be sent as a placeholder" == chat.switch("v3")
    answer, notices = exchange(chat, "and now?")
    assert answer.status == "complete", answer.error
    assert notices == ["v3 does not take images: 1 image sent as a placeholder"]
    ds = [r for r in server.requests if r.path.startswith("/ds/")][-1].json
    assert ds["messages"][0] == {"role": "user", "content": "[image: error.png, not sent to deepseek-chat]"
                                                           "\n\nwhat does it say?"}
    # Back on a vision model the image goes again, whole.
    chat.switch("mini")
    exchange(chat, "once more")
    oa = [r for r in server.requests if r.path.startswith("/oa/")][-1].json
    assert oa["messages"][0]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{B64}"


def test_a_resumed_session_sends_its_images_again(chat: ChatSession, server: LoopbackServer, tmp_path: Path) -> None:
    from modelswitch.store.chatlog import ChatLog

    shot = tmp_path / "error.png"
    shot.write_bytes(PNG)
    chat.log = ChatLog.open_for("shots", False, model="mini", system=None)
    chat.switch("mini")
    chat.attach(str(shot))
    exchange(chat, "what is it?")
    log = ChatLog.open_for("shots", False, model=None, system=None)
    assert log is not None
    again = ChatSession(chat.config, chat.config.resolve("mini"), conversation=log.conversation, log=log)
    answer, _ = exchange(again, "and the colour?")
    assert answer.status == "complete"
    first = [r for r in server.requests if r.path.startswith("/oa/")][-1].json["messages"][0]
    assert first["content"] == [{"type": "text", "text": "what is it?"},
                                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}]


def test_an_image_over_the_providers_limit_is_refused_before_sending(chat: ChatSession, server: LoopbackServer,
                                                                    tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * 4_000_000)  # 4 MB: within OpenAI's 20 MB, over Anthropic's 3.75 MB
    chat.switch("haiku")
    with pytest.raises(errors.UsageError) as exc:
        chat.attach(str(big))
    assert exc.value.message == "big.png is 4.0 MB; haiku (anthropic) takes images of at most 3.93 MB; make it smaller first"
    chat.switch("mini")
    chat.attach(str(big))
    user = chat.user_message("hm")
    with pytest.raises(errors.UsageError, match="haiku \\(anthropic\\) takes images of at most"):
        chat.ask(user, chat.resolve("haiku"))  # an @haiku one-off is refused the same way
    assert server.requests == []


def test_a_history_image_too_large_for_the_next_model_goes_as_a_placeholder(chat: ChatSession, server: LoopbackServer,
                                                                             tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * 4_000_000)
    chat.switch("mini")
    chat.attach(str(big))
    exchange(chat, "what is it?")
    chat.switch("haiku")
    answer, notices = exchange(chat, "and you?")
    assert answer.status == "complete", answer.error
    assert notices == ["haiku takes smaller images: 1 image sent as a placeholder"]
    sent = [r for r in server.requests if r.path.startswith("/an/")][-1].json["messages"][0]["content"]
    assert sent == [{"type": "text", "text": "[image: big.png, not sent to claude-haiku-4-5]\n\nwhat is it?"}]


def test_binary_files_that_are_not_images_are_refused(tmp_path: Path) -> None:
    blob = tmp_path / "a.out"
    blob.write_bytes(b"\x7fELF\x00\x01\x02")
    with pytest.raises(errors.UsageError, match="looks binary; only text files and images"):
        attach_mod.load(str(blob))
    webp = tmp_path / "x.bin"
    webp.write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8)
    assert attach_mod.load(str(webp)).media_type == "image/webp"
    jpeg = tmp_path / "y"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 8)
    assert attach_mod.load(str(jpeg)).media_type == "image/jpeg"


# -- directories ---------------------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "src" / "deep").mkdir(parents=True)
    (tree / "build").mkdir()
    (tree / ".git").mkdir()
    (tree / ".gitignore").write_text("*.log\n!keep.log\nbuild/\n/top-only.txt\n")
    (tree / "README.md").write_text("# readme\n")
    (tree / "debug.log").write_text("noise\n")
    (tree / "keep.log").write_text("kept log\n")
    (tree / "top-only.txt").write_text("ignored at the top\n")
    (tree / "build" / "out.txt").write_text("built\n")
    (tree / ".git" / "config").write_text("[core]\n")
    (tree / "src" / "main.py").write_text("print('hi')\n")
    (tree / "src" / "top-only.txt").write_text("anchored pattern does not reach here\n")
    (tree / "src" / ".gitignore").write_text("secret.txt\n")
    (tree / "src" / "secret.txt").write_text("hunter2\n")
    (tree / "src" / "deep" / "secret.txt").write_text("also ignored: unanchored\n")
    (tree / "src" / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tree / "src" / "shot.png").write_bytes(PNG)
    os.symlink("..", tree / "src" / "up")  # a loop: src/up/src/up/...
    os.symlink("self", tree / "src" / "self")  # resolves to itself
    (root / "private.txt").write_text("outside the tree\n")
    os.symlink(root / "private.txt", tree / "src" / "private.txt")  # not part of the project
    return tree


def test_a_directory_attaches_its_text_files_honouring_gitignore(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    a = attach_mod.load(str(tree))
    assert a.kind == "directory"
    text = a.data.decode()
    files = [line[5:-1] for line in text.splitlines() if line.startswith("File ") and line.endswith(":")]
    assert files == [".gitignore", "README.md", "keep.log", "src/.gitignore", "src/main.py", "src/top-only.txt"]
    for absent in ("noise", "built", "hunter2", "also ignored", "[core]", "ignored at the top", "outside the tree"):
        assert absent not in text
    size = sum((tree / f).stat().st_size for f in files)
    assert a.note == (f"6 text files, {size:,} bytes; left out: 5 ignored by .gitignore, 1 binary, "
                      "1 image (attach images one by one), 2 symlink loop, 1 symlink out of the directory")
    assert a.summary == f"{tree}/ ({a.note})"


def test_a_directory_stops_at_its_total_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(5):
        (tree / f"f{i}.txt").write_text("x" * 100)
    monkeypatch.setattr(attach_mod, "MAX_DIRECTORY_BYTES", 250)
    a = attach_mod.load(str(tree))
    assert a.note == "2 text files, 200 bytes; left out: 3 over the 0 MB total"
    assert a.data.decode().count("File f") == 2


# -- web pages -----------------------------------------------------------------------------------

PAGE = b"""<!doctype html><html><head><title>Crash report</title><style>body{color:red}</style>
<script>var secret = "do not include";</script></head><body>
<nav><a href="/home">Home</a></nav>
<h1>Stack trace</h1><p>The <b>parser</b> failed, see <a href="https://example.com/issue/1">issue 1</a>.</p>
<ul><li>first</li><li>second</li></ul><pre><code>raise ValueError()</code></pre></body></html>"""


def test_a_web_page_becomes_markdown(server: LoopbackServer) -> None:
    server.add(Reply(status=301, headers={"Location": "/page"}, chunks=[b""], content_type="text/html", chunked=False,
                     path="/old"))
    server.add(Reply(chunks=[PAGE], content_type="text/html; charset=utf-8", chunked=False, path="/page"))
    a = attach_mod.load(f"{server.url}/old")
    assert (a.kind, a.media_type, a.name) == ("url", "text/markdown", f"{server.url}/old")
    md = a.data.decode()
    assert md.startswith("# Crash report\n\n# Stack trace\n\nThe **parser** failed, see [issue 1](https://example.com/issue/1).")
    assert "- first\n- second" in md and "raise ValueError()" in md
    for absent in ("secret", "color:red", "Home"):
        assert absent not in md
    assert a.as_text().startswith(f"Web page {server.url}/old:\n```\n# Crash report")


def test_web_page_failures_are_one_line_refusals(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add(Reply.json(404, {"error": "nope"}, path="/gone"))
    with pytest.raises(errors.UsageError) as exc:
        attach_mod.load(f"{server.url}/gone")
    assert exc.value.message == f"cannot fetch {server.url}/gone: 404 Not Found"
    monkeypatch.setattr(attach_mod, "MAX_IMAGE_BYTES", 1000)
    server.add(Reply(chunks=[b"x" * 600, b"y" * 600], content_type="text/plain", path="/big"))
    with pytest.raises(errors.UsageError, match="is more than 0 MB; not attached"):
        attach_mod.load(f"{server.url}/big")
    server.add(Reply(chunks=[PNG], content_type="application/octet-stream", chunked=False, path="/img"))
    assert attach_mod.load(f"{server.url}/img").media_type == "image/png"


# -- commands ------------------------------------------------------------------------------------


def test_a_command_runs_only_when_confirmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    asked_about: list[str] = []
    with pytest.raises(errors.UsageError, match="not run: `touch ran`; nothing attached"):
        attach_mod.load("!touch ran", confirm=lambda c: asked_about.append(c) or False)
    assert asked_about == ["touch ran"] and not (tmp_path / "ran").exists()
    with pytest.raises(errors.UsageError, match="not run"):
        attach_mod.load("!touch ran")  # nobody to ask: not run
    assert not (tmp_path / "ran").exists()
    a = attach_mod.load("!printf 'a\\nb\\n'; exit 3", confirm=lambda c: True)
    assert (a.kind, a.data, a.note) == ("command", b"a\nb\n", "exit status 3")
    assert a.as_text() == "Output of !printf 'a\\nb\\n'; exit 3:\n```\na\nb\n```"
    monkeypatch.setattr(attach_mod, "COMMAND_TIMEOUT_S", 0.5)
    with pytest.raises(errors.UsageError, match="`sleep 30` did not finish in 0 s; nothing attached"):
        attach_mod.load("!sleep 30", confirm=lambda c: True)


# -- sessions ------------------------------------------------------------------------------------


def test_sessions_store_each_attachment_once_and_replay_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    redaction.remember("sk-proj-abcdefghijklmnopqrstuvwxyz0123")  # as a resolved key is
    env_file = Attachment(".env", "text", "text/plain", b"OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123\n")
    user = Message("user", "look", attachments=(SHOT, env_file))
    first = store.create_session(name="one", model="mini")
    second = store.create_session(name="two", model="mini")
    store.append(first.id, user, Message("assistant", "a red square"))
    store.append(second.id, Message("user", "again", attachments=(SHOT,)))
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT count(*) FROM blobs WHERE media_type = 'image/png'").fetchone() == (1,)
        stored = b"".join(r[0] for r in conn.execute("SELECT data FROM blobs"))
    assert b"sk-proj-abcdefghijklmnopqrstuvwxyz0123" not in stored  # text is redacted like turns are
    _, conv = store.load("one")
    got = conv.messages[0].attachments
    assert got[0] == SHOT and got[1].name == ".env" and got[1].kind == "text"
    # Deleting a session keeps content another session still names, and drops the rest.
    store.delete("two")
    _, conv = store.load("one")
    assert conv.messages[0].attachments[0] == SHOT
    store.delete("one")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
    store.close()


def test_the_schema_step_keeps_existing_sessions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for step in range(1, SCHEMA_VERSION):
            for statement in db_mod._MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        conn.execute("INSERT INTO sessions (name, created, updated) VALUES ('old', '2026-01-01T00:00:00+00:00', "
                     "'2026-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO turns (session, idx, role, text, status, created) VALUES "
                     "(1, 0, 'user', 'from before', 'complete', '2026-01-01T00:00:00+00:00')")
    store = Store.open(path)
    _, conv = store.load("old")
    assert [(m.text, m.attachments) for m in conv.messages] == [("from before", ())]
    store.append(1, Message("user", "now with a picture", attachments=(SHOT,)))
    assert store.load("old")[1].messages[1].attachments == (SHOT,)
    store.close()


def test_exports_list_and_embed_attachments(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    info = store.create_session(name="ex")
    store.append(info.id, Message("user", "see", attachments=(SHOT, NOTES)), Message("assistant", "ok"))
    info, turns = store.transcript("ex")
    md = to_markdown(info, turns)
    assert f"*Attached:* shot.png (image/png; {len(PNG):,} bytes)" in md
    assert "*Attached:* notes.txt (text; 9 bytes)" in md
    doc = json.loads(json.dumps(to_json(info, turns)))
    assert doc["turns"][0]["attachments"][0] == {
        "name": "shot.png", "kind": "image", "media_type": "image/png", "note": "", "sha256": SHOT.digest,
        "size": len(PNG), "data": B64,
    }
    info, back = from_json(doc)
    assert back[0].message.attachments == (SHOT, NOTES)
    store.import_session(info, back, name="copy")
    assert store.load("copy")[1].messages[0].attachments == (SHOT, NOTES)
    doc["turns"][0]["attachments"][0]["data"] = base64.b64encode(png(rgb=(0, 0, 0))).decode()
    with pytest.raises(errors.UsageError, match=r"turns\[0\]\.attachments\[0\]\.sha256: does not match"):
        from_json(doc)
    store.close()


# -- ask -f --------------------------------------------------------------------------------------


def ask_env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text('default = "v3"\n' + config_text(server.url))
    return command_env(cfg, tmp_path, DS_KEY="sk-ds-test", OA_KEY="sk-oa-test", AN_KEY="sk-ant-test")


EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))


def run_ask(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert EXE is not None
    return subprocess.run([EXE, "ask", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_ask_file_is_repeatable_and_vision_aware(tmp_path: Path, server: LoopbackServer) -> None:
    server.default = router(FakeDeepSeek(prefix="/ds/"), FakeOpenAIVision(prefix="/oa/"))
    env = ask_env(tmp_path, server)
    (tmp_path / "shot.png").write_bytes(PNG)
    (tmp_path / "a.txt").write_text("alpha\n")
    refused = run_ask(env, "-f", "shot.png", "what is it?", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    # r1 is the preset's (deepseek-flash, which takes images): this config replaced only v3.
    assert "v3 does not take images; models that do: r1, mini, haiku" in refused.stderr
    done = run_ask(env, "-m", "mini", "-f", "a.txt", "--file", "shot.png", "what is it?", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpt-4o-mini answer")
    content = server.requests[-1].json["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "File a.txt:\n```\nalpha\n```\n\nwhat is it?"}
    assert content[1]["image_url"]["url"] == f"data:image/png;base64,{B64}"


def test_ask_runs_a_command_only_with_run(tmp_path: Path, server: LoopbackServer) -> None:
    server.default = router(FakeDeepSeek())
    env = ask_env(tmp_path, server)
    refused = run_ask(env, "-f", "!touch ran; echo diff-output", "review", cwd=tmp_path)
    assert refused.returncode == 2 and "-f '!touch ran; echo diff-output' runs a command: add --run to allow it" in refused.stderr
    assert not (tmp_path / "ran").exists() and server.requests == []
    done = run_ask(env, "--run", "-f", "!echo diff-output", "review", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert server.requests[-1].json["messages"][-1]["content"] == "Output of !echo diff-output:\n```\ndiff-output\n```\n\nreview"


# -- the REPL in a pseudo-terminal ---------------------------------------------------------------


@pytest.mark.pty
@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_repl_file_takes_a_directory_and_asks_before_running_a_command(tmp_path: Path, server: LoopbackServer) -> None:
    pexpect = pytest.importorskip("pexpect")
    tree = make_tree(tmp_path)
    server.add(Reply.say("Looks fine.", path="/ds/"))
    env = ask_env(tmp_path, server)
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 200), timeout=20, cwd=str(tmp_path))
    child.expect("v3 ›")
    child.send("/file tree\r")
    child.expect(r"attached tree/ \(6 text files, \d+ bytes; left out: 5 ignored by \.gitignore")
    child.expect("v3 ›")
    child.send("/file !touch ran; echo pty-marker\r")
    child.expect(r"run `touch ran; echo pty-marker` in .* and attach its output\? \[y/N\]")
    child.send("n\r")
    child.expect(r"not run: `touch ran; echo pty-marker`; nothing attached")
    child.expect("v3 ›")
    assert not (tmp_path / "ran").exists()
    child.send("/file !echo pty-marker\r")
    child.expect(r"\[y/N\]")
    child.send("y\r")
    child.expect(r"attached !echo pty-marker \(command output; 11 bytes\)")
    child.expect("v3 ›")
    child.send("review this\r")
    child.expect("Looks fine.")
    child.expect("v3 ›")
    child.send("/history\r")
    child.expect(r"\+ tree/ \(6 text files")
    child.expect(r"\+ !echo pty-marker \(command output; 11 bytes\)")
    child.expect("v3 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sent = server.requests[-1].json["messages"][-1]["content"]
    assert sent.startswith("Directory tree/ (6 text files, ")
    assert "ignored by .gitignore, 1 binary, 1 image (attach images one by one), 2 symlink loop, 1 symlink out of the directory):\n\nFile .gitignore:\n```\n" in sent
    assert "File src/main.py:\n```\nprint('hi')\n```" in sent and "hunter2" not in sent
    assert sent.endswith("Output of !echo pty-marker:\n```\npty-marker\n```\n\nreview this")


class FakeRepl:
    """What a slash command sees of the REPL: a session, `say`, and `confirm` (answers scripted)."""

    def __init__(self, session: ChatSession, answers: list[bool]) -> None:
        self.session = session
        self.said: list[str] = []
        self.asked: list[str] = []
        self.answers = answers

    def say(self, text: str, style: str | None = None) -> None:
        self.said.append(text)

    def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return self.answers.pop(0)


def test_slash_file_takes_several_sources_quoted_paths_and_a_command_line(chat: ChatSession, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.repl import builtins

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("A\n")
    (tmp_path / "b c.txt").write_text("BC\n")
    repl = FakeRepl(chat, [True])
    builtins._file(repl, 'a.txt "b c.txt"')  # type: ignore[arg-type]
    builtins._file(repl, "b c.txt")  # type: ignore[arg-type]
    builtins._file(repl, "!echo one | tr o O")  # type: ignore[arg-type]
    assert repl.said == ["attached a.txt (2 bytes) to your next message",
                         "attached b c.txt (3 bytes) to your next message",
                         "attached b c.txt (3 bytes) to your next message",
                         "attached !echo one | tr o O (command output; 4 bytes) to your next message"]
    assert repl.asked == [f"run `echo one | tr o O` in {tmp_path} and attach its output?"]
    message = chat.user_message("go")
    assert [a.kind for a in message.attachments] == ["text", "text", "text", "command"]
    assert message.prompt_text.endswith("Output of !echo one | tr o O:\n```\nOne\n```\n\ngo")
    assert chat.attachments == []  # sent once, then cleared


def test_vision_is_a_model_key_and_the_presets_set_it() -> None:
    with pytest.raises(errors.ConfigError, match=r"providers\.p\.models\.m\.vision"):
        config_mod.build(tomllib.loads('[providers.p]\nbase_url = "http://127.0.0.1:1"\n'
                                       '[providers.p.models.m]\nid = "x"\nvision = "yes"\n'), Path("t.toml"), presets={})
    presets = tomllib.loads((Path(config_mod.__file__).parent / "presets.toml").read_text())
    cfg = config_mod.build({}, Path("t.toml"), presets=presets)
    assert {m.name for m in cfg.models() if m.vision} >= {"gpt-4o-mini", "sonnet", "haiku", "flash"}
    # deepseek-flash (v3, r1) understands images, deepseek-v4-pro does not (DeepSeek's pricing page).
    assert cfg.resolve("v3").vision and cfg.resolve("r1").vision and not cfg.resolve("ds-pro").vision
