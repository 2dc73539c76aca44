// _g2c: the C++ core for `import g2c` (pybind11). Thin on purpose: models, tokenizers and backends as
// opaque handles, every result as a JSON string the Python package (python/g2c/) turns into the seed's
// dataclasses. The GIL is released while the engine or an HTTP call runs; a streaming callback takes it
// back for each piece, and an exception raised there (KeyboardInterrupt, GeneratorExit, anything)
// cancels the generation and comes out of the call unchanged.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/core/error.hpp"
#include "g2c/inference/artifact.hpp"
#include "g2c/inference/backend.hpp"
#include "g2c/inference/bench_backends.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/ollama.hpp"
#include "g2c/inference/openai.hpp"
#include "g2c/inference/prodlm.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/model/model.hpp"
#include "g2c/tokenizer/tokenizer.hpp"

namespace py = pybind11;
using namespace g2c;
using namespace g2c::inference;

namespace {

// A loaded model with the context options its backends will use.
struct PyModel {
  std::shared_ptr<const model::Model> model;
  model::ContextOptions context;
};

struct PyTokenizer {
  std::shared_ptr<const tokenizer::Tokenizer> tok;
};

// Any Backend built in C++ (local, artifact, the HTTP backends, ProdLM, a spec).
struct PyBackend {
  std::shared_ptr<Backend> backend;
};

GenerateOptions options_from(const std::string& opts_json) {
  const nlohmann::json j = nlohmann::json::parse(opts_json);
  GenerateOptions o;
  o.max_new_tokens = j.value("max_new_tokens", 128);
  o.temperature = j.value("temperature", 1.0);
  if (j.contains("top_k") && !j["top_k"].is_null()) o.top_k = j["top_k"].get<int>();
  if (j.contains("top_p") && !j["top_p"].is_null()) o.top_p = j["top_p"].get<double>();
  if (j.contains("seed") && !j["seed"].is_null()) o.seed = j["seed"].get<std::uint64_t>();
  if (j.contains("stop") && !j["stop"].is_null()) o.stop = j["stop"].get<std::vector<std::string>>();
  o.logprobs = j.value("logprobs", false);
  if (j.contains("grammar") && !j["grammar"].is_null()) o.grammar = j["grammar"].get<std::string>();
  if (j.contains("json_schema")) o.json_schema = j["json_schema"];
  return o;
}

std::vector<ChatMessage> messages_from(const std::string& messages_json) {
  std::vector<ChatMessage> out;
  for (const auto& m : nlohmann::json::parse(messages_json)) {
    ChatMessage c;
    c.role = m.value("role", "");
    c.content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    if (m.contains("tool_calls") && m["tool_calls"].is_array())
      for (const auto& t : m["tool_calls"]) c.tool_calls.push_back(tool_call_from_json(t));
    c.tool_name = m.value("tool_name", m.value("name", ""));
    c.tool_call_id = m.value("tool_call_id", "");
    out.push_back(std::move(c));
  }
  return out;
}

nlohmann::json chat_json(const ChatResult& r) {
  auto opt = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json calls = nlohmann::json::array();
  for (const ToolCall& c : r.tool_calls)
    calls.push_back(
        {{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}, {"arguments_valid", c.arguments_valid}});
  return {{"message", message_to_json(r.message, false)},
          {"tool_calls", calls},
          {"prompt_tokens", opt(r.prompt_tokens)},
          {"completion_tokens", opt(r.completion_tokens)},
          {"latency_ms", r.latency_ms},
          {"timings", r.timings},
          {"done_reason", r.done_reason},
          {"backend", to_json(r.backend)},
          {"metadata", r.metadata}};
}

// The Python callback for streaming: called with the GIL held; a Python exception is stored and the
// generation canceled, then rethrown once the C++ call has returned.
struct PyChunkSink {
  py::object fn;
  std::optional<py::error_already_set> error;
  bool operator()(std::string_view piece) {
    py::gil_scoped_acquire gil;
    try {
      py::object r = fn(py::str(piece.data(), piece.size()));
      return r.is_none() || r.cast<bool>();
    } catch (py::error_already_set& e) {
      error.emplace(std::move(e));
      return false;
    }
  }
};

}  // namespace

