"""`Emulator`: one emulated PICPIK account, its settings, counters and faults.

The emulator ties the pure core together (`_state`, `_service`, `_faults`,
`_counters`) and hands out the two ways to reach it: the ASGI `app` (served by
uvicorn, see `_server.py`) and an in-process httpx `transport()`. Its request
path is: `_arrive` (count, decide the early faults), then `_process` (decide a
task failure, handle the request, count, decide the late faults), and `_image`
for downloads; the emulator hands the three to `create_app`, which never imports
this module. They run under a lock, so one emulator may be used from several
threads at once (the in-process transport in a test and the server thread, say).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Final

from starlette.applications import Starlette

from picpik_async._models import ListModelsResponse

from ._app import Ticket, create_app
from ._codes import RetCode
from ._counters import Counters
from ._faults import FaultKind, Faults, decide_early, decide_failure, decide_late
from ._images import image_size
from ._service import (
    DEFAULT_MODELS,
    TASK_ACTIONS,
    HttpAnswer,
    Settings,
    action_of,
    handle,
    request_uuid_of,
)
from ._state import (
    DEFAULT_CREDITS,
    DEFAULT_CREDITS_PER_MEGAPIXEL,
    DEFAULT_IMAGE_TTL,
    DEFAULT_STATUS_WORDS,
    Clock,
    Credits,
    Failure,
    ImageLookup,
    ImageSpec,
    Latency,
    ServiceState,
    StatusWords,
)
from ._transport import EmulatorTransport

__all__ = ["DEFAULT_PRIVATE_KEY", "DEFAULT_PUBLIC_KEY", "DEFAULT_URL", "Emulator"]

#: The public key of the emulator's account when none is given. Test use only.
DEFAULT_PUBLIC_KEY: Final = "emulator-public"
#: The private key of the emulator's account when none is given. It is printed and
#: documented on purpose: it protects nothing but a local test double.
DEFAULT_PRIVATE_KEY: Final = "emulator-secret"
#: The base URL to pair with `Emulator.transport()`; nothing listens there. A
#: ``.localhost`` name is loopback (RFC 6761), so clients need not warn about plain http.
DEFAULT_URL: Final = "http://emulator.picpik.localhost"

_YEAR: Final = 365 * 24 * 60 * 60


class Emulator:
    """A local, faithful PICPIK: signing, validation, task lifecycles, images, credits, faults.

    Args:
        public_key: the account's public key.
        private_key: the account's private key; requests must be signed with it.
        latency: seconds from a task's creation to its outcome: a number, or a
            function of a `random.Random` (see `jittered`).
        queue_share: the part of the latency a task spends in the queuing status.
        status_words: the Status words reported (the current API's are unpublished).
        faults: the fault knobs; may be replaced at any time (``emulator.faults = ...``).
        credits: the account's total credits.
        credits_per_megapixel: the price of one image per megapixel (see `task_cost`).
        credits_expire_at: the balance's ExpireTimestamp (Unix seconds); a year
            from now by default.
        image_ttl: seconds an image stays downloadable after its task finished.
        seed: seeds the emulator's random numbers (TaskUIDs, seeds, latencies,
            fault draws); None for fresh randomness.
        clock: monotonic seconds; pass a `ManualClock` to drive time by hand.
        dedupe_request_uuid: answer a submit that repeats a request_uuid with the
            first task instead of creating another (PICPIK promises no such thing).
        models: the ListModels catalogue.
        strict_models: refuse ModelCodes missing from ``models``.
        url: the base URL to pair with `transport()`.

    Example:
        >>> import httpx
        >>> emulator = Emulator(latency=0.5)
        >>> client = httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url)
    """

    def __init__(
        self,
        *,
        public_key: str = DEFAULT_PUBLIC_KEY,
        private_key: str = DEFAULT_PRIVATE_KEY,
        latency: Latency = 2.0,
        queue_share: float = 0.3,
        status_words: StatusWords = DEFAULT_STATUS_WORDS,
        faults: Faults | None = None,
        credits: int = DEFAULT_CREDITS,
        credits_per_megapixel: int = DEFAULT_CREDITS_PER_MEGAPIXEL,
        credits_expire_at: int | None = None,
        image_ttl: float = DEFAULT_IMAGE_TTL,
        seed: int | None = None,
        clock: Clock = time.monotonic,
        dedupe_request_uuid: bool = False,
        models: ListModelsResponse = DEFAULT_MODELS,
        strict_models: bool = False,
        url: str = DEFAULT_URL,
    ) -> None:
        self.public_key = public_key
        self.private_key = private_key
        self.url = url
        self.status_words = status_words
        self.faults = faults if faults is not None else Faults()
        self.models = models
        self.strict_models = strict_models
        self.counters = Counters()
        expire_at = credits_expire_at if credits_expire_at is not None else _a_year_from_now()
        self.state = ServiceState(
            clock=clock,
            rng=random.Random(seed),  # noqa: S311 - reproducible test data, not secrets
            latency=latency,
            queue_share=queue_share,
            image_ttl=image_ttl,
            credits=Credits(total=credits, expire_timestamp=expire_at),
            credits_per_megapixel=credits_per_megapixel,
            dedupe_request_uuid=dedupe_request_uuid,
        )
        # A separate stream for fault draws: turning a knob on or off does not
        # change the TaskUIDs and seeds a seeded emulator hands out.
        fault_seed = None if seed is None else f"faults-{seed}"
        self._fault_rng = random.Random(fault_seed)  # noqa: S311 - reproducible, not secret
        self._lock = threading.Lock()
        self._app: Starlette | None = None

    def __repr__(self) -> str:
        return f"<Emulator url={self.url!r} public_key={self.public_key!r}>"

    @property
    def base_url(self) -> str:
        """Same as `url`."""
        return self.url

    @property
    def credits(self) -> Credits:
        """The account's balance (total, used, remaining, expire_timestamp)."""
        return self.state.credits

    @property
    def app(self) -> Starlette:
        """The ASGI app (made once), for uvicorn or `httpx.ASGITransport`."""
        if self._app is None:
            self._app = create_app(
                arrive=self._arrive, process=self._process, find_image=self._image
            )
        return self._app

    def transport(self) -> EmulatorTransport:
        """An httpx transport reaching this emulator in-process (no sockets).

        Example:
            >>> import httpx
            >>> emulator = Emulator()
            >>> client = httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.url)
        """
        return EmulatorTransport(self.app)

    # --- the request path, handed to `create_app` ------------------------------------

    def _arrive(self, data: object) -> Ticket:
        """Count an arriving request and decide the faults that strike before processing."""
        action = action_of(data)
        with self._lock:
            counters = self.counters
            counters.requests[action] += 1
            number = counters.requests[action]
            self._note_arrival(action, data)
            early = decide_early(
                self.faults, action, number, self._fault_rng, request_uuid_of(data)
            )
            counters.faults.update(kind.value for kind in early.fired)
        return Ticket(action, number, early)

    def _note_arrival(self, action: str, data: object) -> None:
        counters = self.counters
        uids = data.get("TaskUIDList") if isinstance(data, dict) else None
        if action == "ListTasksDetails" and isinstance(uids, list):
            counters.list_lengths.append(len(uids))
        request_uuid = request_uuid_of(data)
        if action in TASK_ACTIONS and request_uuid is not None:
            if request_uuid in counters.tasks_per_request_uuid:
                counters.reused_request_uuids += 1
            else:
                counters.tasks_per_request_uuid[request_uuid] = 0

    def _process(self, ticket: Ticket, data: object, base_url: str) -> HttpAnswer:
        """Handle a request that got past the early faults; return the answer to send."""
        with self._lock:
            faults, rng = self.faults, self._fault_rng
            failure = decide_failure(faults, ticket.action, ticket.number, rng)
            reply = handle(data, self.state, self._settings(base_url, failure))
            fired: list[FaultKind] = []
            if reply.created and reply.task is not None:
                self._note_task(reply.task.request_uuid)
                if failure is not None:
                    fired.append(FaultKind.TASK_FAILURE)
            if reply.ret_code == RetCode.LIST_TOO_LONG:
                fired.append(FaultKind.LIST_TOO_LONG)
            answer, late = decide_late(faults, ticket.action, ticket.number, rng, reply)
            self.counters.faults.update(kind.value for kind in (*fired, *late))
        return answer

    def _note_task(self, request_uuid: str | None) -> None:
        self.counters.tasks_created += 1
        if request_uuid is not None:
            self.counters.tasks_per_request_uuid[request_uuid] += 1

    def _settings(self, base_url: str, failure: Failure | None) -> Settings:
        return Settings(
            public_key=self.public_key,
            private_key=self.private_key,
            words=self.status_words,
            base_url=base_url,
            models=self.models,
            strict_models=self.strict_models,
            max_list_length=self.faults.max_list_length,
            running_list=self.faults.running_list,
            failure=failure,
            measure_image=image_size,
        )

    def _image(self, task_uid: str, index: int) -> ImageSpec | ImageLookup:
        """Find an image to serve, counting the download."""
        with self._lock:
            found = self.state.image(task_uid, index)
            if isinstance(found, ImageSpec):
                self.counters.image_downloads += 1
        return found


def _a_year_from_now() -> int:
    return int(time.time()) + _YEAR
