"""The ``picpik`` command line: thin click commands over the library.

Needs the ``cli`` extra (click and rich): ``pip install 'picpik-async[cli]'``.
Without it, ``picpik`` says so and exits with status 1.

Example:
    $ picpik emulator --port 8000 --latency 2.0 --busy-rate 0.1
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import anyio
import attrs

try:
    import click
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Task as ProgressTask
    from rich.table import Table
    from rich.text import Text
except ModuleNotFoundError:  # the cli extra is not installed
    # SystemExit with a message prints it to stderr and exits with status 1.
    raise SystemExit("picpik needs the cli extra: pip install 'picpik-async[cli]'") from None

from picpik_async import __version__
from picpik_async._actions import (
    DESCRIBE_LANGUAGES,
    DescribeImages,
    GenerateOptions,
    RemoveBackground,
    ResizeImage,
    sdxl_request,
)
from picpik_async._batch import BatchItem, BatchProgress, new_rows, read_batch_file, run_batch
from picpik_async._client import AsyncClient
from picpik_async._errors import (
    AuthenticationError,
    PicpikError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskTimeoutError,
    ValidationError,
)
from picpik_async._files import check_name_template, child_path, text_file_name
from picpik_async._images import to_data_uri
from picpik_async._ledger import STATES, Row, check_run_id, default_run_id, parse_ledger_url
from picpik_async._ledger_stores import LEDGER_NAME, Ledger, open_ledger, sqlite_url
from picpik_async._models import Request, SubmitResponse
from picpik_async._polling import missing_output
from picpik_async._protocol import new_request_uuid
from picpik_async._results import GenerationResult
from picpik_async._retry import RetryEvent

if TYPE_CHECKING:
    from picpik_async.testing import Emulator

__all__ = ["main"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_RATE = click.FloatRange(0.0, 1.0)
# The fault-rate options, by their name without "_rate".
_FAULT_RATES = ("busy", "rate_limit", "server_error", "slow", "drop", "malformed", "failure")


def _console(**options: Any) -> Console:
    """A console that prints text as it is: prompts, errors and names from the service are
    untrusted, and rich markup in them (``[/b]``) would be read, or crash the print."""
    return Console(highlight=False, markup=False, **options)


@click.group()
@click.version_option(__version__, "--version", prog_name="picpik", message="%(prog)s %(version)s")
def main() -> None:
    """picpik: the PICPIK image-generation API from the command line."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--public-key", help="Account public key [default: emulator-public].")
