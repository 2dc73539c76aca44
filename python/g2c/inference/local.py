"""local.py: LocalTransformerBackend, the in-process engine (KV cache, quantized kernels)."""
from __future__ import annotations

import json
from typing import Any

from .. import _g2c
from .backend import _NativeBackend


class LocalTransformerBackend(_NativeBackend):
    """Runs a loaded model in this process. model: g2c.load_model(...); tokenizer: g2c.load_tokenizer(...).
    eos_id: the end token (None: the tokenizer's end-of-generation tokens; -1: never stop early).
    naive (g2c's): recompute the whole sequence for every token, the O(T^2) loop, to compare with the cache."""

    def __init__(self, model, tokenizer, *, model_id: str = "g2c-local", eos_id: int | None = None,
                 name: str = "local", extra: dict[str, Any] | None = None, naive: bool = False) -> None:
        if not isinstance(model, _g2c.Model):
            raise TypeError(f"model must be a g2c.Model (g2c.load_model), got {type(model).__name__}")
        if not isinstance(tokenizer, _g2c.Tokenizer):
            raise TypeError(f"tokenizer must be a g2c.Tokenizer (g2c.load_tokenizer), got {type(tokenizer).__name__}")
        self._model = model
        self._tokenizer = tokenizer
        self._native = _g2c.make_local(model, tokenizer, model_id, eos_id, name, json.dumps(extra or {}), naive)

    @property
    def model(self):
        return self._model

    @property
    def tokenizer(self):
        return self._tokenizer
