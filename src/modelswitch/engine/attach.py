"""What `/file` and `ask -f` attach: files, images, directories, web pages, command output.

Every source becomes one `conversation.Attachment` or a UsageError saying why not, in one line.
Nothing here prints or asks: running a command needs a `confirm` callback from the front end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from ..conversation import Attachment

if TYPE_CHECKING:
    import pathspec

    from ..config.load import Config, ModelSpec

MAX_ATTACHMENT_BYTES = 2_000_000  # one text file, a web page, a command's output
MAX_IMAGE_BYTES = 20_000_000  # read at most this much of an image; providers' own limits are lower
MAX_DIRECTORY_BYTES = 2_000_000  # every text file of a directory together
MAX_DIRECTORY_FILES = 1000
COMMAND_TIMEOUT_S = 60.0
URL_TIMEOUT_S = 30.0

# Magic bytes, not file names: a screenshot saved as .txt is still a PNG, and a .png that is not
# one would be a 400 from the provider.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))

Confirm = Callable[[str], bool]


def image_type(head: bytes) -> str | None:
    """The image media type these bytes start with (PNG, JPEG, WebP, GIF), else None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_images(config: Config | None, images: tuple[Attachment, ...], spec: ModelSpec) -> None:
    """A UsageError unless `spec` takes these images: `vision = true`, and each image within the
    size its API accepts (the protocol's `max_image_bytes`). Refused here, before anything is sent."""
    if not images:
        return
    if not spec.vision:
        able = [m.name for m in config.models() if m.vision] if config else []
        hint = f"; models that do: {', '.join(able[:8])}" if able else "; set vision = true on a model that does"
        raise errors.UsageError(f"{spec.name} does not take images{hint}")
    if config is None:
        return
    from ..providers import get_protocol

    protocol = get_protocol(config.provider(spec.provider).type)
    limit = getattr(protocol, "max_image_bytes", None)
    for image in images:
        if limit is not None and image.size > limit:
            raise errors.UsageError(
                f"{image.label} is {image.size / 1e6:.1f} MB; {spec.name} ({protocol.name}) takes images "
                f"of at most {limit / 1e6:.2f} MB; make it smaller first"
            )


def load(source: str, *, confirm: Confirm | None = None) -> Attachment:
    """`source` as the user typed it: `!command`, an http(s) URL, or a path (file or directory)."""
    if source.startswith("!"):
        return run_command(source[1:].strip(), confirm)
    if source.startswith(("http://", "https://")):
        return fetch_url(source)
    p = Path(source).expanduser()
    try:
        is_dir = p.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        return read_directory(p, source)
    raw, media = read_file(p, source)
    if media:
        return Attachment(str(p), "image", media, raw)
    return Attachment(str(p), "text", "text/plain", _text(raw, source).encode("utf-8"))


# -- files -------------------------------------------------------------------------------------


def read_file(p: Path, shown: str) -> tuple[bytes, str | None]:
    """A regular file's bytes and its image type (None for anything else), refused before
    reading if it is too large: at most MAX_IMAGE_BYTES for an image, MAX_ATTACHMENT_BYTES else.

    /dev/zero never ends, a FIFO blocks until a writer comes, a 1 GB file would be read whole
    before its size was checked: the type and the size are known from stat without reading.
    """

    def refuse(mode: int, size: int, limit: int, what: str = "") -> None:
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode) else "not a regular file")
            raise errors.UsageError(f"{shown} is {kind}; only regular text files can be attached")
        if size > limit:
            raise errors.UsageError(f"{shown} is {size / 1e6:.1f} MB; attach {what}at most {limit // 1_000_000} MB")

    try:
        st = os.stat(p)
        refuse(st.st_mode, 0, MAX_IMAGE_BYTES)
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open must not hang.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise errors.UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            refuse(st.st_mode, 0, MAX_IMAGE_BYTES)
            head = f.read(16)
            media = image_type(head)
            limit, what = (MAX_IMAGE_BYTES, "images of ") if media else (MAX_ATTACHMENT_BYTES, "")
            refuse(st.st_mode, st.st_size, limit, what)
            raw = head + f.read(limit + 1 - len(head))  # a file growing meanwhile is still bounded
        except OSError as exc:
            raise errors.UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    refuse(stat.S_IFREG, len(raw), limit, what)
    return raw, media


