"""The OpenAI-compatible backend (g2c serve, llama-server, vLLM, mlx_lm.server, LM Studio) over g2c's client."""
from __future__ import annotations

from .. import _g2c
from .backend import _NativeBackend

OpenAIError = _g2c.OpenAIError


class OpenAIBackend(_NativeBackend):
    def __init__(self, model_id: str, *, base_url: str = "http://127.0.0.1:8080/v1", api_key: str | None = None,
                 timeout: float = 120.0, name: str = "openai") -> None:
        self._native = _g2c.make_openai(base_url, model_id, api_key or "", timeout, name)
