"""etcd discovery end to end: a real etcd, `wideserve frontend --discovery etcd://...` and two mock
workers registering there (lease TTL 3 s). Both appear in /health; a worker killed with SIGKILL
disappears within the lease TTL; etcd killed and restarted under a loop of small /v1/completions
requests (same data directory: the workers' leases survive; then a wiped data directory: the
workers re-register by themselves, and the frontend keeps routing to them meanwhile: no request
fails) while serving goes on. Skips only when no etcd binary is
installed (scripts/install_deps.sh installs etcd-server)."""
import base64, json, os, shutil, signal, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import harness as h
from harness import check

NAME = "tiny"
TTL_S = 3
PREFIX = "/services/wideserve/workers/"


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Etcd:
    """One etcd member on free 127.0.0.1 ports; kill() is SIGKILL, start() reuses dir and ports."""

    def __init__(self, binary, work):
        self.binary = binary
        self.data = os.path.join(work, "etcd-data")
        self.client_port, self.peer_port = h.free_port(), h.free_port()
        while self.peer_port == self.client_port:
            self.peer_port = h.free_port()
        self.proc = None
        self.work = work
        self.starts = 0

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    def start(self, wipe=False):
        if wipe:
            shutil.rmtree(self.data, ignore_errors=True)
        c, p = f"http://{self.endpoint}", f"http://127.0.0.1:{self.peer_port}"
        self.starts += 1
        self.proc = h.Proc(f"etcd-{self.starts}", [self.binary, "--name", "ws", "--data-dir", self.data,
                                                   "--listen-client-urls", c, "--advertise-client-urls", c,
                                                   "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                                                   "--initial-cluster", f"ws={p}"], self.work)
        deadline = time.time() + 30
        while time.time() < deadline:
            if not self.proc.alive():
                raise RuntimeError("etcd exited at start")
            try:
                self.workers()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("etcd did not answer")

    def kill(self):
        self.proc.kill()

    def call(self, path, body):
        status, out = h.curl_json(f"http://{self.endpoint}{path}", body, timeout=5)
        if status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {status}: {out}")
        return out

    def workers(self):
        """{key: (value dict, lease id)} under the workers' prefix."""
        end = PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": b64(PREFIX), "range_end": b64(end)})
        return {base64.b64decode(kv["key"]).decode(): (json.loads(base64.b64decode(kv["value"])), kv.get("lease"))
                for kv in r.get("kvs", [])}


class Load(threading.Thread):
    """Small /v1/completions requests, one after another, from a few threads; each result is
    (start, end, status, body)."""

    def __init__(self, c, threads=3):
        super().__init__(daemon=True)
        self.c = c
        self.results = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(threads)]

    def loop(self, i):
        n = 0
        while not self.stop_flag.is_set():
            t0 = time.time()
            status, body = self.c.post("/v1/completions", {"model": NAME, "prompt": f"hello {i} {n}", "max_tokens": 4,
                                                           "ignore_eos": True}, timeout=30)
            with self.lock:
                self.results.append((t0, time.time(), status, body))
            n += 1
            if status != 200:
                time.sleep(0.05)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)

    def between(self, t0, t1):
        with self.lock:
            return [r for r in self.results if t0 <= r[0] < t1]


def summarize(rs):
    by = {}
    for r in rs:
        by[r[2]] = by.get(r[2], 0) + 1
    return by


