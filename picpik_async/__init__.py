"""picpik_async: an async client for the PICPIK image generation API.

Example:
    >>> import picpik_async as picpik
    >>> picpik.sign({"Action": "ListModels", "PublicKey": "abcdefg"}, "123456")
    '4a20bc1141494035f6aaaad13224c94c5a8bc3a5'
"""

from __future__ import annotations

from ._client import AsyncClient
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
from ._images import ImageExpiredError
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

__version__ = "0.1.0.dev0"

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "ClientClosedError",
    "CreditBalance",
    "Envelope",
    "GenerateImagesSDXL",
    "GeneratedImage",
    "GenerationResult",
    "GetCreditBalance",
    "Image2Image",
    "ImageExpiredError",
    "InferenceParams",
    "ListModels",
    "ListModelsResponse",
    "ListRunningTasks",
    "ListRunningTasksResponse",
    "ListTasksDetails",
    "ListTasksDetailsResponse",
    "Model",
    "PicpikError",
    "PollSettings",
    "ProtocolError",
    "RateLimitError",
    "Request",
    "RetryEvent",
    "RetryPolicy",
    "SubmitOutcomeUnknownError",
    "SubmitResponse",
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
