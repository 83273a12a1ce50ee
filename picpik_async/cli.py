"""The ``picpik`` command line: thin click commands over the library.

Needs the ``cli`` extra (click and rich): ``pip install 'picpik-async[cli]'``.
Without it, ``picpik`` says so and exits with status 1.

Example:
    $ picpik emulator --port 8000 --latency 2.0 --busy-rate 0.1
"""

from __future__ import annotations

import copy
import signal
import sys
from typing import TYPE_CHECKING, Any

try:
    import click
    from rich.console import Console
except ModuleNotFoundError:  # the cli extra is not installed
    # SystemExit with a message prints it to stderr and exits with status 1.
    raise SystemExit("picpik needs the cli extra: pip install 'picpik-async[cli]'") from None

if TYPE_CHECKING:
    from picpik_async.testing import Emulator

__all__ = ["main"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_RATE = click.FloatRange(0.0, 1.0)
# The fault-rate options, by their name without "_rate".
_FAULT_RATES = ("busy", "rate_limit", "server_error", "slow", "drop", "malformed", "failure")


@click.group()
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

    console = Console(highlight=False)
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


if __name__ == "__main__":
    main()
