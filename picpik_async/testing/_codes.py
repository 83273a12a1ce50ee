"""The RetCodes the emulator answers with.

PURE: constants only. PICPIK publishes no RetCode table (docs/protocol.md,
"RetCodes we assume"), so these numbers are the emulator's own choice, picked to match what
`picpik_async._errors` classifies by number: 171-173 authentication, 160/161/230
parameters, 2101 credits, 2102 throttling. Anything else non-zero counts as
retryable there, which is what `BUSY` needs.
"""

from __future__ import annotations

import enum

__all__ = ["RetCode"]


class RetCode(enum.IntEnum):
    """RetCodes of the emulator; 0 is success (docs/protocol.md, "RetCodes we assume").

    Example:
        >>> int(RetCode.BAD_SIGNATURE), RetCode(2101).name
        (171, 'INSUFFICIENT_CREDITS')
    """

    OK = 0
    #: A parameter is missing, of the wrong type or out of range (message names it).
    INVALID_PARAMETER = 160
    #: The Action is not one the emulator knows ("Action not found: X").
    UNKNOWN_ACTION = 161
    #: The Signature is missing or does not match ("Signature verification failed").
    BAD_SIGNATURE = 171
    #: The PublicKey is missing or belongs to no account.
    UNKNOWN_PUBLIC_KEY = 172
    #: TaskUIDList is longer than the configured maximum.
    LIST_TOO_LONG = 230
    #: The task would cost more credits than the account has left.
    INSUFFICIENT_CREDITS = 2101
    #: Throttled; also carried in the JSON body of an HTTP 429 answer.
    RATE_LIMITED = 2102
    #: A transient refusal: nothing was done, the same request may be sent again.
    BUSY = 5000
