"""The seed's module-16 test groups on g2c: pytest -k Local | Ollama | Benchmark | boilerplate.

Independent checks: the greedy goldens of ../shared/models/README.md (a float64 reference forward pass and
llama2.c's documented sample), Ollama's documented wire shapes through a fake urlopen and a loopback HTTP
stand-in, the seed's own names and signatures, nearest-rank percentiles computed by hand."""
from __future__ import annotations

import dataclasses
import http.server
import inspect
import io
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import g2c
from g2c.inference import (ArtifactBackend, Backend, BackendInfo, BenchmarkResult, InferenceResult,
                           LocalTransformerBackend, OllamaBackend, OllamaError, OpenAIBackend, RouteRule,
                           RouterBackend, benchmark, load_artifact_backend, load_default_backend,
                           load_prodlm_backend, write_prodlm_manifest)

SHARED = os.environ.get("G2C_SHARED_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
MODELS = os.path.join(SHARED, "models")
G2C_BIN = os.environ.get("G2C_BIN", "")
# ../shared/models/README.md, "Reference outputs": stories260K greedy after BOS, 65 tokens (.gguf and .bin).
GREEDY_260K = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
               "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'")


def local(path="stories260K.gguf", **kw) -> LocalTransformerBackend:
    m = g2c.load_model(os.path.join(MODELS, path), threads=1)
    return LocalTransformerBackend(m, g2c.load_tokenizer(m), **kw)


# --- boilerplate: the seed's names, signatures and types -------------------------------------------------

# From the "What you'll build" section of the seed (parameters in order, keyword-only after *, defaults).
SEED_SIGNATURES = {
    "LocalTransformerBackend.__init__": "(self, model, tokenizer, *, model_id='g2c-local', eos_id=None, "
                                        "name='local', extra=None",
    "LocalTransformerBackend.complete": "(self, prompt, *, max_new_tokens=128, temperature=1.0, top_k=None, "
                                        "top_p=None",
    "OllamaBackend.__init__": "(self, model_id='llama3.2:3b', *, base_url=DEFAULT, timeout=120.0, urlopen=None, "
                              "name='ollama', extra=None",
    "OllamaBackend.complete": "(self, prompt, *, max_new_tokens=128, temperature=1.0, top_k=None, top_p=None",
    "OllamaBackend.chat_with_tools": "(self, messages, tools=None, *, max_new_tokens=512, temperature=0.2, "
                                     "top_k=None, top_p=None",
    "Backend.complete": "(self, prompt, *, max_new_tokens=128, temperature=1.0, top_k=None, top_p=None",
    "load_artifact_backend": "(artifact_name=None, *, device='auto', torch_dtype=None, required=True",
    "benchmark": "(backend, prompts, *, max_new_tokens=64, temperature=1.0, top_k=None, top_p=None, "
                 "metadata=None",
    "load_default_backend": "(kind='auto'",
}


def _render(fn) -> str:
    parts, star = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if p.default is inspect.Parameter.empty:
            parts.append(p.name)
        elif p.name == "base_url":
            parts.append("base_url=DEFAULT")
        else:
            parts.append(f"{p.name}={p.default!r}")
    return "(" + ", ".join(parts)


def test_boilerplate_signatures_are_the_seeds():
    import g2c.inference as inf
    for dotted, want in SEED_SIGNATURES.items():
        obj = inf
        for part in dotted.split("."):
            obj = getattr(obj, part)
        got = _render(obj)
        assert got.startswith(want), f"{dotted}: {got}) does not start with the seed's {want}"


