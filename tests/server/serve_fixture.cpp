#include "serve_fixture.hpp"

#include <filesystem>
#include <sstream>

namespace g2c::test {
namespace fs = std::filesystem;

ServeFixture::ServeFixture(const ServeConfig& cfg) {
  server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.pool.parallel = cfg.parallel;
  o.pool.n_ctx = cfg.ctx;
  o.pool.queue = cfg.queue;
  o.pool.threads = cfg.threads;
  o.pool.search_ollama_store = false;
  o.http_threads = cfg.http_threads;
  if (cfg.models_dir) {
    dir_ = std::make_unique<TempDir>();
    models_dir_ = dir_->path().string();
    for (const std::string& m : cfg.models)
      fs::copy_file(fs::path(m).is_absolute() ? m : shared_path(m), dir_->path() / fs::path(m).filename());
    o.pool.models_dirs = {models_dir_};
  } else {
    for (const std::string& m : cfg.models)
      o.pool.model_files.push_back(fs::path(m).is_absolute() ? m : shared_path(m));
  }
  server_ = std::make_unique<server::Server>(o);
  port_ = server_->bind();
  thread_ = std::thread([this] { server_->serve(); });
}

ServeFixture::~ServeFixture() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

namespace {

HttpReply to_reply(const httplib::Result& r) {
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.content_type = r->get_header_value("Content-Type");
  out.headers = r->headers;
  return out;
}

httplib::Client client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  c.set_connection_timeout(5, 0);
  return c;
}

}  // namespace

HttpReply ServeFixture::get(const std::string& path, const httplib::Headers& headers) {
  return to_reply(client(port_).Get(path, headers));
}
HttpReply ServeFixture::head(const std::string& path) { return to_reply(client(port_).Head(path)); }
HttpReply ServeFixture::post(const std::string& path, const nlohmann::json& body) {
  return post_raw(path, body.dump());
}
HttpReply ServeFixture::post_raw(const std::string& path, const std::string& body, const std::string& content_type) {
  return to_reply(client(port_).Post(path, body, content_type));
}
HttpReply ServeFixture::del(const std::string& path, const nlohmann::json& body) {
  return to_reply(client(port_).Delete(path, body.dump(), "application/json"));
}
HttpReply ServeFixture::options(const std::string& path, const httplib::Headers& headers) {
  return to_reply(client(port_).Options(path, headers));
}

std::vector<std::string> ServeFixture::stream_lines(const std::string& path, const nlohmann::json& body, int stop_after,
                                                    int* status) {
  httplib::Client c = client(port_);
  std::vector<std::string> lines;
  std::string buf;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    buf.append(data, n);
    std::size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      lines.push_back(std::move(line));
      if (stop_after > 0 && static_cast<int>(lines.size()) >= stop_after) return false;  // abort
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(req, res, err);
  if (status) *status = res.status;
  if (!buf.empty()) lines.push_back(buf);
  return lines;
}

double ServeFixture::metric(const std::string& name_with_labels) {
  const HttpReply r = get("/metrics");
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name_with_labels + " ", 0) == 0) return std::stod(line.substr(name_with_labels.size() + 1));
  }
  return -1;
}

}  // namespace g2c::test