@click.option("--private-key", help="Account private key [default: emulator-secret].")
@click.option(
    "--latency",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Seconds from a task's creation to its result.",
)
@click.option(
    "--jitter",
    default=0.0,
    show_default=True,
    type=_RATE,
    help="Spread the latency uniformly by this fraction either side.",
)
@click.option(
    "--credits",
    default=None,
    type=click.IntRange(min=0),
    help="Total credits of the account [default: 100000].",
)
@click.option(
    "--image-ttl",
    default=None,
    type=click.FloatRange(min=0.0),
    help="Seconds images stay downloadable [default: 86400].",
)
@click.option(
    "--status-words",
    metavar="Q,R,F,E",
    default=None,
    help="Status words for queuing, running, finished, error "
    "[default: Queuing,Running,Finished,Error].",
)
@click.option("--seed", type=int, default=None, help="Seed the emulator's randomness.")
@click.option("--busy-rate", default=0.0, type=_RATE, help="Chance of a 'busy' RetCode.")
@click.option("--rate-limit-rate", default=0.0, type=_RATE, help="Chance of HTTP 429.")
@click.option(
    "--retry-after",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Retry-After seconds of a 429 answer.",
)
@click.option("--server-error-rate", default=0.0, type=_RATE, help="Chance of HTTP 503.")
@click.option("--slow-rate", default=0.0, type=_RATE, help="Chance of a slow answer.")
@click.option(
    "--slow-seconds",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Delay of a slow answer.",
)
@click.option(
    "--drop-rate",
    default=0.0,
    type=_RATE,
    help="Chance of dropping the connection after processing a request.",
)
@click.option("--malformed-rate", default=0.0, type=_RATE, help="Chance of a malformed answer.")
@click.option(
    "--malformed-kind",
    "malformed_kinds",
    multiple=True,
    type=click.Choice(
        [
            "html",
            "truncated_json",
            "wrong_types",
            "missing_fields",
            "no_result",
            "unasked_task",
            "duplicate_task",
        ]
    ),
    help="Kinds of malformed answer to choose from (repeatable) [default: all].",
)
@click.option("--failure-rate", default=0.0, type=_RATE, help="Chance that a task fails.")
@click.option(
    "--max-list-length",
    default=None,
    type=click.IntRange(min=1),
    help="Refuse longer TaskUIDLists (RetCode 230).",
)
@click.option(
    "--dedupe-request-uuid",
    is_flag=True,
    help="Answer a repeated submit request_uuid with the first task.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def emulator(**options: Any) -> None:
    """Run a local PICPIK emulator over HTTP until Ctrl-C.

    It checks signatures and parameters like the service, runs tasks through
    their statuses, serves placeholder PNGs and can inject faults. Point a
    client at the printed URL with the printed keys.
    """
    # Imported here: the emulator needs its own extra, the other commands do not.
    from picpik_async.testing import EmulatorServer

    console = _console()
    emulator = _build_emulator(options)
    server = EmulatorServer(
        emulator,
        host=options["host"],
        port=options["port"],
        log_config=_log_config(),
        access_log=options["access_log"],
    )
    # Ctrl-C (SIGINT) and SIGTERM both stop cleanly, even when the shell that
    # started us in the background told the process to ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
    except OSError as exc:
        where = f"{options['host']}:{options['port']}"
        raise click.ClickException(f"cannot listen on {where}: {exc}") from None
    try:
        _print_banner(console, server.url, emulator, options)
        server.wait()
    except KeyboardInterrupt:
        console.print("Stopping the emulator.")
    finally:
        server.stop()


def _build_emulator(options: dict[str, Any]) -> Emulator:
    """The Emulator the options describe."""
    from picpik_async.testing import (
        DEFAULT_PRIVATE_KEY,
        DEFAULT_PUBLIC_KEY,
        Emulator,
        Faults,
        StatusWords,
        jittered,
    )

    kinds = {"malformed_kinds": options["malformed_kinds"]} if options["malformed_kinds"] else {}
    faults = Faults(
        busy=options["busy_rate"],
        rate_limit=options["rate_limit_rate"],
        retry_after=options["retry_after"],
        server_error=options["server_error_rate"],
        slow=options["slow_rate"],
        slow_seconds=options["slow_seconds"],
        drop=options["drop_rate"],
        malformed=options["malformed_rate"],
        task_failure=options["failure_rate"],
        max_list_length=options["max_list_length"],
        **kinds,
    )
    latency = options["latency"]
    extra: dict[str, Any] = {}
    if options["credits"] is not None:
        extra["credits"] = options["credits"]
    if options["image_ttl"] is not None:
        extra["image_ttl"] = options["image_ttl"]
    if options["status_words"]:
        extra["status_words"] = StatusWords(*_four_words(options["status_words"]))
    return Emulator(
        public_key=options["public_key"] or DEFAULT_PUBLIC_KEY,
        private_key=options["private_key"] or DEFAULT_PRIVATE_KEY,
        latency=jittered(latency, spread=options["jitter"]) if options["jitter"] else latency,
        faults=faults,
        seed=options["seed"],
        dedupe_request_uuid=options["dedupe_request_uuid"],
        **extra,
    )


def _four_words(text: str) -> list[str]:
    words = [word.strip() for word in text.split(",")]
    if len(words) != 4 or not all(words):
        raise click.BadParameter("give four comma-separated words", param_hint="--status-words")
    return words


def _log_config() -> dict[str, Any]:
    """uvicorn's logging set-up, with every log line on stderr (stdout is for the banner)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def _print_banner(console: Console, url: str, emulator: Emulator, options: dict[str, Any]) -> None:
    """Say where the emulator listens and which keys sign for it."""
    # Printing the private key is fine here: the user chose it on the command
    # line, or it is the documented default test key.
    console.print(f"PICPIK emulator listening on {url}")
    console.print(f"  PublicKey:  {emulator.public_key}")
    console.print(f"  PrivateKey: {emulator.private_key}")
    console.print(f"  Latency:    {options['latency']:g} s")
    console.print("Point picpik (or your code) at it from another shell:")
    for name, value in (("PICPIK_BASE_URL", url), ("PICPIK_PUBLIC_KEY", emulator.public_key),
                        ("PICPIK_PRIVATE_KEY", emulator.private_key)):  # fmt: skip
        console.print(f"export {name}={shlex.quote(value)}", soft_wrap=True)
    faults = [
        f"{name} {options[name + '_rate']:g}" for name in _FAULT_RATES if options[name + "_rate"]
    ]
    if faults or options["max_list_length"]:
        limit = options["max_list_length"]
        faults += [f"max list length {limit}"] if limit else []
        console.print(f"  Faults:     {', '.join(faults)}")
    if options["host"] not in _LOOPBACK:
        console.print("  Warning: not on loopback; anyone who can reach this port can use it.")
    console.print("Press Ctrl-C to stop.")
    sys.stdout.flush()


# --- talking to the API -------------------------------------------------------------


def _api_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that talks to the API shares."""
    decorators = [
        click.option("--public-key", envvar="PICPIK_PUBLIC_KEY", help="[env: PICPIK_PUBLIC_KEY]"),
        click.option(
            "--private-key",
            envvar="PICPIK_PRIVATE_KEY",
            show_envvar=False,
            help="[env: PICPIK_PRIVATE_KEY]",
        ),
        click.option(
            "--base-url",
            envvar="PICPIK_BASE_URL",
            help="API address [env: PICPIK_BASE_URL; default: https://api.picpik.ai].",
        ),
        click.option(
            "--emulator",
            "use_emulator",
            is_flag=True,
            help="Use an embedded local emulator: no keys, no network.",
        ),
        click.option("--debug", is_flag=True, help="Show tracebacks and debug logs."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _action_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The --out and --timeout options of every command that makes images."""
    decorators = [
        click.option(
            "--out",
            default="picpik-out",
            show_default=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder for the results.",
        ),
        click.option("--timeout", type=float, default=None, help="Seconds to wait per task."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


#: The command-line flag of each `GenerateOptions` field (filled in by `_option`).
_FLAGS: dict[str, str] = {"translate_prompts": "--no-translate"}


def _option(name: str, flag: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """A click option for the `GenerateOptions` field `name`, with the field's default."""
    _FLAGS[name] = flag
    default = attrs.fields_dict(GenerateOptions)[name].default
    shown = not (default is None or isinstance(default, bool))
    return click.option(flag, name, default=default, show_default=shown, **kwargs)


#: The `generate()` options (`GenerateOptions` fields) the commands offer, each with its
#: click option. `sub_models` has none; `translate_prompts` is the `--no-translate`
#: flag, inverted. tests/test_options.py checks this table against `GenerateOptions`.
_GENERATE_CLI: Final = {
    "negative_prompt": _option("negative_prompt", "--negative", help="What should not appear."),
    "model": _option("model", "--model", help="ModelCode."),
    "width": _option("width", "--width", type=int, help="64..2560."),
    "height": _option("height", "--height", type=int, help="64..2560."),
    "seed": _option("seed", "--seed", type=int, help="-1 = random."),
    "batch_size": _option("batch_size", "--batch-size", type=int, help="1..16."),
    "tiling": _option("tiling", "--tiling", is_flag=True, help="Make a tileable image."),
    # A plain off-switch: click 8.3 reads a flag with default=True as always on.
    "translate_prompts": click.option(
        "--no-translate",
        "no_translate",
        is_flag=True,
        default=False,
        help="Do not translate non-English prompts.",
    ),
    "image": _option(
        "image",
        "--image",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Start from this image (image-to-image).",
    ),
    "refer_strength": _option(
        "refer_strength", "--strength", type=float, help="How closely to follow --image, 0..1."
    ),
}
#: `GenerateOptions` fields with no option on the command line.
_NOT_ON_THE_CLI: Final = frozenset({"sub_models"})


def _generate_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The generate() parameters, as options."""
    for decorator in reversed(_GENERATE_CLI.values()):
        function = decorator(function)
    return _action_options(function)


#: Options whose flag turns a `GenerateOptions` field off: field -> the flag's name.
_INVERTED: Final = {"translate_prompts": "no_translate"}


def _generate_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The `GenerateOptions` fields among the parsed options (an unset --image left out)."""
    kwargs = {
        name: not options[_INVERTED[name]] if name in _INVERTED else options[name]
        for name in _GENERATE_CLI
    }
    if kwargs["image"] is None:
        del kwargs["image"]
    return kwargs


#: Request fields whose `GenerateOptions` field has another name.
_OPTION_OF_FIELD: Final = {
    "negative_prompts": "negative_prompt",
    "main_model": "model",
    "image_and_mask_list": "image",
    "positive_prompts": "prompt",
}
_FIELD_IN_MESSAGE: Final = re.compile(
    r"\b(?:GenerateImagesSDXL|Image2Image|GenerateOptions)\.(\w+)"
)


def _in_option_words(message: str, *, flags: bool) -> str:
    """A validation message with model fields named as options: ``--width`` (flags) or
    ``width`` (the keys of a JSONL or CSV batch line).

    Example:
        >>> _in_option_words("GenerateImagesSDXL.width must be ...", flags=True)
        '--width must be ...'
    """

    def name(match: re.Match[str]) -> str:
        option = _OPTION_OF_FIELD.get(match[1], match[1])
        if option == "prompt":
            return "PROMPT" if flags else "prompt"
        return _FLAGS.get(option, match[0]) if flags else option

    return _FIELD_IN_MESSAGE.sub(name, message)


def _on_retry(event: RetryEvent) -> None:
    """One line on stderr per retry, so a slow or unreachable service is seen at once."""
    click.echo(
        f"retrying in {event.wait:.1f} s (attempt {event.attempt + 1}): {event.error}",
        err=True,
    )


def _require_keys(options: dict[str, Any]) -> None:
    """Refuse, before anything is sent, to run without keys (naming the option and variable)."""
    for option, env in (("public_key", "PICPIK_PUBLIC_KEY"), ("private_key", "PICPIK_PRIVATE_KEY")):
        value = options.get(option)
        if not value or not str(value).strip():
            flag = "--" + option.replace("_", "-")
            _usage_error(f"no {option.replace('_', ' ')}: pass {flag} or set {env} "
                         "(or try --emulator: no keys needed)")  # fmt: skip


@asynccontextmanager
async def _open_client(options: dict[str, Any]) -> AsyncIterator[AsyncClient]:
    """The client the options ask for: the real API, or an embedded emulator."""
    if options["use_emulator"]:
        try:
            from picpik_async.testing import Emulator
        except ModuleNotFoundError:
            raise click.ClickException(
                "--emulator needs the emulator extra: pip install 'picpik-async[emulator]'"
            ) from None
        emulator = Emulator(latency=1.0)
        client = AsyncClient(
            public_key=emulator.public_key,
            private_key=emulator.private_key,
            base_url=emulator.url,
            transport=emulator.transport(),
        )
    else:
        _require_keys(options)
        client = AsyncClient(
            public_key=options["public_key"],
            private_key=options["private_key"],
            base_url=options["base_url"],
            on_retry=_on_retry,
        )
    async with client:
        yield client


def _run(options: dict[str, Any], job: Callable[[], Awaitable[int]]) -> None:
    """Run an async job, turning library errors into one line and an exit code."""
    logging.basicConfig(
        level=logging.DEBUG if options["debug"] else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not options["debug"]:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        code = anyio.run(job)
    except (PicpikError, BaseExceptionGroup) as caught:
        error = _one_error(caught)
        if options["debug"] or error is None:
            raise
        _fail(error)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code)


def _one_error(caught: BaseException) -> PicpikError | None:
    """The library error inside task groups nested around one failure, if that is all it is."""
    while isinstance(caught, BaseExceptionGroup) and len(caught.exceptions) == 1:
        caught = caught.exceptions[0]
    return caught if isinstance(caught, PicpikError) else None


_EXIT_CODES: dict[type[PicpikError], int] = {
    ValidationError: 2,
    AuthenticationError: 3,
    TaskTimeoutError: 4,
}


def _fail(error: PicpikError) -> NoReturn:
    """Print a one-line reason and exit: 2 bad input, 3 auth, 4 timeout, 1 anything else."""
    code = next((_EXIT_CODES[c] for c in type(error).__mro__ if c in _EXIT_CODES), 1)
    text = _in_option_words(str(error), flags=True) if isinstance(error, ValidationError) else error
    click.echo(f"error: {text}", err=True)
    if isinstance(error, TaskTimeoutError):
        click.echo(_later_hint(error.task_uid), err=True)
    sys.exit(code)


def _later_hint(task_uid: str) -> str:
    return (f"hint: the task goes on on the service; `picpik tasks wait {task_uid}` picks it "
            "up later")  # fmt: skip


class _Status:
    """One status line: live on a terminal, plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live = console.is_terminal
        self._status = console.status("starting") if self._live else None
        self._last = ""

    def __enter__(self) -> _Status:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def update(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self._status is not None:
            self._status.update(text)
        else:
            self._console.print(text)


#: A stand-in image input, for checking the other values before the real one is read.
_A_PNG: Final = "data:image/png;base64,iVBORw0KGgo="


@main.command()
@click.argument("prompt")
@_generate_options
@click.option(
    "--name",
    default=None,
    metavar="TEMPLATE",
    help="File name of the image(s), without extension: text and the fields {task_uid}, "
    "{index}, {seed}, {prompt} [default: {task_uid}-{index}].",
)
@_api_options
def generate(prompt: str, **options: Any) -> None:
    """Generate images for PROMPT and save them as PNG files.

    Files are named <TaskUID>-<index>.png inside --out, or after --name
    (``--name apple`` saves apple.png; ``--name "{prompt}-{seed}"``).
    """
    console = _console()
    try:
        if options["name"] is not None:
            check_name_template(options["name"], what="--name")
        chosen = GenerateOptions(**_generate_kwargs(options))
        # Every value checked before anything is read or sent (the image's own
        # checks come when it is read).
        sdxl_request(prompt, chosen, image_uri=_A_PNG if chosen.image is not None else None)
    except PicpikError as error:
        _fail(error)
    if not options["use_emulator"]:
        _require_keys(options)

    async def job() -> int:
        image_uri = await to_data_uri(chosen.image) if chosen.image is not None else None
        request = sdxl_request(prompt, chosen, image_uri=image_uri)
        out: Path = options["out"]
        uuid = new_request_uuid()
        # The folder's ledger keeps every generate call too (run "generate"): the
        # gallery page is built from it, and a lost answer is on record.
        key = f"{int(time.time())}-{uuid[:8]}"
        (row,) = new_rows([BatchItem(key, prompt)], _generate_kwargs(options))
        async with open_ledger(sqlite_url(out)) as ledger, _open_client(options) as client:
            await ledger.add_run(_GENERATE_RUN, [row])
            await ledger.claim(_GENERATE_RUN, key, request_uuid=uuid, worker="generate")
            with _Status(console) as status:
                status.update("submitting")
                async with _settled_on_error(ledger, key):
                    handle = await client.submit(request, request_uuid=uuid)
                await ledger.submitted(_GENERATE_RUN, key, handle.task_uid)
                status.update(f"submitted: task {handle.task_uid}")
                async with _settled_on_error(ledger, key):
                    result = await client.wait(
                        handle,
                        options["timeout"],
                        prompt=prompt,
                        on_update=lambda d: status.update(f"task {d.task_uid}: {d.status}"),
                    )
                    _require_images(result)
                    status.update(f"downloading {len(result.images)} image(s)")
                    paths = await client.download(result, out, name=options["name"])
            await ledger.settle(
                _GENERATE_RUN, key, "finished", files=[p.name for p in paths], seed=result.seed,
                credits=result.credits,
            )  # fmt: skip
        _print_summary(console, result, paths)
        await _write_gallery(console, out)
        return 0

    _run(options, job)


#: The ledger run that `picpik generate` calls are recorded in.
_GENERATE_RUN: Final = "generate"


@asynccontextmanager
async def _settled_on_error(ledger: Ledger, key: str) -> AsyncIterator[None]:
    """Record a `generate` call that went wrong in the ledger, then let the error go on.

    A lost submit answer is an unknown outcome; a timed-out wait leaves the row
    submitted (the task goes on); anything else failed.
    """
    try:
        yield
    except SubmitOutcomeUnknownError as error:
        await ledger.settle(_GENERATE_RUN, key, "unknown", error=str(error))
        raise
    except TaskTimeoutError:
        raise
    except PicpikError as error:
        await ledger.settle(_GENERATE_RUN, key, "failed", error=str(error))
        raise


async def _write_gallery(
    console: Console, out: Path, *, ledger_url: str | None = None, run_id: str | None = None
) -> None:
    """Rebuild the folder's index.html; a page that cannot be written is only a warning."""
    from picpik_async._gallery import write_gallery

    runs = {run_id} if run_id is not None else None
    try:
        path = await write_gallery(out, ledger_url=ledger_url, run_ids=runs)
    except (PicpikError, OSError) as error:
        console.print(f"warning: the gallery page was not written: {error}")
        return
    console.print(f"Gallery: {path}")


def _require_images(result: GenerationResult) -> None:
    """A task that finished without images is a failure here: there is nothing to save."""
    problem = missing_output(result.detail, "images")
    if problem is not None:
        raise TaskFailedError(result.task_uid, result.detail.error_code, problem, "Finished")


def _print_summary(console: Console, result: GenerationResult, paths: list[Path]) -> None:
    console.print(f"TaskUID: {result.task_uid}")
    console.print(f"Seed:    {result.seed if result.seed is not None else 'not reported'}")
    credits = result.credits if result.credits is not None else "not reported"
    console.print(f"Credits: {credits}")
    for path in paths:
        console.print(f"Saved:   {path}")


def _ledger_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """The --ledger option: where a run's rows are kept."""
    return click.option(
        "--ledger",
        envvar="PICPIK_LEDGER",
        default=None,
        metavar="URL",
        help="sqlite:///path/to/file or postgresql://... "
        f"[env: PICPIK_LEDGER; default: sqlite in --out, {LEDGER_NAME}].",
    )(function)


def _ledger_url(options: dict[str, Any]) -> tuple[str, str]:
    """The ledger URL the options ask for, and its kind (a bad URL exits 2)."""
    url = options["ledger"] or sqlite_url(options["out"])
    try:
        kind, _ = parse_ledger_url(url)
    except PicpikError as error:
        _fail(error)
    return url, kind


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Prompts in flight at once (in this process).")  # fmt: skip
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Resend prompts whose submit outcome is unknown (same request_uuid; may cost twice).",
)
@_ledger_option
@click.option("--run-id", default=None, help="Name of the run [default: --out's folder name].")
@click.option("--max-credits", type=click.IntRange(min=1), default=None,
              help="Spend at most this many credits on the run, across all workers.")  # fmt: skip
@click.option("--job-size", default=50, show_default=True, type=click.IntRange(1, 10000),
              help="Prompts per job, with a PostgreSQL ledger.")  # fmt: skip
@_generate_options
@_api_options
def batch(file: Path, concurrency: int, retry_unknown: bool, **options: Any) -> None:
    """Generate images for every prompt of FILE, resumably.

    FILE holds one prompt a line, or JSON objects with "prompt" and per-line
    options (width, seed, ...). A ledger (a SQLite file in --out by default)
    records every step: running the same command again skips finished
    prompts, waits for submitted ones and sends only prompts never submitted.
    Ctrl-C once stops new submits and exits after the ones in flight are
    recorded; twice exits at once.

    With --ledger postgresql://..., the run is shared: this command stores the
    prompts, queues them as jobs of --job-size prompts, works on them, and
    exits when every prompt is over; `picpik worker` processes on any machine
    help with the jobs.
    """
    console = _console()
    url, kind = _ledger_url(options)
    if kind == "postgresql" and retry_unknown:
        _usage_error("with a shared ledger, resend unknown outcomes with "
                     "`picpik runs reconcile RUN --resend`")  # fmt: skip
    if kind == "postgresql" and options["use_emulator"]:
        _usage_error("--emulator is embedded in one process, so workers cannot share it: "
                     "run `picpik emulator` and pass its --base-url")  # fmt: skip
    try:
        items = read_batch_file(file)
        run_id = check_run_id(options["run_id"] or default_run_id(str(options["out"].resolve())))
    except PicpikError as error:
        _fail(error)
    if not items:
        _usage_error(f"no prompts in {file} (blank lines and lines starting with # are skipped)")
    _check_batch_lines(file, items, _generate_kwargs(options))
    if not options["use_emulator"]:
        _require_keys(options)
    defaults = _generate_kwargs(options)

    async def job() -> int:
        async with _ledger_session(url, options, console) as (ledger, client, stop):
            common: dict[str, Any] = {
                "run_id": run_id, "concurrency": concurrency, "defaults": defaults, "stop": stop,
                "timeout": options["timeout"], "max_credits": options["max_credits"],
            }  # fmt: skip
            with _BatchView(console, len(items)) as view:
                if kind == "sqlite":
                    progress, rows = await run_batch(
                        client, items, options["out"], ledger, retry_unknown=retry_unknown,
                        on_change=view.changed, **common,
                    )  # fmt: skip
                else:
                    from picpik_async._distributed import run_distributed

                    progress, rows = await run_distributed(
                        client, items, options["out"], ledger, url, job_size=options["job_size"],
                        on_change=view.changed, **common,
                    )  # fmt: skip
            operations = ledger.operations
        counts = _print_batch_table(console, rows, progress, run_id)
        console.print(f"ledger: {operations} operations")
        shared = {"ledger_url": url, "run_id": run_id} if kind == "postgresql" else {}
        await _write_gallery(console, options["out"], **shared)
        if stop.is_set():
            console.print("Stopped early: run the same command again to resume.")
            return 130
        return 0 if counts["finished"] == len(rows) else 1

    _run(options, job)


#: Bad lines shown before `picpik batch` gives up (the rest are counted).
_SHOWN_ERRORS: Final = 20


def _check_batch_lines(file: Path, items: list[BatchItem], defaults: dict[str, Any]) -> None:
    """Check every line's options before anything is sent; exit 2 naming each bad line."""
    try:
        sdxl_request("a check", GenerateOptions(**defaults))
    except PicpikError as error:
        _fail(error)  # a bad --option: named as the option
    errors: list[str] = []
    for item in items:
        try:
            options = GenerateOptions.from_mapping({**defaults, **item.options}, what="batch")
            sdxl_request(item.prompt, options)
        except (PicpikError, TypeError) as error:
            errors.append(
                f"{file.name} line {item.line}: {_in_option_words(str(error), flags=False)}"
            )
    if not errors:
        return
    for line in errors[:_SHOWN_ERRORS]:
        click.echo(f"error: {line}", err=True)
    if len(errors) > _SHOWN_ERRORS:
        click.echo(f"... and {len(errors) - _SHOWN_ERRORS} more bad lines", err=True)
    click.echo("Nothing was sent.", err=True)
    sys.exit(2)


def _usage_error(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@asynccontextmanager
async def _ledger_session(
    url: str, options: dict[str, Any], console: Console
) -> AsyncIterator[tuple[Ledger, AsyncClient, anyio.Event]]:
    """The ledger and the client of `batch` and `worker`, and the event Ctrl-C sets."""
    stop = anyio.Event()
    async with (
        open_ledger(url) as ledger,
        _open_client(options) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(_watch_interrupts, stop, console)
        yield ledger, client, stop
        group.cancel_scope.cancel()


async def _watch_interrupts(stop: anyio.Event, console: Console) -> None:
    """First Ctrl-C: stop starting submits. Second: exit at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if stop.is_set():
                console.print("Exiting now.")
                os._exit(130)
            stop.set()
            console.print("Stopping: no new submits; recording the ones in flight. "
                          "Ctrl-C again to exit at once.")  # fmt: skip


class _RateColumn(ProgressColumn):
    """Prompts finished per second."""

    def render(self, task: ProgressTask) -> Text:
        speed = task.speed
        return Text(f"{speed:.2f}/s" if speed else "-/s")


class _BatchView:
    """A rich progress bar on a terminal; one plain line per finished prompt otherwise."""

    def __init__(self, console: Console, total: int) -> None:
        self._console = console
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}  pending {task.fields[pending]}"),
                _RateColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._bar.add_task("done", total=total, failed=0, pending=total)

    def __enter__(self) -> _BatchView:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def changed(self, progress: BatchProgress, row: Row) -> None:
        finished = progress.done + progress.failed + progress.unknown + progress.unsent
        if self._bar is not None:
            self._bar.update(
                self._task, completed=finished, failed=progress.failed, pending=progress.pending
            )
            return
        total = f"/{progress.total}" if progress.total else ""
        error = f" ({row.error})" if row.error and row.state in ("failed", "unknown") else ""
        self._console.print(f"[{finished}{total}] {row.state}: {row.prompt[:60]}{error}")


def _state_counts(rows: list[Row]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for row in rows:
        counts[row.state] += 1
    return counts


def _print_batch_table(
    console: Console, rows: list[Row], progress: BatchProgress, run_id: str
) -> dict[str, int]:
    """The run's table and summary line; the counts per state."""
    table = Table(title=f"picpik batch {run_id}")
    for column in ("prompt", "status", "task", "files"):
        table.add_column(column)
    for row in rows:
        files = ", ".join(row.files) or row.error or ""
        table.add_row(row.prompt[:40], row.state, row.task_uid or "", files)
    console.print(table)
    counts = _state_counts(rows)
    # From the ledger, not this process: in a shared run, another worker may have met the
    # spent budget.
    budget_left_some = progress.unsent or (counts["new"] and not progress.timed_out)
    unsent = f", unsent (credit budget spent) {counts['new']}" if budget_left_some else ""
    if progress.timed_out:
        unsent += (f", timed out {progress.timed_out} (run the same command again to wait "
                   "for them)")  # fmt: skip
    console.print(
        f"submitted {progress.submitted}, done {counts['finished']} "
        f"(skipped {progress.skipped}), failed {counts['failed']}, "
        f"unknown outcome {counts['unknown']}, pending "
        f"{counts['claimed'] + counts['submitted'] + (0 if budget_left_some else counts['new'])}"
        f"{unsent}"
    )
    return counts


def _out_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--out",
        default="picpik-out",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder for the results (and the default SQLite ledger).",
    )(function)


@main.command()
@_ledger_option
@_out_option
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Prompts in flight at once in this process, over all its jobs.")  # fmt: skip
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 100),
              help="Jobs worked on at once.")  # fmt: skip
@click.option("--until-done", is_flag=True,
              help="Exit once no job of any run is waiting or running.")  # fmt: skip
@click.option("--timeout", type=float, default=None, help="Seconds to wait per task.")
@_api_options
def worker(**options: Any) -> None:
    """Work on the jobs of distributed batch runs (a PostgreSQL --ledger).

    Any number of workers, on any machines, share the runs `picpik batch
    --ledger postgresql://...` queued. Each keeps one client for all its jobs,
    so its polling stays batched. A worker that is killed leaves at most its
    in-flight submits as unknown outcomes; its jobs go to another worker.
    """
    console = _console()
    url, kind = _ledger_url(options)
    if kind != "postgresql":
        _usage_error("picpik worker needs a shared ledger: --ledger postgresql://...")
    if options["use_emulator"]:
        _usage_error("--emulator is embedded in one process, so workers cannot share it: "
                     "run `picpik emulator` and pass its --base-url")  # fmt: skip
    _require_keys(options)

    async def job() -> int:
        from picpik_async._distributed import serve_worker

        async with _ledger_session(url, options, console) as (ledger, client, stop):
            view = _BatchView(_console(force_terminal=False), 0)
            progress = await serve_worker(
                client, ledger, url, options["out"], concurrency=options["concurrency"],
                jobs=options["jobs"], until_done=options["until_done"], stop=stop,
                timeout=options["timeout"], on_change=view.changed,
            )  # fmt: skip
            operations = ledger.operations
        console.print(
            f"worker: submitted {progress.submitted}, done {progress.done}, "
            f"failed {progress.failed}, unknown outcome {progress.unknown}; "
            f"ledger: {operations} operations"
        )
        return 130 if stop.is_set() else 0

    _run(options, job)


@main.group(invoke_without_command=True)
@_ledger_option
@_out_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def runs(context: click.Context, /, **options: Any) -> None:
    """List the runs of a ledger with their counts and credits used."""
    context.obj = options
    if context.invoked_subcommand is not None:
        return
    url = _existing_ledger(options)

    async def job() -> int:
        async with open_ledger(url) as ledger:
            summaries = await ledger.summaries()
        if options["as_json"]:
            click.echo(json.dumps([s.to_json() for s in summaries], indent=2))
            return 0
        table = Table(title="picpik runs")
        for column in ("run", "total", "finished", "failed", "unknown", "pending", "credits"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for s in summaries:
            budget = f" / {s.max_credits}" if s.max_credits is not None else ""
            table.add_row(s.run_id, str(s.total), str(s.finished), str(s.failed),
                          str(s.unknown), str(s.pending), f"{s.credits}{budget}")  # fmt: skip
        _console().print(table)
        return 0

    _run({"debug": False}, job)


def _existing_ledger(options: dict[str, Any]) -> str:
    """The ledger to read: --ledger, or the SQLite file in --out, which must exist."""
    url, kind = _ledger_url(options)
    if kind == "sqlite" and not Path(parse_ledger_url(url)[1]).exists():
        _usage_error(f"no ledger at {parse_ledger_url(url)[1]}: pass --ledger URL, or the "
                     "--out folder of a batch run")  # fmt: skip
    return url


def _run_options(context: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """A subcommand's --ledger/--out, falling back to those given to `picpik runs`."""
    parent = context.obj or {}
    merged = dict(options)
    if merged.get("ledger") is None:
        merged["ledger"] = parent.get("ledger")
    if merged.get("out") is None:
        merged["out"] = parent.get("out") or Path("picpik-out")
    return merged


def _sub_ledger_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--out", default=None, type=click.Path(file_okay=False, path_type=Path),
        help="Folder of the run [default: picpik-out].",
    )(function)  # fmt: skip
    return click.option("--ledger", envvar="PICPIK_LEDGER", default=None, metavar="URL",
                        help="The ledger [default: sqlite in --out].")(function)  # fmt: skip


@runs.command("show")
@click.argument("run_id")
@_sub_ledger_options
@click.pass_context
def runs_show(context: click.Context, /, run_id: str, **options: Any) -> None:
    """List the failed and unknown prompts of RUN_ID, with their errors."""
    options = _run_options(context, options)
    url = _existing_ledger(options)
    console = _console()

    async def job() -> int:
        async with open_ledger(url) as ledger:
            summaries = await ledger.summaries(run_id)
            rows = await ledger.rows(run_id)
        if not summaries:
            click.echo(f"error: no run {run_id!r} in the ledger", err=True)
            return 2
        (summary,) = summaries
        console.print(
            f"run {run_id}: {summary.total} prompts, {summary.finished} finished, "
            f"{summary.failed} failed, {summary.unknown} unknown, {summary.pending} pending, "
            f"{summary.credits} credits"
        )
        for row in rows:
            if row.state in ("failed", "unknown"):
                uuid = f" (request_uuid {row.request_uuid})" if row.state == "unknown" else ""
                console.print(f"{row.state}: {row.prompt}{uuid}\n    {row.error or ''}")
        return 0

    _run({"debug": False}, job)


@runs.command("reconcile")
@click.argument("run_id")
@_sub_ledger_options
@click.option(
    "--resend",
    is_flag=True,
    help="Resend unknown prompts with their request_uuid (may cost twice).",
)
@click.option("--yes", is_flag=True, help="Do not ask before resending.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait per task.")
@_api_options
@click.pass_context
def runs_reconcile(context: click.Context, /, run_id: str, **options: Any) -> None:
    """Look for the tasks of RUN_ID's unknown prompts, and list what is left for you to decide.

    PICPIK cannot be asked for a task by request_uuid, so what can be found is:
    an unknown prompt that has a TaskUID (it is checked and waited for), and
    running tasks of the account that no prompt of the ledger owns (listed:
    they may be the unknown prompts' tasks). With --resend, the unknown
    prompts are sent again with the same request_uuid; a service that does not
    deduplicate by request_uuid charges twice for any that did create a task.
    """
    options = _run_options(context, options)
    url = _existing_ledger(options)
    console = _console()
    if options["resend"] and not options["yes"]:
        click.confirm(
            "Resending a prompt whose first submit created a task costs twice. Resend?",
            abort=True, err=True,
        )  # fmt: skip

    async def job() -> int:
        from picpik_async._batch import reconcile

        async with open_ledger(url) as ledger, _open_client(options) as client:
            report = await reconcile(
                client, ledger, run_id, options["out"], resend=options["resend"],
                timeout=options["timeout"],
            )  # fmt: skip
        for line in report.lines():
            console.print(line)
        return 0 if not report.still_unknown else 1

    _run(options, job)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ledger", envvar="PICPIK_LEDGER", default=None, metavar="URL",
              help="The ledger [default: the SQLite file in FOLDER].")  # fmt: skip
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="Show only this run (repeatable) [default: every run].")  # fmt: skip
@click.option("--title", default=None, help="The page's title [default: FOLDER's name].")
def gallery(folder: Path, ledger: str | None, run_ids: tuple[str, ...], title: str | None) -> None:
    """Rebuild FOLDER/index.html, the gallery page of its runs, from the ledger.

    A static page: a grid of the images with each prompt, seed, size, credits
    and TaskUID, the failed and unknown prompts with their errors, and each
    run's counts, credits and time. No scripts, no network; open it in any
    browser.
    """
    from picpik_async._gallery import write_gallery

    if ledger is not None:
        _ledger_url({"ledger": ledger, "out": folder})

    async def job() -> int:
        path = await write_gallery(
            folder, title=title, ledger_url=ledger, run_ids=set(run_ids) or None
        )
        click.echo(f"Gallery: {path}")
        return 0

    _run({"debug": False}, job)


