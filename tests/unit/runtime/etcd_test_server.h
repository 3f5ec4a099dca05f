// A real etcd server for tests: started on free 127.0.0.1 ports with its own data directory,
// killable (SIGKILL) and restartable on the same directory and port. Tests skip with a clear
// message only when no etcd binary is installed (apt package etcd-server).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "runtime/etcd_client.h"

namespace wideserve::runtime::testing {

inline std::string find_etcd() {
  if (const char* e = std::getenv("WS_ETCD_BINARY")) return e;
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  p += ":/usr/bin:/usr/local/bin";
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t c = p.find(':', pos);
    std::string dir = p.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    pos = c == std::string::npos ? p.size() + 1 : c + 1;
    if (dir.empty()) continue;
    std::filesystem::path f = std::filesystem::path(dir) / "etcd";
    if (access(f.c_str(), X_OK) == 0) return f.string();
  }
  return "";
}

inline uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class EtcdServer {
 public:
  EtcdServer() : binary_(find_etcd()) {
    char tmpl[] = "/tmp/ws-etcd-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    client_port_ = free_port();
    peer_port_ = free_port();
  }
  ~EtcdServer() {
    kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  bool available() const { return !binary_.empty(); }
  uint16_t port() const { return client_port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  std::string url(int ttl_s = 0) const {
    return "etcd://" + endpoint() + (ttl_s ? "?lease_ttl_s=" + std::to_string(ttl_s) : "");
  }

  // Starts etcd (on the same data directory and ports as before) and waits until it answers.
  void start(bool wipe_data = false) {
    ASSERT_EQ(pid_, -1);
    if (wipe_data) std::filesystem::remove_all(dir_ + "/data");
    const std::string c = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string p = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {binary_,
                                     "--name=ws-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + c,
                                     "--advertise-client-urls=" + c,
                                     "--listen-peer-urls=" + p,
                                     "--initial-advertise-peer-urls=" + p,
                                     "--initial-cluster=ws-test=" + p};
    const std::string log = dir_ + "/etcd.log";
    // Everything the child needs is prepared before fork (no allocation after it).
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    EtcdClient client({{"127.0.0.1", client_port_}}, std::chrono::milliseconds(1000));
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      try {
        client.range_prefix("/ws-test-ready");
        return;
      } catch (const std::exception& e) {
        int status = 0;
        ASSERT_EQ(waitpid(pid_, &status, WNOHANG), 0) << "etcd exited; see " << log;
        ASSERT_LT(std::chrono::steady_clock::now(), end) << "etcd not ready: " << e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // SIGKILL: no goodbye to clients, like a crash.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string binary_;
  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

#define WS_REQUIRE_ETCD(server)                                                   \
  do {                                                                            \
    if (!(server).available())                                                    \
      GTEST_SKIP() << "no etcd binary on PATH (install the etcd-server package, " \
                      "scripts/install_deps.sh): etcd discovery tests skipped";   \
    (server).start();                                                             \
    if (::testing::Test::HasFatalFailure()) return;                               \
  } while (0)

}  // namespace wideserve::runtime::testing