def wait_for(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def body():
    binary = shutil.which("etcd")
    if not binary:
        print("SKIP: no etcd binary on PATH (install the etcd-server package: scripts/install_deps.sh)")
        return
    model = h.tiny_model_dir()
    c = h.Cluster("etcd")
    etcd = Etcd(binary, c.dir)
    etcd.start()
    url = f"etcd://{etcd.endpoint}"
    # Cluster.start_frontend passes its own embedded --discovery; the last flag wins.
    c.start_frontend("--discovery", url, "--discovery-lease-ttl-s", str(TTL_S))
    wargs = ("--discovery", url, "--discovery-lease-ttl-s", str(TTL_S), "--mock-decode-ms", "5")

    def start_worker():
        return c.start_worker(model, NAME, *wargs, mock=True)

    w0, w1 = start_worker(), start_worker()
    c.wait_instances(2, NAME, timeout=60)
    ids = {i["instance_id"]: i["endpoint"] for i in c.instances()}
    check(len(ids) == 2, f"/health lists both workers: {ids}")
    keys = etcd.workers()
    check(sorted(keys) == sorted(PREFIX + i for i in ids), f"etcd holds one key per worker: {sorted(keys)}")
    check(all(lease not in (None, "0") for _, lease in keys.values()), "each key lives under a lease")
    v = next(iter(keys.values()))[0]
    check(v.get("model_name") == NAME and v.get("endpoint", "").startswith("tcp://") and v.get("page_size", 0) > 0
          and "load" in v and v.get("kv_capacity_tokens", 0) > 0, f"the key holds the worker's info as JSON: {v}")
    status, out = c.post("/v1/completions", {"model": NAME, "prompt": "hi", "max_tokens": 4})
    check(status == 200, f"a completion through etcd-discovered workers: {status}")

    # kill -9: the worker's key goes with its lease, and the frontend forgets the worker.
    dead_ids = set(ids)
    w0.kill()
    c.workers.remove(w0)  # wait_instances fails on any dead worker of the list
    t0 = time.time()
    gone = wait_for(lambda: len(c.instances(NAME)) == 1, TTL_S + 5)
    took = time.time() - t0
    check(gone and took <= TTL_S + 2.0, f"killed worker left /health {took:.1f} s after SIGKILL (lease TTL {TTL_S} s)")
    check(len(etcd.workers()) == 1, "its etcd key expired with its lease")
    status, _ = c.post("/v1/completions", {"model": NAME, "prompt": "still here?", "max_tokens": 4})
    check(status == 200, f"requests go to the survivor: {status}")

    w2 = start_worker()
    c.wait_instances(2, NAME, timeout=60)
    ids = {i["instance_id"] for i in c.instances()}
    leases = {k: lease for k, (_, lease) in etcd.workers().items()}

    load = Load(c)
    load.start()
    time.sleep(2)

    # 1. etcd killed and restarted on the same data directory: leases survive.
    t_kill = time.time()
    etcd.kill()
    time.sleep(2)
    etcd.start()
    t_up = time.time()
    same = wait_for(lambda: {k: l for k, (_, l) in etcd.workers().items()} == leases, 5)
    check(same, "after a restart on the same data the workers' keys and leases are back")
    time.sleep(3)
    check({i["instance_id"] for i in c.instances()} == ids, "the frontend still lists both workers")
    t_end1 = time.time()
    before = summarize(load.between(0, t_kill))
    during = summarize(load.between(t_kill, t_up))
    after = summarize(load.between(t_up, t_end1))
    print(f"restart on the same data: before {before}, while etcd was down {during}, after {after}")
    check(set(before) == {200} and set(during) == {200} and set(after) == {200},
          "no request failed while etcd was down and restarted (the workers stayed routable)")
    check(after.get(200, 0) > 0, "serving went on after the restart")

    # 2. etcd restarted with its data wiped: every lease is gone; workers re-register themselves.
    t_kill2 = time.time()
    etcd.kill()
    time.sleep(1)
    etcd.start(wipe=True)
    t_up2 = time.time()
    back = wait_for(lambda: len(etcd.workers()) == 2, 4 * TTL_S)
    took = time.time() - t_up2
    check(back, f"workers re-registered in a wiped etcd within {took:.1f} s")
    new_leases = {k: l for k, (_, l) in etcd.workers().items()}
    check(set(new_leases) == set(leases) and all(new_leases[k] != leases[k] for k in leases),
          "under new leases, with the same keys")
    check(wait_for(lambda: {i["instance_id"] for i in c.instances()} == ids, 10), "the frontend lists both again")
    time.sleep(2)
    t_mark = time.time()
    time.sleep(2)
    load.stop()
    during2 = load.between(t_kill2, t_mark)
    after2 = summarize(load.between(t_mark, time.time()))
    fails = [r for r in during2 if r[2] != 200]
    print(f"restart with wiped data: around the restart {summarize(during2)}, afterwards {after2}")
    for r in fails[:5]:
        print(f"  failed at +{r[0] - t_kill2:.2f} s: {r[2]} {json.dumps(r[3])[:300]}")
    check(not fails, f"no request failed across the wiped restart: the frontend kept routing to the live "
                     f"workers while their keys were gone [{len(fails)} failed]")
    check(set(after2) == {200} and after2.get(200, 0) > 0, "serving resumed after the wiped restart")
    fe_log = c.frontend.log_text()
    # The workers re-register within a fraction of a second; when that beats the frontend's
    # watch reconnect, no key is ever seen missing. What must hold: a vanished key is logged
    # together with the worker's return.
    vanished = "key vanished while the watch was down" in fe_log
    check(not vanished or "is back in etcd" in fe_log,
          f"the frontend logged each vanished key's return (vanished seen: {vanished})")
    logs = "".join(w.log_text() for w in (w1, w2))
    check(logs.count("re-registered in etcd") >= 2, "both workers logged their re-registration")


h.run_test(body, budget_s=180)