@main.group()
def tasks() -> None:
    """Work with existing tasks."""


@tasks.command("wait")
@click.argument("task_uids", nargs=-1, required=True)
@click.option(
    "--out",
    default="picpik-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--timeout", type=float, default=None, help="Seconds to wait per task.")
@_api_options
def tasks_wait(task_uids: tuple[str, ...], **options: Any) -> None:
    """Wait for tasks, download their images and print where they went."""
    console = _console()
    if options["use_emulator"]:
        _usage_error("--emulator starts a fresh emulator, which has no tasks yet, so it can "
                     "never find these: run `picpik emulator` once, and pass its --base-url "
                     "to both the command that made the tasks and this one")  # fmt: skip

    async def job() -> int:
        failed = 0
        async with _open_client(options) as client:

            async def one(uid: str) -> None:
                nonlocal failed
                try:
                    result = await client.wait(uid, options["timeout"])
                    paths = await client.download(result, options["out"])
                except PicpikError as error:
                    failed += 1
                    console.print(f"{uid}: {error}")
                    if isinstance(error, TaskTimeoutError):
                        console.print(_later_hint(uid))
                    return
                for path in paths:
                    console.print(f"{uid}: saved {path}")

            async with anyio.create_task_group() as group:
                for uid in task_uids:
                    group.start_soon(one, uid)
        return 1 if failed else 0

    _run(options, job)


