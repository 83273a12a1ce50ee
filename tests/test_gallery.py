"""The gallery page (`_gallery`): what it shows, what it escapes, where it writes, and
how a real browser (headless Chromium) renders it."""

from __future__ import annotations

import doctest
import importlib.resources
import os
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import pytest
from conftest import make_client
from doctests import run_doctests

from picpik_async import _gallery
from picpik_async._batch import BatchItem, run_batch
from picpik_async._gallery import (
    CSP,
    GALLERY_NAME,
    GalleryError,
    render_gallery,
    safe_file_name,
    write_gallery,
)
from picpik_async._ledger import NewRow, Row, RunSummary
from picpik_async._ledger_stores import LEDGER_NAME, open_ledger, sqlite_url
from picpik_async.testing import Emulator, Faults, Trigger
from picpik_async.testing._images import render_png
from picpik_async.testing._state import ImageSpec

T = TypeVar("T")
RUN = "cats-00000000"
HOSTILE = "<script>alert(1)</script> a cat"
HOSTILE_ERROR = 'bad <img src=x onerror=alert(2)> & "quotes"'
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SUBMIT = "GenerateImagesSDXL"
#: Chromium stalls on a machine without network unless told not to reach for it.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


# --- reading the page ---------------------------------------------------------------


class Page(HTMLParser):
    """The tags, attributes and text of a page, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def srcs(self) -> list[str]:
        return [str(a["src"]) for a in self.all("img")]


def summary_of(rows: Sequence[Row], **overrides: Any) -> RunSummary:
    """A run's summary counted from its rows."""
    states = [r.state for r in rows]
    fields: dict[str, Any] = {
        "run_id": RUN, "total": len(rows), "finished": states.count("finished"),
        "failed": states.count("failed"), "unknown": states.count("unknown"),
        "pending": sum(s in ("new", "claimed", "submitted") for s in states),
        "credits": sum(r.credits or 0 for r in rows), "created_at": 1_000.0,
    }  # fmt: skip
    fields.update(overrides)
    return RunSummary(**fields)


def finished(position: int, *files: str, **fields: Any) -> Row:
    values: dict[str, Any] = {
        "run_id": RUN, "key": f"k{position}", "position": position, "prompt": f"prompt {position}",
        "options": {"width": 64, "height": 48}, "state": "finished", "task_uid": f"T{position}",
        "files": files or (f"T{position}-0.png",), "seed": 100 + position, "credits": 2,
        "created_at": 1_000.0, "updated_at": 1_000.0 + position,
    }  # fmt: skip
    values.update(fields)
    return Row(**values)


def render(rows: Sequence[Row], **options: Any) -> str:
    return render_gallery([(summary_of(rows), rows)], title="Cats", generated_at=WHEN, **options)


# --- the page ------------------------------------------------------------------------


