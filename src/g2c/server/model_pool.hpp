#pragma once
// The models a server can serve, and the ones it has loaded.
//
// Names: a request's `model` is looked up, in order, as the name of a `--model` file (its file name
// without extension), a file in the models folders (NAME.gguf, NAME.bin or NAME itself; a name with
// '/' or starting with '.' never reaches the file system this way), then as an Ollama model name in
// Ollama's local store (inference/ollama_store.hpp). A ":latest" tag is the same model as no tag, as in
// Ollama. Files that do not load as a model (a llama2.c tokenizer.bin, a vocab-only GGUF) are not listed.
//
// Loading: a model loads on first use (one engine::Scheduler of `parallel` sequences of `n_ctx`
// positions, and an embedding context on first embedding request) and stays loaded while requests hold a
// Lease; when the last lease ends it expires after its keep-alive (the request's, else the server's;
// 0 = unload now, negative = never) and a reaper thread unloads it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "g2c/engine/embed.hpp"
#include "g2c/engine/open_model.hpp"
#include "g2c/engine/scheduler.hpp"
#include "g2c/tokenizer/chat_template.hpp"

namespace g2c::server {

struct PoolOptions {
  std::vector<std::string> models_dirs;  // searched in order; the first is where copy writes
  std::vector<std::string> model_files;  // --model files, served under their stem
  std::int32_t parallel = 4;
  std::int32_t n_ctx = 2048;  // per sequence
  std::int32_t threads = 0;
  std::int32_t queue = 64;
  model::KvType kv_type = model::KvType::kF32;  // the KV cache of every loaded model (g2c serve --kv-type)
  std::chrono::nanoseconds keep_alive = std::chrono::minutes(5);
  bool search_ollama_store = true;
};

// What the listing endpoints say of a model file (read once per file version, then cached).
struct ModelFile {
  std::string name;  // "stories260K:latest"
  std::string path;
  std::string source;  // "file" (--model), "models_dir", "ollama"
  std::uint64_t size = 0;
  std::int64_t modified_unix = 0;  // seconds
  std::string digest;              // sha256 hex of the file (Ollama store: the model layer's)
  std::string arch;
  std::string format;  // "gguf" | "llama2c"
  std::uint64_t n_params = 0;
  std::string quantization;
  std::int64_t n_ctx_train = 0;
  std::int64_t n_embd = 0;
  std::string chat_template;                           // the GGUF's tokenizer.chat_template, "" when none
  std::string tool_use_template;                       // tokenizer.chat_template.tool_use, "" when none
  std::string bos_text, eos_text;                      // the BOS / EOS tokens' text, for the templates
  nlohmann::json metadata = nlohmann::json::object();  // GGUF key/values (arrays kept whole)
};

nlohmann::json details_json(const ModelFile& f);  // Ollama's `details` object
std::string rfc3339_utc(std::int64_t unix_ns);    // "2025-10-26T17:21:21.196249Z"

class ServedModel {
 public:
  ServedModel(const ModelFile& file, const PoolOptions& opts);
  ~ServedModel();
  const ModelFile& file() const { return file_; }
  const model::Model& model() const { return *opened_.model; }
  const tokenizer::Tokenizer& tokenizer() const { return *opened_.tokenizer; }
  engine::Scheduler& scheduler() { return *scheduler_; }
  const engine::Scheduler& scheduler() const { return *scheduler_; }
  // The chat template chat requests render with, and whether the GGUF had one (generate requests with
  // no template are sent as they are, as Ollama's default template does).
  const tokenizer::ChatTemplate& chat_template() const { return chat_template_; }
  // The template for requests with tools: tokenizer.chat_template.tool_use when the GGUF has one.
  const tokenizer::ChatTemplate& tool_template() const { return tool_template_; }
  bool has_chat_template() const { return !file_.chat_template.empty(); }
  std::int32_t n_ctx() const { return scheduler_->n_ctx(); }
  std::int64_t load_ns() const { return load_ns_; }
  std::uint64_t memory_bytes() const;  // weights + KV caches
  // The largest num_ctx a request asked for beyond n_ctx() (0: none did); /api/ps reports it, since such
  // requests ran clamped to n_ctx().
  void note_clamped_ctx(std::int32_t asked) const;
  std::int32_t clamped_ctx_max() const { return clamped_ctx_max_.load(); }
  // Runs `fn(embedder)` under the embedding context's lock, creating the context on first use.
  template <typename Fn>
  auto with_embedder(Fn&& fn) {
    std::lock_guard lk(embed_mu_);
    if (!embedder_) embedder_ = std::make_unique<engine::Embedder>(model(), tokenizer(), n_ctx(), threads_);
    return fn(*embedder_);
  }

