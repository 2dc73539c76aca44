#include "g2c/server/model_pool.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "g2c/core/log.hpp"
#include "g2c/core/timer.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/inference/local_backend.hpp"
#include "g2c/inference/ollama_store.hpp"
#include "g2c/server/api_error.hpp"

namespace g2c::server {
namespace fs = std::filesystem;
namespace {

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

nlohmann::json value_json(const gguf::Value& v) {
  if (v.is_string()) return v.as_str();
  if (v.is_bool()) return v.as_bool();
  if (v.is_float()) return v.as_f64();
  if (v.is_integer())
    return v.type() == gguf::ValueType::UINT64 ? nlohmann::json(v.as_u64()) : nlohmann::json(v.as_i64());
  nlohmann::json a = nlohmann::json::array();
  if (v.elem_type() == gguf::ValueType::STRING) {
    for (const std::string& s : v.strings()) a.push_back(s);
  } else if (v.elem_type() == gguf::ValueType::FLOAT32 || v.elem_type() == gguf::ValueType::FLOAT64) {
    for (std::size_t i = 0; i < v.size(); ++i) a.push_back(v.float_at(i));
  } else {
    for (std::size_t i = 0; i < v.size(); ++i) a.push_back(v.int_at(i));
  }
  return a;
}

bool simple_name(const std::string& n) {
  if (n.empty() || n.size() > 200 || n[0] == '.') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::int64_t now_unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string human_params(std::uint64_t n) {
  if (n >= 1'000'000'000ULL) return fmt::format("{:.1f}B", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000ULL) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  if (n >= 1'000ULL) return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

}  // namespace

std::string strip_latest(const std::string& name) {
  if (name.size() > 7 && name.ends_with(":latest")) return name.substr(0, name.size() - 7);
  return name;
}

std::string rfc3339_utc(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, static_cast<int>((unix_ns % 1'000'000'000) / 1000));
}

nlohmann::json details_json(const ModelFile& f) {
  return {{"parent_model", ""},
          {"format", f.format},
          {"family", f.arch},
          {"families", nlohmann::json::array({f.arch})},
          {"parameter_size", human_params(f.n_params)},
          {"quantization_level", f.quantization}};
}

ServedModel::ServedModel(const ModelFile& file, const PoolOptions& opts) : file_(file), threads_(opts.threads) {
  const std::int64_t t0 = now_ns();
  opened_ = engine::open_model(file.path);
  engine::SchedulerOptions so;
  so.n_parallel = opts.parallel;
  so.n_ctx = opts.n_ctx;
  // Learned position embeddings (gpt2) have no position past the training context; RoPE models may go
  // beyond it (as llama.cpp allows, with a warning there).
  const auto& hp = opened_.model->hparams();
  if (hp.arch == model::Arch::kGpt2 && hp.n_ctx_train > 0 && so.n_ctx > hp.n_ctx_train) {
    log_warn("serve: {}: --ctx {} clamped to the {} learned positions of this gpt2 model", file.name, so.n_ctx,
             hp.n_ctx_train);
    so.n_ctx = static_cast<std::int32_t>(hp.n_ctx_train);
  }
  so.threads = opts.threads;
  so.queue_max = opts.queue;
  so.kv_type = opts.kv_type;
  scheduler_ = std::make_unique<engine::Scheduler>(*opened_.model, *opened_.tokenizer, so);
  chat_template_ = tokenizer::detect_chat_template(file.chat_template);
  tool_template_ =
      file.tool_use_template.empty() ? chat_template_ : tokenizer::detect_chat_template(file.tool_use_template);
  load_ns_ = now_ns() - t0;
}

ServedModel::~ServedModel() {
  if (scheduler_) scheduler_->shutdown(engine::Scheduler::ShutdownMode::kCancel);
}

std::uint64_t ServedModel::memory_bytes() const {
  const auto& hp = model().hparams();
  const std::uint64_t elem = scheduler_->options().kv_type == model::KvType::kF16 ? 2 : sizeof(float);
  const std::uint64_t kv = 2ULL * static_cast<std::uint64_t>(hp.n_layer * hp.n_embd_kv()) * elem *
                           static_cast<std::uint64_t>(n_ctx()) *
                           static_cast<std::uint64_t>(scheduler_->options().n_parallel);
  return model().weight_bytes() + kv;
}

void ServedModel::note_clamped_ctx(std::int32_t asked) const {
  std::int32_t cur = clamped_ctx_max_.load();
  while (asked > cur && !clamped_ctx_max_.compare_exchange_weak(cur, asked)) {
  }
}

Lease& Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = std::exchange(o.pool_, nullptr);
    m_ = std::move(o.m_);
    keep_alive_ = o.keep_alive_;
    load_ns_ = o.load_ns_;
  }
  return *this;
}

void Lease::release() {
  if (pool_ && m_) pool_->release(m_, keep_alive_);
  pool_ = nullptr;
  m_.reset();
}

ModelPool::ModelPool(PoolOptions opts) : opts_(std::move(opts)) {
  reaper_ = std::thread([this] { reap(); });
}

ModelPool::~ModelPool() { shutdown(); }

void ModelPool::shutdown() {
  std::map<std::string, std::shared_ptr<ServedModel>> gone;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    gone.swap(loaded_);
    cv_.notify_all();
  }
  if (reaper_.joinable()) reaper_.join();
  // Running generations end now as canceled, so their streams finish; leases keep a model's memory
  // until the requests holding them have written their last chunk.
  for (auto& [path, m] : gone) m->scheduler_->shutdown(engine::Scheduler::ShutdownMode::kCancel);
  gone.clear();
}

std::optional<ModelFile> ModelPool::describe(const std::string& path, const std::string& name,
                                             const std::string& source) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  const auto mtime = fs::last_write_time(path, ec);
  const auto mtime_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::file_clock::to_sys(mtime).time_since_epoch())
          .count();
  const std::string key = fmt::format("{}\n{}\n{}", path, size, mtime_s);
  {
    std::lock_guard lk(mu_);
    if (auto it = describe_cache_.find(key); it != describe_cache_.end()) {
      ModelFile f = it->second;
      f.name = name;
      f.source = source;
      return f.arch.empty() ? std::nullopt : std::optional<ModelFile>(f);
    }
  }
  ModelFile f;
  f.name = name;
  f.path = path;
  f.source = source;
  f.size = size;
  f.modified_unix = mtime_s;
  try {
    std::unique_ptr<model::Model> m = model::Model::load(path);
    const auto& hp = m->hparams();
    f.arch = hp.arch_name;
    f.n_ctx_train = hp.n_ctx_train;
    f.n_embd = hp.n_embd;
    f.quantization = inference::model_quantization(*m);
    if (const gguf::File* g = m->gguf()) {
      f.format = "gguf";
      for (const auto& t : g->tensors()) f.n_params += static_cast<std::uint64_t>(t.n_elements());
      for (const auto& kv : g->kvs()) f.metadata[kv.key] = value_json(kv.value);
      const tokenizer::GgufChat chat = tokenizer::read_gguf_chat(*g);
      f.chat_template = chat.chat_template;
      f.tool_use_template = chat.tool_use_template;
      f.bos_text = chat.bos_token;
      f.eos_text = chat.eos_token;
    } else {
      f.format = "llama2c";
      f.n_params = m->weight_bytes() / sizeof(float);
    }
    f.digest = sha256_file(path);
  } catch (const std::exception& e) {
    log_debug("serve: {} is not a servable model: {}", path, e.what());
    f.arch.clear();
  }
  std::lock_guard lk(mu_);
  describe_cache_[key] = f;
  if (f.arch.empty()) return std::nullopt;
  return f;
}

