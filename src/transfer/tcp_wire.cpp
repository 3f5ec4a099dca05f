#include "transfer/tcp_wire.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace wideserve::transfer::tcp {

std::string errno_text(int e) {
  return std::strerror(e);
}

std::string frame(uint32_t type, uint64_t a, uint64_t b, std::string_view body) {
  WireHeader h{kMagic, type, a, b, body.size()};
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  out.append(body);
  return out;
}

void set_nonblocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string primary_ipv4() {
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof(hostname) - 1) == 0) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (::getaddrinfo(hostname, nullptr, &hints, &res) == 0 && res) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf,
                  sizeof(buf));
      ::freeaddrinfo(res);
      return buf;
    }
  }
  return "127.0.0.1";
}

}  // namespace wideserve::transfer::tcp