def test_boilerplate_types():
    info = BackendInfo("x", "m")
    assert info.extra == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "y"
    r = InferenceResult("p", "c", 1, 10, 500.0, info)
    assert r.tokens_per_second == pytest.approx(20.0)
    assert InferenceResult("p", "c", 1, None, 500.0, info).tokens_per_second is None
    assert InferenceResult("p", "c", 1, 3, 0.0, info).tokens_per_second is None
    seed_fields = ["backend", "n", "latency_ms_total", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
                   "completion_tokens_total", "tokens_per_second_overall", "per_request_latency_ms",
                   "per_request_tokens_per_second", "results", "metadata"]
    assert [f.name for f in dataclasses.fields(BenchmarkResult)][:12] == seed_fields
    assert issubclass(OllamaError, RuntimeError) and issubclass(g2c.Error, RuntimeError)
    assert inspect.isabstract(Backend)
    for name in ("BackendInfo", "InferenceResult", "Backend", "LocalTransformerBackend", "OllamaError",
                 "OllamaBackend", "ArtifactBackend", "load_artifact_backend", "write_prodlm_manifest",
                 "load_prodlm_backend", "load_default_backend", "BenchmarkResult", "benchmark"):
        assert hasattr(g2c.inference, name), name
    for mod in ("backend", "local", "ollama", "artifact", "prodlm", "benchmark"):
        __import__(f"g2c.inference.{mod}")


def test_boilerplate_errors_are_python_exceptions():
    with pytest.raises(FileNotFoundError, match="no-such.gguf"):
        g2c.load_model("/nonexistent/no-such.gguf")
    with pytest.raises(ValueError, match="threads"):
        g2c.load_model(os.path.join(MODELS, "stories260K.gguf"), threads=-1)
    b = local()
    with pytest.raises(ValueError, match="top_p"):
        b.complete("x", top_p=1.5)
    with pytest.raises(ValueError, match="GenerateOptions grammar and json_schema"):
        b.complete("x", grammar='root ::= "a"', json_schema={})
    with pytest.raises(g2c.Error, match="bad.gguf"):
        bad = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"g2c-py-{os.getpid()}-bad.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00garbage")
        try:
            g2c.load_model(bad)
        finally:
            os.unlink(bad)


def test_boilerplate_venv_install(tmp_path):
    # The README's install: a venv over Debian's site packages, pip installing ./python offline (it packages
    # the module this build made). Then `import g2c` from the venv, outside the build tree, runs the model.
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = dict(os.environ, G2C_PYTHON_BUILD=os.path.dirname(os.path.dirname(g2c.__file__)), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation", "--no-index",
                    os.path.join(repo, "python")], check=True, env=env, cwd=str(tmp_path))
    code = ("import g2c; from g2c.inference import LocalTransformerBackend as L; import sys; "
            "m = g2c.load_model(sys.argv[1], threads=1); "
            "print(g2c.__file__); print(L(m, g2c.load_tokenizer(m)).complete('', max_new_tokens=8, temperature=0.0)"
            ".completion)")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code, os.path.join(MODELS, "stories260K.gguf")],
                         check=True, env=env, cwd=str(tmp_path), capture_output=True, text=True).stdout.splitlines()
    assert out[0].startswith(str(venv)), out
    assert GREEDY_260K.startswith(out[1]) and len(out[1]) > 10, out


# --- Local -------------------------------------------------------------------------------------------------

