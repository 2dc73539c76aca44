"""g2c from Python: the course's ``g2c.inference`` API (module 16) over g2c's C++ engine and backends.

    import g2c
    from g2c.inference import LocalTransformerBackend, benchmark
    model = g2c.load_model("../shared/models/stories260K.gguf")
    backend = LocalTransformerBackend(model, g2c.load_tokenizer(model))
    print(backend.complete("Once upon a time", max_new_tokens=32, temperature=0.0).completion)
"""
from __future__ import annotations

import os

from . import _g2c
from ._g2c import Error, Model, Tokenizer

__all__ = ["Error", "Model", "Tokenizer", "load_model", "load_tokenizer", "isa"]


def _existing(path: str, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def load_model(path, *, threads: int | None = None, ctx: int | None = None) -> Model:
    """A GGUF or llama2.c checkpoint, memory-mapped. threads None: the physical cores; ctx None: the
    model's training context capped at 4096."""
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if ctx is not None and ctx < 0:
        raise ValueError(f"ctx must be >= 0, got {ctx}")
    return _g2c.load_model(_existing(path, "model"), threads or 0, ctx or 0)


def load_tokenizer(path_or_model) -> Tokenizer:
    """The tokenizer of a GGUF (a path or a loaded Model), or a llama2.c tokenizer.bin."""
    if isinstance(path_or_model, Model):
        return _g2c.tokenizer_from_model(path_or_model)
    path = _existing(path_or_model, "tokenizer")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        return _g2c.tokenizer_from_model(_g2c.load_model(path, 1, 0))
    return _g2c.tokenizer_from_llama2c(path, 0)


def isa() -> str:
    """The kernel table the engine picked for this CPU (avx512, avx2, ref)."""
    return _g2c.isa()
