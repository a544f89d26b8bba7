"""modelyard: a self-hostable deep learning platform."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> object:
    # The SDK pulls in httpx; keep `import modelyard` cheap for trainer code.
    if name == "Client":
        from modelyard.sdk.client import Client

        return Client
    raise AttributeError(name)