class TestLocal:
    def test_greedy_is_the_readme_golden_gguf(self):
        b = local()
        r = b.complete("", max_new_tokens=65, temperature=0.0)
        assert r.completion == GREEDY_260K
        assert r.completion_tokens == 65 and r.prompt_tokens == 1
        assert r.latency_ms > 0 and r.tokens_per_second > 0
        assert r.backend == b.info and b.info.name == "local" and b.info.model_id == "g2c-local"
        assert b.info.extra["quantization"] == "F32"

    def test_greedy_is_the_readme_golden_llama2c(self):
        m = g2c.load_model(os.path.join(MODELS, "stories260K.bin"), threads=1)
        t = g2c.load_tokenizer(os.path.join(MODELS, "tok512.bin"))
        b = LocalTransformerBackend(m, t, model_id="stories260K-bin", extra={"source": "llama2.c"})
        assert b.model is m and b.tokenizer is t
        assert b.complete("", max_new_tokens=65, temperature=0.0).completion == GREEDY_260K
        assert b.info.extra["source"] == "llama2.c"

    def test_prompt_is_not_echoed_and_eos_minus_one_runs_to_max(self):
        b = local(eos_id=-1)
        r = b.complete("Once upon a time", max_new_tokens=100, temperature=0.0)
        assert not r.completion.startswith("Once upon a time")
        assert r.completion_tokens == 100

    def test_naive_matches_cached(self):
        cached = local().complete("Lily", max_new_tokens=24, temperature=0.0)
        naive = local(naive=True).complete("Lily", max_new_tokens=24, temperature=0.0)
        assert naive.completion == cached.completion
        assert naive.metadata["naive"] is True and cached.metadata["naive"] is False

    def test_stream_concatenates_to_complete_and_break_cancels(self):
        b = local()
        whole = b.complete("", max_new_tokens=65, temperature=0.0).completion
        pieces = list(b.stream("", max_new_tokens=65, temperature=0.0))
        assert len(pieces) > 10 and "".join(pieces) == whole
        assert b.last_stream_result.completion_tokens == 65
        assert b.last_stream_result.metadata["canceled"] is False
        b2 = local(eos_id=-1)
        got = []
        for p in b2.stream("", max_new_tokens=1000, temperature=0.0):
            got.append(p)
            if len(got) == 3:
                break
        # The generator is closed by the break (CPython frees it at once): the C++ call has returned.
        assert b2.last_stream_result is not None
        assert b2.last_stream_result.metadata["canceled"] is True
        assert b2.last_stream_result.completion_tokens < 1000

    def test_keyboard_interrupt_cancels_and_comes_out_unchanged(self):
        b = local(eos_id=-1)
        with pytest.raises(KeyboardInterrupt):
            for _ in b.stream("", max_new_tokens=1000, temperature=0.0):
                raise KeyboardInterrupt
        assert b.last_stream_result.metadata["canceled"] is True

    def test_exception_in_a_chunk_callback_comes_out_unchanged(self):
        class Boom(Exception):
            pass

        def on_chunk(_):
            raise Boom("from python")

        with pytest.raises(Boom, match="from python"):
            local().chat([{"role": "user", "content": "Hi"}], max_new_tokens=20, temperature=0.0,
                         on_chunk=on_chunk)

    def test_chat_streams_the_same_reply(self):
        b = local()
        msgs = [{"role": "user", "content": "Tell me a story."}]
        whole = b.chat(msgs, max_new_tokens=30, temperature=0.0)
        seen = []
        streamed = b.chat(msgs, max_new_tokens=30, temperature=0.0, on_chunk=lambda s: seen.append(s) or True)
        assert "".join(seen) == whole.message["content"] == streamed.message["content"]
        assert whole.message["role"] == "assistant"

    def test_gil_is_released_while_the_engine_runs(self):
        # A Python thread counts while the main thread is inside a long in-process generation (the naive
        # loop: every token recomputes the sequence). With the GIL held the counter could not move.
        b = local(naive=True, eos_id=-1)
        count = [0]
        stop = threading.Event()
        during = []

        def spin():
            while not stop.is_set():
                count[0] += 1

        t = threading.Thread(target=spin)
        t.start()
        try:
            time.sleep(0.01)
            before = count[0]
            b.complete("", max_new_tokens=400, temperature=0.0)
            during.append(count[0] - before)
        finally:
            stop.set()
            t.join()
        assert during[0] > 1000, f"the counter moved {during[0]} times during the call"

    def test_two_threads_on_two_backends_both_finish_correctly(self):
        out = {}

        def run(i):
            out[i] = local().complete("", max_new_tokens=65, temperature=0.0).completion

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out == {0: GREEDY_260K, 1: GREEDY_260K}

    def test_artifact_loader(self):
        path = os.path.join(MODELS, "stories260K.gguf")
        b = load_artifact_backend(path)
        assert isinstance(b, ArtifactBackend)
        assert b.complete("", max_new_tokens=65, temperature=0.0).completion == GREEDY_260K
        assert load_artifact_backend(path, device="cpu", torch_dtype="torch.float32") is not None
        with pytest.raises(ValueError, match="CPU"):
            load_artifact_backend(path, device="mps")
        with pytest.raises(ValueError, match="no conversion"):
            load_artifact_backend(path, torch_dtype="float16")
        assert load_artifact_backend("no-such-artifact-xyz", required=False) is None
        with pytest.raises(FileNotFoundError, match="no-such-artifact-xyz"):
            load_artifact_backend("no-such-artifact-xyz")

    def test_default_backend_falls_back_to_local(self, tmp_path, monkeypatch):
        monkeypatch.setenv("G2C_PRODLM_MANIFEST", str(tmp_path / "none.json"))
        b = load_default_backend("auto", artifact_name=os.path.join(MODELS, "stories260K.gguf"))
        assert b.info.extra["selected"]["kind"] == "local"
        assert b.complete("", max_new_tokens=65, temperature=0.0).completion == GREEDY_260K
        with pytest.raises(ValueError, match="kind"):
            load_default_backend("gpu")


