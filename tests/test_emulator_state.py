"""Tests for the emulator's pure task state machine (picpik_async.testing._state).

No event loop: time is a ManualClock, chance a seeded random.Random.
"""

from __future__ import annotations

import random
import string

import pytest

from picpik_async.testing import (
    DEFAULT_IMAGE_TTL,
    Failure,
    ManualClock,
    Phase,
    StatusWords,
    jittered,
    task_cost,
)
from picpik_async.testing._state import (
    Credits,
    ImageLookup,
    ImageSpec,
    InsufficientCreditsError,
    Latency,
    ServiceState,
    TaskRequest,
    draw_latency,
)

UID_ALPHABET = set(string.digits + "abcdefghijklmnopqrstuv")


def make_state(
    clock: ManualClock,
    *,
    latency: Latency = 10.0,
    credits: Credits | None = None,
    image_ttl: float = DEFAULT_IMAGE_TTL,
    dedupe_request_uuid: bool = False,
) -> ServiceState:
    """A state with a 10 s latency (3 s queuing), seeded randomness and 1000 credits."""
    return ServiceState(
        clock=clock,
        rng=random.Random(42),
        latency=latency,
        queue_share=0.3,
        credits=credits or Credits(total=1000),
        image_ttl=image_ttl,
        dedupe_request_uuid=dedupe_request_uuid,
    )


def request(
    *,
    seed: int = -1,
    width: int = 512,
    height: int = 512,
    batch_size: int = 1,
    request_uuid: str | None = None,
) -> TaskRequest:
    """A single 512x512 image of "a red apple", overridable."""
    return TaskRequest(
        prompt="a red apple",
        seed=seed,
        width=width,
        height=height,
        batch_size=batch_size,
        request_uuid=request_uuid,
    )


class TestClockAndLatency:
    def test_manual_clock_moves_only_when_told(self) -> None:
        """The manual clock starts at 0 and advances by what it is told."""
        clock = ManualClock()
        assert clock() == 0.0
        clock.advance(2.5)
        clock.advance(0.5)
        assert clock() == 3.0

    def test_manual_clock_refuses_to_go_back(self) -> None:
        """A monotonic clock cannot move backwards."""
        with pytest.raises(ValueError, match="cannot go back"):
            ManualClock().advance(-1)

    def test_fixed_latency(self) -> None:
        """A number is used as it is; negative draws are clamped to 0."""
        assert draw_latency(1.5, random.Random()) == 1.5
        assert draw_latency(lambda rng: -2.0, random.Random()) == 0.0

    def test_jittered_stays_in_its_band_and_is_reproducible(self) -> None:
        """Jittered latencies fall within center*(1±spread) and follow the seed."""
        draw = jittered(2.0, spread=0.25)
        first = [draw_latency(draw, random.Random(5)) for _ in range(3)]
        rng = random.Random(11)
        draws = [draw(rng) for _ in range(500)]
        assert all(1.5 <= d <= 2.5 for d in draws)
        assert max(draws) - min(draws) > 0.5  # actually spread, not constant
        assert first == [draw_latency(draw, random.Random(5)) for _ in range(3)]

    @pytest.mark.parametrize(("center", "spread"), [(-1.0, 0.1), (1.0, 1.5), (1.0, -0.1)])
    def test_jittered_refuses_bad_arguments(self, center: float, spread: float) -> None:
        """A negative center or a spread outside 0..1 is refused."""
        with pytest.raises(ValueError, match="need center"):
            jittered(center, spread=spread)


class TestCost:
    @pytest.mark.parametrize(
        ("width", "height", "batch", "cost"),
        [
            pytest.param(1024, 1024, 1, 4, id="one-megapixel"),
            pytest.param(512, 768, 2, 4, id="batch-of-two-small"),
            pytest.param(64, 64, 16, 16, id="tiny-images-cost-one-each"),
            pytest.param(2560, 2560, 1, 25, id="largest"),
        ],
    )
    def test_formula(self, width: int, height: int, batch: int, cost: int) -> None:
        """Cost per image is ceil(4 * pixels / 2**20), at least 1, times the batch size."""
        assert task_cost(width, height, batch) == cost

    def test_proportional_to_batch_size(self) -> None:
        """Doubling the batch doubles the cost."""
        assert task_cost(768, 768, 8) == 2 * task_cost(768, 768, 4)

    def test_rate_is_configurable(self) -> None:
        """The per-megapixel price can be changed."""
        assert task_cost(1024, 1024, 1, per_megapixel=10) == 10


