"""The README tells the truth: its example runs as written against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import picpik_async as picpik
from picpik_async.testing import Emulator, EmulatorServer

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    """The ```python blocks of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_example_runs_against_a_served_emulator(tmp_path: Path) -> None:
    """The ten-line example, keys and address from the environment, saves a PNG."""
    example = python_blocks()[0]
    assert "AsyncClient()" in example
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    with EmulatorServer(latency=0.5) as server:
        env = {
            **os.environ,
            "PICPIK_PUBLIC_KEY": server.emulator.public_key,
            "PICPIK_PRIVATE_KEY": server.emulator.private_key,
            "PICPIK_BASE_URL": server.url,
        }
        done = subprocess.run(  # noqa: S603 - the README's own example
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "apple-0.png").read_bytes().startswith(b"\x89PNG")
    assert "42" in done.stdout  # the seed, as the service reports it


def test_readme_starts_with_the_two_commands() -> None:
    """The first two shell blocks are the main job and the test command."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert "picpik generate" in blocks[0]
    assert "--emulator" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_the_readmes_test_command() -> None:
    """`.ci/run` runs the README's pytest command (plus -q), so the two cannot drift."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    command = blocks[1].split("&&")[-1].strip()
    assert command.startswith("python -m pytest")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert command.replace("python -m pytest", "python -m pytest -q") in ci


def test_cli_without_its_extra_names_the_extra() -> None:
    """Without click installed, picpik says which extra to install."""
    code = (
        "import sys; sys.modules['click'] = None\n"
        "import runpy; runpy.run_module('picpik_async.cli', run_name='__main__')\n"
    )
    done = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'picpik-async[cli]'" in done.stderr


@pytest.mark.slow
def test_emulator_test_example_passes(tmp_path: Path) -> None:
    """The README's pytest example for users' own suites passes as written."""
    (block,) = [b for b in python_blocks() if "def test_" in b]
    (tmp_path / "test_users_suite.py").write_text(block, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_users_suite.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def block_with(marker: str) -> str:
    """The one README python block that contains `marker`."""
    (block,) = [b for b in python_blocks() if marker in b]
    return block


def test_beyond_sdxl_example_runs(tmp_path: Path) -> None:
    """The action-method snippet runs as written against the in-process emulator."""
    body = block_with("client.upscale(")
    script = "\n".join(
        [
            "import anyio, base64",
            "import picpik_async as picpik",
            "from picpik_async.testing import Emulator",
            "",
            "async def main() -> None:",
            "    emulator = Emulator(latency=0.05)",
            "    photo_bytes = open('photo.png', 'rb').read()",
            "    uris = ['data:image/png;base64,' + base64.b64encode(photo_bytes).decode()] * 2",
            "    async with picpik.AsyncClient(",
            "        public_key=emulator.public_key, private_key=emulator.private_key,",
            "        base_url=emulator.url, transport=emulator.transport(),",
            "        poll=picpik.PollSettings(poll_initial=0.05, poll_grid=0.05,",
            "                                 running_interval=0.1),",
            "    ) as client:",
            *("        " + line for line in body.splitlines()),
            "        assert big.images and cut.images and fixed.images and swapped.images",
            "        assert len(captions) == 2 and len(handles) >= 1",
            "        print('ok')",
            "",
            "anyio.run(main)",
        ]
    )

    async def one_png() -> bytes:
        """A real PNG to use as the snippet's input images."""
        emulator = Emulator(latency=0.01)
        async with picpik.AsyncClient(
            public_key=emulator.public_key, private_key=emulator.private_key,
            base_url=emulator.url, transport=emulator.transport(),
            poll=picpik.PollSettings(poll_initial=0.02, poll_grid=0.01, running_interval=0.05),
        ) as client:  # fmt: skip
            result = await client.generate("input", width=96, height=64)
            return await result.images[0].read()

    png = anyio.run(one_png)
    for name in ("photo.png", "portrait.jpg", "group.jpg", "face.png", "a.png", "b.png"):
        (tmp_path / name).write_bytes(png)
    (tmp_path / "snippet.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_blocking_client_example_runs(tmp_path: Path) -> None:
    """The blocking Client snippet runs as written against a served emulator."""
    (tmp_path / "blocking.py").write_text(
        "import picpik_async as picpik\n" + block_with("picpik.Client()"), encoding="utf-8"
    )
    with EmulatorServer(latency=0.2) as server:
        env = {
            **os.environ,
            "PICPIK_PUBLIC_KEY": server.emulator.public_key,
            "PICPIK_PRIVATE_KEY": server.emulator.private_key,
            "PICPIK_BASE_URL": server.url,
        }
        done = subprocess.run(
            [sys.executable, "blocking.py"], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "out").glob("*.png"))


def test_fan_out_cancellation_example_runs(tmp_path: Path) -> None:
    """The generate_many cancellation snippet runs as written and saves its images."""
    body = block_with("anyio.move_on_after(60)")
    script = "\n".join(
        [
            "import anyio",
            "import picpik_async as picpik",
            "from picpik_async.testing import Emulator",
            "",
            "async def main() -> None:",
            "    emulator = Emulator(latency=0.05)",
            "    prompts = [f'a cat, take {i}' for i in range(6)]",
            "    async with picpik.AsyncClient(",
            "        public_key=emulator.public_key, private_key=emulator.private_key,",
            "        base_url=emulator.url, transport=emulator.transport(),",
            "        poll=picpik.PollSettings(poll_initial=0.05, poll_grid=0.05,",
            "                                 running_interval=0.1),",
            "    ) as client:",
            *("        " + line for line in body.splitlines()),
            "",
            "anyio.run(main)",
        ]
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "fan_out.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "fan_out.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 6
