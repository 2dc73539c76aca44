"""The seed's g2c.inference package on g2c: one Backend interface over the in-process engine and servers."""
from .backend import Backend, BackendInfo, ChatResult, InferenceResult
from .local import LocalTransformerBackend
from .ollama import DEFAULT_OLLAMA_URL, OllamaBackend, OllamaError
from .openai import OpenAIBackend, OpenAIError
from .artifact import ArtifactBackend, load_artifact_backend
from .prodlm import load_default_backend, load_prodlm_backend, write_prodlm_manifest
from .benchmark import BenchmarkResult, benchmark
from .router import RouteRule, RouterBackend

__all__ = [
    "Backend", "BackendInfo", "ChatResult", "InferenceResult", "LocalTransformerBackend", "DEFAULT_OLLAMA_URL",
    "OllamaBackend", "OllamaError", "OpenAIBackend", "OpenAIError", "ArtifactBackend", "load_artifact_backend",
    "load_default_backend", "load_prodlm_backend", "write_prodlm_manifest", "BenchmarkResult", "benchmark",
    "RouteRule", "RouterBackend",
]
