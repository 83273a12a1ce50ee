"""The picpik command line, driven with click's CliRunner (and one real subprocess)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import QUICK_CLI

import picpik_async as picpik
from picpik_async import sign
from picpik_async._signing import dumps
from picpik_async.cli import main
from picpik_async.testing import EmulatorServer

CONTROL = "\x1b"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_cli: None) -> CliRunner:
    """A CliRunner in an empty folder with no PICPIK variables set, polling fast.

    `fast_cli`: what these tests check does not depend on poll timing or on the
    embedded emulator's latency.
    """
    for name in ("PICPIK_PUBLIC_KEY", "PICPIK_PRIVATE_KEY", "PICPIK_BASE_URL", "PICPIK_LEDGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """An emulator served on a loopback port."""
    with EmulatorServer(latency=0.05, seed=4) as running:
        yield running


def keys(server: EmulatorServer) -> list[str]:
    """The options that point the CLI at the served emulator."""
    emulator = server.emulator
    return [
        "--base-url",
        server.url,
        "--public-key",
        emulator.public_key,
        "--private-key",
        emulator.private_key,
    ]


def invoke(runner: CliRunner, *args: str) -> Result:
    """Run picpik with arguments."""
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_help_lists_every_command(runner: CliRunner) -> None:
    """picpik --help names generate, batch, tasks, models, credits and emulator."""
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    for command in ("generate", "batch", "tasks", "models", "credits", "emulator"):
        assert command in result.output


def test_generate_with_the_embedded_emulator_writes_pngs(runner: CliRunner) -> None:
    """The README's main job: PNG files in ./picpik-out and a summary."""
    result = invoke(runner, "generate", "a red apple", "--emulator", "--width", "128",
                    "--height", "96", "--batch-size", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted(Path("picpik-out").glob("*.png"))
    assert len(files) == 2
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)
    for word in ("TaskUID:", "Seed:", "Credits:", "Saved:"):
        assert word in result.output
    assert files[0].name.endswith("-0.png")
    assert CONTROL not in result.output


def test_generate_bad_input_is_one_line(runner: CliRunner) -> None:
    """An out-of-range option exits 2 with the field and range, no traceback."""
    result = invoke(runner, "generate", "x", "--emulator", "--width", "10")
    assert result.exit_code == 2
    assert "width must be an integer in 64..2560" in result.output
    assert "Traceback" not in result.output


def test_missing_keys_are_reported(runner: CliRunner) -> None:
    """Without keys (and without --emulator) the CLI says which variable to set."""
    result = invoke(runner, "credits")
    assert result.exit_code == 2
    assert "PICPIK_PUBLIC_KEY" in result.output


def test_bad_key_is_an_auth_failure(runner: CliRunner, server: EmulatorServer) -> None:
    """A wrong private key exits 3 and never prints the key."""
    args = keys(server)
    args[-1] = "wrong-secret-key"
    result = invoke(runner, "credits", *args)
    assert result.exit_code == 3
    assert "wrong-secret-key" not in result.output
    assert "Traceback" not in result.output


def test_timeout_exits_4(runner: CliRunner) -> None:
    """--timeout shorter than the task exits 4."""
    with EmulatorServer(latency=30) as slow:
        result = invoke(runner, "generate", "slow", "--timeout", "0.3", *keys(slow))
    assert result.exit_code == 4
    assert "not finished after" in result.output


