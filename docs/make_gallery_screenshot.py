"""Make docs/gallery.png: the gallery page of a 24-prompt batch, shot in headless Chromium.

The batch runs for real (`picpik_async._batch.run_batch`) against the in-process
emulator, one prompt at a time so the faults land where wanted: prompt 9 ends
failed (the task fails), prompt 17 has an unknown outcome (its submit's answer
is lost), and prompt 5 is hostile HTML, shown as text. Then `write_gallery`
writes the folder's index.html and Chromium (Debian's, driven by Playwright)
takes the picture.

Run from the repository root, with the dev extra installed and a Chromium
(``apt-get install chromium``):

    python docs/make_gallery_screenshot.py [--out docs/gallery.png] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import anyio

import picpik_async as picpik
from picpik_async._batch import BatchItem, run_batch
from picpik_async._gallery import write_gallery
from picpik_async._ledger_stores import open_ledger, sqlite_url
from picpik_async.testing import Emulator, Faults, Trigger

ROOT = Path(__file__).resolve().parent.parent
SUBMIT = "GenerateImagesSDXL"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SIZES = [(768, 768), (1024, 640), (640, 1024), (896, 896), (1024, 576), (576, 1024)]
PROMPTS = [
    "a lighthouse on a basalt cliff at dusk, volumetric light",
    "isometric cutaway of a tiny bakery, warm morning light",
    "portrait of an elderly sailor, oil painting, thick brushstrokes",
    "a fox curled up in fresh snow, shallow depth of field",
    "<script>alert('gallery')</script> a cat made of glowing code",
    "brutalist library interior with hanging plants, overcast",
    "watercolor map of an imaginary archipelago",
    "macro photo of dew on a spider web at sunrise",
    "a red bicycle leaning on a yellow wall in Lisbon",
    "retro-futurist train station, 1960s travel poster",
    "bowl of ramen, top-down, studio lighting",
    "a paper boat on a rain puddle reflecting neon signs",
    "mountain lake at blue hour, long exposure",
    "linocut print of a heron among reeds",
    "cozy reading nook in a treehouse, rainy afternoon",
    "astronaut tending a greenhouse on Mars",
    "close-up of a vintage typewriter, film grain",
    "an owl made of autumn leaves",
    "desert canyon with a winding river, aerial view",
    "a jazz trio in a smoky basement club, 1950s",
    "koi pond seen from above, ukiyo-e style",
    "a snail wearing a tiny knitted scarf",
    "northern lights over a wooden cabin",
    "street market at night with paper lanterns",
]
FAILED_AT = 9  # the 9th submit's task fails
UNKNOWN_AT = 17  # the 17th submit's answer is lost


async def make_run(folder: Path) -> Path:
    """Run the demo batch into `folder` and write its gallery."""
    faults = Faults(
        task_failure=Trigger(schedule={FAILED_AT}, actions={SUBMIT}),
        drop=Trigger(schedule={UNKNOWN_AT}, actions={SUBMIT}),
    )
    emulator = Emulator(latency=0.05, seed=11, faults=faults)
    items = [
        BatchItem(f"p{i:02d}", prompt, {"width": w, "height": h, "seed": 1000 + 37 * i})
        for i, (prompt, (w, h)) in enumerate(
            zip(PROMPTS, SIZES * 4, strict=True),
            start=1,
        )
    ]
    poll = picpik.PollSettings(poll_initial=0.05, poll_max=0.1, poll_grid=0.05)
    async with (
        picpik.AsyncClient(
            public_key=emulator.public_key,
            private_key=emulator.private_key,
            base_url=emulator.url,
            transport=emulator.transport(),
            poll=poll,
        ) as client,
        open_ledger(sqlite_url(folder)) as ledger,
    ):
        await run_batch(client, items, folder, ledger, run_id="sample-prompts-24", concurrency=1)
    return await write_gallery(folder, title="Sample batch", generated_at=datetime.now(UTC))


def shoot(page: Path, out: Path, chromium: str) -> None:
    """Open the page in headless Chromium and save a 1280x900 screenshot of its top."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 900})
            view.emulate_media(color_scheme="light")
            view.goto(page.as_uri(), wait_until="load")
            # Lazy images below the fold: scroll through so every one loads, then back up.
            view.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            view.wait_for_function(
                "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            view.evaluate("window.scrollTo(0, 0)")
            view.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    parser.add_argument("--keep", type=Path, help="Build the run in this folder and keep it.")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no Chromium found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        page = anyio.run(make_run, folder)
        shoot(page, args.out, chromium)
    sys.stdout.write(f"saved {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
