"""picpik_async: an async client for the PICPIK image generation API.

`AsyncClient` is the client for asyncio and trio; `Client` is its blocking
facade for scripts and notebooks.

Example:
    >>> import picpik_async as picpik
    >>> picpik.sign({"Action": "ListModels", "PublicKey": "abcdefg"}, "123456")
    '4a20bc1141494035f6aaaad13224c94c5a8bc3a5'
"""

from __future__ import annotations

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
    GeneratePatternsFromImage,
    GenerationOptions,
    GenerationRequest,
    ListControlNets,
    ListControlNetsResponse,
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
from ._client import AsyncClient, ResultStream
from ._errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    PicpikError,
    ProtocolError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
)
from ._images import ImageExpiredError, ImageInput
from ._models import (
    CreditBalance,
    Envelope,
    GenerateImagesSDXL,
    GetCreditBalance,
    Image2Image,
    InferenceParams,
    ListModels,
    ListModelsResponse,
    ListRunningTasks,
    ListRunningTasksResponse,
    ListTasksDetails,
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
from ._sync import Client

__version__ = "0.1.0.dev0"

__all__ = [
    "APIError",
    "ApplyReferencePattern",
    "ApplyReferenceStyle",
    "AsyncClient",
    "AuthenticationError",
    "BatchSubmitResponse",
    "Client",
    "ClientClosedError",
    "ControlNet",
    "ControlNetModel",
    "Coordinate",
    "CreditBalance",
    "DescribeImages",
    "Envelope",
    "ExtractContents",
    "Foreground",
    "GenerateBackgrounds",
    "GenerateImages",
    "GenerateImagesSDXL",
    "GeneratePatternsFromImage",
    "GeneratedImage",
    "GenerationOptions",
    "GenerationRequest",
    "GenerationResult",
    "GetCreditBalance",
    "Image2Image",
    "ImageExpiredError",
    "ImageInput",
    "InferenceParams",
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