std::vector<ModelFile> ModelPool::list() {
  std::vector<ModelFile> out;
  std::vector<std::string> seen;
  auto add = [&](const std::string& path, const std::string& stem, const std::string& source) {
    const std::string name = stem + ":latest";
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) return;
    if (auto f = describe(path, name, source)) {
      seen.push_back(name);
      out.push_back(std::move(*f));
    }
  };
  for (const std::string& p : opts_.model_files) add(p, fs::path(p).stem().string(), "file");
  for (const std::string& dir : opts_.models_dirs) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file(ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    // NAME.gguf is listed as NAME; NAME.bin too unless NAME.gguf exists, then under its file name.
    for (const fs::path& p : files)
      if (p.extension() == ".gguf") add(p.string(), p.stem().string(), "models_dir");
    for (const fs::path& p : files) {
      if (p.extension() != ".bin") continue;
      const bool clash = fs::exists(p.parent_path() / (p.stem().string() + ".gguf"), ec);
      add(p.string(), clash ? p.filename().string() : p.stem().string(), "models_dir");
    }
  }
  return out;
}

std::optional<ModelFile> ModelPool::find(const std::string& requested) {
  const std::string name = strip_latest(requested);
  if (name.empty()) return std::nullopt;
  for (const std::string& p : opts_.model_files)
    if (fs::path(p).stem().string() == name) return describe(p, name + ":latest", "file");
  if (simple_name(name)) {
    for (const std::string& dir : opts_.models_dirs) {
      for (const char* ext : {".gguf", ".bin", ""}) {
        const fs::path p = fs::path(dir) / (name + ext);
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) continue;
        if (*ext == '\0' && p.extension() != ".gguf" && p.extension() != ".bin") continue;
        if (auto f = describe(p.string(), name + ":latest", "models_dir")) return f;
      }
    }
  }
  if (opts_.search_ollama_store) {
    try {
      if (auto ref = inference::find_ollama_model(requested, inference::default_ollama_roots())) {
        auto f = describe(ref->blob_path, ref->name.display(), "ollama");
        if (f) f->digest = ref->digest.substr(ref->digest.find(':') + 1);
        return f;
      }
    } catch (const std::exception& e) {
      log_warn("serve: Ollama store: {}", e.what());
    }
  }
  return std::nullopt;
}

