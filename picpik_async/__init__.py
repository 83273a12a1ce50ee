"""picpik_async: an async client for the PICPIK image generation API.

`AsyncClient` is the client for asyncio and trio; `Client` is its blocking
facade for scripts and notebooks.

Example:
    >>> import picpik_async as picpik
    >>> picpik.sign({"Action": "ListModels", "PublicKey": "abcdefg"}, "123456")
    '4a20bc1141494035f6aaaad13224c94c5a8bc3a5'
"""

from __future__ import annotations

import inspect
import types
import typing

from ._actions import (
    ApplyReferencePattern,
    ApplyReferenceStyle,
    BatchSubmitResponse,
    ControlNet,
    ControlNetModel,
    Coordinate,
    DescribeImages,
    ExtractContents,
    Foreground,
    GenerateBackgrounds,
    GenerateImages,
    GenerateImagesSDXL,
    GenerateOptions,
    GeneratePatternsFromImage,
    GenerationOptions,
    GenerationRequest,
    GetCreditBalance,
    ListControlNets,
    ListControlNetsResponse,
    ListModels,
    ListRunningTasks,
    ListTasksDetails,
    Mask,
    MattingOptions,
    ModifyMaskedPixels,
    RemoveBackground,
    RemoveBackgroundsInBatch,
    RemoveContents,
    ResizeImage,
    RestoreFaces,
    SwitchFace,
)
from ._budget import CreditBudget
from ._client import AsyncClient, ResultStream
from ._errors import (
    APIError,
    AuthenticationError,
    BudgetExceededError,
    ClientClosedError,
    ImageExpiredError,
    ImageSaveError,
    LedgerError,
    PicpikError,
    ProtocolError,
    RateLimitError,
    ResponseTooLargeError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
)
from ._images import ImageInput
from ._models import (
    CreditBalance,
    Envelope,
    Image2Image,
    InferenceParams,
    ListModelsResponse,
    ListRunningTasksResponse,
    ListTasksDetailsResponse,
    Model,
    Request,
    SubmitResponse,
    TaskDetail,
    TaskHandle,
    TaskStatus,
)
from ._polling import PollSettings, task_status
from ._results import GeneratedImage, GenerationResult
from ._retry import RetryEvent, RetryPolicy
from ._signing import sign
from ._sync import BlockingImage, BlockingResult, Client

__version__ = "0.1.0.dev0"

__all__ = [
    "APIError",
    "ApplyReferencePattern",
    "ApplyReferenceStyle",
    "AsyncClient",
    "AuthenticationError",
    "BatchSubmitResponse",
    "BlockingImage",
    "BlockingResult",
    "BudgetExceededError",
    "Client",
    "ClientClosedError",
    "ControlNet",
    "ControlNetModel",
    "Coordinate",
    "CreditBalance",
    "CreditBudget",
    "DescribeImages",
    "Envelope",
    "ExtractContents",
    "Foreground",
    "GenerateBackgrounds",
    "GenerateImages",
    "GenerateImagesSDXL",
    "GenerateOptions",
    "GeneratePatternsFromImage",
    "GeneratedImage",
    "GenerationOptions",
    "GenerationRequest",
    "GenerationResult",
    "GetCreditBalance",
    "Image2Image",
    "ImageExpiredError",
    "ImageInput",
    "ImageSaveError",
    "InferenceParams",
    "LedgerError",
    "ListControlNets",
    "ListControlNetsResponse",
    "ListModels",
    "ListModelsResponse",
    "ListRunningTasks",
    "ListRunningTasksResponse",
    "ListTasksDetails",
    "ListTasksDetailsResponse",
    "Mask",
    "MattingOptions",
    "Model",
    "ModifyMaskedPixels",
    "PicpikError",
    "PollSettings",
    "ProtocolError",
    "RateLimitError",
    "RemoveBackground",
    "RemoveBackgroundsInBatch",
    "RemoveContents",
    "Request",
    "ResizeImage",
    "ResponseTooLargeError",
    "RestoreFaces",
    "ResultStream",
    "RetryEvent",
    "RetryPolicy",
    "SubmitOutcomeUnknownError",
    "SubmitResponse",
    "SwitchFace",
    "TaskDetail",
    "TaskFailedError",
    "TaskHandle",
    "TaskNotFoundError",
    "TaskStatus",
    "TaskTimeoutError",
    "TransportError",
    "ValidationError",
    "__version__",
    "sign",
    "task_status",
]


def _publish() -> None:
    """Make every exported class and function say it comes from `picpik_async`.

    As httpx's `__init__` does: tracebacks and reprs show `picpik_async.APIError`,
    not the private module that defines it. A class's string annotations are
    evaluated first, in the module that defines it, and kept as objects:
    `typing.get_type_hints` (which cattrs relies on, and so may a user or a
    subclass) evaluates strings in the module `__module__` names, and this
    package does not hold every name they use.
    """
    exported = [globals()[name] for name in __all__]
    published = [value for value in exported if isinstance(value, type | types.FunctionType)]
    for cls in (value for value in published if isinstance(value, type)):
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except NameError:  # a name imported only for type checkers: unresolvable anyway
            continue
        cls.__annotations__ = {name: hints[name] for name in inspect.get_annotations(cls)}
    for value in published:  # not `__version__`, nor the `ImageInput` alias
        value.__module__ = __name__


_publish()
del _publish
