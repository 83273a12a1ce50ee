"""The README tells the truth: its example runs as written against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from picpik_async.testing import EmulatorServer

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