@main.command()
@_api_options
def models(**options: Any) -> None:
    """List the models the account can use."""
    console = _console()

    async def job() -> int:
        async with _open_client(options) as client:
            answer = await client.list_models()
        table = Table(title="PICPIK models")
        for column in ("kind", "name", "ModelCode", "official"):
            table.add_column(column)
        groups = {
            "main": answer.main_models,
            "lora": answer.lora_models,
            "embedding": answer.embedding_models,
            "hypernetwork": answer.hypernetwork_models,
        }
        for kind, group in groups.items():
            for name, model in group.items():
                official = (
                    "" if model.is_official is None else ("yes" if model.is_official else "no")
                )
                table.add_row(kind, model.name or name, model.model_code, official)
        console.print(table)
        return 0

    _run(options, job)


@main.command()
@_api_options
def credits(**options: Any) -> None:
    """Show the account's credit balance."""
    console = _console()

    async def job() -> int:
        async with _open_client(options) as client:
            balance = await client.get_credit_balance()
        console.print(f"Total:     {balance.total_credits}")
        console.print(f"Used:      {balance.used_credits}")
        console.print(f"Remaining: {balance.remaining}")
        if balance.expire_timestamp is not None:
            expiry = datetime.fromtimestamp(balance.expire_timestamp, tz=UTC)
            console.print(f"Expires:   {expiry:%Y-%m-%d %H:%M} UTC")
        return 0

    _run(options, job)


