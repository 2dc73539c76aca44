#pragma once
// A real HTTP peer on 127.0.0.1 for the backend tests: httplib::Server on a port the kernel picks
// (bind_to_any_port), served from a thread, stopped and joined on destruction.
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace g2c::inference::testing {

class LoopbackServer {
 public:
  // Register handlers on server() first, then start().
  httplib::Server& server() { return svr_; }

  void start() {
    port_ = svr_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("loopback server: bind failed");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    // httplib 0.11 has no wait_until_ready(); is_running() turns true inside listen_after_bind().
    for (int i = 0; i < 2000 && !svr_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LoopbackServer() {
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server svr_;
  std::thread thread_;
  int port_ = 0;
};

// A loopback port with nothing listening (bound, read, closed): connecting to it is refused.
inline int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

}  // namespace g2c::inference::testing
