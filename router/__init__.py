"""thinkgate core: OpenAI protocol, config, engines, the cascade, the gateway, metrics, CLI.

Nothing heavy is imported here (no torch, transformers or ray): ``thinkgate --help`` and the
protocol models load fast. Engines and the gateway are imported from their modules.
"""

from router._exceptions import (
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    ThinkgateError,
    TierUnavailableError,
    UpstreamError,
)
from router.config import ThinkgateConfig, load_config
from router.sampling import SamplingParams

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ContextLengthError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "OverloadedError",
    "RateLimitError",
    "SamplingParams",
    "ThinkgateConfig",
    "ThinkgateError",
    "TierUnavailableError",
    "UpstreamError",
    "load_config",
]