# --- image actions (issue 8; docs/protocol.md, "Actions") ------------------------------

_IMAGE_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


async def _submit_and_wait(
    client: AsyncClient, request: Request[SubmitResponse], options: dict[str, Any], status: _Status
) -> GenerationResult:
    """Submit a task and wait for it, showing its progress on the status line."""
    status.update("submitting")
    handle = await client.submit(request)
    status.update(f"submitted: task {handle.task_uid}")
    return await client.wait(
        handle,
        options["timeout"],
        on_update=lambda d: status.update(f"task {d.task_uid}: {d.status}"),
    )


async def _save_images_of(
    console: Console, request: Request[SubmitResponse], options: dict[str, Any]
) -> int:
    """Run a task-creating request, save its images into --out and print a summary."""
    async with _open_client(options) as client:
        with _Status(console) as status:
            result = await _submit_and_wait(client, request, options, status)
            _require_images(result)
            status.update(f"downloading {len(result.images)} image(s)")
            paths = await client.download(result, options["out"])
    _print_summary(console, result, paths)
    return 0


@main.command()
@click.argument("image", type=_IMAGE_PATH)
@click.option("--width", required=True, type=int, help="Target width, 64..4096.")
@click.option("--height", required=True, type=int, help="Target height, 64..4096.")
@_action_options
@_api_options
def upscale(image: Path, width: int, height: int, **options: Any) -> None:
    """Resize IMAGE to --width x --height with AI detail (ResizeImage) and save it.

    Files are named <TaskUID>-<index>.png inside --out.
    """
    console = _console()

    async def job() -> int:
        request = ResizeImage(image=await to_data_uri(image), width=width, height=height)
        return await _save_images_of(console, request, options)

    _run(options, job)