class TestStatusWords:
    def test_defaults_are_the_legacy_words(self) -> None:
        """Without configuration the documented legacy words are used (spec §5)."""
        words = StatusWords()
        assert [words.word(phase) for phase in Phase] == ["Queuing", "Running", "Finished", "Error"]

    def test_custom_words(self) -> None:
        """Each phase maps to its configured word."""
        words = StatusWords("Pending", "Processing", "Success", "Failed")
        assert words.word(Phase.QUEUING) == "Pending"
        assert words.word(Phase.ERROR) == "Failed"

    def test_terminal_phases(self) -> None:
        """Only finished and error are terminal."""
        assert [phase.terminal for phase in Phase] == [False, False, True, True]


class TestLifecycle:
    def test_queuing_running_finished(self) -> None:
        """Phases follow the clock: queuing for 30% of the latency, then running, then done."""
        clock = ManualClock()
        state = make_state(clock)
        task, created = state.submit(request())
        assert created
        assert task.phase_at(clock()) is Phase.QUEUING
        clock.advance(2.9)
        assert task.phase_at(clock()) is Phase.QUEUING
        clock.advance(0.2)
        assert task.phase_at(clock()) is Phase.RUNNING
        clock.advance(6.8)
        assert task.phase_at(clock()) is Phase.RUNNING
        clock.advance(0.2)
        assert task.phase_at(clock()) is Phase.FINISHED
        assert task.done_at == pytest.approx(10.0)

    def test_failure_ends_in_error(self) -> None:
        """A task made with a Failure ends in the error phase with its code and message."""
        clock = ManualClock()
        state = make_state(clock)
        task, _ = state.submit(request(), failure=Failure(3005, "boom"))
        clock.advance(10.0)
        assert task.phase_at(clock()) is Phase.ERROR
        assert (task.error_code, task.error_message) == (3005, "boom")

    def test_zero_latency_is_finished_at_once(self) -> None:
        """With no latency the task is finished when created."""
        clock = ManualClock()
        task, _ = make_state(clock, latency=0.0).submit(request())
        assert task.phase_at(clock()) is Phase.FINISHED

    def test_latency_function_draws_per_task(self) -> None:
        """A latency function is drawn for every task."""
        clock = ManualClock()
        state = make_state(clock, latency=jittered(10.0, spread=0.5))
        ends = {state.submit(request())[0].done_at for _ in range(5)}
        assert len(ends) == 5
        assert all(5.0 <= end <= 15.0 for end in ends)

    def test_running_lists_unfinished_tasks(self) -> None:
        """ListRunningTasks' view: tasks not yet terminal, in creation order."""
        clock = ManualClock()
        state = make_state(clock)
        first, _ = state.submit(request())
        clock.advance(5.0)
        second, _ = state.submit(request())
        assert [t.uid for t in state.running()] == [first.uid, second.uid]
        clock.advance(5.0)
        assert [t.uid for t in state.running()] == [second.uid]
        clock.advance(10.0)
        assert state.running() == []


class TestTasks:
    def test_uids_look_like_xids_and_are_unique(self) -> None:
        """TaskUIDs have 20 base32hex characters (spec §1.4) and never repeat."""
        state = make_state(ManualClock(), credits=Credits(total=10**6))
        uids = [state.submit(request())[0].uid for _ in range(200)]
        assert len(set(uids)) == 200
        assert all(len(uid) == 20 and set(uid) <= UID_ALPHABET for uid in uids)

    def test_random_seed_is_picked_and_reported(self) -> None:
        """Seed -1 becomes a concrete seed in 0..2**31-1, reproducible with the rng seed."""
        task, _ = make_state(ManualClock()).submit(request(seed=-1))
        again, _ = make_state(ManualClock()).submit(request(seed=-1))
        assert 0 <= task.seed <= 2_147_483_647
        assert task.seed == again.seed

    def test_given_seed_is_kept(self) -> None:
        """An explicit seed is reported as sent."""
        task, _ = make_state(ManualClock()).submit(request(seed=1234))
        assert task.seed == 1234

    def test_details_answer_known_uids_once_in_order(self) -> None:
        """Unknown UIDs are absent; repeated UIDs are answered once; order follows the ask."""
        state = make_state(ManualClock())
        a, _ = state.submit(request())
        b, _ = state.submit(request())
        found = state.details([b.uid, "nope", a.uid, b.uid])
        assert [t.uid for t in found] == [b.uid, a.uid]


