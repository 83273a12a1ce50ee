"""`python tests/_quick_cli.py ARGS...`: the picpik CLI in a subprocess, on test timings.

The subprocess twin of conftest's `fast_cli` fixture, for whole-process tests (a
SIGKILLed worker, a budget shared by processes) whose checks do not depend on the
library's default timings: its clients poll with `POLL` instead of the default
`PollSettings` (first poll 1.5 s after a submit), and its `ServeSettings` heartbeat
and look for stalled workers and for the end faster (the defaults leave a killed
worker's jobs queued for 10 s and look only once a second). Everything else
is the real CLI, run as `python -m picpik_async.cli` would run it.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import picpik_async as picpik
import picpik_async._distributed
import picpik_async.cli

#: A poll 0.1 s after a submit, then every 0.1 to 0.5 s.
POLL = picpik.PollSettings(
    poll_initial=0.1, poll_max=0.5, poll_grid=0.05, running_interval=0.2, running_grace=0.2
)


def main() -> None:
    """Run `picpik` with the arguments of this process, on the timings above."""

    def quick_client(**options: Any) -> picpik.AsyncClient:
        options.setdefault("poll", POLL)
        return picpik.AsyncClient(**options)

    # A heartbeat every 0.3 s; a worker silent for 3 s (ten missed heartbeats, where the
    # defaults allow five) has its jobs given back; the end is looked for every 0.2 s.
    quick_settings = functools.partial(
        picpik_async._distributed.ServeSettings, heartbeat=0.3, stalled_after=3.0, check_every=0.2
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(picpik_async.cli, "AsyncClient", quick_client)
        patch.setattr(picpik_async._distributed, "ServeSettings", quick_settings)
        picpik_async.cli.main(prog_name="picpik")


if __name__ == "__main__":
    main()