@main.command("remove-bg")
@click.argument("image", type=_IMAGE_PATH)
@click.option("--only-mask", is_flag=True, help="Save the subject's mask instead of the cut-out.")
@_action_options
@_api_options
def remove_bg(image: Path, only_mask: bool, **options: Any) -> None:
    """Remove the background of IMAGE (RemoveBackground) and save the result.

    Files are named <TaskUID>-<index>.png inside --out.
    """
    console = _console()

    async def job() -> int:
        uri = await to_data_uri(image)
        request = RemoveBackground(raw_image=uri, only_mask=True if only_mask else None)
        return await _save_images_of(console, request, options)

    _run(options, job)


@main.command()
@click.argument("images", nargs=-1, required=True, type=_IMAGE_PATH)
@click.option(
    "--language",
    type=click.Choice(DESCRIBE_LANGUAGES),
    default=None,
    help="Language of the text [default: the service's, en].",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also save the text to <TaskUID>.txt in this folder.",
)
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the task.")
@_api_options
def describe(images: tuple[Path, ...], language: str | None, **options: Any) -> None:
    """Describe IMAGES in words (DescribeImages) and print the text, one line each."""
    console = _console()

    async def job() -> int:
        uris = [await to_data_uri(image) for image in images]
        request = DescribeImages(image_list=uris, translate_description=language)
        async with _open_client(options) as client:
            with _Status(console) as status:
                result = await _submit_and_wait(client, request, options, status)
        paths = []
        if options["out"] is not None:
            path = anyio.Path(child_path(options["out"], text_file_name(result.task_uid)))
            await path.parent.mkdir(parents=True, exist_ok=True)
            await path.write_text("".join(f"{text}\n" for text in result.texts), "utf-8")
            paths.append(Path(path))
        _print_summary(console, result, paths)
        for text in result.texts:
            click.echo(text)
        return 0

    _run(options, job)


if __name__ == "__main__":
    main()
