// `wideserve serve`: the one-command embedded deployment. Validates every flag, makes the tiny
// model once when no --model-path is given, starts `wideserve frontend` and N x `wideserve worker`
// as children (they die with serve), waits for GET /health == 200, prints where to send requests,
// and supervises: a child that exits stops everything (exit 1); SIGINT/SIGTERM stop the children
// gracefully (exit 0).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "cli/command.h"
#include "common/check.h"
#include "common/logging.h"
#include "config/frontend_config.h"
#include "config/worker_config.h"
#include "model/make_model.h"
#include "runtime/etcd_http.h"

namespace wideserve::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Serve's own flags (worker flags live in config::WorkerConfig).
struct ServeOptions {
  std::string http_host = "0.0.0.0";
  int64_t http_port = 8000;
  int64_t num_workers = 1;
  bool disagg = false;         // --disagg: 1 prefill + 1 decode worker instead
  int64_t discovery_port = 0;  // 0 = a free port picked at start
  double ready_timeout_s = 300;
  double shutdown_timeout_s = 30;
};

// One child process.
struct Child {
  std::string name;  // "frontend", "worker 0", ...
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
};

// The tiny model's cache directory: $WIDESERVE_CACHE_DIR/tiny-serve or ~/.cache/wideserve/...
fs::path tiny_model_dir() {
  if (const char* c = std::getenv("WIDESERVE_CACHE_DIR"); c && *c)
    return fs::path(c) / "tiny-serve";
  const char* home = std::getenv("HOME");
  WS_CHECK_ARG(home && *home, "neither WIDESERVE_CACHE_DIR nor HOME is set; pass --model-path");
  return fs::path(home) / ".cache" / "wideserve" / "tiny-serve";
}

// Makes the tiny model once. It is written to a private directory and renamed into place, so a
// concurrent or killed run never leaves (or sees) a half-written model.
std::string ensure_tiny_model() {
  const fs::path dir = tiny_model_dir();
  if (fs::exists(dir / "config.json")) return dir.string();
  fs::create_directories(dir.parent_path());
  const fs::path tmp = dir.parent_path() / fmt::format(".{}.tmp-{}-{:x}", dir.filename().string(),
                                                       getpid(), std::random_device{}());
  WS_LOG_INFO("making the tiny model once in {}", dir.string());
  model::MakeModelOptions o;
  o.preset = "tiny";
  o.out_dir = tmp.string();
  o.seed = 0;
  try {
    model::make_model(o);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    const int err = errno;
    std::error_code ec;
    fs::remove_all(tmp, ec);
    // Another run won the race: use its (complete) model.
    WS_CHECK_CODE(kUnavailable,
                  (err == EEXIST || err == ENOTEMPTY) && fs::exists(dir / "config.json"),
                  "cannot move the tiny model into {}: {}", dir.string(), std::strerror(err));
  }
  return dir.string();
}

// A TCP port that is free right now on 127.0.0.1.
int pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  WS_CHECK_CODE(kUnavailable, fd >= 0, "socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  WS_CHECK_CODE(kUnavailable, ok, "cannot find a free port: {}", std::strerror(errno));
  return ntohs(a.sin_port);
}

// Workers listed by GET http://host:port/health when it answers 200, else -1 (not up, not
// healthy, or no answer within a second): serve is ready once every worker has joined.
int64_t healthy_workers(const std::string& host, int port) {
  try {
    const auto deadline = Clock::now() + std::chrono::seconds(1);
    runtime::HttpConnection c(host, static_cast<uint16_t>(port), deadline);
    if (c.get("/health", deadline) != 200) return -1;
    auto j = nlohmann::json::parse(c.read_body(deadline));
    return static_cast<int64_t>(j.at("instances").size());
  } catch (const std::exception&) {
    return -1;
  }
}

// Starts `exe args...` with an empty signal mask; it gets SIGTERM when serve dies.
pid_t spawn(const std::string& exe, const std::vector<std::string>& args) {
  std::vector<std::string> all{exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = ::fork();
  WS_CHECK_CODE(kUnavailable, pid >= 0, "fork: {}", std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls from here: serve may have other threads.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // serve died before prctl took effect
    // Own process group: a terminal's Ctrl-C reaches serve only, which then stops the children in
    // order instead of racing them.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  return fmt::format("ended with wait status {}", status);
}

// Reaps finished children; returns the first one that had not exited before (or nullptr).
Child* reap(std::vector<Child>& children) {
  Child* first = nullptr;
  for (Child& c : children) {
    if (c.exited) continue;
    int st = 0;
    if (::waitpid(c.pid, &st, WNOHANG) == c.pid) {
      c.exited = true;
      c.status = st;
      if (!first) first = &c;
    }
  }
  return first;
}

bool all_exited(const std::vector<Child>& children) {
  for (const Child& c : children)
    if (!c.exited) return false;
  return true;
}

// Waits up to `ms` for SIGINT/SIGTERM/SIGCHLD; returns the signal taken (0 on timeout).
int wait_signal(const sigset_t& set, int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  siginfo_t info;
  const int s = ::sigtimedwait(&set, &info, &ts);
  return s > 0 ? s : 0;
}

// True when SIGINT or SIGTERM is pending (a child that exits then is part of the shutdown).
bool stop_requested() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM);
}

