"""backend.py: the seed's result types and the Backend interface."""
from __future__ import annotations

import json
import queue
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass(frozen=True)
class BackendInfo:
    name: str
    model_id: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceResult:
    prompt: str
    completion: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    backend: BackendInfo
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens per second of wall time; None when unknown or the latency is zero."""
        if self.completion_tokens is None or self.latency_ms <= 0:
            return None
        return self.completion_tokens / (self.latency_ms / 1000.0)


@dataclass
class ChatResult:
    """One assistant turn: message is {"role", "content", "tool_calls"?}; tool_calls are
    {"id", "name", "arguments"} with arguments a dict."""
    message: dict[str, Any]
    tool_calls: list[dict[str, Any]]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    backend: BackendInfo
    done_reason: str = ""
    timings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _info(j: dict[str, Any]) -> BackendInfo:
    return BackendInfo(name=j["name"], model_id=j["model_id"], extra=j.get("extra") or {})


def _result(j: dict[str, Any]) -> InferenceResult:
    return InferenceResult(prompt=j["prompt"], completion=j["completion"], prompt_tokens=j["prompt_tokens"],
                           completion_tokens=j["completion_tokens"], latency_ms=j["latency_ms"],
                           backend=_info(j["backend"]), metadata=j.get("metadata") or {})


def _chat(j: dict[str, Any]) -> ChatResult:
    return ChatResult(message=j["message"], tool_calls=j["tool_calls"], prompt_tokens=j["prompt_tokens"],
                      completion_tokens=j["completion_tokens"], latency_ms=j["latency_ms"],
                      backend=_info(j["backend"]), done_reason=j.get("done_reason", ""),
                      timings=j.get("timings") or {}, metadata=j.get("metadata") or {})


def _options(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None,
             **extra: Any) -> str:
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0 or None, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p}")
    opts = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p}
    opts.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(opts)


class Backend(ABC):
    """What every backend is: an info and a complete(). Subclass it in Python (the MLX exercise): a
    subclass works with benchmark() and RouterBackend like the built-in ones."""

    @property
    @abstractmethod
    def info(self) -> BackendInfo: ...

    @abstractmethod
    def complete(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> InferenceResult: ...

    def stream(self, prompt: str, **opts: Any) -> Iterator[str]:
        """Yields the completion in pieces. The default yields complete()'s text whole."""
        text = self.complete(prompt, **opts).completion
        if text:
            yield text


class _NativeBackend(Backend):
    """A Backend whose work is done by a C++ backend (_g2c.Backend): the engine, or an HTTP client."""

    _native: Any
    last_stream_result: InferenceResult | None = None

    @property
    def info(self) -> BackendInfo:
        return _info(json.loads(self._native.info()))

    def complete(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: list[str] | None = None, grammar: str | None = None,
                 json_schema: dict[str, Any] | None = None, logprobs: bool = False) -> InferenceResult:
        opts = _options(max_new_tokens, temperature, top_k, top_p, seed=seed, stop=stop, grammar=grammar,
                        json_schema=json_schema, logprobs=logprobs or None)
        return _result(json.loads(self._native.complete(prompt, opts)))

    def stream(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               stop: list[str] | None = None) -> Iterator[str]:
        """Yields text pieces as the backend generates them. Leaving the loop early (break, an
        exception, KeyboardInterrupt) cancels the generation; the engine runs without the GIL."""
        opts = _options(max_new_tokens, temperature, top_k, top_p, seed=seed, stop=stop)
        self.last_stream_result = None

        def run(on_chunk) -> None:
            # The whole result (counts, timings, metadata["canceled"]) once the stream has ended.
            self.last_stream_result = _result(json.loads(self._native.stream(prompt, opts, on_chunk)))

        return _pieces(run)

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, *,
             max_new_tokens: int = 128, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, seed: int | None = None, on_chunk=None) -> ChatResult:
        """One assistant turn for the messages (and tools); on_chunk(text) receives the reply as it is
        generated when given (returning False cancels)."""
        opts = _options(max_new_tokens, temperature, top_k, top_p, seed=seed)
        return _chat(json.loads(self._native.chat(json.dumps(messages), json.dumps(tools or []), opts, on_chunk)))

    def loglikelihood(self, context: str, continuation: str) -> dict[str, Any]:
        """log P(continuation | context): {"logprob", "n_tokens", "is_greedy", ...}."""
        return json.loads(self._native.loglikelihood(context, continuation))


_DONE = object()


def _pieces(run) -> Iterator[str]:
    """Runs run(on_chunk) on a worker thread and yields its pieces here. Closing the generator (or an
    exception in the consumer) makes on_chunk return False, which cancels the C++ generation."""
    q: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def on_chunk(piece: str) -> bool:
        if cancel.is_set():
            return False
        q.put(piece)
        return True

    def work() -> None:
        try:
            run(on_chunk)
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="g2c-stream", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
        t.join()
