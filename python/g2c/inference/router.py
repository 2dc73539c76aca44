"""router.py: dispatch between backends (a tiny artifact and ProdLM) by rules on the prompt, with fallback."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .backend import Backend, BackendInfo, InferenceResult


@dataclass
class RouteRule:
    """Sends a prompt to backends[target] when every condition given holds."""
    name: str
    target: int
    min_prompt_chars: int | None = None
    pattern: str | None = None  # a regular expression searched in the prompt
    min_max_new_tokens: int | None = None


class RouterBackend(Backend):
    def __init__(self, backends: list[Backend], rules: list[RouteRule] | None = None, *, default: int = 0,
                 fallback_on_error: bool = True, name: str = "router") -> None:
        if not backends:
            raise ValueError("RouterBackend: no backends given")
        for r in rules or []:
            if not 0 <= r.target < len(backends):
                raise ValueError(f"rule {r.name!r}: target {r.target} out of range [0, {len(backends)})")
        if not 0 <= default < len(backends):
            raise ValueError(f"default {default} out of range [0, {len(backends)})")
        self._backends = list(backends)
        self._rules = [(r, re.compile(r.pattern) if r.pattern else None) for r in rules or []]
        self._default = default
        self._fallback = fallback_on_error
        self._name = name

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(name=self._name, model_id="+".join(b.info.model_id for b in self._backends),
                           extra={"backends": [b.info.name for b in self._backends]})

    def route(self, prompt: str, max_new_tokens: int) -> tuple[int, str]:
        for rule, rx in self._rules:
            if rule.min_prompt_chars is not None and len(prompt) < rule.min_prompt_chars:
                continue
            if rx is not None and not rx.search(prompt):
                continue
            if rule.min_max_new_tokens is not None and max_new_tokens < rule.min_max_new_tokens:
                continue
            return rule.target, f"rule:{rule.name}"
        return self._default, "default"

    def complete(self, prompt: str, *, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> InferenceResult:
        target, decision = self.route(prompt, max_new_tokens)
        order = [target] + [i for i in range(len(self._backends)) if i != target]
        fallbacks: list[dict[str, Any]] = []
        for pos, i in enumerate(order):
            try:
                r = self._backends[i].complete(prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                               top_k=top_k, top_p=top_p)
            except Exception as e:  # noqa: BLE001 - any backend failure falls back
                if not self._fallback or pos + 1 == len(order):
                    raise
                fallbacks.append({"backend_index": i, "backend": self._backends[i].info.name, "error": str(e)})
                continue
            r.metadata = dict(r.metadata)
            r.metadata["router"] = {"decision": decision, "backend_index": i, "fallbacks": fallbacks}
            return r
        raise AssertionError("unreachable")
