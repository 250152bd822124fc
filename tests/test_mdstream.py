"""mdstream: a growing Markdown text split into finished blocks and an open tail."""

from __future__ import annotations

import random

import pytest

from modelswitch.ui.mdstream import Block, MarkdownStream


def split(chunks: list[str]) -> list[Block]:
    stream = MarkdownStream()
    blocks: list[Block] = []
    for chunk in chunks:
        blocks += stream.feed(chunk)
    return blocks + stream.close()


def kinds(text: str) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in split([text])]


DOC = """# Title

Intro paragraph
continues here.

- item one
- item two

  continuation of two

- item three
```python
# a comment, not a heading

def f():
    return 1
```
Setext heading
---
~~~
~~~ still code
```
~~~
> quoted
> more

| a | b |
|---|---|
| 1 | 2 |

    indented code

    still indented code
after code
1. one
2. two

***
The end.
"""


def test_blocks_of_a_document() -> None:
    assert kinds(DOC) == [
        ("heading", "# Title"),
        ("paragraph", "Intro paragraph\ncontinues here."),
        ("list", "- item one\n- item two\n\n  continuation of two\n\n- item three"),
        ("fence", "```python\n# a comment, not a heading\n\ndef f():\n    return 1\n```"),
        ("heading", "Setext heading\n---"),
        ("fence", "~~~\n~~~ still code\n```\n~~~"),
        ("quote", "> quoted\n> more"),
        ("table", "| a | b |\n|---|---|\n| 1 | 2 |"),
        ("code", "    indented code\n\n    still indented code"),
        ("paragraph", "after code"),
        ("list", "1. one\n2. two"),
        ("hr", "***"),
        ("paragraph", "The end."),
    ]


def test_one_char_at_a_time_gives_the_same_blocks() -> None:
    assert split(list(DOC)) == split([DOC])


def test_random_chunks_and_crlf_give_the_same_blocks() -> None:
    rng = random.Random(7)
    crlf = DOC.replace("\n", "\r\n")
    for _ in range(20):
        chunks, i = [], 0
        while i < len(crlf):
            n = rng.randint(1, 9)
            chunks.append(crlf[i : i + n])
            i += n
        assert split(chunks) == split([DOC])


def test_cr_split_from_its_lf_is_one_line_end() -> None:
    assert split(["para one\r", "\n\r", "\npara two"]) == [
        Block("para one", "paragraph"),
        Block("para two", "paragraph"),
    ]


def test_fence_is_open_until_its_closing_fence() -> None:
    stream = MarkdownStream()
    assert stream.feed("```js\nlet a = 1;\n\n# not a heading\n\n") == []
    assert stream.kind == "fence"
    assert stream.feed("``` not a close\n") == []
    assert stream.feed("  ```\n") == [
        Block("```js\nlet a = 1;\n\n# not a heading\n\n``` not a close\n  ```", "fence")
    ]
    assert stream.tail == ""


def test_longer_fence_needs_as_long_a_close() -> None:
    assert kinds("````md\n```\ninner\n```\n````\nafter\n") == [
        ("fence", "````md\n```\ninner\n```\n````"),
        ("paragraph", "after"),
    ]


def test_unclosed_fence_is_finished_by_close() -> None:
    assert kinds("```\ncode\n\nmore") == [("fence", "```\ncode\n\nmore")]


def test_list_continues_over_blank_lines_until_a_line_that_cannot_continue_it() -> None:
    stream = MarkdownStream()
    assert stream.feed("1. first\n\n2. second\n\n") == []
    assert stream.feed("   more of second\n\n") == []
    assert stream.feed("Not in the list\n") == [
        Block("1. first\n\n2. second\n\n   more of second", "list")
    ]
    assert stream.tail == "Not in the list"


def test_fence_inside_a_list_keeps_its_blank_lines_and_hashes() -> None:
    text = "- step:\n\n  ```sh\n  # install\n\n  make\n  ```\n- next\n\nafter\n"
    assert kinds(text) == [
        ("list", "- step:\n\n  ```sh\n  # install\n\n  make\n  ```\n- next"),
        ("paragraph", "after"),
    ]


def test_heading_and_fence_interrupt_a_paragraph() -> None:
    assert kinds("text\n# Head\nmore\n```\nx\n```\n") == [
        ("paragraph", "text"),
        ("heading", "# Head"),
        ("paragraph", "more"),
        ("fence", "```\nx\n```"),
    ]


def test_a_list_after_a_paragraph_line_starts_its_own_block() -> None:
    assert kinds("Options:\n- a\n- b\n\n- c\n\nDone.\n") == [
        ("paragraph", "Options:"),
        ("list", "- a\n- b\n\n- c"),
        ("paragraph", "Done."),
    ]


def test_inline_backticks_are_not_a_fence() -> None:
    assert kinds("``` `code` ```\nnext line\n") == [("paragraph", "``` `code` ```\nnext line")]


def test_tail_holds_the_open_block_and_the_unfinished_line() -> None:
    stream = MarkdownStream()
    assert stream.feed("# Head\nSome para") == [Block("# Head", "heading")]
    assert stream.tail == "Some para"
    assert stream.feed("graph\nline two") == []
    assert stream.tail == "Some paragraph\nline two"


@pytest.mark.parametrize(
    ("kind", "text", "keep"),
    [
        ("fence", "```py\n" + "".join(f"x{i}\n" for i in range(100)), "```py"),
        ("table", "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i} |\n" for i in range(100)), "|---|---|"),
        ("paragraph", "".join(f"line {i}\n" for i in range(100)), None),
    ],
)
def test_preview_is_the_end_of_the_tail_with_its_header(kind: str, text: str, keep: str | None) -> None:
    stream = MarkdownStream()
    stream.feed(text + "partial")
    assert stream.kind == kind
    lines = stream.preview(10, 1000).split("\n")
    assert len(lines) == 11  # ten complete lines and the unfinished one
    assert lines[-1] == "partial"
    assert lines[-2] == text.splitlines()[-1]
    if keep is not None:
        assert keep in lines[:2]


def test_preview_cuts_a_long_last_line_at_a_space() -> None:
    stream = MarkdownStream()
    stream.feed("word " * 1000)
    preview = stream.preview(5, 100)
    assert len(preview) <= 100
    assert preview.startswith("word")
