"""Shared helpers for the serving e2e tests: free ports, the tiny model (made once per build tree),
frontend/worker processes that are always killed, curl-based raw HTTP and SSE, /metrics parsing,
and a check() list that makes the script exit non-zero (printing the process logs) on failure."""
import atexit, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time, traceback

BIN = os.environ["WS_BINARY"]
SRC = os.environ.get("WS_SOURCE_DIR", os.getcwd())
TINY_SEED = 0

_procs = []
_tmp_dirs = []  # removed when the test ends (logs are printed first on failure)
_failures = []
_lock = threading.Lock()


def check(cond, what):
    """Records one assertion; the script fails at the end if any failed."""
    with _lock:
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            _failures.append(what)
    return bool(cond)


def failures():
    return list(_failures)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def temp_dir(tag):
    d = tempfile.mkdtemp(prefix=f"ws_e2e_{tag}_")
    _tmp_dirs.append(d)
    return d


def tiny_model_dir():
    """The tiny random-weight model with the real DeepSeek-V3 tokenizer, made once under the build
    tree (next to the binary) and published by an atomic rename, so parallel tests share it."""
    cache = os.path.join(os.path.dirname(os.path.abspath(BIN)), "e2e-cache")
    final = os.path.join(cache, f"tiny-seed{TINY_SEED}")
    if os.path.exists(os.path.join(final, "config.json")):
        return final
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tiny.tmp.", dir=cache)
    p = subprocess.run([BIN, "make-model", "--preset", "tiny", "--out", tmp, "--seed", str(TINY_SEED)],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"make-model failed:\n{p.stdout}\n{p.stderr}")
    try:
        os.rename(tmp, final)
    except OSError:  # another test published it first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class Proc:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name, args, log_dir, env=None):
        self.name = name
        self.args = args
        self.log_path = os.path.join(log_dir, name.replace(" ", "_") + ".log")
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, env=env)
        _procs.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """SIGKILL to the whole process group (the child and anything it started)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def log_text(self):
        self._log.flush()
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def kill_all():
    for p in _procs:
        p.kill()


atexit.register(kill_all)


def dump_logs(tail_chars=20000):
    for p in _procs:
        text = p.log_text()
        print(f"===== log of {p.name} (pid {p.pid}, rc {p.popen.poll()}): {' '.join(p.args)}")
        print(text[-tail_chars:])


# ---------------------------------------------------------------------------------------------
# HTTP through curl


def curl(url, body=None, method=None, headers=None, timeout=60, extra=()):
    """One request through curl. body: dict (sent as JSON), str or bytes. Returns (status, bytes)."""
    args = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    data = None
    if body is not None:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else (
            body.encode() if isinstance(body, str) else body)
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    if method:
        args += ["-X", method]
    for h in headers or []:
        args += ["-H", h]
    args += list(extra) + [url]
    p = subprocess.run(args, input=data, capture_output=True, timeout=timeout + 10)
    out = p.stdout
    cut = out.rfind(b"\n")
    status = int(out[cut + 1:] or b"0")
    return status, out[:cut]


def curl_json(url, body=None, **kw):
    status, out = curl(url, body, **kw)
    try:
        return status, json.loads(out)
    except ValueError:
        return status, {"_raw": out.decode("utf-8", "replace")}


def parse_sse(raw):
    """SSE text -> list of events: parsed JSON objects, or the string "[DONE]"."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        data = [ln[5:].lstrip(" ") for ln in block.split("\n") if ln.startswith("data:")]
        if not data:
            continue
        payload = "\n".join(data)
        events.append("[DONE]" if payload == "[DONE]" else json.loads(payload))
    return events


def curl_stream(url, body, timeout=120):
    """A streaming request through curl -N; returns (status, events)."""
    status, out = curl(url, body, timeout=timeout, extra=["-N"])
    text = out.decode("utf-8")
    if status != 200:
        return status, [json.loads(text)] if text.strip().startswith("{") else [text]
    return status, parse_sse(text)