// SIGTERM to every live child, up to `timeout_s` for them to exit, then SIGKILL.
void stop_children(std::vector<Child>& children, const sigset_t& set, double timeout_s) {
  for (Child& c : children)
    if (!c.exited) ::kill(c.pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (!all_exited(children) && Clock::now() < deadline) {
    reap(children);
    if (!all_exited(children)) wait_signal(set, 100);
  }
  for (Child& c : children) {
    if (c.exited) continue;
    WS_LOG_WARN("{} (pid {}) still running after {} s: SIGKILL", c.name, c.pid, timeout_s);
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, &c.status, 0);
    c.exited = true;
  }
}

// The worker flags given on serve's command line, to pass on to every worker verbatim (except
// those serve sets itself).
std::vector<std::string> forwarded_worker_args(const std::vector<CLI::Option*>& worker_opts) {
  std::vector<std::string> out;
  for (const CLI::Option* o : worker_opts) {
    if (o->count() == 0) continue;
    const std::string name = o->get_name();
    if (name == "--model-path" || name == "--discovery") continue;
    for (const std::string& v : o->results()) out.push_back(name + "=" + v);
  }
  return out;
}

int run_serve(const ServeOptions& so, config::WorkerConfig& wc, const CLI::App& app,
              const std::vector<CLI::Option*>& worker_opts) {
  // Block the signals we wait for before any thread (make_model's pool) or child exists.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // Every flag is checked before anything is created or started.
  WS_CHECK_ARG(so.num_workers >= 1 && so.num_workers <= 256,
               "--num-workers must be in [1, 256] (got {})", so.num_workers);
  WS_CHECK_ARG(so.http_port >= 1 && so.http_port <= 65535,
               "--http-port must be in [1, 65535] (got {})", so.http_port);
  WS_CHECK_ARG(so.discovery_port >= 0 && so.discovery_port <= 65535,
               "--discovery-port must be in [0, 65535] (got {})", so.discovery_port);
  WS_CHECK_ARG(so.ready_timeout_s > 0, "--ready-timeout-s must be > 0 (got {})",
               so.ready_timeout_s);
  WS_CHECK_ARG(so.shutdown_timeout_s >= 0, "--shutdown-timeout-s must be >= 0 (got {})",
               so.shutdown_timeout_s);
  WS_CHECK_ARG(!so.disagg || wc.disagg.mode == "null",
               "--disagg starts one prefill and one decode worker itself; drop "
               "--disaggregation-mode {}",
               wc.disagg.mode);
  WS_CHECK_ARG(!so.disagg || wc.engine_kind != "mock",
               "--disagg needs a model (not --engine mock)");
  WS_CHECK_ARG((so.num_workers == 1 && !so.disagg) || wc.request_plane_port == 0,
               "--request-plane-port must be 0 with --num-workers > 1 (got {})",
               wc.request_plane_port);
  const bool discovery_given = app.get_option("--discovery")->count() > 0;
  WS_CHECK_ARG(!(discovery_given && so.discovery_port != 0),
               "give --discovery or --discovery-port, not both");
  const bool tiny = wc.model_path.empty();
  const bool name_given = !wc.served_model_name.empty();
  if (tiny)
    wc.model_path = tiny_model_dir().string();
  else
    WS_CHECK_ARG(fs::exists(fs::path(wc.model_path) / "config.json"),
                 "--model-path {}: no config.json there", wc.model_path);
  if (!discovery_given)
    wc.discovery = fmt::format("embedded://127.0.0.1:{}",
                               so.discovery_port ? so.discovery_port : pick_free_port());
  config::finalize_worker_config(wc);
  config::FrontendConfig fc;
  fc.http_host = so.http_host;
  fc.http_port = so.http_port;
  fc.discovery = wc.discovery;
  fc.log_level = wc.log_level;
  config::finalize_frontend_config(fc);
  set_log_level(wc.log_level);
  if (tiny) ensure_tiny_model();

  char exe_buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe_buf, sizeof(exe_buf) - 1);
  WS_CHECK_CODE(kNotFound, n > 0, "cannot read /proc/self/exe: {}", std::strerror(errno));
  const std::string exe(exe_buf, static_cast<size_t>(n));

  std::vector<Child> children;
  children.push_back(
      {"frontend", spawn(exe, {"frontend", "--http-host", fc.http_host, "--http-port",
                               std::to_string(fc.http_port), "--discovery", fc.discovery,
                               "--log-level", fc.log_level})});
  std::vector<std::string> wargs = {"worker"};
  for (auto& a : forwarded_worker_args(worker_opts)) wargs.push_back(a);
  for (const char* k : {"--model-path", "--discovery"})
    wargs.push_back(std::string(k) + "=" + (k[2] == 'm' ? wc.model_path : wc.discovery));
  // The built-in model gets a short name clients can type.
  if (tiny && !name_given) {
    wc.served_model_name = "tiny";
    wargs.push_back("--served-model-name=tiny");
  }
  if (so.disagg) {
    // PD on the embedded default: one prefill worker (bootstrap server on a free port) and one
    // decode worker; the frontend pairs them per request.
    auto p = wargs;
    p.push_back("--disaggregation-mode=prefill");
    p.push_back(fmt::format("--disaggregation-bootstrap-port={}", pick_free_port()));
    auto d = wargs;
    d.push_back("--disaggregation-mode=decode");
    children.push_back({"prefill worker", spawn(exe, p)});
    children.push_back({"decode worker", spawn(exe, d)});
  } else {
    for (int64_t i = 0; i < so.num_workers; ++i)
      children.push_back({fmt::format("worker {}", i), spawn(exe, wargs)});
  }
  const int64_t expected_workers = so.disagg ? 2 : so.num_workers;
  WS_LOG_INFO("started frontend (pid {}) and {} worker(s); discovery {}", children[0].pid,
              so.num_workers, wc.discovery);

  const std::string host =
      fc.http_host == "0.0.0.0" ? "127.0.0.1" : (fc.http_host == "::" ? "::1" : fc.http_host);
  const std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const auto ready_deadline = Clock::now() + std::chrono::duration<double>(so.ready_timeout_s);
  bool ready = false;
  while (true) {
    const int sig = wait_signal(set, ready ? 1000 : 200);
    if (sig == SIGINT || sig == SIGTERM) {
      WS_LOG_INFO("{}: stopping {} child process(es)", strsignal(sig), children.size());
      stop_children(children, set, so.shutdown_timeout_s);
      return 0;
    }
    if (Child* dead = reap(children); dead && !stop_requested()) {
      std::fprintf(stderr, "wideserve serve: %s (pid %d) %s; stopping the others\n",
                   dead->name.c_str(), static_cast<int>(dead->pid),
                   describe_status(dead->status).c_str());
      stop_children(children, set, so.shutdown_timeout_s);
      return 1;
    }
    if (ready) continue;
    if (healthy_workers(host, static_cast<int>(fc.http_port)) >= expected_workers) {
      ready = true;
      const std::string name = nlohmann::json(wc.served_model_name).dump();
      std::printf("wideserve ready: http://%s:%lld/v1 (model %s)\n", url_host.c_str(),
                  static_cast<long long>(fc.http_port), wc.served_model_name.c_str());
      std::printf(
          "try: curl http://%s:%lld/v1/chat/completions -H 'Content-Type: application/json' -d "
          "'{\"model\": %s, \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], "
          "\"max_tokens\": 32}'\n",
          url_host.c_str(), static_cast<long long>(fc.http_port), name.c_str());
      std::fflush(stdout);
    } else if (Clock::now() > ready_deadline) {
      std::fprintf(stderr,
                   "wideserve serve: GET http://%s:%lld/health did not return 200 within %g s; "
                   "stopping\n",
                   url_host.c_str(), static_cast<long long>(fc.http_port), so.ready_timeout_s);
      stop_children(children, set, so.shutdown_timeout_s);
      return 1;
    }
  }
}

