"""`picpik upscale`, `picpik remove-bg` and `picpik describe`, driven with click's CliRunner.

Every run uses ``--emulator``: an embedded emulator, no keys and no network.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from picpik_async.cli import main


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_cli: None) -> CliRunner:
    """A CliRunner in an empty folder with no PICPIK variables set (polling fast)."""
    for name in ("PICPIK_PUBLIC_KEY", "PICPIK_PRIVATE_KEY", "PICPIK_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 120x90 PNG on disk."""
    path = tmp_path / "photo.png"
    Image.new("RGB", (120, 90), "green").save(path, "PNG")
    return path


def invoke(runner: CliRunner, *args: str) -> Result:
    """Run picpik with arguments."""
    return runner.invoke(main, list(args), catch_exceptions=False)


def size_of(path: Path) -> tuple[int, int]:
    """The (width, height) of an image file."""
    with Image.open(io.BytesIO(path.read_bytes())) as picture:
        width, height = picture.size
    return width, height


def test_help_lists_the_new_commands(runner: CliRunner) -> None:
    """picpik --help names upscale, remove-bg and describe."""
    result = invoke(runner, "--help")
    for command in ("upscale", "remove-bg", "describe"):
        assert command in result.output


def test_upscale_writes_the_resized_image(runner: CliRunner, photo: Path) -> None:
    """upscale saves <TaskUID>-0.png of the requested size into --out."""
    result = invoke(runner, "upscale", str(photo), "--width", "240", "--height", "180",
                    "--emulator", "--out", "big")  # fmt: skip
    assert result.exit_code == 0, result.output
    [file] = Path("big").glob("*.png")
    assert size_of(file) == (240, 180)
    assert file.name.endswith("-0.png")
    for word in ("TaskUID:", "Credits:", "Saved:"):
        assert word in result.output


def test_upscale_refuses_a_size_out_of_range(runner: CliRunner, photo: Path) -> None:
    """A size outside 64..4096 is a validation error: exit status 2, nothing sent."""
    result = runner.invoke(
        main, ["upscale", str(photo), "--width", "5000", "--height", "64", "--emulator"]
    )
    assert result.exit_code == 2
    assert "64..4096" in result.output
    assert not Path("picpik-out").exists()


def test_upscale_needs_width_and_height(runner: CliRunner, photo: Path) -> None:
    """--width and --height are required options."""
    result = runner.invoke(main, ["upscale", str(photo), "--emulator"])
    assert result.exit_code == 2
    assert "--width" in result.output


def test_remove_bg_keeps_the_size(runner: CliRunner, photo: Path) -> None:
    """remove-bg saves an image of the input's size into the default folder."""
    result = invoke(runner, "remove-bg", str(photo), "--emulator")
    assert result.exit_code == 0, result.output
    [file] = Path("picpik-out").glob("*.png")
    assert size_of(file) == (120, 90)


def test_remove_bg_only_mask(runner: CliRunner, photo: Path) -> None:
    """--only-mask asks for the mask only; the result is still one image."""
    result = invoke(runner, "remove-bg", str(photo), "--only-mask", "--emulator", "--out", "m")
    assert result.exit_code == 0, result.output
    assert len(list(Path("m").glob("*.png"))) == 1


def test_remove_bg_refuses_a_non_image(runner: CliRunner, tmp_path: Path) -> None:
    """A file that is not an image is a validation error."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = runner.invoke(main, ["remove-bg", str(text), "--emulator"])
    assert result.exit_code == 2
    assert "not a PNG" in result.output


def test_describe_prints_the_text(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    """describe prints one line per text, in the asked language; no files by default."""
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(small, "PNG")
    result = invoke(runner, "describe", str(photo), str(small), "--language", "fr", "--emulator")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "[fr] placeholder description of image 1 (120x90)" in lines
    assert "[fr] placeholder description of image 2 (40x30)" in lines
    assert not Path("picpik-out").exists()


def test_describe_saves_the_text_with_out(runner: CliRunner, photo: Path) -> None:
    """--out saves the text as <TaskUID>.txt; the default language is the service's (en)."""
    result = invoke(runner, "describe", str(photo), "--emulator", "--out", "texts")
    assert result.exit_code == 0, result.output
    [file] = Path("texts").glob("*.txt")
    assert file.read_text("utf-8") == "[en] placeholder description of image 1 (120x90)\n"
    assert f"Saved:   {file}" in result.output.replace(str(Path.cwd()) + "/", "")


def test_describe_refuses_unknown_languages(runner: CliRunner, photo: Path) -> None:
    """--language takes only the codes of section 3.17."""
    result = runner.invoke(main, ["describe", str(photo), "--language", "xx", "--emulator"])
    assert result.exit_code == 2
    assert "xx" in result.output


def test_describe_needs_an_image(runner: CliRunner) -> None:
    """At least one IMAGE is required."""
    result = runner.invoke(main, ["describe", "--emulator"])
    assert result.exit_code == 2