def _text(raw: bytes, shown: str) -> str:
    """UTF-8 text, or a UsageError: a binary that is not an image is not sent."""
    if b"\x00" in raw:
        raise errors.UsageError(f"{shown} looks binary; only text files and images (PNG, JPEG, WebP, GIF) can be attached")
    try:
        return raw.decode("utf-8-sig")  # a BOM is encoding, not text for the model
    except UnicodeDecodeError:
        raise errors.UsageError(f"{shown} is not UTF-8 text") from None


# -- directories -------------------------------------------------------------------------------


@dataclass
class _Walk:
    root: Path
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, text)
    size: int = 0
    ignored: int = 0
    binary: int = 0
    images: int = 0
    unreadable: int = 0
    over_cap: int = 0
    loops: int = 0
    outside: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set)


def read_directory(root: Path, shown: str) -> Attachment:
    """Every text file under `root` that .gitignore does not exclude, up to MAX_DIRECTORY_BYTES.

    Symbolic links to directories are followed once each: a link back up the tree (a loop) is
    recognised by device and inode and skipped. `.git` itself is never read. What was left out,
    and why, is in the attachment's note.
    """
    walk = _Walk(root.resolve())
    _walk_dir(walk, root, "", [])
    if not walk.files:
        raise errors.UsageError(f"{shown} has no text files to attach{_left_out(walk)}")
    body = "\n\n".join(f"File {rel}:\n```\n{text.rstrip()}\n```" for rel, text in walk.files)
    n = len(walk.files)
    note = f"{n} text file{'s' if n != 1 else ''}, {walk.size:,} bytes{_left_out(walk)}"
    return Attachment(shown.rstrip("/") + "/", "directory", "text/plain", body.encode("utf-8"), note=note)


def _left_out(walk: _Walk) -> str:
    parts = [f"{n} {what}" for n, what in (
        (walk.ignored, "ignored by .gitignore"), (walk.binary, "binary"),
        (walk.images, "image (attach images one by one)"), (walk.unreadable, "unreadable"),
        (walk.over_cap, f"over the {MAX_DIRECTORY_BYTES // 1_000_000} MB total"),
        (walk.loops, "symlink loop"), (walk.outside, "symlink out of the directory")) if n]
    return f"; left out: {', '.join(parts)}" if parts else ""


def _gitignore(directory: Path) -> pathspec.GitIgnoreSpec | None:
    path = directory / ".gitignore"
    try:
        if not path.is_file():
            return None
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    import pathspec  # only when a directory with a .gitignore is attached

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignored(specs: list[tuple[str, pathspec.GitIgnoreSpec]], rel: str, is_dir: bool) -> bool:
    """Whether any .gitignore from the root down to this entry's directory excludes it. Each
    file's patterns are matched against the path relative to the directory that holds it."""
    for base, spec in specs:
        sub = rel[len(base):] if base else rel
        if spec.match_file(sub + ("/" if is_dir else "")):
            return True
    return False


def _walk_dir(walk: _Walk, directory: Path, rel: str, specs: list[tuple[str, pathspec.GitIgnoreSpec]]) -> None:
    try:
        st = os.stat(directory)
    except OSError:
        walk.unreadable += 1
        return
    if (st.st_dev, st.st_ino) in walk.seen:
        walk.loops += 1
        return
    walk.seen.add((st.st_dev, st.st_ino))
    spec = _gitignore(directory)
    if spec is not None:
        specs = [*specs, (rel, spec)]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        walk.unreadable += 1
        return
    for entry in entries:
        if entry.name == ".git":
            continue
        child = f"{rel}{entry.name}"
        try:
            is_dir = entry.is_dir()  # follows symlinks; a dangling or looping link raises or is False
            is_file = entry.is_file()
        except OSError:
            walk.loops += 1
            continue
        if _ignored(specs, child, is_dir):
            walk.ignored += 1
            continue
        if entry.is_symlink() and (is_dir or is_file) and not _inside(walk.root, Path(entry.path)):
            walk.outside += 1  # ~/.ssh linked into a project is not part of the project
            continue
        if is_dir:
            _walk_dir(walk, Path(entry.path), child + "/", specs)
        elif is_file:
            _add_file(walk, Path(entry.path), child)
        elif entry.is_symlink():
            walk.loops += 1  # a link that resolves to nothing, or to itself
        else:
            walk.unreadable += 1  # a FIFO, socket or device inside the tree


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def _add_file(walk: _Walk, path: Path, rel: str) -> None:
    if walk.over_cap or len(walk.files) >= MAX_DIRECTORY_FILES:
        walk.over_cap += 1
        return
    try:
        raw, media = read_file(path, rel)
    except errors.UsageError:
        walk.unreadable += 1
        return
    if media:
        walk.images += 1
        return
    try:
        text = _text(raw, rel)
    except errors.UsageError:
        walk.binary += 1
        return
    if walk.size + len(raw) > MAX_DIRECTORY_BYTES:
        walk.over_cap += 1
        return
    walk.size += len(raw)
    walk.files.append((rel, text))


