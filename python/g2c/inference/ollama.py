"""ollama.py: Ollama's HTTP API (/api/generate, /api/chat) in plain Python, as the seed builds it.

urlopen replaces the transport (tests pass a function): it is called as urlopen(request, timeout=timeout)
with a urllib.request.Request (full URL, JSON body, method, Content-Type) and its result is used as a
context manager whose read() is the body (iterated by line when streaming)."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

from .. import _g2c
from .backend import Backend, BackendInfo, ChatResult, InferenceResult


def _default_url() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return "http://127.0.0.1:11434"
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    if ":" not in rest.split("/", 1)[0]:
        rest = rest.replace("/", ":11434/", 1) if "/" in rest else rest + ":11434"
    return f"{scheme}://{rest}".rstrip("/")


DEFAULT_OLLAMA_URL = _default_url()


# Ollama is not running, the model is not pulled, or its reply is not what the API documents. A
# RuntimeError (through g2c.Error), and the same class the C++ client raises (ProdLM on Ollama).
OllamaError = _g2c.OllamaError


def _ms(ns: Any) -> float | None:
    return ns / 1e6 if isinstance(ns, (int, float)) else None


class OllamaBackend(Backend):
    def __init__(self, model_id: str = "llama3.2:3b", *, base_url: str = DEFAULT_OLLAMA_URL,
                 timeout: float = 120.0, urlopen=None, name: str = "ollama",
                 extra: dict[str, Any] | None = None) -> None:
        self._model_id = model_id
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._urlopen = urlopen or urllib.request.urlopen
        self._info = BackendInfo(name=name, model_id=model_id, extra=dict(extra or {}))

    @property
    def info(self) -> BackendInfo:
        return self._info

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- HTTP ----------------------------------------------------------------------------------------
    def _request(self, path: str, body: dict[str, Any]) -> urllib.request.Request:
        return urllib.request.Request(self._base_url + path, data=json.dumps(body).encode("utf-8"), method="POST",
                                      headers={"Content-Type": "application/json"})

    def _open(self, req: urllib.request.Request):
        try:
            return self._urlopen(req, timeout=self._timeout)
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace") if hasattr(e, "read") else ""
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            hint = f" (run `ollama pull {self._model_id}`)" if e.code == 404 else ""
            raise OllamaError(f"Ollama at {self._base_url} answered HTTP {e.code}: {detail}{hint}") from e
        except (urllib.error.URLError, OSError) as e:
            raise OllamaError(f"cannot reach Ollama at {self._base_url}: {getattr(e, 'reason', e)} "
                              "(is `ollama serve` running?)") from e

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._open(self._request(path, body)) as resp:
            raw = resp.read()
        try:
            j = json.loads(raw)
        except ValueError as e:
            raise OllamaError(f"Ollama at {self._base_url}{path} sent a reply that is not JSON: {raw[:200]!r}") from e
        if not isinstance(j, dict):
            raise OllamaError(f"Ollama at {self._base_url}{path} sent {type(j).__name__}, expected an object")
        if "error" in j:
            raise OllamaError(f"Ollama at {self._base_url}: {j['error']}")
        return j

    @staticmethod
    def _options(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> dict:
        opts: dict[str, Any] = {"num_predict": max_new_tokens, "temperature": temperature}
        if top_k is not None:
            opts["top_k"] = top_k
        if top_p is not None:
            opts["top_p"] = top_p
        return opts

    @staticmethod
    def _server_times(j: dict[str, Any]) -> dict[str, Any]:
        # Ollama reports nanoseconds; the course's results hold milliseconds.
        out: dict[str, Any] = {}
        for key, name in (("total_duration", "server_total_ms"), ("load_duration", "load_ms"),
                          ("prompt_eval_duration", "prompt_eval_ms"), ("eval_duration", "eval_ms")):
            if _ms(j.get(key)) is not None:
                out[name] = _ms(j.get(key))
        if "done_reason" in j:
            out["done_reason"] = j["done_reason"]
        return out

    # -- the course API ------------------------------------------------------------------------------
    def complete(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> InferenceResult:
        body = {"model": self._model_id, "prompt": prompt, "stream": False,
                "options": self._options(max_new_tokens, temperature, top_k, top_p)}
        t0 = time.perf_counter()
        j = self._post("/api/generate", body)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        if not isinstance(j.get("response"), str):
            raise OllamaError(f"Ollama at {self._base_url}/api/generate: no \"response\" in {str(j)[:200]}")
        return InferenceResult(prompt=prompt, completion=j["response"], prompt_tokens=j.get("prompt_eval_count"),
                               completion_tokens=j.get("eval_count"), latency_ms=latency_ms, backend=self._info,
                               metadata=self._server_times(j))

    def stream(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Iterator[str]:
        """Yields the response pieces of /api/generate's NDJSON stream; a stream that ends without
        done:true is an OllamaError."""
        body = {"model": self._model_id, "prompt": prompt, "stream": True,
                "options": self._options(max_new_tokens, temperature, top_k, top_p)}
        done = False
        with self._open(self._request("/api/generate", body)) as resp:
            for line in resp:
                line = line.strip()
                if not line:
                    continue
                j = json.loads(line)
                if "error" in j:
                    raise OllamaError(f"Ollama at {self._base_url} failed mid-stream: {j['error']}")
                if j.get("response"):
                    yield j["response"]
                if j.get("done"):
                    done = True
                    break
        if not done:
            raise OllamaError(f"the Ollama stream from {self._base_url} ended without a done:true object")

    def chat_with_tools(self, messages, tools=None, *, max_new_tokens=512, temperature=0.2, top_k=None,
                        top_p=None) -> ChatResult:
        """Module 18's native tool calling: /api/chat with a tools array; tool_calls come back parsed."""
        body: dict[str, Any] = {"model": self._model_id, "messages": list(messages), "stream": False,
                                "options": self._options(max_new_tokens, temperature, top_k, top_p)}
        if tools:
            body["tools"] = list(tools)
        t0 = time.perf_counter()
        j = self._post("/api/chat", body)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        msg = j.get("message")
        if not isinstance(msg, dict):
            raise OllamaError(f"Ollama at {self._base_url}/api/chat: no \"message\" in {str(j)[:200]}")
        calls = []
        for c in msg.get("tool_calls") or []:
            fn = c.get("function", c)
            args = fn.get("arguments", {})
            if isinstance(args, str):
                args = json.loads(args)
            calls.append({"id": c.get("id", ""), "name": fn["name"], "arguments": args})
        times = self._server_times(j)
        return ChatResult(message=msg, tool_calls=calls, prompt_tokens=j.get("prompt_eval_count"),
                          completion_tokens=j.get("eval_count"), latency_ms=latency_ms, backend=self._info,
                          done_reason=times.pop("done_reason", ""), timings=times)