Lease ModelPool::acquire(const std::string& name, std::optional<std::chrono::nanoseconds> keep_alive) {
  const std::int64_t t0 = now_ns();
  std::optional<ModelFile> f = find(name);
  if (!f) throw ApiError(404, fmt::format("model '{}' not found", name), "model");
  std::shared_ptr<std::mutex> load_mu;
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw ApiError(503, "server is shutting down");
    if (auto it = loaded_.find(f->path); it != loaded_.end()) {
      ++it->second->leases_;
      return Lease(this, it->second, keep_alive, now_ns() - t0);
    }
    auto& m = loading_[f->path];
    if (!m) m = std::make_shared<std::mutex>();
    load_mu = m;
  }
  std::lock_guard load_lk(*load_mu);  // one load of a file at a time; others wait and find it loaded
  {
    std::lock_guard lk(mu_);
    if (auto it = loaded_.find(f->path); it != loaded_.end()) {
      ++it->second->leases_;
      return Lease(this, it->second, keep_alive, now_ns() - t0);
    }
  }
  std::shared_ptr<ServedModel> m;
  try {
    m = std::make_shared<ServedModel>(*f, opts_);
  } catch (const std::exception& e) {
    throw ApiError(500, fmt::format("model '{}' failed to load: {}", name, e.what()));
  }
  log_info("serve: loaded {} ({}) in {:.1f} ms: {} sequences of {} positions", f->name, f->path,
           static_cast<double>(m->load_ns()) / 1e6, opts_.parallel, m->n_ctx());
  std::lock_guard lk(mu_);
  m->leases_ = 1;
  loaded_[f->path] = m;
  return Lease(this, m, keep_alive, now_ns() - t0);
}

void ModelPool::release(const std::shared_ptr<ServedModel>& m, std::optional<std::chrono::nanoseconds> keep_alive) {
  std::lock_guard lk(mu_);
  if (--m->leases_ > 0) return;
  m->keep_alive_ = keep_alive.value_or(opts_.keep_alive);
  const auto ka = m->keep_alive_;
  if (ka == std::chrono::nanoseconds::max()) {
    m->expires_ = std::chrono::steady_clock::time_point::max();
    m->expires_unix_ns_ = INT64_MAX;
  } else {
    m->expires_ = std::chrono::steady_clock::now() + ka;
    m->expires_unix_ns_ = now_unix_ns() + ka.count();
  }
  cv_.notify_all();
}