WS_REGISTER_COMMAND(
    "serve", "One-command deployment: a frontend and N workers on this machine", [](CLI::App& app) {
      auto so = std::make_shared<ServeOptions>();
      auto wc = std::make_shared<config::WorkerConfig>();
      const std::string g = "Serve";
      app.add_option("--http-host", so->http_host, "Address the HTTP frontend binds")
          ->capture_default_str()
          ->group(g);
      app.add_option("--http-port", so->http_port, "HTTP port of the frontend")
          ->capture_default_str()
          ->group(g);
      app.add_flag("--disagg", so->disagg,
                   "Prefill/decode disaggregation: one prefill and one decode worker")
          ->group(g);
      app.add_option("--num-workers", so->num_workers, "Worker processes")
          ->capture_default_str()
          ->group(g);
      app.add_option("--discovery-port", so->discovery_port,
                     "Port of the embedded registry (default: a free port)")
          ->group(g);
      app.add_option("--ready-timeout-s", so->ready_timeout_s,
                     "Seconds to wait for GET /health == 200")
          ->capture_default_str()
          ->group(g);
      app.add_option("--shutdown-timeout-s", so->shutdown_timeout_s,
                     "Seconds children get to exit after SIGTERM before SIGKILL")
          ->capture_default_str()
          ->group(g);
      const size_t before = app.get_options().size();
      config::add_worker_flags(app, *wc);
      auto all = app.get_options();
      auto worker_opts = std::make_shared<std::vector<CLI::Option*>>(
          all.begin() + static_cast<long>(before), all.end());
      app.get_option("--model-path")
          ->description(
              "Checkpoint directory (default: the tiny model, made once in "
              "$WIDESERVE_CACHE_DIR/tiny-serve or ~/.cache/wideserve/tiny-serve)");
      return [so, wc, worker_opts, &app] { return run_serve(*so, *wc, app, *worker_opts); };
    });

}  // namespace
}  // namespace wideserve::cli