PYBIND11_MODULE(_g2c, m) {
  m.doc() = "g2c's C++ core (models, tokenizers, backends); use the g2c package, not this module";

  // Errors: the C++ message kept, the Python type chosen by kind (the package re-exports Error).
  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<OllamaError> ollama_error(m, "OllamaError", error.ptr());
  static py::exception<OpenAIError> openai_error(m, "OpenAIError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ArtifactNotFound& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const OllamaError& e) {
      ollama_error(e.what());
    } catch (const OpenAIError& e) {
      openai_error(e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      // A model or tokenizer that is not there; other I/O failures stay g2c.Error.
      const std::string msg = e.what();
      if (msg.find("No such file") != std::string::npos || msg.find("not found") != std::string::npos ||
          msg.find("cannot open") != std::string::npos || msg.find("does not exist") != std::string::npos)
        PyErr_SetString(PyExc_FileNotFoundError, e.what());
      else
        error(e.what());
    } catch (const Error& e) {
      error(e.what());
    }
  });

  py::class_<PyModel>(m, "Model")
      .def_property_readonly("path", [](const PyModel& p) { return p.model->path(); })
      .def_property_readonly("arch", [](const PyModel& p) { return p.model->hparams().arch_name; })
      .def_property_readonly("n_vocab", [](const PyModel& p) { return p.model->hparams().n_vocab; })
      .def_property_readonly("n_ctx_train", [](const PyModel& p) { return p.model->hparams().n_ctx_train; })
      .def_property_readonly("is_gguf", [](const PyModel& p) { return p.model->gguf() != nullptr; })
      .def_property_readonly("threads", [](const PyModel& p) { return p.context.threads; })
      .def_property_readonly("ctx", [](const PyModel& p) { return p.context.n_ctx; });

  m.def(
      "load_model",
      [](const std::string& path, int threads, int ctx) {
        PyModel p;
        {
          py::gil_scoped_release nogil;
          p.model = model::Model::load(path);
        }
        p.context.threads = threads;
        p.context.n_ctx = ctx;
        return p;
      },
      py::arg("path"), py::arg("threads") = 0, py::arg("ctx") = 0);

  py::class_<PyTokenizer>(m, "Tokenizer")
      .def_property_readonly("n_vocab", [](const PyTokenizer& t) { return t.tok->n_vocab(); })
      .def(
          "encode",
          [](const PyTokenizer& t, const std::string& text, bool add_special, bool parse_special) {
            return t.tok->encode(text, add_special, parse_special);
          },
          py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false)
      .def("decode", [](const PyTokenizer& t, const std::vector<std::int32_t>& ids) { return t.tok->decode(ids); });

  m.def("tokenizer_from_model", [](const PyModel& p) {
    if (p.model->gguf() == nullptr)
      throw InvalidArgument("the model " + p.model->path() +
                            " is a llama2.c checkpoint: give its tokenizer.bin to load_tokenizer()");
    return PyTokenizer{tokenizer::Tokenizer::from_gguf(*p.model->gguf())};
  });
  m.def("tokenizer_from_llama2c", [](const std::string& path, int vocab_size) {
    return PyTokenizer{tokenizer::Tokenizer::from_llama2c(path, vocab_size)};
  });

  py::class_<PyBackend>(m, "Backend")
      .def("info", [](const PyBackend& b) { return to_json(b.backend->info()).dump(); })
      .def("complete",
           [](PyBackend& b, const std::string& prompt, const std::string& opts) {
             const GenerateOptions o = options_from(opts);
             InferenceResult r;
             {
               py::gil_scoped_release nogil;
               r = b.backend->complete(prompt, o);
             }
             return to_json(r).dump();
           })
      .def("stream",
           [](PyBackend& b, const std::string& prompt, const std::string& opts, py::object on_chunk) {
             const GenerateOptions o = options_from(opts);
             PyChunkSink sink{std::move(on_chunk), std::nullopt};
             InferenceResult r;
             {
               py::gil_scoped_release nogil;
               r = b.backend->stream(prompt, o, [&](std::string_view s) { return sink(s); });
             }
             if (sink.error) throw std::move(*sink.error);
             return to_json(r).dump();
           })
      .def("chat",
           [](PyBackend& b, const std::string& messages, const std::string& tools, const std::string& opts,
              py::object on_chunk) {
             const GenerateOptions o = options_from(opts);
             const std::vector<ChatMessage> msgs = messages_from(messages);
             std::vector<ToolSpec> specs;
             for (const auto& t : nlohmann::json::parse(tools)) specs.push_back(t);
             PyChunkSink sink{std::move(on_chunk), std::nullopt};
             ChatResult r;
             {
               py::gil_scoped_release nogil;
               if (sink.fn.is_none())
                 r = b.backend->chat(msgs, specs, o);
               else
                 r = b.backend->chat_stream(msgs, specs, o, [&](std::string_view s) { return sink(s); });
             }
             if (sink.error) throw std::move(*sink.error);
             return chat_json(r).dump();
           })
      .def("loglikelihood", [](PyBackend& b, const std::string& context, const std::string& continuation) {
        LoglikResult r;
        {
          py::gil_scoped_release nogil;
          r = b.backend->loglikelihood(context, continuation);
        }
        return to_json(r).dump();
      });

  m.def(
      "make_local",
      [](const PyModel& p, const PyTokenizer& t, const std::string& model_id, std::optional<int> eos_id,
         const std::string& name, const std::string& extra, bool naive) {
        model::ContextOptions co = p.context;
        co.naive = naive;
        return PyBackend{std::make_shared<LocalTransformerBackend>(p.model, t.tok, model_id, eos_id, name,
                                                                   nlohmann::json::parse(extra), co)};
      },
      py::arg("model"), py::arg("tokenizer"), py::arg("model_id"), py::arg("eos_id"), py::arg("name"), py::arg("extra"),
      py::arg("naive") = false);
  m.def(
      "load_artifact",
      [](const std::string& name, int threads, bool required) -> std::optional<PyBackend> {
        std::unique_ptr<ArtifactBackend> b;
        {
          py::gil_scoped_release nogil;
          b = load_artifact_backend(name, threads, model::KvType::kF32, required);
        }
        if (!b) return std::nullopt;
        return PyBackend{std::move(b)};
      },
      py::arg("name"), py::arg("threads") = 0, py::arg("required") = true);
  m.def(
      "load_default",
      [](const std::string& kind, const std::string& manifest_path, const std::string& local_name) {
        DefaultBackendOptions o;
        o.manifest_path = manifest_path;
        o.local_name_or_path = local_name;
        o.local_factory = local_backend_factory();
        std::unique_ptr<Backend> b;
        {
          py::gil_scoped_release nogil;
          b = load_default_backend(kind, o);
        }
        return PyBackend{std::move(b)};
      },
      py::arg("kind"), py::arg("manifest_path") = "", py::arg("local_name") = "");
  m.def("make_backend", [](const std::string& spec) {
    std::unique_ptr<Backend> b;
    {
      py::gil_scoped_release nogil;
      b = make_backend(parse_backend_spec(spec));
    }
    return PyBackend{std::move(b)};
  });
  m.def(
      "make_openai",
      [](const std::string& base_url, const std::string& model, const std::string& api_key, double timeout,
         const std::string& name) {
        OpenAIConfig c{base_url, model, api_key, timeout, nullptr, name, nlohmann::json::object()};
        return PyBackend{std::make_shared<OpenAIBackend>(c)};
      },
      py::arg("base_url"), py::arg("model"), py::arg("api_key") = "", py::arg("timeout") = 120.0,
      py::arg("name") = "openai");
  m.def("default_prodlm_manifest_path", [] { return default_prodlm_manifest_path(); });
  m.def("write_prodlm_manifest", [](const std::string& path, const std::string& manifest_json) {
    write_prodlm_manifest(path, ProdLMManifest::from_json(nlohmann::json::parse(manifest_json)));
  });
  m.def("load_prodlm_manifest", [](const std::string& path) { return load_prodlm_manifest(path).to_json().dump(); });
  m.def("load_prodlm_backend", [](const std::string& path) { return PyBackend{load_prodlm_backend(path)}; });
  m.def("isa", [] { return std::string(kernels::kernels().isa_name); });
}
