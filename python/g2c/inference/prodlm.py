"""prodlm.py: the course's production model, described by a manifest (~/.g2c/prodlm.json or
$G2C_PRODLM_MANIFEST) that every later module loads instead of hard-coding a server."""
from __future__ import annotations

import json
from typing import Any

from .. import _g2c
from .backend import _NativeBackend


class _Loaded(_NativeBackend):
    def __init__(self, native) -> None:
        self._native = native


def write_prodlm_manifest(path: str | None = None, *, backend: str = "ollama", model_id: str = "llama3.2:3b",
                          base_url: str | None = None, quantization: str | None = None,
                          context_length: int | None = None, notes: str | None = None,
                          timeout: float = 120.0) -> str:
    """Writes the manifest atomically; returns its path."""
    path = path or _g2c.default_prodlm_manifest_path()
    m: dict[str, Any] = {"backend": backend, "model_id": model_id, "timeout_s": timeout}
    if base_url:
        m["base_url"] = base_url
    if quantization:
        m["quantization"] = quantization
    if context_length is not None:
        m["context_length"] = context_length
    if notes:
        m["notes"] = notes
    _g2c.write_prodlm_manifest(path, json.dumps(m))
    return path


def load_prodlm_backend(path: str | None = None) -> _NativeBackend:
    """The backend the manifest describes (named "prodlm")."""
    return _Loaded(_g2c.load_prodlm_backend(path or ""))


def load_default_backend(kind: str = "auto", *, manifest_path: str | None = None,
                         artifact_name: str | None = None) -> _NativeBackend:
    """kind "auto": ProdLM when its manifest exists and its server answers, else the local artifact;
    "prodlm" or "local" to choose. info.extra["selected"] says which and why."""
    if kind not in ("auto", "prodlm", "local"):
        raise ValueError(f"kind must be 'auto', 'prodlm' or 'local', got {kind!r}")
    return _Loaded(_g2c.load_default(kind, manifest_path or "", artifact_name or ""))
