"""What the emulator saw: plain counters for tests to read.

PURE: no I/O, no anyio, no httpx. The emulator updates them; tests read them
and may `reset` them between phases of a test.
"""

from __future__ import annotations

from collections import Counter

import attrs
from attrs import define

__all__ = ["Counters"]


@define
class Counters:
    """Counts of what the emulator received and did.

    Attributes:
        requests: requests per Action (every POST, refused or not; "" when the
            body named no Action). Fault schedules number requests with it.
        list_lengths: the TaskUIDList length of each ListTasksDetails request
            that carried a list, in order (refused ones included).
        tasks_created: tasks created (and charged).
        reused_request_uuids: task-creating requests whose request_uuid had
            already been seen on one (whatever happened to the first).
        tasks_per_request_uuid: for each request_uuid seen on a task-creating
            request, the number of tasks it created (0 when none was).
        faults: injected faults per kind (`FaultKind` values, e.g. ``"drop"``).
        image_downloads: images served.

    Example:
        >>> counters = Counters()
        >>> counters.requests["ListModels"] += 1
        >>> counters.reset()
        >>> counters.requests
        Counter()
    """

    requests: Counter[str] = attrs.Factory(Counter)
    list_lengths: list[int] = attrs.Factory(list)
    tasks_created: int = 0
    reused_request_uuids: int = 0
    tasks_per_request_uuid: Counter[str] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    image_downloads: int = 0

    def reset(self) -> None:
        """Set every counter back to zero (the tasks themselves are kept).

        Fault schedules number requests with `requests`, so they count from 1 again.
        """
        fresh = Counters()
        for attribute in attrs.fields(Counters):
            setattr(self, attribute.name, getattr(fresh, attribute.name))

    def duplicate_tasks(self) -> dict[str, int]:
        """The request_uuids that created more than one task, with their task counts.

        Example:
            >>> counters = Counters()
            >>> counters.tasks_per_request_uuid.update({"u1": 1, "u2": 2})
            >>> counters.duplicate_tasks()
            {'u2': 2}
        """
        return {uuid: n for uuid, n in self.tasks_per_request_uuid.items() if n > 1}
