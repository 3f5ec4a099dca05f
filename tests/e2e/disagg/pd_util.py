"""Shared helpers for the PD-disaggregation e2e tests: a frontend with prefill / decode /
aggregated tiny-model workers (built on tests/e2e/serving/harness.py), the prompt set, raw
completions with token ids, and the "nothing left behind" checks (running = waiting = 0 and KV
usage 0 on every worker; every worker runs --disable-radix-cache so used pages must go to 0)."""
import json, os, random, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serving"))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

NAME = "tiny"
CHUNK = 64  # --chunked-prefill-size: prompts past it are prefilled in chunks


def prompt_set(count, max_len=300, seed=7):
    """`count` token-id prompts of varied length (1..max_len, several past CHUNK)."""
    rng = random.Random(seed)
    lengths = [1, 2, 7, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3, max_len]
    while len(lengths) < count:
        lengths.append(rng.randrange(3, max_len + 1))
    return [[0] + [rng.randrange(2, 128000) for _ in range(n - 1)] for n in lengths[:count]]


class PdCluster(h.Cluster):
    """One frontend; workers started with a role. Each worker's instance id names its pid, so
    /health and /metrics rows map back to processes."""

    def __init__(self, tag):
        super().__init__(tag)
        self.role = {}  # Proc -> "prefill" | "decode" | "agg"
        self.bootstrap_port = {}  # prefill Proc -> port

    def start(self, model, mode, *extra, backend="tcp", env=None, page_size=16, name=NAME):
        """Starts a worker: mode "prefill", "decode" or "agg" (aggregated)."""
        args = [h.BIN, "worker", "--model-path", model, "--served-model-name", name, "--discovery",
                self.discovery, "--host", "127.0.0.1", "--disable-radix-cache", "--chunked-prefill-size",
                str(CHUNK), "--page-size", str(page_size)]
        if mode != "agg":
            args += ["--disaggregation-mode", mode, "--disaggregation-transfer-backend", backend]
        port = None
        if mode == "prefill":
            port = h.free_port()
            while port in (self.http_port, self.disc_port) or port in self.bootstrap_port.values():
                port = h.free_port()
            args += ["--disaggregation-bootstrap-port", str(port)]
        full_env = dict(os.environ)
        full_env.update(env or {})
        k = sum(1 for r in self.role.values() if r == mode)
        p = h.Proc(f"{mode}{k}", args + list(extra), self.dir, env=full_env)
        self.workers.append(p)
        self.role[p] = mode
        if port:
            self.bootstrap_port[p] = port
        return p

    def restart(self, proc, model, *extra, **kw):
        """A fresh worker in the place of a dead one (same role; a prefill gets a new port)."""
        mode = self.role[proc]
        if proc in self.workers:
            self.workers.remove(proc)
        return self.start(model, mode, *extra, **kw)

    def of(self, role):
        return [p for p in self.workers if self.role.get(p) == role]

    def instance_of(self, proc):
        for i in self.instances():
            if i["instance_id"].split(":")[1:2] == [str(proc.pid)]:
                return i
        return None

    def kv_of(self, proc, metrics=None):
        m = metrics if metrics is not None else self.metrics()
        for labels, v in m.get("wideserve_frontend_worker_kv_usage", []):
            if labels.get("worker", "").split(":")[1:2] == [str(proc.pid)]:
                return v
        return None

    def wait_registered(self, procs, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited at start")
            if all(self.instance_of(p) for p in procs):
                return
            time.sleep(0.25)
        raise RuntimeError(f"workers {[p.name for p in procs]} did not register in {timeout} s")

    def wait_gone(self, proc, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.instance_of(proc) is None:
                return True
            time.sleep(0.2)
        return False

    def state(self, procs):
        """{name: (running, waiting, kv usage)} of the live, registered `procs`."""
        m = self.metrics()
        out = {}
        for p in procs:
            i = self.instance_of(p)
            out[p.name] = (i["running"], i["waiting"], self.kv_of(p, m)) if i else None
        return out

    def wait_empty(self, procs, timeout=20):
        """Waits until each of `procs` reports running = waiting = 0 and KV usage 0 (as the
        frontend sees them through heartbeats); returns (ok, last state)."""
        deadline = time.time() + timeout
        while True:
            st = self.state(procs)
            ok = all(v is not None and v[0] == 0 and v[1] == 0 and v[2] == 0 for v in st.values())
            if ok or time.time() > deadline:
                return ok, st
            time.sleep(0.25)


def completion(cluster, prompt, max_tokens, n=1, timeout=120, stream=False):
    """A greedy /v1/completions with a token-id prompt through curl. Returns
    (status, [token ids per choice] or None, error text or None)."""
    body = {"model": NAME, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "return_token_ids": True, "n": n, "stream": stream}
    if stream:
        st, ev = cluster.stream("/v1/completions", body, timeout=timeout)
        errs = [e for e in ev if (isinstance(e, dict) and "error" in e) or (not isinstance(e, dict) and e != "[DONE]")]
        if st != 200 or errs:
            return st, None, json.dumps(errs or ev)[:600]
        ids = [[] for _ in range(n)]
        for e in ev:
            if isinstance(e, dict):
                for c in e.get("choices", []):
                    ids[c["index"]] += c.get("token_ids") or []
        return st, ids, None
    st, r = cluster.post("/v1/completions", body, timeout=timeout)
    if st != 200 or "choices" not in r:
        return st, None, json.dumps(r)[:600]
    choices = sorted(r["choices"], key=lambda c: c["index"])
    return st, [c.get("token_ids") for c in choices], None


def run_concurrent(fn, args_list):
    """Runs fn(*args) on a thread each, all at once; returns the results in order."""
    results = [None] * len(args_list)

    def one(i, a):
        try:
            results[i] = fn(*a)
        except Exception as e:  # noqa: BLE001 -- reported as that call's result
            results[i] = ("exception", None, f"{type(e).__name__}: {e}")

    ts = [threading.Thread(target=one, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


class Background:
    """A completion run on its own thread; result() waits for it. Records when it ended."""

    def __init__(self, cluster, prompt, max_tokens, stream=False, timeout=120):
        self.res = None
        self.t_end = None
        self.thread = threading.Thread(target=self._run, args=(cluster, prompt, max_tokens, stream, timeout),
                                       daemon=True)
        self.thread.start()

    def _run(self, cluster, prompt, max_tokens, stream, timeout):
        try:
            self.res = completion(cluster, prompt, max_tokens, stream=stream, timeout=timeout)
        except Exception as e:  # noqa: BLE001
            self.res = ("exception", None, f"{type(e).__name__}: {e}")
        self.t_end = time.time()

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=None):
        self.thread.join(timeout)
        return self.res


def reference(model, prompts, max_tokens, *extra, one_at_a_time=False):
    """Greedy outputs of an aggregated worker (same model, same engine flags plus `extra`) through
    the same HTTP path, all at once or one request at a time: {tuple(prompt): ids}."""
    c = PdCluster("ref")
    c.start_frontend()
    w = c.start(model, "agg", *extra)
    c.wait_registered([w])
    uniq = list({tuple(p): p for p in prompts}.values())
    if one_at_a_time:
        res = [completion(c, p, max_tokens) for p in uniq]
    else:
        res = run_concurrent(lambda p: completion(c, p, max_tokens), [(p,) for p in uniq])
    out = {}
    for p, (st, ids, err) in zip(uniq, res):
        if not check(st == 200 and ids, f"reference: aggregated output for a {len(p)}-token prompt [{st} {err}]"):
            raise RuntimeError("no reference")
        out[tuple(p)] = ids[0]
    w.kill()
    c.frontend.kill()
    return out


def check_drained(cluster, procs, label):
    """Every one of `procs` ends with running = waiting = 0 and KV usage 0, and is alive."""
    ok, st = cluster.wait_empty(procs, timeout=15)
    check(ok, f"[{label}] afterwards every worker has running=0 waiting=0 KV usage 0 [{st}]")
    check(all(p.alive() for p in procs), f"[{label}] every worker is still alive")