# --- Ollama ------------------------------------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def fake_urlopen(reply, seen):
    def urlopen(request, timeout=None):
        seen.append((request, timeout))
        if isinstance(reply, Exception):
            raise reply
        return FakeResponse(reply if isinstance(reply, bytes) else json.dumps(reply).encode())
    return urlopen


class TestOllama:
    # Ollama's /api/generate reply (docs/api.md): durations in nanoseconds.
    REPLY = {"model": "llama3.2:3b", "created_at": "2026-01-01T00:00:00Z", "response": "The sky is blue.",
             "done": True, "done_reason": "stop", "total_duration": 5_000_000, "load_duration": 1_000_000,
             "prompt_eval_count": 12, "prompt_eval_duration": 2_000_000, "eval_count": 6,
             "eval_duration": 3_000_000}

    def test_complete_sends_the_documented_request(self):
        seen = []
        b = OllamaBackend(base_url="http://ollama.test:11434", timeout=7.5, urlopen=fake_urlopen(self.REPLY, seen))
        r = b.complete("Why is the sky blue?", max_new_tokens=32, temperature=0.0, top_k=40)
        req, timeout = seen[0]
        assert isinstance(req, urllib.request.Request)
        assert req.full_url == "http://ollama.test:11434/api/generate" and req.get_method() == "POST"
        assert req.get_header("Content-type") == "application/json" and timeout == 7.5
        body = json.loads(req.data)
        assert body == {"model": "llama3.2:3b", "prompt": "Why is the sky blue?", "stream": False,
                        "options": {"num_predict": 32, "temperature": 0.0, "top_k": 40}}
        assert r.completion == "The sky is blue." and r.prompt_tokens == 12 and r.completion_tokens == 6
        assert r.metadata["eval_ms"] == pytest.approx(3.0) and r.metadata["server_total_ms"] == pytest.approx(5.0)
        assert r.backend == b.info and b.info.name == "ollama" and b.base_url == "http://ollama.test:11434"

    def test_errors_say_what_to_do(self):
        b = OllamaBackend(urlopen=fake_urlopen(urllib.error.URLError("Connection refused"), []))
        with pytest.raises(OllamaError, match="ollama serve"):
            b.complete("hi")
        err = urllib.error.HTTPError("http://x/api/generate", 404, "Not Found", {},
                                     io.BytesIO(b'{"error":"model \'llama3.2:3b\' not found"}'))
        with pytest.raises(OllamaError, match="ollama pull llama3.2:3b"):
            OllamaBackend(urlopen=fake_urlopen(err, [])).complete("hi")
        with pytest.raises(OllamaError, match="not JSON"):
            OllamaBackend(urlopen=fake_urlopen(b"<html>", [])).complete("hi")

    def test_stream_reads_ndjson_lines(self):
        lines = [{"response": "The", "done": False}, {"response": " sky", "done": False},
                 dict(self.REPLY, response="")]
        raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
        seen = []
        b = OllamaBackend(urlopen=fake_urlopen(raw, seen))
        assert list(b.stream("Why?")) == ["The", " sky"]
        assert json.loads(seen[0][0].data)["stream"] is True
        cut = b"".join(json.dumps(x).encode() + b"\n" for x in lines[:2])
        with pytest.raises(OllamaError, match="done:true"):
            list(OllamaBackend(urlopen=fake_urlopen(cut, [])).stream("Why?"))

    def test_chat_with_tools_parses_calls(self):
        reply = {"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]}, "done": True,
            "done_reason": "stop", "prompt_eval_count": 30, "eval_count": 9}
        seen = []
        b = OllamaBackend(urlopen=fake_urlopen(reply, seen))
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        r = b.chat_with_tools([{"role": "user", "content": "Weather in Tokyo?"}], tools)
        body = json.loads(seen[0][0].data)
        assert seen[0][0].full_url.endswith("/api/chat") and body["tools"] == tools
        assert body["options"] == {"num_predict": 512, "temperature": 0.2}
        assert r.tool_calls == [{"id": "", "name": "get_weather", "arguments": {"city": "Tokyo"}}]

    def test_through_a_loopback_stand_in(self):
        # A real HTTP server on 127.0.0.1 answering /api/generate: the default urlopen path.
        got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = json.dumps(TestOllama.REPLY).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            b = OllamaBackend("tiny", base_url=f"http://127.0.0.1:{srv.server_port}", timeout=5)
            r = b.complete("hi", max_new_tokens=4)
            assert r.completion == "The sky is blue." and got[0]["model"] == "tiny"
        finally:
            srv.shutdown()
            srv.server_close()


