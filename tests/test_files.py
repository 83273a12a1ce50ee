"""File names: templates for result images, and the rule that keeps them in their folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_client
from hypothesis import given
from hypothesis import strategies as st

import picpik_async as picpik
from picpik_async._files import check_name_template, child_path, templated_file_name
from picpik_async.testing import Emulator

UID = "cktlm6lrh4miq8ng9nf0"


def _name(template: str, **kw: object) -> str:
    values: dict[str, object] = {"task_uid": UID, "index": 0, "seed": 42, "prompt": "a red apple",
                                 "suffix": ".png"}  # fmt: skip
    values.update(kw)
    return templated_file_name(template, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "name"),
    [("apple", "apple.png"), ("{task_uid}-{index}", f"{UID}-0.png"),
     ("{prompt}", "a-red-apple.png"), ("{seed}_{index}", "42_0.png")],
)  # fmt: skip
def test_templates(template: str, name: str) -> None:
    assert _name(template) == name


def test_several_images_never_share_a_name() -> None:
    names = {_name("apple", index=i, images=3) for i in range(3)}
    assert names == {"apple-0.png", "apple-1.png", "apple-2.png"}


def test_an_unreported_seed_and_an_odd_suffix() -> None:
    assert _name("{seed}", seed=None, suffix=".exe") == "unknown.png"


@given(st.text(max_size=200))
def test_any_prompt_makes_a_plain_name(prompt: str) -> None:
    """Whatever the prompt, the name is one plain component inside the folder."""
    name = _name("{prompt}-{index}", prompt=prompt)
    assert child_path("out", name).parent == Path("out")
    assert len(name) <= 80


@pytest.mark.parametrize(
    ("template", "message"),
    [("{nope}", "unknown field {nope}"), ("a/{seed}", "plain file name"),
     ("..", "plain file name"), ("{seed", "expected '}'"), ("", "plain file name")],
)  # fmt: skip
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(picpik.ValidationError, match=message):
        check_name_template(template)


@pytest.mark.anyio
async def test_download_with_a_name(tmp_path: Path) -> None:
    emulator = Emulator(latency=0.05, seed=1)
    async with make_client(emulator) as client:
        result = await client.generate("two apples", width=64, height=64, batch_size=2, seed=9)
        paths = await client.download(result, tmp_path, name="{prompt}-{seed}")
        with pytest.raises(picpik.ValidationError):
            await client.download(result, tmp_path, name="../escape")
    assert sorted(p.name for p in paths) == ["two-apples-9-0.png", "two-apples-9-1.png"]
    assert all(p.stat().st_size > 0 for p in paths)