def parse_metrics(text):
    """Prometheus text -> {name: [(labels dict, value)]}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k.strip()] = v.strip().strip('"')
        out.setdefault(name, []).append((labels, float(value)))
    return out


def metric_sum(metrics, name, **match):
    return sum(v for labels, v in metrics.get(name, []) if all(labels.get(k) == w for k, w in match.items()))


# ---------------------------------------------------------------------------------------------
# A frontend and its workers


class Cluster:
    def __init__(self, tag):
        self.dir = temp_dir(tag)
        self.frontend = None
        self.workers = []
        self.http_port = None
        self.disc_port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def base_url(self):
        return self.url + "/v1"

    @property
    def discovery(self):
        return f"embedded://127.0.0.1:{self.disc_port}"

    def start_frontend(self, *extra, ready_timeout=30):
        self.http_port, self.disc_port = free_port(), free_port()
        while self.disc_port == self.http_port:
            self.disc_port = free_port()
        self.frontend = Proc("frontend", [BIN, "frontend", "--http-port", str(self.http_port), "--http-host",
                                          "127.0.0.1", "--discovery", self.discovery, *extra], self.dir)
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if not self.frontend.alive():
                raise RuntimeError("frontend exited at start")
            status, _ = curl(self.url + "/live", timeout=5)
            if status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError("frontend did not answer /live")

    def start_worker(self, model_dir, name, *extra, mock=False):
        args = [BIN, "worker", "--model-path", model_dir, "--served-model-name", name, "--discovery",
                self.discovery, "--host", "127.0.0.1"]
        if mock:
            args += ["--engine", "mock"]
        w = Proc(f"worker{len(self.workers)}-{name}", args + list(extra), self.dir)
        self.workers.append(w)
        return w

    def health(self):
        return curl_json(self.url + "/health", timeout=10)

    def instances(self, model=None):
        _, h = self.health()
        return [i for i in h.get("instances", []) if model is None or i.get("model") == model]

    def wait_instances(self, count, model=None, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for w in self.workers:
                if not w.alive():
                    raise RuntimeError(f"{w.name} exited at start")
            if len(self.instances(model)) == count:
                return
            time.sleep(0.25)
        raise RuntimeError(f"{count} instances of {model} did not register in {timeout} s")

    def metrics(self):
        status, out = curl(self.url + "/metrics", timeout=10)
        return parse_metrics(out.decode()) if status == 200 else {}

    def wait_idle(self, timeout=10, kv_zero=True):
        """Waits until every instance reports running=0, waiting=0 (and KV usage 0); returns the
        last (instances, kv usage list) seen."""
        deadline = time.time() + timeout
        while True:
            inst = self.instances()
            kv = [v for _, v in self.metrics().get("wideserve_frontend_worker_kv_usage", [])]
            idle = all(i["running"] == 0 and i["waiting"] == 0 for i in inst)
            if idle and (not kv_zero or all(v == 0 for v in kv)):
                return inst, kv
            if time.time() > deadline:
                return inst, kv
            time.sleep(0.25)

    def post(self, path, body, **kw):
        return curl_json(self.url + path, body, **kw)

    def stream(self, path, body, **kw):
        return curl_stream(self.url + path, body, **kw)


def openai_client(cluster, timeout=120):
    import openai
    return openai.OpenAI(base_url=cluster.base_url, api_key="none", max_retries=0, timeout=timeout)


def generate_ids(model_dir, ids, max_new_tokens):
    """`wideserve generate`: the greedy reference."""
    p = subprocess.run([BIN, "generate", "--model-path", model_dir, "--token-ids", ",".join(map(str, ids)),
                        "--max-new-tokens", str(max_new_tokens)], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"generate failed: {p.stderr}")
    return [int(x) for x in p.stdout.strip().split(",") if x]


def run_test(body, budget_s=120):
    """Runs body(); on an exception or failed checks prints the logs and exits 1; always kills
    the processes. Also reports when the test took longer than its budget."""
    t0 = time.time()
    rc = 0
    try:
        body()
    except Exception:
        traceback.print_exc()
        check(False, "the test ran to its end without an exception")
    finally:
        elapsed = time.time() - t0
        print(f"elapsed {elapsed:.1f} s (budget {budget_s} s)")
        if _failures:
            dump_logs()
            print(f"{len(_failures)} FAILED:")
            for f in _failures:
                print("  " + f)
            rc = 1
        kill_all()
        for d in _tmp_dirs:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc)
