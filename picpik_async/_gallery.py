"""The gallery page of an output folder: ``index.html``, built from the folder's ledger.

`render_gallery` is PURE: runs and rows in, HTML out. `write_gallery` reads a
ledger (the SQLite file in the folder by default) and writes ``index.html``
into the folder atomically (a temporary file in the same folder, then
`os.replace`); it never writes anywhere else.

The page is static and self-contained: one HTML file with inline CSS, no
script at all, images by relative file name. A Content-Security-Policy meta
tag forbids scripts and every remote load, so even a page built from a hostile
ledger cannot run code or call home. Every text on it (prompts, errors, run
ids) is HTML-escaped by Jinja2's autoescaping; file names that are not plain
names in the folder (with ``/``, ``\\``, a leading ``.``, or control
characters) are never linked, and the others are URL-quoted.

The template is ``picpik_async/templates/gallery.html.j2``. Jinja2 comes with
the ``cli`` extra and is imported only when a page is rendered.

Example:
    >>> # path = await write_gallery(Path("out"))   # out/index.html
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread
from attrs import frozen

from . import __version__
from ._errors import PicpikError
from ._ledger import Row, RunSummary, parse_ledger_url
from ._ledger_stores import LEDGER_NAME, open_ledger, sqlite_url

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "GALLERY_NAME",
    "GalleryError",
    "render_gallery",
    "safe_file_name",
    "write_gallery",
]

#: The gallery's file name inside an output folder.
GALLERY_NAME: Final = "index.html"
#: The Content-Security-Policy of the page: no script, nothing remote, images from the folder.
CSP: Final = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)
_TEMPLATE: Final = "gallery.html.j2"
_PENDING: Final = frozenset({"new", "claimed", "submitted"})
_PROBLEM_ORDER: Final = {"failed": 0, "unknown": 1, "new": 2, "claimed": 2, "submitted": 2}


class GalleryError(PicpikError):
    """The gallery could not be built: Jinja2 missing, no ledger, or the page not written."""


# --- what the template shows ------------------------------------------------------------


@frozen
class _Image:
    """One image of a card: its quoted relative URL and its size."""

    src: str
    name: str
    width: int
    height: int


@frozen(kw_only=True)
class _Card:
    """One finished prompt: its images and what produced them."""

    number: int
    prompt: str
    images: tuple[_Image, ...]
    columns: int
    missing: int
    unsafe: int
    seed: str
    size: str
    credits: str
    task_uid: str


@frozen(kw_only=True)
class _Problem:
    """A prompt that did not finish: failed, unknown, or not over yet."""

    number: int
    state: str
    label: str
    prompt: str
    error: str | None
    task_uid: str | None
    request_uuid: str | None


@frozen(kw_only=True)
class _RunView:
    """One section of the page."""

    run_id: str
    summary: RunSummary
    started: str
    duration: str
    credits: str
    cards: tuple[_Card, ...]
    problems: tuple[_Problem, ...]
    images: int


# --- pure helpers ---------------------------------------------------------------------


def safe_file_name(name: object) -> bool:
    """Whether `name` is a plain file name inside the folder, fit for a relative ``src``.

    Example:
        >>> [safe_file_name(n) for n in ["T1-0.png", "../x.png", "a/b.png", ".hidden", ""]]
        [True, False, False, False, False]
    """
    return (
        isinstance(name, str)
        and name != ""
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and all(ord(c) >= 32 and ord(c) != 127 for c in name)
    )


def _int(value: object, default: int) -> int:
    """An option's integer value, or `default` when it is absent or not a whole number."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _size(options: Mapping[str, Any]) -> tuple[int, int]:
    """The (width, height) a row asked for (1024 x 1024 when not given)."""
    return _int(options.get("width"), 1024) or 1024, _int(options.get("height"), 1024) or 1024