 private:
  friend class ModelPool;
  ModelFile file_;
  engine::OpenedModel opened_;
  std::unique_ptr<engine::Scheduler> scheduler_;
  tokenizer::ChatTemplate chat_template_;
  tokenizer::ChatTemplate tool_template_;
  std::int32_t threads_ = 0;
  std::int64_t load_ns_ = 0;
  mutable std::atomic<std::int32_t> clamped_ctx_max_{0};
  std::mutex embed_mu_;
  std::unique_ptr<engine::Embedder> embedder_;

  // The pool's bookkeeping, guarded by the pool's mutex.
  int leases_ = 0;
  std::chrono::nanoseconds keep_alive_{0};
  std::chrono::steady_clock::time_point expires_{};
  std::int64_t expires_unix_ns_ = 0;
};

class ModelPool;

// Holds a loaded model for one request; the keep-alive clock starts when the last lease ends.
class Lease {
 public:
  Lease() = default;
  Lease(ModelPool* pool, std::shared_ptr<ServedModel> m, std::optional<std::chrono::nanoseconds> keep_alive,
        std::int64_t load_ns)
      : pool_(pool), m_(std::move(m)), keep_alive_(keep_alive), load_ns_(load_ns) {}
  Lease(Lease&& o) noexcept { *this = std::move(o); }
  Lease& operator=(Lease&& o) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { release(); }
  ServedModel* operator->() const { return m_.get(); }
  ServedModel& operator*() const { return *m_; }
  // Time this request spent getting the model ready (the load itself, or ~0 when it was loaded).
  std::int64_t load_ns() const { return load_ns_; }
  void release();

 private:
  ModelPool* pool_ = nullptr;
  std::shared_ptr<ServedModel> m_;
  std::optional<std::chrono::nanoseconds> keep_alive_;
  std::int64_t load_ns_ = 0;
};

struct LoadedInfo {
  ModelFile file;
  std::int64_t expires_unix_ns = 0;  // 0: while in use; INT64_MAX: never
  std::uint64_t memory_bytes = 0;
  std::int32_t n_ctx = 0;
  std::int32_t parallel = 0;
  std::int32_t clamped_ctx_max = 0;  // ServedModel::clamped_ctx_max()
  model::KvType kv_type = model::KvType::kF32;
  engine::SchedulerStats stats;
};

class ModelPool {
 public:
  explicit ModelPool(PoolOptions opts);
  ~ModelPool();
  ModelPool(const ModelPool&) = delete;
  ModelPool& operator=(const ModelPool&) = delete;

  const PoolOptions& options() const { return opts_; }
  // Every model that can be served, by name.
  std::vector<ModelFile> list();
  // The model a request names, without loading it; nullopt when none.
  std::optional<ModelFile> find(const std::string& name);
  // The model loaded (loading it now if needed). Throws ApiError 404 "model 'x' not found" for an
  // unknown name, 500 when the file does not load.
  Lease acquire(const std::string& name, std::optional<std::chrono::nanoseconds> keep_alive);
  // Unloads now if no request holds it, else when the last one ends. False when not loaded.
  bool unload(const std::string& name);
  std::vector<LoadedInfo> loaded();
  // Deletes a models-folder file (unloading it first); 404 for unknown names, 400 for --model files and
  // models in Ollama's store.
  void remove(const std::string& name);
  // Copies a model to a new name in the first models folder (a hard link when possible; else a copy to a
  // temporary name, renamed). 404 unknown source, 400 invalid destination name or one that exists.
  void copy(const std::string& source, const std::string& destination);
  // Stops the reaper and unloads everything (in-flight requests are canceled by their schedulers).
  void shutdown();

 private:
  friend class Lease;
  void release(const std::shared_ptr<ServedModel>& m, std::optional<std::chrono::nanoseconds> keep_alive);
  void reap();
  std::optional<ModelFile> describe(const std::string& path, const std::string& name, const std::string& source);

  PoolOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<ServedModel>> loaded_;  // by path
  std::map<std::string, std::shared_ptr<std::mutex>> loading_;  // one load at a time per path
  std::map<std::string, ModelFile> describe_cache_;             // by path + size + mtime
  std::thread reaper_;
};

// "stories260K" and "stories260K:latest" -> "stories260K"; other tags are kept.
std::string strip_latest(const std::string& name);

}  // namespace g2c::server
