// Rendezvous key-value store over TCP for Gloo (Gloo ships file and Redis stores, not TCP):
// the process of node 0 runs the server at --dist-init-addr, every rank connects as a client.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

namespace wideserve::dist {

// Serves set/get on HOST:PORT until destroyed. Binds before the constructor returns.
class TcpStoreServer {
 public:
  TcpStoreServer(const std::string& host, int port);
  ~TcpStoreServer();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Client: get() and wait() block until the keys exist or the timeout passes (kUnavailable).
class TcpStore : public gloo::rendezvous::Store {
 public:
  // Retries connecting until `timeout` (the server may start later than the client).
  TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout);
  ~TcpStore() override;
  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

 private:
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
};

}  // namespace wideserve::dist