def _duration(seconds: float) -> str:
    """A short text for a time span.

    Example:
        >>> [_duration(s) for s in (0.25, 12.34, 125, 7500)]
        ['0.2 s', '12.3 s', '2 min 05 s', '2 h 05 min']
    """
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{math.floor(seconds * 10) / 10:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _when(timestamp: float, zone: tzinfo | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM``, in `zone` (local time when None)."""
    if timestamp <= 0:
        return "unknown time"
    return datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M")


def _card(row: Row, available: Callable[[str], bool]) -> _Card:
    width, height = _size(row.options)
    images: list[_Image] = []
    missing = unsafe = 0
    for name in row.files:
        if not safe_file_name(name):
            unsafe += 1
        elif not available(name):
            missing += 1
        else:
            images.append(_Image(urllib.parse.quote(name, safe=""), name, width, height))
    seed = row.seed if row.seed is not None else row.options.get("seed")
    return _Card(
        number=row.position + 1,
        prompt=row.prompt,
        images=tuple(images),
        columns=1 if len(images) <= 1 else 2 if len(images) <= 4 else 3,
        missing=missing,
        unsafe=unsafe,
        seed=str(seed) if seed is not None else "not reported",
        size=f"{width}\N{MULTIPLICATION SIGN}{height}",
        credits=str(row.credits) if row.credits is not None else "not reported",
        task_uid=row.task_uid or "",
    )


def _problem(row: Row) -> _Problem:
    labels = {"failed": "failed", "unknown": "unknown outcome"}
    return _Problem(
        number=row.position + 1,
        state=row.state if row.state in labels else "pending",
        label=labels.get(row.state, f"not finished ({row.state})"),
        prompt=row.prompt,
        error=row.error,
        task_uid=row.task_uid,
        # What `picpik runs reconcile` needs to find the task of an unknown outcome.
        request_uuid=row.request_uuid if row.state != "failed" else None,
    )


def _run_view(
    summary: RunSummary, rows: Sequence[Row], available: Callable[[str], bool], zone: tzinfo | None
) -> _RunView:
    ordered = sorted(rows, key=lambda r: r.position)
    cards = tuple(_card(r, available) for r in ordered if r.state == "finished")
    problems = tuple(
        _problem(r)
        for r in sorted(ordered, key=lambda r: (_PROBLEM_ORDER.get(r.state, 3), r.position))
        if r.state != "finished"
    )
    start = summary.created_at or min((r.created_at for r in rows), default=0.0)
    end = max((r.updated_at for r in rows), default=start)
    credits = f"{summary.credits}"
    if summary.max_credits is not None:
        credits += f" of {summary.max_credits}"
    return _RunView(
        run_id=summary.run_id,
        summary=summary,
        started=_when(start, zone),
        duration=_duration(end - start) if start > 0 else "unknown",
        credits=credits,
        cards=cards,
        problems=problems,
        images=sum(len(c.images) for c in cards),
    )


@functools.cache
def _environment() -> jinja2.Environment:
    """The Jinja2 environment of the template, autoescaping everything."""
    try:
        import jinja2
    except ImportError as error:
        raise GalleryError(
            "the gallery page needs Jinja2: pip install 'picpik-async[cli]'"
        ) from error
    return jinja2.Environment(
        loader=jinja2.PackageLoader("picpik_async", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_gallery(
    runs: Sequence[tuple[RunSummary, Sequence[Row]]],
    *,
    title: str,
    generated_at: datetime,
    available: Callable[[str], bool] | None = None,
) -> str:
    """The gallery page of some runs, one section each in the order given, as HTML text.

    Each section has the run's summary (counts, credits and budget, time from
    the run's start to its last change), a grid of its finished prompts
    (image, prompt, seed, size, credits, TaskUID) and a list of the prompts
    that failed, have an unknown outcome, or are not over yet, with their
    errors. `available` says whether an image file is in the folder (default:
    all are); a missing one is shown as missing, not as a broken image.

    Example:
        >>> from datetime import UTC, datetime
        >>> summary = RunSummary(run_id="cats", total=1, finished=1, failed=0, unknown=0,
        ...                      pending=0, credits=1)
        >>> row = Row(run_id="cats", key="k", position=0, prompt="<b>a cat</b>",
        ...           state="finished", task_uid="T1", files=("T1-0.png",), seed=7, credits=1)
        >>> page = render_gallery([(summary, [row])], title="Cats",
        ...                       generated_at=datetime(2024, 5, 1, tzinfo=UTC))
        >>> '<img src="T1-0.png"' in page, "&lt;b&gt;a cat&lt;/b&gt;" in page, "<script" in page
        (True, True, False)
    """
    zone = generated_at.tzinfo
    present = available if available is not None else (lambda _name: True)
    views = [_run_view(summary, rows, present, zone) for summary, rows in runs]
    template = _environment().get_template(_TEMPLATE)
    return template.render(
        title=title,
        csp=CSP,
        generated=generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        version=__version__,
        runs=views,
        totals={
            "runs": len(views),
            "images": sum(v.images for v in views),
            "credits": sum(v.summary.credits for v in views),
        },
    )


# --- I/O --------------------------------------------------------------------------------


def _write_atomically(folder: Path, text: str) -> Path:
    """Write `text` as the folder's index.html: a temporary file next to it, then a rename.

    A symlink named index.html is replaced, never followed.
    """
    target = folder / GALLERY_NAME
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed or removed
            "w", encoding="utf-8", dir=folder, prefix=".index-", suffix=".html.tmp", delete=False
        )
    except OSError as error:
        raise GalleryError(f"cannot write the gallery in {folder}: {error}") from error
    temporary = Path(handle.name)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(0o644)
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError):
            raise GalleryError(f"cannot write {target}: {error}") from error
        raise
    return target


def _ledger_to_read(folder: Path, ledger_url: str | None) -> str:
    """The URL of the ledger to read for `folder`.

    Checked first, as opening a SQLite ledger that does not exist would create it.
    """
    if not folder.is_dir():
        raise GalleryError(f"no folder {folder}")
    if ledger_url is None:
        if (folder / LEDGER_NAME).is_file():
            return sqlite_url(folder)
        raise GalleryError(f"no ledger {folder / LEDGER_NAME}: nothing to show")
    kind, target = parse_ledger_url(ledger_url)
    if kind == "sqlite" and not Path(target).is_file():
        raise GalleryError(f"no ledger {target}")
    return ledger_url


def _files_present(folder: Path, names: Iterable[str]) -> frozenset[str]:
    """The names among `names` that are regular files directly in `folder`."""
    return frozenset(n for n in names if safe_file_name(n) and (folder / n).is_file())


async def write_gallery(
    folder: Path,
    *,
    title: str | None = None,
    ledger_url: str | None = None,
    run_ids: Collection[str] | None = None,
    generated_at: datetime | None = None,
) -> Path:
    """Build the folder's ``index.html`` from its ledger; returns the page's path.

    The ledger is the SQLite file in `folder` unless `ledger_url` names another
    (a shared PostgreSQL ledger: pass the `run_ids` written into this folder).
    Runs are shown newest first (`picpik generate` calls are the run
    ``generate``). A missing SQLite ledger is an error; it is never created.
    The title defaults to the folder's name.

    Example:
        >>> # path = await write_gallery(Path("out"))   # picpik gallery out
    """
    folder = Path(folder)
    url = await anyio.to_thread.run_sync(_ledger_to_read, folder, ledger_url)
    async with open_ledger(url) as ledger:
        summaries = await ledger.summaries()
        wanted = [s for s in summaries if run_ids is None or s.run_id in run_ids]
        newest_first = sorted(wanted, key=lambda s: (s.created_at, s.run_id), reverse=True)
        runs = [(summary, await ledger.rows(summary.run_id)) for summary in newest_first]
    names = [name for _, rows in runs for row in rows for name in row.files]
    present = await anyio.to_thread.run_sync(_files_present, folder, names)
    page = render_gallery(
        runs,
        title=title or folder.resolve().name or "picpik gallery",
        generated_at=generated_at or datetime.fromtimestamp(time.time(), UTC).astimezone(),
        available=present.__contains__,
    )
    return await anyio.to_thread.run_sync(_write_atomically, folder, page)