# -- web pages ---------------------------------------------------------------------------------


def fetch_url(url: str) -> Attachment:
    """A web page as Markdown (HTML converted), plain text as it is, or an image; at most
    MAX_ATTACHMENT_BYTES (MAX_IMAGE_BYTES for an image), through the one HTTP client."""
    from ..providers.transport import get_page

    raw, content_type = get_page(url, timeout=URL_TIMEOUT_S, max_bytes=MAX_IMAGE_BYTES)
    media = image_type(raw[:16])
    if media:
        return Attachment(url, "image", media, raw)
    if len(raw) > MAX_ATTACHMENT_BYTES:
        raise errors.UsageError(f"{url} is {len(raw) / 1e6:.1f} MB; attach at most {MAX_ATTACHMENT_BYTES // 1_000_000} MB")
    mime, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    if b"\x00" in raw:
        raise errors.UsageError(f"{url} is not text ({mime.strip() or 'unknown type'}); only pages, text and images can be attached")
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    if mime.strip().lower() in ("text/html", "application/xhtml+xml") or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        text = html_to_markdown(text)
        return Attachment(url, "url", "text/markdown", text.encode("utf-8"))
    return Attachment(url, "url", "text/plain", text.encode("utf-8"))


def html_to_markdown(html: str) -> str:
    """Readable Markdown: headings, links, lists and code kept; scripts, styles and navigation
    chrome dropped. markdownify (on BeautifulSoup) is loaded only when a page is attached."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "nav", "iframe", "form"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    body = MarkdownConverter(heading_style="ATX", bullets="-").convert_soup(soup.body or soup)
    lines = [ln.rstrip() for ln in body.splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return (f"# {title}\n\n" if title else "") + text.strip()


# -- commands ----------------------------------------------------------------------------------


def run_command(command: str, confirm: Confirm | None) -> Attachment:
    """`!git diff`: run through the shell in the current directory once `confirm` says yes; its
    output (stdout and stderr) is attached, with a non-zero exit status noted."""
    import contextlib
    import signal
    import subprocess
    import threading

    if not command:
        raise errors.UsageError("usage: /file !COMMAND (e.g. /file !git diff)")
    if confirm is None or not confirm(command):
        raise errors.UsageError(f"not run: `{command}`; nothing attached")
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise errors.UsageError(f"cannot run `{command}`: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    out: list[bytes] = []

    def read() -> None:  # in a thread: a command that never ends must not hang the chat
        with proc.stdout:  # type: ignore[union-attr]
            out.append(proc.stdout.read(MAX_ATTACHMENT_BYTES + 1))  # type: ignore[union-attr]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(COMMAND_TIMEOUT_S)
    raw = out[0] if out else b""
    # Decided before the kill: once killed, the reader ends at once and would look finished.
    timed_out = reader.is_alive()
    if timed_out or len(raw) > MAX_ATTACHMENT_BYTES:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # the shell and whatever it started
    code = proc.wait()
    if timed_out:
        raise errors.UsageError(f"`{command}` did not finish in {COMMAND_TIMEOUT_S:.0f} s; nothing attached")
    if len(raw) > MAX_ATTACHMENT_BYTES:
        raise errors.UsageError(f"`{command}` printed more than {MAX_ATTACHMENT_BYTES // 1_000_000} MB; nothing attached")
    text = _text(raw, f"the output of `{command}`")
    note = f"exit status {code}" if code else ""
    return Attachment(f"!{command}", "command", "text/plain", text.encode("utf-8"), note=note)