def test_debug_shows_the_traceback(runner: CliRunner) -> None:
    """--debug lets the exception through."""
    result = runner.invoke(main, ["generate", "x", "--emulator", "--width", "10", "--debug"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_models_and_credits(runner: CliRunner, server: EmulatorServer) -> None:
    """models prints a table; credits prints total, used, remaining and expiry."""
    models = invoke(runner, "models", *keys(server))
    assert models.exit_code == 0
    assert "PICPIK General" in models.output
    credits = invoke(runner, "credits", *keys(server))
    assert credits.exit_code == 0
    for word in ("Total:", "Used:", "Remaining:", "Expires:"):
        assert word in credits.output


def test_tasks_wait_downloads(runner: CliRunner, server: EmulatorServer) -> None:
    """tasks wait UID waits, downloads and prints the file names."""
    emulator = server.emulator
    body = {
        "Action": "GenerateImagesSDXL",
        "PublicKey": emulator.public_key,
        "MainModel": {"ModelCode": "PICPIK General"},
        "PositivePrompts": ["made elsewhere"],
        "Width": 64,
        "Height": 64,
        "ImageAndMaskList": [],
    }
    body["Signature"] = sign(body, emulator.private_key)
    answer = httpx.post(server.url, content=dumps(body)).json()
    uid = answer["TaskUID"]
    result = invoke(runner, "tasks", "wait", uid, "--out", "done", *keys(server))
    assert result.exit_code == 0, result.output
    assert f"{uid}-0.png" in result.output
    assert (Path("done") / f"{uid}-0.png").exists()


def test_tasks_wait_reports_unknown_tasks(runner: CliRunner, server: EmulatorServer) -> None:
    """A TaskUID the service never reports fails with a one-line reason."""
    result = invoke(runner, "tasks", "wait", "no-such-task", "--timeout", "1", *keys(server))
    assert result.exit_code == 1
    assert "no-such-task" in result.output


def test_batch_text_file_writes_ledger_and_images(runner: CliRunner) -> None:
    """A text batch saves every image and records every prompt in the SQLite ledger."""
    Path("prompts.txt").write_text("a cat\n\n# skipped\na dog\na cat\n", encoding="utf-8")
    result = invoke(runner, "batch", "prompts.txt", "--emulator", "--width", "64",
                    "--height", "64", "--out", "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list(Path("out").glob("*.png"))) == 3
    with closing(sqlite3.connect("out/picpik-ledger.sqlite3")) as db:
        rows = db.execute("SELECT key, state, task_uid, files FROM picpik_rows").fetchall()
    assert [state for _, state, _, _ in rows] == ["finished"] * 3
    assert len({key for key, _, _, _ in rows}) == 3  # the repeated prompt has its own key
    assert all(uid and json.loads(files) for _, _, uid, files in rows)
    assert "[3/3]" in result.output
    assert CONTROL not in result.output


def test_batch_jsonl_with_per_line_options(runner: CliRunner) -> None:
    """JSONL lines carry their own options, over the command's defaults."""
    lines = [{"prompt": "wide", "width": 128, "height": 64}, {"prompt": "default"}]
    Path("p.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    result = invoke(runner, "batch", "p.jsonl", "--emulator", "--width", "64", "--height",
                    "64", "--out", "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    sizes = sorted(f.stat().st_size > 0 for f in Path("out").glob("*.png"))
    assert len(sizes) == 2


def test_batch_bad_jsonl_is_refused(runner: CliRunner) -> None:
    """An unknown per-line option is a one-line error naming the line."""
    Path("p.jsonl").write_text('{"prompt": "x", "colour": "red"}\n', encoding="utf-8")
    result = invoke(runner, "batch", "p.jsonl", "--emulator")
    assert result.exit_code == 2
    assert "line 1" in result.output
    assert "colour" in result.output


def test_batch_failed_prompts_exit_1(runner: CliRunner, server: EmulatorServer) -> None:
    """Failed tasks are journaled as failed and make the exit status 1."""
    from picpik_async.testing import Faults

    server.emulator.faults = Faults(task_failure=1.0)
    Path("p.txt").write_text("doomed\n", encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--out", "out", *keys(server))
    assert result.exit_code == 1
    assert "failed 1" in result.output


@pytest.mark.slow
def test_batch_interrupted_then_resumed_creates_each_task_once(tmp_path: Path) -> None:
    """Ctrl-C once the first prompt is done (others in flight), then a re-run: 40 images,
    exactly 40 tasks created.

    The re-run may use another concurrency (the journal does not depend on it): all
    at once, it finishes in one round of polls instead of five. Both runs poll on
    test timings (`QUICK_CLI`): what is checked here is counts, not the schedule.
    """
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"prompt number {i}" for i in range(40)), encoding="utf-8")
    out = tmp_path / "out"
    with EmulatorServer(latency=0.3, seed=9) as served:

        def command(concurrency: int) -> list[str]:
            return [sys.executable, QUICK_CLI, "batch", str(prompts),
                    "--out", str(out), "--concurrency", str(concurrency), "--width", "64",
                    "--height", "64", *keys(served)]  # fmt: skip

        env = {k: v for k, v in os.environ.items() if not k.startswith("PICPIK_")}
        first = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            command(8), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert first.stdout is not None
        seen = [first.stdout.readline()]
        while seen[-1] and "finished:" not in seen[-1]:
            seen.append(first.stdout.readline())
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=60)
        output = "".join(seen) + output
        assert first.returncode == 130, output
        assert "Stopping" in output
        created_first = served.emulator.counters.tasks_created
        assert 0 < created_first < 40
        second = subprocess.run(  # noqa: S603
            command(40), env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"submitted {40 - created_first}," in second.stdout  # only the never-sent ones
        counters = served.emulator.counters
    assert len(list(out.glob("*.png"))) == 40
    assert counters.tasks_created == 40
    assert counters.duplicate_tasks() == {}
    assert CONTROL not in second.stdout


def test_batch_budget_stops_the_run(runner: CliRunner, server: EmulatorServer) -> None:
    """100 prompts of one credit, --max-credits 40: at most 40 spent, at least 30
    finished, the rest reported unsent, exit code 1."""
    Path("p.txt").write_text("\n".join(f"prompt {i}" for i in range(100)), encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--out", "out", "--width", "64", "--height",
                    "64", "--max-credits", "40", *keys(server))  # fmt: skip
    assert result.exit_code == 1, result.output
    used = server.emulator.state.credits.used
    assert used <= 40
    listed = invoke(runner, "runs", "--out", "out", "--json")
    (run,) = json.loads(listed.output)
    assert run["finished"] >= 30
    assert run["credits"] == used
    assert run["pending"] == 100 - run["finished"]  # left unsent, never failed
    assert f"unsent (credit budget spent) {100 - run['finished']}" in result.output


def _lost_answers_batch(runner: CliRunner, server: EmulatorServer) -> str:
    """A batch of five whose first two submit answers are lost: two unknown outcomes."""
    from picpik_async.testing import Faults, Trigger

    server.emulator.faults = Faults(drop=Trigger(schedule={1, 2}, actions={"GenerateImagesSDXL"}))
    Path("p.txt").write_text("\n".join(f"prompt {i}" for i in range(5)), encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--out", "out", "--width", "64", "--height",
                    "64", "--concurrency", "1", *keys(server))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "unknown outcome 2" in result.output
    server.emulator.faults = Faults()
    (run,) = json.loads(invoke(runner, "runs", "--out", "out", "--json").output)
    return str(run["run_id"])


def test_runs_json_has_the_documented_keys(runner: CliRunner, server: EmulatorServer) -> None:
    run_id = _lost_answers_batch(runner, server)
    (run,) = json.loads(invoke(runner, "runs", "--out", "out", "--json").output)
    assert {"run_id", "total", "finished", "failed", "unknown", "pending", "credits"} <= set(run)
    assert (run["run_id"], run["total"], run["finished"], run["unknown"]) == (run_id, 5, 3, 2)
    table = invoke(runner, "runs", "--out", "out")
    assert run_id in table.output


def test_runs_show_lists_unknown_prompts_with_their_request_uuid(
    runner: CliRunner, server: EmulatorServer
) -> None:
    run_id = _lost_answers_batch(runner, server)
    shown = invoke(runner, "runs", "show", run_id, "--out", "out")
    assert shown.exit_code == 0, shown.output
    uuids = set(server.emulator.counters.tasks_per_request_uuid)
    lines = [line for line in shown.output.splitlines() if line.startswith("unknown:")]
    assert len(lines) == 2
    assert all(any(uuid in line for uuid in uuids) for line in lines)
    missing = invoke(runner, "runs", "show", "no-such-run", "--out", "out")
    assert missing.exit_code == 2


def test_reconcile_lists_unknowns_then_resends_with_the_same_request_uuid(
    runner: CliRunner, server: EmulatorServer
) -> None:
    """Without --resend: the unknown prompts and the account's unowned running tasks are
    listed, exit 1. With --resend on a service that deduplicates request_uuids: the same
    tasks come back, nothing is created twice, exit 0."""
    server.emulator.state.dedupe_request_uuid = True
    run_id = _lost_answers_batch(runner, server)
    listed = invoke(runner, "runs", "reconcile", run_id, "--out", "out", *keys(server))
    assert listed.exit_code == 1, listed.output
    assert listed.output.count("unknown: prompt") == 2
    assert "--resend" in listed.output
    refused = runner.invoke(main, ["runs", "reconcile", run_id, "--out", "out", "--resend",
                                   *keys(server)], input="n\n")  # fmt: skip
    assert refused.exit_code == 1
    assert "costs twice" in refused.output
    created = server.emulator.counters.tasks_created
    resent = invoke(runner, "runs", "reconcile", run_id, "--out", "out", "--resend", "--yes",
                    *keys(server))  # fmt: skip
    assert resent.exit_code == 0, resent.output
    assert resent.output.count("resent: prompt") == 2
    assert server.emulator.counters.tasks_created == created  # deduplicated: no new task
    (run,) = json.loads(invoke(runner, "runs", "--out", "out", "--json").output)
    assert (run["finished"], run["unknown"]) == (5, 0)
    assert len(list(Path("out").glob("*.png"))) == 5


# --- the first hour: each fix of issue 15 ------------------------------------------------


def test_version(runner: CliRunner) -> None:
    result = invoke(runner, "--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"picpik {picpik.__version__}"


def test_emulator_banner_has_lines_to_paste(tmp_path: Path) -> None:
    """`picpik emulator` prints `export ...` lines that point a shell at it."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "picpik_async.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        lines = [emulator.stdout.readline() for _ in range(8)]
    finally:
        emulator.terminate()
        emulator.communicate(timeout=30)
    exports = dict(
        line.removeprefix("export ").strip().split("=", 1)
        for line in lines
        if line.startswith("export ")
    )
    assert exports["PICPIK_BASE_URL"].startswith("http://127.0.0.1:")
    assert exports["PICPIK_PUBLIC_KEY"] == "emulator-public"
    assert exports["PICPIK_PRIVATE_KEY"] == "emulator-secret"


def test_unreachable_base_url_names_the_address_and_shows_retries(runner: CliRunner) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(runner, "credits", "--base-url", f"http://127.0.0.1:{port}",
                    "--public-key", "p", "--private-key", "k")  # fmt: skip
    assert result.exit_code == 1
    assert f"cannot reach http://127.0.0.1:{port}" in result.output
    assert result.output.count("retrying in") >= 1


def test_an_empty_prompts_file_is_an_error(runner: CliRunner) -> None:
    Path("p.txt").write_text("\n# only a comment\n\n", encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--emulator")
    assert result.exit_code == 2
    assert "no prompts in p.txt" in result.output


def test_batch_errors_name_the_file_and_line_whole(runner: CliRunner) -> None:
    """Bad values are refused before anything is sent, each named by file and line, whole."""
    lines = [{"prompt": "fine"}, {"prompt": "too narrow", "width": 7}, {"prompt": "x", "seed": "a"}]
    Path("p.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    result = invoke(runner, "batch", "p.jsonl", "--emulator", "--out", "out")
    assert result.exit_code == 2
    assert "p.jsonl line 2: width must be an integer in 64..2560, got 7" in result.output
    assert "p.jsonl line 3: seed" in result.output
    assert "Nothing was sent." in result.output
    assert not Path("out").exists()


def test_batch_shows_failed_errors_whole(runner: CliRunner, server: EmulatorServer) -> None:
    from picpik_async.testing import Faults

    server.emulator.faults = Faults(task_failure=1.0)
    Path("p.txt").write_text("doomed\n", encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--out", "out", *keys(server))
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.startswith("[1/1] failed: doomed (")]
    assert "ErrorCode" in line
    assert "Traceback" not in result.output


def test_tasks_wait_refuses_the_embedded_emulator_at_once(runner: CliRunner) -> None:
    started = time.monotonic()
    result = invoke(runner, "tasks", "wait", "cktlm6lrh4miq8ng9nf0", "--emulator")
    assert result.exit_code == 2
    assert "picpik emulator" in result.output
    assert time.monotonic() - started < 5  # refused, not waited for


def test_a_timeout_hints_at_tasks_wait(runner: CliRunner) -> None:
    with EmulatorServer(latency=30) as slow:
        result = invoke(runner, "generate", "slow", "--timeout", "0.5", *keys(slow))
    assert result.exit_code == 4
    (uid,) = re.findall(r"task (\w+) not finished", result.output)
    assert f"picpik tasks wait {uid}" in result.output


def test_a_missing_key_names_the_option_and_variable(runner: CliRunner) -> None:
    result = invoke(runner, "credits", "--private-key", "k")
    assert result.exit_code == 2
    assert "--public-key" in result.output
    assert "PICPIK_PUBLIC_KEY" in result.output


@pytest.mark.parametrize(
    ("template", "expected"),
    [("apple", ["apple.png"]), ("{prompt}-{seed}", ["a-red-apple-42.png"]),
     ("{index}-{seed}", ["0-42.png"])],
)  # fmt: skip
def test_generate_name_template(runner: CliRunner, template: str, expected: list[str]) -> None:
    result = invoke(runner, "generate", "a red apple", "--emulator", "--seed", "42", "--width",
                    "64", "--height", "64", "--out", "pics", "--name", template)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("pics").glob("*.png")) == expected


@pytest.mark.parametrize("template", ["../apple", "a/b", "{bad}", "{seed", ""])
def test_generate_bad_name_template_is_refused_before_sending(
    runner: CliRunner, template: str
) -> None:
    result = invoke(runner, "generate", "x", "--emulator", "--name", template, "--out", "pics")
    assert result.exit_code == 2
    assert "--name" in result.output
    assert not Path("pics").exists()


def test_validation_errors_name_the_option(runner: CliRunner) -> None:
    result = invoke(runner, "generate", "x", "--width", "7", "--emulator")
    assert result.exit_code == 2
    assert "error: --width must be an integer in 64..2560, got 7" in result.output
    assert "GenerateImagesSDXL" not in result.output
    from picpik_async.testing._images import render_png
    from picpik_async.testing._state import ImageSpec

    Path("in.png").write_bytes(render_png(ImageSpec("in", 1, 0, 64, 64)))
    strength = invoke(runner, "generate", "x", "--image", "in.png", "--strength", "3",
                      "--emulator")  # fmt: skip
    assert strength.exit_code == 2
    assert "error: --strength must be" in strength.output


def test_batch_reads_csv(runner: CliRunner) -> None:
    Path("p.csv").write_text(
        'prompt,width,height,seed,tiling\na cat,64,64,7,yes\n"a dog, sitting",128,64,,no\n,,,,\n',
        encoding="utf-8",
    )
    result = invoke(runner, "batch", "p.csv", "--emulator", "--out", "out")
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect("out/picpik-ledger.sqlite3")) as db:
        rows = db.execute("SELECT prompt, options, seed FROM picpik_rows ORDER BY position")
        found = [(prompt, json.loads(options), seed) for prompt, options, seed in rows]
    assert found[0][0] == "a cat"
    assert (found[0][1]["width"], found[0][1]["tiling"], found[0][2]) == (64, True, 7)
    assert found[1][0] == "a dog, sitting"
    assert (found[1][1]["width"], found[1][1]["tiling"]) == (128, False)
    assert len(found) == 2  # the empty row is skipped


@pytest.mark.parametrize(
    ("text", "message"),
    [("prompt,colour\nx,red\n", "p.csv line 1: unknown column(s) colour"),
     ("text\nx\n", 'p.csv line 1: the header row has no "prompt" column'),
     ("prompt,width\nx,wide\n", "p.csv line 2: width must be an integer, got 'wide'"),
     ("prompt,tiling\nx,maybe\n", "p.csv line 2: tiling must be true or false"),
     ("prompt,sub_models\nx,a\n", "p.csv line 2: sub_models cannot be given in CSV")],
)  # fmt: skip
def test_bad_csv_names_the_row(runner: CliRunner, text: str, message: str) -> None:
    Path("p.csv").write_text(text, encoding="utf-8")
    result = invoke(runner, "batch", "p.csv", "--emulator")
    assert result.exit_code == 2
    assert message in result.output


def test_parquet_without_pyarrow_says_how_to_get_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    Path("p.parquet").write_bytes(b"PAR1")
    result = invoke(runner, "batch", "p.parquet", "--emulator")
    assert result.exit_code == 2
    assert "pip install pyarrow" in result.output


def test_batch_and_generate_write_the_gallery(runner: CliRunner) -> None:
    """Both commands write out/index.html; `picpik gallery` rebuilds it from the ledger."""
    Path("p.txt").write_text("a cat\n<script>alert(1)</script> a dog\n", encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--emulator", "--width", "64", "--height", "64",
                    "--out", "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Gallery: out/index.html" in result.output
    made = invoke(runner, "generate", "a red apple", "--emulator", "--width", "64", "--height",
                  "64", "--out", "out", "--name", "apple")  # fmt: skip
    assert made.exit_code == 0, made.output
    page = Path("out/index.html").read_text(encoding="utf-8")
    assert 'src="apple.png"' in page
    assert "a red apple" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a dog" in page
    assert "<script>" not in page
    (run,) = [r for r in json.loads(invoke(runner, "runs", "--out", "out", "--json").output)
              if r["run_id"] == "generate"]  # fmt: skip
    assert (run["total"], run["finished"]) == (1, 1)  # generate calls are in the ledger too
    Path("out/index.html").unlink()
    rebuilt = invoke(runner, "gallery", "out", "--title", "My cats")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "My cats" in Path("out/index.html").read_text(encoding="utf-8")


def test_gallery_of_a_folder_without_a_ledger(runner: CliRunner) -> None:
    Path("empty").mkdir()
    result = invoke(runner, "gallery", "empty")
    assert result.exit_code == 1
    assert "no ledger" in result.output
    assert not Path("empty/picpik-ledger.sqlite3").exists()


def test_a_lost_generate_answer_is_on_record(runner: CliRunner, server: EmulatorServer) -> None:
    from picpik_async.testing import Faults, Trigger

    server.emulator.faults = Faults(drop=Trigger(schedule={1}, actions={"GenerateImagesSDXL"}))
    result = invoke(runner, "generate", "lost", "--out", "out", *keys(server))
    assert result.exit_code == 1
    shown = invoke(runner, "runs", "show", "generate", "--out", "out")
    assert "unknown: lost (request_uuid " in shown.output


def test_moving_the_prompts_file_sends_nothing_again(runner: CliRunner) -> None:
    """The run is the output folder's: the same prompts from another path are skipped."""
    Path("a").mkdir()
    Path("a/p.txt").write_text("a cat\na dog\n", encoding="utf-8")
    first = invoke(runner, "batch", "a/p.txt", "--emulator", "--width", "64", "--height",
                   "64", "--out", "out")  # fmt: skip
    assert first.exit_code == 0, first.output
    Path("a").rename("b")
    again = invoke(runner, "batch", "b/p.txt", "--emulator", "--width", "64", "--height",
                   "64", "--out", "out")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "submitted 0, done 2 (skipped 2)" in again.output
    assert len(list(Path("out").glob("*.png"))) == 2


def test_batch_reads_parquet(runner: CliRunner) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": ["a cat", "a dog"], "width": [64, 128], "height": [64, 64],
                      "seed": [7, None]})  # fmt: skip
    pq.write_table(table, "p.parquet")
    result = invoke(runner, "batch", "p.parquet", "--emulator", "--out", "out")
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect("out/picpik-ledger.sqlite3")) as db:
        rows = db.execute("SELECT prompt, options FROM picpik_rows ORDER BY position").fetchall()
    assert [(p, json.loads(o)["width"], json.loads(o)["seed"]) for p, o in rows] == [
        ("a cat", 64, 7), ("a dog", 128, -1),
    ]  # fmt: skip


def test_prompts_that_look_like_markup_print_as_they_are(runner: CliRunner) -> None:
    """A prompt is untrusted text: `[/b]` once crashed the progress line (rich markup)."""
    Path("p.txt").write_text("a [bold]dog[/bold]\nclosing [/b] only\n", encoding="utf-8")
    result = invoke(runner, "batch", "p.txt", "--emulator", "--width", "64", "--height", "64",
                    "--out", "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "a [bold]dog[/bold]" in result.output
    assert "closing [/b] only" in result.output