@pytest.fixture(scope="module")
def served():
    """`g2c serve --port 0` on ../shared/models (the README's command); its URL."""
    if not G2C_BIN:
        pytest.fail("G2C_BIN is not set: make test-python sets it to the built g2c")
    p = subprocess.Popen([G2C_BIN, "serve", "--port", "0", "--models-dir", MODELS, "-t", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on (http://\S+)", line)
    if not m:
        p.kill()
        pytest.fail(f"g2c serve did not start: {line!r} {p.stderr.read()}")
    yield m.group(1)
    p.terminate()
    p.wait(timeout=10)


class TestOllamaServed:
    # Ollama's API treats an empty prompt as "load the model", so these continue a prompt and compare with
    # the in-process backend (itself checked against the golden above).
    PROMPT = "Once upon a time"

    def test_ollama_and_openai_against_g2c_serve_equal_in_process(self, served):
        want = local().complete(self.PROMPT, max_new_tokens=40, temperature=0.0).completion
        assert GREEDY_260K.startswith(self.PROMPT + want[:20])
        o = OllamaBackend("stories260K", base_url=served, timeout=30)
        assert o.complete(self.PROMPT, max_new_tokens=40, temperature=0.0).completion == want
        assert "".join(o.stream(self.PROMPT, max_new_tokens=40, temperature=0.0)) == want
        a = OpenAIBackend("stories260K", base_url=served + "/v1", timeout=30)
        assert a.complete(self.PROMPT, max_new_tokens=40, temperature=0.0).completion == want
        assert "".join(a.stream(self.PROMPT, max_new_tokens=40, temperature=0.0)) == want

    def test_prodlm_manifest_round_trip(self, served, tmp_path):
        path = write_prodlm_manifest(str(tmp_path / "prodlm.json"), backend="ollama", model_id="stories260K",
                                     base_url=served, quantization="F32")
        b = load_prodlm_backend(path)
        assert b.info.name == "prodlm" and b.info.extra["quantization"] == "F32"
        want = local().complete(self.PROMPT, max_new_tokens=40, temperature=0.0).completion
        assert b.complete(self.PROMPT, max_new_tokens=40, temperature=0.0).completion == want


# --- Benchmark ---------------------------------------------------------------------------------------------

class Scripted(Backend):
    """A Python backend (the MLX exercise's shape): latencies and token counts from a list."""

    def __init__(self, latencies, tokens, name="scripted"):
        self._lat, self._tok, self._i, self._name = list(latencies), list(tokens), 0, name

    @property
    def info(self):
        return BackendInfo(self._name, "scripted-model")

    def complete(self, prompt, *, max_new_tokens=128, temperature=1.0, top_k=None, top_p=None):
        i = self._i
        self._i += 1
        return InferenceResult(prompt, f"answer {i}", 3, self._tok[i], self._lat[i], self.info)


class TestBenchmark:
    def test_fields_and_nearest_rank_percentiles(self):
        lat = [10.0, 50.0, 20.0, 40.0, 30.0, 100.0, 60.0, 70.0, 80.0, 90.0]
        res = benchmark(Scripted(lat, [5] * 10), [f"p{i}" for i in range(10)], metadata={"run": "t"})
        assert res.n == 10 and res.latency_ms_total == pytest.approx(550.0)
        assert res.latency_ms_mean == pytest.approx(55.0)
        # Sorted: 10..100; nearest rank p50 = 5th = 50, p90 = 9th = 90.
        assert res.latency_ms_p50 == 50.0 and res.latency_ms_p90 == 90.0
        assert res.completion_tokens_total == 50
        assert res.tokens_per_second_overall == pytest.approx(50 / 0.55)
        assert res.per_request_latency_ms == lat
        assert res.per_request_tokens_per_second[0] == pytest.approx(500.0)
        assert res.metadata["run"] == "t" and res.metadata["max_new_tokens"] == 64
        assert len(res.results) == 10 and res.backend.name == "scripted"

    def test_unknown_counts_give_none(self):
        res = benchmark(Scripted([10.0, 20.0], [5, None]), ["a", "b"])
        assert res.completion_tokens_total is None and res.tokens_per_second_overall is None
        assert res.per_request_tokens_per_second[1] is None
        with pytest.raises(ValueError):
            benchmark(Scripted([], []), [])

    def test_local_backend_benchmark(self):
        res = benchmark(local(), ["Once upon a time"] * 4, max_new_tokens=16, temperature=0.0)
        assert res.n == 4 and res.completion_tokens_total == 64
        assert res.tokens_per_second_overall > 0
        assert res.latency_ms_p50 <= res.latency_ms_p90

    def test_python_subclass_in_the_router_and_exceptions_unchanged(self):
        class Down(Backend):
            @property
            def info(self):
                return BackendInfo("down", "none")

            def complete(self, prompt, *, max_new_tokens=128, temperature=1.0, top_k=None, top_p=None):
                raise ConnectionError("down on purpose")

        tiny = local()
        r = RouterBackend([tiny, Scripted([5.0] * 4, [2] * 4, name="big")],
                          [RouteRule("long", 1, min_prompt_chars=40)])
        short = r.complete("short", max_new_tokens=24, temperature=0.0)
        assert short.completion == tiny.complete("short", max_new_tokens=24, temperature=0.0).completion
        assert short.metadata["router"]["decision"] == "default"
        long = r.complete("x" * 50)
        assert long.completion == "answer 0" and long.metadata["router"]["decision"] == "rule:long"
        res = benchmark(r, ["x" * 50, "y" * 60])
        assert res.n == 2 and res.results[0].metadata["router"]["backend_index"] == 1
        # Fallback past a Python backend's failure, and the error itself when nothing is left.
        fb = RouterBackend([Down(), Scripted([1.0], [1])])
        out = fb.complete("hi")
        assert out.metadata["router"]["fallbacks"][0]["error"] == "down on purpose"
        with pytest.raises(ConnectionError, match="down on purpose"):
            RouterBackend([Down()]).complete("hi")