class TestRender:
    def test_head_forbids_scripts_and_remote_loads(self) -> None:
        page = Page(render([finished(0)]))
        assert page.all("meta")[0] == {"charset": "utf-8"}
        (policy,) = [
            m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"
        ]
        assert policy["content"] == CSP
        assert "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'" in CSP
        assert page.all("script") == []
        assert page.all("link") == []  # no stylesheet, font or icon to fetch

    def test_a_hostile_prompt_and_error_are_text(self) -> None:
        rows = [
            finished(0, prompt=HOSTILE),
            Row(run_id=RUN, key="f", position=1, prompt=HOSTILE, state="failed",
                error=HOSTILE_ERROR),
        ]  # fmt: skip
        html = render(rows)
        assert "<script" not in html.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; a cat" in html
        assert "bad &lt;img src=x onerror=alert(2)&gt; &amp; &#34;quotes&#34;" in html
        page = Page(html)
        handlers = [(t, k) for t, attrs in page.tags for k in attrs if k.startswith("on")]
        assert handlers == []
        assert [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed")] == []
        text = "".join(page.text)
        assert text.count(HOSTILE) == 2  # shown, as text, on the card and in the list
        assert HOSTILE_ERROR in text
        # In an attribute too: the alt text is the prompt, escaped, quotes and all.
        assert page.all("img")[0]["alt"] == HOSTILE

    def test_a_hostile_run_id_and_title_are_text(self) -> None:
        rows = [finished(0)]
        html = render_gallery(
            [(summary_of(rows, run_id='"><script>x</script>'), rows)],
            title="</title><script>y</script>",
            generated_at=WHEN,
        )
        assert "<script" not in html.lower()
        assert Page(html).all("script") == []

    def test_srcs_are_plain_relative_names_url_quoted(self) -> None:
        rows = [finished(0, "T0 #1?.png", "javascript:alert(1).png", "ok-0.png")]
        srcs = Page(render(rows)).srcs()
        assert srcs == ["T0%20%231%3F.png", "javascript%3Aalert%281%29.png", "ok-0.png"]
        assert all(re.fullmatch(r"[A-Za-z0-9._~%-]+", s) for s in srcs)
        hrefs = [str(a["href"]) for a in Page(render(rows)).all("a")]
        assert hrefs == srcs  # each thumbnail links to its full image

    def test_hostile_file_names_are_never_linked(self) -> None:
        hostile = ["../escape.png", "/etc/passwd", "sub/dir.png", "a\\b.png", ".hidden.png",
                   "", "tab\there.png"]  # fmt: skip
        html = render([finished(0, *hostile, "T0-0.png")])
        page = Page(html)
        assert page.srcs() == ["T0-0.png"]
        assert [a["href"] for a in page.all("a")] == ["T0-0.png"]
        assert "escape" not in html
        assert "passwd" not in html
        assert ".hidden" not in html
        assert "7 files not shown: not a plain file name" in html
        assert [n for n in hostile if safe_file_name(n)] == []

    def test_each_card_shows_prompt_seed_size_credits_and_task_uid(self) -> None:
        row = finished(3, options={"width": 640, "height": 384, "seed": 5}, seed=42, credits=7,
                       task_uid="TASK-XYZ", prompt="a red apple")  # fmt: skip
        html = render([row])
        (image,) = Page(html).all("img")
        assert (image["width"], image["height"], image["loading"]) == ("640", "384", "lazy")
        card = re.search(r"<figure.*?</figure>", html, re.S)
        assert card is not None
        text = re.sub(r"<[^>]+>", " ", card.group(0))
        for expected in ("a red apple", "42", "640\N{MULTIPLICATION SIGN}384", "7", "TASK-XYZ",
                         "#4"):  # fmt: skip
            assert expected in text

    def test_the_requested_seed_and_the_default_size_when_nothing_else_is_known(self) -> None:
        html = render([finished(0, options={"seed": 9}, seed=None, credits=None)])
        assert "1024\N{MULTIPLICATION SIGN}1024" in html
        assert ">9<" in html
        assert "not reported" in html  # the credits

    def test_several_images_of_one_prompt_share_its_card(self) -> None:
        html = render([finished(0, "T0-0.png", "T0-1.png", "T0-2.png")])
        assert html.count("<figure") == 1
        assert Page(html).srcs() == ["T0-0.png", "T0-1.png", "T0-2.png"]

    def test_failed_unknown_and_pending_prompts_are_listed_with_their_errors(self) -> None:
        rows = [
            finished(0),
            Row(run_id=RUN, key="u", position=1, prompt="lost one", state="unknown",
                request_uuid="uuid-123", error="the answer was lost"),
            Row(run_id=RUN, key="f", position=2, prompt="doomed", state="failed",
                task_uid="T-failed", request_uuid="uuid-f", error="task failed (ErrorCode 3001)"),
            Row(run_id=RUN, key="s", position=3, prompt="waiting", state="submitted",
                task_uid="T-waiting"),
        ]  # fmt: skip
        html = render(rows)
        listed = re.findall(r'<li class="problem (\w+)">(.*?)</li>', html, re.S)
        assert [state for state, _ in listed] == ["failed", "unknown", "pending"]
        failed, unknown, pending = (body for _, body in listed)
        assert "doomed" in failed
        assert "task failed (ErrorCode 3001)" in failed
        assert "T-failed" in failed
        assert "uuid-f" not in failed
        assert "lost one" in unknown
        assert "the answer was lost" in unknown
        assert "uuid-123" in unknown  # what `picpik runs reconcile` looks for
        assert "waiting" in pending
        assert "T-waiting" in pending
        assert html.count("<figure") == 1  # only the finished prompt has a card

    def test_the_summary_line(self) -> None:
        rows = [finished(0, credits=3, updated_at=1_010.0),
                finished(1, credits=4, updated_at=1_125.0),
                Row(run_id=RUN, key="f", position=2, prompt="x", state="failed"),
                Row(run_id=RUN, key="u", position=3, prompt="y", state="unknown")]  # fmt: skip
        html = render_gallery(
            [(summary_of(rows, max_credits=40), rows)], title="Cats", generated_at=WHEN
        )
        chips = re.findall(r"<li class=\"[\w ]+\"[^>]*><b>([^<]+)</b> ?(\w*)</li>", html)
        stats = {label: value for value, label in chips}
        assert stats == {"prompts": "4", "finished": "2", "failed": "1", "unknown": "1",
                         "credits": "7 of 40", "": "2 min 05 s"}  # fmt: skip
        assert "2 images · 1 run · 7 credits · generated 2024-05-01 12:00 UTC" in html

    def test_a_missing_image_file_is_not_a_broken_image(self) -> None:
        html = render([finished(0, "gone.png"), finished(1)], available={"T1-0.png"}.__contains__)
        assert Page(html).srcs() == ["T1-0.png"]
        assert "image file missing" in html

    def test_runs_are_shown_in_the_order_given(self) -> None:
        one, two = [finished(0, run_id="one")], [finished(0, run_id="two")]
        html = render_gallery(
            [(summary_of(two, run_id="two"), two), (summary_of(one, run_id="one"), one)],
            title="t",
            generated_at=WHEN,
        )
        assert re.findall(r'data-run-id="(\w+)"', html) == ["two", "one"]

    def test_no_runs(self) -> None:
        assert "No runs in this folder" in render_gallery([], title="t", generated_at=WHEN)

    def test_without_jinja2_the_error_says_which_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _gallery._environment.cache_clear()
        monkeypatch.setitem(sys.modules, "jinja2", None)
        try:
            with pytest.raises(GalleryError, match=r"picpik-async\[cli\]"):
                render([finished(0)])
        finally:
            _gallery._environment.cache_clear()

    def test_the_template_is_package_data(self) -> None:
        template = importlib.resources.files("picpik_async") / "templates" / "gallery.html.j2"
        assert template.is_file()

    def test_docstring_examples(self) -> None:
        results = run_doctests(_gallery, optionflags=doctest.ELLIPSIS)
        assert results.failed == 0
        assert results.attempted >= 6


# --- writing the page from a ledger --------------------------------------------------


def png(width: int, height: int, prompt: str = "x") -> bytes:
    return render_png(ImageSpec(prompt, seed=1, index=0, width=width, height=height))


async def make_folder(folder: Path) -> None:
    """A ledger made with the real SQLite store, and real PNGs: three finished prompts
    (one hostile, one of two images), one failed, one unknown, one never sent."""
    prompts = [("a", "a red apple", 64, 48), ("b", HOSTILE, 48, 64), ("c", "two pears", 40, 40)]
    async with open_ledger(sqlite_url(folder)) as ledger:
        rows = [NewRow(k, p, {"width": w, "height": h}) for k, p, w, h in prompts]
        rows += [NewRow("f", "doomed <b>"), NewRow("u", "lost"), NewRow("n", "never sent")]
        await ledger.add_run(RUN, rows)
        for key, prompt, width, height in prompts:
            await ledger.claim(RUN, key, request_uuid=f"uuid-{key}", worker="w")
            await ledger.submitted(RUN, key, f"T{key}")
            files = [f"T{key}-{i}.png" for i in range(2 if key == "c" else 1)]
            for name in files:
                (folder / name).write_bytes(png(width, height, prompt))
            await ledger.settle(RUN, key, "finished", files=files, seed=7, credits=3)
        await ledger.claim(RUN, "f", request_uuid="uuid-f", worker="w")
        await ledger.submitted(RUN, "f", "Tf")
        await ledger.settle(RUN, "f", "failed", error=HOSTILE_ERROR)
        await ledger.claim(RUN, "u", request_uuid="uuid-u", worker="w")
        await ledger.settle(RUN, "u", "unknown", error="the answer was lost")


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file under `root` (a symlink by its target), for before/after comparisons."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path)] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[str(path)] = path.read_bytes()
    return found


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.mark.anyio
class TestWrite:
    async def test_the_page_is_built_from_the_ledger(self, out: Path) -> None:
        await make_folder(out)
        path = await write_gallery(out, generated_at=WHEN)
        assert path == out / GALLERY_NAME
        html = path.read_text(encoding="utf-8")
        page = Page(html)
        assert page.srcs() == ["Ta-0.png", "Tb-0.png", "Tc-0.png", "Tc-1.png"]
        assert all((out / src).is_file() for src in page.srcs())
        assert "<title>out</title>" in html  # the folder's name by default
        assert "&lt;script&gt;alert(1)&lt;/script&gt; a cat" in html
        assert "<script" not in html.lower()
        assert re.findall(r'<li class="problem (\w+)">', html) == ["failed", "unknown", "pending"]
        assert "uuid-u" in html
        assert "doomed &lt;b&gt;" in html
        assert "<b>9</b> credits" in html
        assert "Tf" in html  # the failed task's TaskUID

    async def test_a_shared_ledger_and_some_of_its_runs(self, out: Path, tmp_path: Path) -> None:
        elsewhere = tmp_path / "ledger"
        await make_folder(elsewhere)
        async with open_ledger(sqlite_url(elsewhere)) as ledger:
            await ledger.add_run("other", [NewRow("x", "not ours")])
        html = (
            await write_gallery(out, ledger_url=sqlite_url(elsewhere), run_ids={RUN}, title="T")
        ).read_text(encoding="utf-8")
        assert re.findall(r'data-run-id="([\w-]+)"', html) == [RUN]
        assert "image file missing" in html  # the images are in the other folder
        assert Page(html).srcs() == []
        assert not (out / LEDGER_NAME).exists()

    async def test_newest_run_first(self, out: Path) -> None:
        async with open_ledger(sqlite_url(out)) as ledger:
            await ledger.add_run("older", [NewRow("a", "a")])
            await anyio.sleep(0.01)
            await ledger.add_run("newer", [NewRow("a", "a")])
        html = (await write_gallery(out)).read_text(encoding="utf-8")
        assert re.findall(r'data-run-id="(\w+)"', html) == ["newer", "older"]

    async def test_no_ledger_is_an_error_and_none_is_created(self, out: Path) -> None:
        with pytest.raises(GalleryError, match="no ledger"):
            await write_gallery(out)
        assert await anyio.Path(out).exists()
        assert [p async for p in anyio.Path(out).iterdir()] == []
        with pytest.raises(GalleryError, match="no folder"):
            await write_gallery(out / "missing")
        elsewhere = out.parent / "elsewhere"
        with pytest.raises(GalleryError, match="no ledger"):
            await write_gallery(out, ledger_url=sqlite_url(elsewhere))
        assert not await anyio.Path(elsewhere).exists()

    async def test_the_write_is_atomic(self, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        await make_folder(out)
        (out / GALLERY_NAME).write_text("the old page", encoding="utf-8")
        moves: list[tuple[Path, Path]] = []
        real_replace = os.replace

        def failing_replace(source: Any, target: Any) -> None:
            moves.append((Path(source), Path(target)))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", failing_replace)
        with pytest.raises(GalleryError, match="No space left"):
            await write_gallery(out)
        ((source, target),) = moves
        assert source.parent == out
        assert target == out / GALLERY_NAME
        assert (out / GALLERY_NAME).read_text(encoding="utf-8") == "the old page"
        assert not source.exists()  # the temporary file is cleaned up
        monkeypatch.setattr(os, "replace", real_replace)
        await write_gallery(out)
        assert "the old page" not in (out / GALLERY_NAME).read_text(encoding="utf-8")
        assert [p async for p in anyio.Path(out).glob(".*")] == []  # no temporary file left
        assert (out / GALLERY_NAME).stat().st_mode & 0o777 == 0o644

    async def test_nothing_is_written_outside_the_folder(self, out: Path, tmp_path: Path) -> None:
        await make_folder(out)
        victim = tmp_path / "victim.html"
        victim.write_text("keep me", encoding="utf-8")
        (out / GALLERY_NAME).symlink_to(victim)  # a planted link is replaced, not followed
        async with open_ledger(sqlite_url(out)) as ledger:
            await ledger.add_run("evil", [NewRow("e", "e")])
            await ledger.claim("evil", "e", request_uuid="u", worker="w")
            await ledger.submitted("evil", "e", "Te")
            await ledger.settle("evil", "e", "finished", files=["../victim.html", "/etc/passwd"])
        before = {k: v for k, v in tree(tmp_path).items() if not k.startswith(str(out))}
        await write_gallery(out)
        after = {k: v for k, v in tree(tmp_path).items() if not k.startswith(str(out))}
        assert after == before
        assert victim.read_text(encoding="utf-8") == "keep me"
        assert not (out / GALLERY_NAME).is_symlink()
        assert "victim" not in (out / GALLERY_NAME).read_text(encoding="utf-8")

    async def test_a_real_batch(self, out: Path) -> None:
        """A batch run against the emulator: what it finished is on the page, with the files
        it downloaded; its failed and unknown prompts are listed."""
        await real_batch(out)
        async with open_ledger(sqlite_url(out)) as ledger:
            rows = await ledger.rows("demo")
        html = (await write_gallery(out)).read_text(encoding="utf-8")
        files = [name for row in rows for name in row.files]
        assert len(files) == 4
        assert Page(html).srcs() == files
        assert [r.state for r in rows].count("finished") == 4
        assert re.findall(r'<li class="problem (\w+)">', html) == ["failed", "unknown"]
        assert html.count("<figure") == 4


async def real_batch(folder: Path) -> None:
    """Six prompts, one at a time: the third task fails, the fifth submit's answer is lost."""
    faults = Faults(
        task_failure=Trigger(schedule={3}, actions={SUBMIT}),
        drop=Trigger(schedule={5}, actions={SUBMIT}),
    )
    emulator = Emulator(latency=0.02, seed=5, faults=faults)
    sizes = [(64, 64), (96, 64), (64, 96), (80, 80), (128, 64), (64, 128)]
    prompts = ["a red apple", HOSTILE, "doomed", "a blue pear", "lost", "a green fig"]
    items = [
        BatchItem(f"k{i}", prompt, {"width": w, "height": h})
        for i, (prompt, (w, h)) in enumerate(zip(prompts, sizes, strict=True))
    ]
    async with make_client(emulator) as client, open_ledger(sqlite_url(folder)) as ledger:
        await run_batch(client, items, folder, ledger, run_id="demo", concurrency=1)


# --- in a real browser --------------------------------------------------------------


def find_chromium() -> str | None:
    """A Chromium executable: $PICPIK_CHROMIUM if set, else on PATH, or where Debian puts it."""
    chosen = os.environ.get("PICPIK_CHROMIUM")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def no_browser(reason: str) -> NoReturn:
    """Skip, or fail where a browser is required (`.ci/run` sets PICPIK_REQUIRE_BROWSER=1)."""
    message = f"{reason}; install one with `apt-get install chromium` (Debian/Ubuntu)"
    if os.environ.get("PICPIK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PICPIK_REQUIRE_BROWSER=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium, driven by Playwright (no `playwright install`: the system's)."""
    chromium = find_chromium()
    if chromium is None:
        no_browser("no Chromium executable found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        no_browser("the playwright package is missing (it is in the dev extra)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield launched
        finally:
            launched.close()


#: [src, complete, naturalWidth] of every image of the page.
IMAGE_STATES = "[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"


async def build_page(folder: Path) -> Path:
    await real_batch(folder)
    return await write_gallery(folder)


def outside_playwright(function: Callable[[Path], Awaitable[T]], folder: Path) -> T:
    """Run `function` on an event loop of its own thread: Playwright's sync API keeps one
    running in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, function, folder).result()


@pytest.mark.slow
def test_the_page_in_headless_chromium(out: Path, browser: Any) -> None:
    """Every thumbnail loads, the hostile prompt shows as text and runs nothing, nothing is
    fetched from outside the folder, and the grid adapts to the window's width."""
    page_path = outside_playwright(build_page, out)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    requests: list[str] = []
    problems: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(page_path.as_uri(), wait_until="load")

    images = page.locator("img")
    assert images.count() == 4
    for image in images.all():  # `loading="lazy"`: bring each into view
        image.scroll_into_view_if_needed()
    deadline = time.monotonic() + 15
    while True:
        states: list[list[Any]] = page.evaluate(IMAGE_STATES)
        broken = [s for s in states if not (s[1] and s[2] > 0)]
        if not broken or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)
    assert broken == [], states

    hostile = page.locator("figure", has_text="<script>")
    assert hostile.count() == 1
    assert HOSTILE in hostile.inner_text()
    assert page.locator("script").count() == 0
    listed = page.locator("li.problem").all_inner_texts()
    assert len(listed) == 2
    assert "doomed" in listed[0]
    assert "lost" in listed[1]

    folder_url = out.resolve().as_uri() + "/"
    assert len(requests) == 5  # the page and its four images
    assert [url for url in requests if not url.startswith(folder_url)] == []
    assert dialogs == []
    assert problems == []

    columns = (
        "getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length"
    )
    assert page.evaluate(columns) == 5
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate(columns) == 2

    # The dialog check is live: a page that does run a script is caught.
    control = browser.new_page()
    control.on("dialog", on_dialog)
    control.set_content("<script>alert('control')</script>")
    assert dialogs == ["control"]