class TestCredits:
    def test_submit_charges_the_cost(self) -> None:
        """Creating a task debits its cost; remaining = total - used."""
        state = make_state(ManualClock())
        task, _ = state.submit(request(width=1024, height=1024, batch_size=3))
        assert task.cost == 12
        assert (state.credits.used, state.credits.remaining) == (12, 988)

    def test_insufficient_credits_create_nothing(self) -> None:
        """A task costing more than what is left is refused and nothing is charged."""
        state = make_state(ManualClock(), credits=Credits(total=10, used=8))
        with pytest.raises(InsufficientCreditsError, match="costs 4 credits, 2 left") as info:
            state.submit(request(width=1024, height=1024))
        assert (info.value.cost, info.value.remaining) == (4, 2)
        assert state.tasks == {}
        assert state.credits.used == 8

    def test_exact_balance_is_enough(self) -> None:
        """Spending the last credit is allowed."""
        state = make_state(ManualClock(), credits=Credits(total=4))
        state.submit(request(width=1024, height=1024))
        assert state.credits.remaining == 0


class TestRequestUuid:
    def test_no_dedupe_by_default(self) -> None:
        """Without dedupe, the same request_uuid creates (and charges) a second task."""
        state = make_state(ManualClock())
        first, _ = state.submit(request(request_uuid="u1"))
        second, created = state.submit(request(request_uuid="u1"))
        assert created
        assert first.uid != second.uid
        assert len(state.tasks) == 2

    def test_dedupe_returns_the_first_task(self) -> None:
        """With dedupe, a repeated request_uuid finds the first task, uncharged."""
        state = make_state(ManualClock(), dedupe_request_uuid=True)
        first, _ = state.submit(request(request_uuid="u1"))
        used = state.credits.used
        again, created = state.submit(request(request_uuid="u1"))
        assert (again, created) == (first, False)
        assert state.credits.used == used
        other, created = state.submit(request(request_uuid="u2"))
        assert created
        assert other.uid != first.uid


class TestImages:
    def test_images_exist_only_once_finished(self) -> None:
        """Before the task finished its image URLs answer 'missing'; then they serve."""
        clock = ManualClock()
        state = make_state(clock)
        task, _ = state.submit(request(batch_size=2, seed=9))
        assert state.image(task.uid, 0) is ImageLookup.MISSING
        clock.advance(10.0)
        assert state.image(task.uid, 1) == ImageSpec("a red apple", 9, 1, 512, 512)

    @pytest.mark.parametrize(("uid_ok", "index"), [(False, 0), (True, 2), (True, -1)])
    def test_unknown_task_or_index_is_missing(self, uid_ok: bool, index: int) -> None:
        """Unknown UIDs and indexes outside the batch are missing."""
        clock = ManualClock()
        state = make_state(clock)
        task, _ = state.submit(request(batch_size=2))
        clock.advance(10.0)
        assert state.image(task.uid if uid_ok else "x" * 20, index) is ImageLookup.MISSING

    def test_failed_task_has_no_images(self) -> None:
        """A task in the error phase serves nothing."""
        clock = ManualClock()
        state = make_state(clock)
        task, _ = state.submit(request(), failure=Failure())
        clock.advance(10.0)
        assert state.image(task.uid, 0) is ImageLookup.MISSING

    def test_images_expire_after_the_ttl(self) -> None:
        """Images are kept 24 h by default (spec §3.18), counted from the finish."""
        clock = ManualClock()
        state = make_state(clock)
        task, _ = state.submit(request())
        clock.advance(10.0 + DEFAULT_IMAGE_TTL - 1)
        assert isinstance(state.image(task.uid, 0), ImageSpec)
        clock.advance(1)
        assert state.image(task.uid, 0) is ImageLookup.EXPIRED

    def test_ttl_is_configurable(self) -> None:
        """A short TTL makes images expire sooner."""
        clock = ManualClock()
        state = make_state(clock, image_ttl=60.0)
        task, _ = state.submit(request())
        clock.advance(70.0)
        assert state.image(task.uid, 0) is ImageLookup.EXPIRED
