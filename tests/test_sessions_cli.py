"""`modelswitch sessions ...` through typer's CliRunner, and the export formats behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelswitch.cli import sessions as sessions_cli
from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.events import ReplayState, Usage
from modelswitch.config.pricing import Cost
from modelswitch.store.export import from_json, model_stats, to_json
from modelswitch.store.db import Store, Turn

R1 = ModelRef("deepseek", "deepseek-reasoner", "openai", "r1")
HY = ModelRef("hunyuan", "hunyuan-turbos-latest", "openai", "hy")
OPUS = ModelRef("anthropic", "claude-opus-4-6", "anthropic", None)

runner = CliRunner()


def run(*args: str, input: str | None = None) -> Result:
    result = runner.invoke(sessions_cli.app, list(args), input=input)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def one_error_line(result: Result, code: int, match: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.stderr


def answer(model: ModelRef, text: str, **kw: object) -> Message:
    return Message("assistant", text, model=model, **kw)  # type: ignore[arg-type]


@pytest.fixture
def switched() -> int:
    """A session that switched models three times (r1 -> hy -> opus -> r1), with every detail."""
    with Store.open() as st:
        sid = st.create_session(name="hop", model="r1", system="Be brief.").id
        st.append(sid, Message("user", "Who are you?"),
                  Turn(answer(R1, "I am R1.", reasoning="They ask my name.", usage=Usage(10, 60, 40, 0),
                              timing=Timing(0.5, 2.0, 30.0), finish_reason="stop"), Cost(0.001, "CNY")))
        st.append(sid, Message("user", "And you?"),
                  Turn(answer(HY, "Hunyuan here.", usage=Usage(20, 10, 0, 5), timing=Timing(0.3, 1.0, 10.0)),
                       Cost(0.0002, "CNY")))
        st.append(sid, Message("user", "Third?"),
                  Turn(answer(OPUS, "Claude.", reasoning="Signed thought.", usage=Usage(30, 20, 10, 0),
                              timing=Timing(1.5, 3.0, 7.0),
                              replay=(ReplayState("anthropic", "claude-opus-4-6", '{"signature": "c2ln"}'),)),
                       Cost(0.004, "USD")))
        st.append(sid, Message("user", "Back to R1, tell a story"),
                  Turn(answer(R1, "Once upon a", status="interrupted", fallback_from="t1"), None),
                  Turn(answer(HY, "A compare answer not kept"), alternate=True))
        return sid


# -- list ----------------------------------------------------------------------------------------


def test_list_when_there_is_nothing() -> None:
    assert run("list").stdout.strip() == "no saved sessions yet"
    assert json.loads(run("list", "--json").stdout) == []


def test_list_shows_name_turns_models_updated_cost(switched: int) -> None:
    with Store.open() as st:
        unnamed = st.create_session().id
    out = run("list").stdout.splitlines()
    assert out[0].split() == ["session", "turns", "models", "updated", "cost"]
    assert out[1].startswith(f"#{unnamed} ")  # most recent first
    hop = out[2]
    assert hop.startswith("hop ") and " 8 " in hop
    assert "r1, hy, anthropic/claude-opus-4-6" in hop and "¥0.0012 + $0.0040" in hop


def test_list_json(switched: int) -> None:
    [hop] = json.loads(run("list", "--json").stdout)
    assert hop["id"] == switched and hop["name"] == "hop" and hop["turns"] == 8
    assert [m["model"] for m in hop["models"]] == [
        "deepseek/deepseek-reasoner", "hunyuan/hunyuan-turbos-latest", "anthropic/claude-opus-4-6",
    ]
    assert hop["usage"] == {"input_tokens": 60, "output_tokens": 90, "reasoning_tokens": 50, "cached_tokens": 5}
    assert hop["cost"] == [{"amount": 0.0012, "currency": "CNY"}, {"amount": 0.004, "currency": "USD"}]


# -- show ----------------------------------------------------------------------------------------


def test_show_names_the_model_of_every_turn(switched: int) -> None:
    out = run("show", "hop").stdout
    assert out.startswith("# hop\n")
    labels = [line.split(" · ")[0] for line in out.splitlines() if line.startswith("**")]
    assert labels == [
        "**System prompt:**",
        "**You**", "**r1** (deepseek/deepseek-reasoner)",
        "**You**", "**hy** (hunyuan/hunyuan-turbos-latest)",
        "**You**", "**anthropic/claude-opus-4-6**",
        "**You**", "**r1** (deepseek/deepseek-reasoner) instead of t1",
        "**hy** (hunyuan/hunyuan-turbos-latest)",
    ]
    assert "not kept" in out and "interrupted" in out and "¥0.0010" in out
    assert "They ask my name." not in out and "Signed thought." not in out
    with_reasoning = run("show", "hop", "--reasoning").stdout
    assert "> They ask my name." in with_reasoning and "> Signed thought." in with_reasoning
    assert run("show", f"#{switched}").stdout == out


def test_show_stats_per_model_and_total(switched: int) -> None:
    out = run("show", "hop", "--stats").stdout.splitlines()
    assert out[0] == "hop: 5 answers from 3 models"
    rows = {line.split("  ")[0]: line for line in out[2:]}
    assert set(rows) == {"r1 (deepseek/deepseek-reasoner)", "hy (hunyuan/hunyuan-turbos-latest)",
                         "anthropic/claude-opus-4-6", "total"}
    assert rows["r1 (deepseek/deepseek-reasoner)"].split()[2:] == [
        "2", "10", "60", "40", "¥0.0010", "0.50", "s", "30.0"]
    assert "¥0.0012 + $0.0040" in rows["total"]


def test_model_stats_means_skip_unknown_timings(switched: int) -> None:
    with Store.open() as st:
        _, turns = st.transcript("hop")
    per_model, total = model_stats(turns)
    r1 = per_model[0]
    assert (r1.turns, r1.mean_ttft_s, r1.mean_tokens_per_s) == (2, 0.5, 30.0)
    assert total.turns == 5 and total.usage == Usage(60, 90, 50, 5)
    assert total.costs == (Cost(0.0012, "CNY"), Cost(0.004, "USD"))


def test_show_unknown_session_is_one_line_exit_2() -> None:
    one_error_line(run("show", "nope"), 2, "no session named 'nope'")
    one_error_line(run("show", "#42"), 2, "no session #42")


def test_show_an_empty_session() -> None:
    with Store.open() as st:
        st.create_session(name="empty")
    assert run("show", "empty").stdout.startswith("# empty\n\n*0 turns")
    assert run("show", "empty", "--stats").stdout.strip() == "empty: 0 answers from 0 models"


# -- export / import -----------------------------------------------------------------------------


def test_markdown_export_says_who_said_what(switched: int) -> None:
    md = run("export", "hop", "--format", "md").stdout
    blocks = md.rstrip("\n").split("\n\n---\n\n")[1:]
    said = [(b.split("\n\n")[0], b.split("\n\n")[1]) for b in blocks]
    assert said == [
        ("**You**", "Who are you?"),
        ("**r1** (deepseek/deepseek-reasoner)", "I am R1."),
        ("**You**", "And you?"),
        ("**hy** (hunyuan/hunyuan-turbos-latest)", "Hunyuan here."),
        ("**You**", "Third?"),
        ("**anthropic/claude-opus-4-6**", "Claude."),
        ("**You**", "Back to R1, tell a story"),
        ("**r1** (deepseek/deepseek-reasoner) instead of t1", "Once upon a"),
        ("**hy** (hunyuan/hunyuan-turbos-latest) · not kept", "A compare answer not kept"),
    ]
    assert "They ask my name." not in md
    assert "> They ask my name." in run("export", "hop", "--reasoning").stdout


def test_json_export_round_trips_through_import(switched: int) -> None:
    doc = json.loads(run("export", "hop", "--format", "json").stdout)
    with Store.open() as st:
        info, turns = st.transcript("hop")
    assert from_json(doc) == (info, turns)  # every field survives JSON

    result = run("import", "-", "--name", "hop2", input=json.dumps(doc))
    # As /history numbers them: the compare answer not kept (an alternate) is no turn.
    assert result.exit_code == 0 and result.stdout.strip() == "imported hop2 (8 turns)"
    with Store.open() as st:
        copy, copy_turns = st.transcript("hop2")
        assert copy.id != info.id and (copy.created, copy.updated) == (info.created, info.updated)
        assert (copy.model, copy.system) == (info.model, info.system)
        assert copy_turns == turns
        assert st.load("hop2")[1] == st.load("hop")[1]
        assert st.load("hop2")[1].messages[5].replay == turns[5].message.replay

    again = json.loads(run("export", "hop2", "-f", "json").stdout)
    for d in (doc, again):
        d["session"].pop("id")
        d["session"].pop("name")
    assert again == doc


def test_import_keeps_the_exported_name_unless_taken(switched: int, tmp_path: Path) -> None:
    path = tmp_path / "hop.json"
    assert run("export", "hop", "-f", "json", "-o", str(path)).exit_code == 0
    one_error_line(run("import", str(path)), 2, "a session named 'hop' already exists")
    run("delete", "hop", "--yes")
    assert run("import", str(path)).stdout.strip() == "imported hop (8 turns)"


def test_export_to_a_file_is_private(switched: int, tmp_path: Path) -> None:
    path = tmp_path / "out.md"
    result = run("export", "hop", "-o", str(path))
    assert result.exit_code == 0 and result.stdout == ""
    assert "exported hop (8 turns)" in result.stderr
    assert path.read_text("utf-8").startswith("# hop\n")
    assert path.stat().st_mode & 0o777 == 0o600
    one_error_line(run("export", "hop", "-o", str(tmp_path / "no" / "dir.md")), 2, "cannot write")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not JSON (line 1"),
        ('{"format": "something else"}', '"format" is not "modelswitch-session"'),
        ('{"format": "modelswitch-session", "version": 99}', "newer modelswitch"),
        ('{"format": "modelswitch-session", "version": 1, "session": {"created": "x"}}', "session.created"),
    ],
)
def test_import_rejects_what_is_not_an_export(text: str, match: str) -> None:
    one_error_line(run("import", "-", input=text), 2, match)


def test_import_names_the_bad_field(switched: int) -> None:
    doc = json.loads(run("export", "hop", "-f", "json").stdout)
    doc["turns"][3]["usage"]["output_tokens"] = "ten"
    one_error_line(run("import", "-", "--name", "x", input=json.dumps(doc)), 2,
                   "turns[3].usage.output_tokens: expected an integer")
    with Store.open() as st:
        doc = to_json(*st.transcript("hop"))
    doc["turns"][0]["role"] = "system"
    one_error_line(run("import", "-", "--name", "x", input=json.dumps(doc)), 2,
                   "turns[0].role: expected one of user, assistant")


def test_import_of_a_missing_file() -> None:
    one_error_line(run("import", "/nonexistent/x.json"), 2, "cannot read /nonexistent/x.json")


def test_export_unknown_session() -> None:
    one_error_line(run("export", "nope", "-f", "json"), 2, "no session named 'nope'")


# -- rename / delete -----------------------------------------------------------------------------


def test_rename(switched: int) -> None:
    with Store.open() as st:
        st.create_session(name="taken")
    assert run("rename", "hop", "hops").stdout.strip() == "renamed to hops"
    one_error_line(run("rename", "hop", "x"), 2, "no session named 'hop'")
    one_error_line(run("rename", "hops", "taken"), 2, "a session named 'taken' already exists")
    one_error_line(run("rename", "hops", "123"), 2, "looks like a session id")
    assert run("rename", f"#{switched}", "again").exit_code == 0
    with Store.open() as st:
        assert st.get(switched).name == "again"


def test_delete_with_yes(switched: int) -> None:
    assert run("delete", "hop", "--yes").stdout.strip() == "deleted hop"
    one_error_line(run("show", "hop"), 2, "no session named 'hop'")
    one_error_line(run("delete", "hop", "--yes"), 2, "no session named 'hop'")


def test_delete_without_yes_refuses_when_stdin_is_not_a_terminal(switched: int) -> None:
    one_error_line(run("delete", "hop", input="y\n"), 2, "not deleting hop without --yes")
    with Store.open() as st:
        assert st.find("hop") is not None


def test_delete_asks_in_a_terminal(switched: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_cli, "_stdin_is_tty", lambda: True)
    kept = run("delete", "hop", input="n\n")
    assert kept.exit_code == 0 and "Delete session hop (9 turns)?" in kept.stdout
    assert kept.stdout.strip().endswith("not deleted")
    with Store.open() as st:
        assert st.find("hop") is not None
    gone = run("delete", "hop", input="y\n")
    assert gone.exit_code == 0 and gone.stdout.strip().endswith("deleted hop")
    with Store.open() as st:
        assert st.find("hop") is None


# -- a database we cannot use --------------------------------------------------------------------


@pytest.mark.parametrize("args", [["list"], ["show", "x"], ["export", "x"], ["delete", "x", "--yes"],
                                  ["rename", "x", "y"]])
def test_a_corrupt_database_is_one_line_exit_1(isolated_env: Path, args: list[str]) -> None:
    db = isolated_env / "data" / "modelswitch" / "modelswitch.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"garbage " * 1000)
    one_error_line(run(*args), 1, "is corrupt")
    assert db.read_bytes() == b"garbage " * 1000


def test_mounted_under_a_parent_app_as_cli_py_will(switched: int) -> None:
    import typer

    parent = typer.Typer()
    parent.command()(lambda: None)  # a second command, so "sessions" is a real subcommand
    parent.add_typer(sessions_cli.app, name="sessions")
    result = runner.invoke(parent, ["sessions", "show", "hop", "--stats"])
    assert result.exit_code == 0 and result.stdout.startswith("hop: 5 answers")
    result = runner.invoke(parent, ["sessions", "show", "nope"])
    assert result.exit_code == 2 and result.stderr.startswith("error: no session named 'nope'")
    assert "list" in runner.invoke(parent, ["sessions"]).output


def test_importing_the_module_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, modelswitch.cli.sessions; "
            "print(sorted(m for m in ('sqlite3', 'rich', 'modelswitch.store.db') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_show_stats_says_dash_for_tokens_nobody_reported() -> None:
    with Store.open() as st:
        sid = st.create_session(name="nousage", model="r1").id
        st.append(sid, Message("user", "a"), Turn(answer(R1, "A."), None))
        st.append(sid, Message("user", "b"), Turn(answer(R1, "B."), None))
        st.append(sid, Message("user", "c"), Turn(answer(HY, "C.", usage=Usage(7, 3, 0, 0)), None))
        st.append(sid, Message("user", "d"), Turn(answer(HY, "D."), None))
    out = run("show", "nousage", "--stats").stdout.splitlines()
    rows = {line.split("  ")[0]: line.split() for line in out[2:]}
    # r1 never reported usage: unknown, not 0. hy did once: the known counts, summed.
    assert rows["r1 (deepseek/deepseek-reasoner)"][2:6] == ["2", "-", "-", "-"]
    assert rows["hy (hunyuan/hunyuan-turbos-latest)"][2:6] == ["2", "7", "3", "0"]
    assert rows["total"][1:5] == ["4", "7", "3", "0"]


def test_show_without_a_name_shows_the_most_recent_or_says_where_n_comes_from() -> None:
    one_error_line(run("show"), 2, "`sessions show N` takes N from `sessions list`")
    with Store.open() as st:
        st.create_session(name="older")
        newest = st.create_session(name="newest").id
        st.append(newest, Message("user", "hi"), Turn(answer(R1, "Hello."), None))
    out = run("show").stdout
    assert out.startswith("# newest\n") and "Hello." in out