void ModelPool::reap() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    auto next = std::chrono::steady_clock::time_point::max();
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<ServedModel>> gone;
    for (auto it = loaded_.begin(); it != loaded_.end();) {
      ServedModel& m = *it->second;
      if (m.leases_ == 0 && m.expires_ <= now) {
        gone.push_back(std::move(it->second));
        it = loaded_.erase(it);
        continue;
      }
      if (m.leases_ == 0) next = std::min(next, m.expires_);
      ++it;
    }
    if (!gone.empty()) {
      lk.unlock();
      for (auto& m : gone) log_info("serve: unloaded {} (keep-alive expired)", m->file().name);
      gone.clear();  // joins the schedulers outside the lock
      lk.lock();
      continue;
    }
    if (next == std::chrono::steady_clock::time_point::max()) {
      cv_.wait(lk);
    } else {
      cv_.wait_until(lk, next);
    }
  }
}

bool ModelPool::unload(const std::string& name) {
  std::optional<ModelFile> f = find(name);
  if (!f) return false;
  std::lock_guard lk(mu_);
  auto it = loaded_.find(f->path);
  if (it == loaded_.end()) return false;
  it->second->expires_ = std::chrono::steady_clock::now();
  it->second->expires_unix_ns_ = now_unix_ns();
  it->second->keep_alive_ = std::chrono::nanoseconds(0);
  cv_.notify_all();
  return true;
}

std::vector<LoadedInfo> ModelPool::loaded() {
  std::vector<std::shared_ptr<ServedModel>> ms;
  std::vector<LoadedInfo> out;
  {
    std::lock_guard lk(mu_);
    for (auto& [path, m] : loaded_) {
      LoadedInfo li;
      li.file = m->file();
      li.expires_unix_ns = m->leases_ > 0 ? 0 : m->expires_unix_ns_;
      li.memory_bytes = m->memory_bytes();
      li.n_ctx = m->n_ctx();
      li.parallel = m->scheduler().options().n_parallel;
      li.clamped_ctx_max = m->clamped_ctx_max();
      li.kv_type = m->scheduler().options().kv_type;
      out.push_back(std::move(li));
      ms.push_back(m);
    }
  }
  for (std::size_t i = 0; i < ms.size(); ++i) out[i].stats = ms[i]->scheduler().stats();
  // Longest remaining lifetime first (in use counts as the longest), as Ollama sorts /api/ps.
  auto key = [](const LoadedInfo& l) { return l.expires_unix_ns == 0 ? INT64_MAX : l.expires_unix_ns; };
  std::stable_sort(out.begin(), out.end(), [&](const LoadedInfo& a, const LoadedInfo& b) { return key(a) > key(b); });
  return out;
}

void ModelPool::remove(const std::string& name) {
  std::optional<ModelFile> f = find(name);
  if (!f) throw ApiError(404, fmt::format("model '{}' not found", name), "model");
  if (f->source != "models_dir")
    throw bad_request(fmt::format("model '{}' is not a file of the models folder ({}): not deleted", name, f->source));
  {
    std::lock_guard lk(mu_);
    if (auto it = loaded_.find(f->path); it != loaded_.end()) {
      if (it->second->leases_ > 0) throw ApiError(409, fmt::format("model '{}' is in use", name));
      loaded_.erase(it);
    }
  }
  std::error_code ec;
  fs::remove(f->path, ec);
  if (ec) throw ApiError(500, fmt::format("deleting model '{}' ({}): {}", name, f->path, ec.message()));
}

void ModelPool::copy(const std::string& source, const std::string& destination) {
  std::optional<ModelFile> f = find(source);
  if (!f) throw ApiError(404, fmt::format("model \"{}\" not found", source), "source");
  const std::string dst = strip_latest(destination);
  if (!simple_name(dst) || dst.find(':') != std::string::npos)
    throw bad_request(fmt::format("destination \"{}\" is invalid", destination), "destination");
  if (opts_.models_dirs.empty()) throw bad_request("no models folder to copy into (start with --models-dir)");
  if (find(dst)) throw bad_request(fmt::format("destination \"{}\" already exists", destination), "destination");
  const std::string ext = f->format == "gguf" ? ".gguf" : ".bin";
  const fs::path target = fs::path(opts_.models_dirs.front()) / (dst + ext);
  const fs::path tmp = fs::path(opts_.models_dirs.front()) / ("." + dst + ext + ".tmp");
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(f->path, tmp, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(f->path, tmp, ec);
  }
  if (!ec) fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw ApiError(500, fmt::format("copying model '{}' to '{}': {}", source, target.string(), ec.message()));
  }
}

}  // namespace g2c::server
