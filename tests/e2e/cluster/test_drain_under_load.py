"""Graceful drain under load: a frontend and two mock workers (20 ms a step) serve a steady stream
of 60-token streaming completions from 10 client threads.
- SIGTERM to worker0 mid-load: /health lists it draining, it exits 0 once its in-flight streams
  are done, and no request is cut (every stream that started completes with all its tokens);
  new requests go to worker1.
- SIGTERM to the frontend mid-load: /health answers 503 "draining" and new completions 503
  while the in-flight streams finish; it exits 0; no stream that started before is cut."""
import os, signal, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import harness as h
from harness import check

NAME = "mock"
TOKENS = 60  # 20 ms a step: ~1.2 s a stream
THREADS = 10


class Load:
    """Streaming completions, one after another per thread; each result is
    (start, end, status, token count, finish reasons, error event or None)."""

    def __init__(self, c):
        self.c = c
        self.results = []
        self.inflight = {}  # thread -> start of its current stream
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(THREADS)]
        for t in self.threads:
            t.start()

    def loop(self, i):
        n = 0
        while not self.stop_flag.is_set():
            t0 = time.time()
            with self.lock:
                self.inflight[i] = t0
            body = {"model": NAME, "prompt": f"drain {i} {n}", "max_tokens": TOKENS, "stream": True,
                    "ignore_eos": True, "return_token_ids": True}
            try:
                status, events = h.curl_stream(self.c.url + "/v1/completions", body, timeout=60)
            except Exception as e:  # noqa: BLE001 -- recorded as a failed request
                status, events = 0, [str(e)]
            toks, fins, err = 0, [], None
            for ev in events:
                if isinstance(ev, dict):
                    if "error" in ev:
                        err = ev["error"]
                    for ch in ev.get("choices", []):
                        toks += len(ch.get("token_ids") or [])
                        if ch.get("finish_reason"):
                            fins.append(ch["finish_reason"])
            with self.lock:
                self.results.append((t0, time.time(), status, toks, fins, err))
                del self.inflight[i]
            n += 1
            if status != 200:
                time.sleep(0.05)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=90)

    def wait_all_in_flight_for(self, age, timeout=10.0):
        """Waits until every thread's current stream began at least `age` s ago (the client threads
        run in step, so this lands mid-stream rather than between two rounds)."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.inflight) == THREADS and time.time() - max(self.inflight.values()) >= age:
                    return True
            time.sleep(0.01)
        return False

    def started_before(self, t):
        with self.lock:
            return [r for r in self.results if r[0] < t]


def complete(r):
    return r[2] == 200 and r[3] == TOKENS and r[4] == ["length"] and r[5] is None


def main():
    model = h.tiny_model_dir()
    c = h.Cluster("drain")
    c.start_frontend()
    args = ("--mock-decode-ms", "20", "--heartbeat-interval-ms", "200")
    w0 = c.start_worker(model, NAME, *args, mock=True)
    c.start_worker(model, NAME, *args, mock=True)
    c.wait_instances(2, NAME)
    load = Load(c)
    time.sleep(2.0)

    # 1. SIGTERM worker0 under load.
    t_term = time.time()
    w0.signal(signal.SIGTERM)
    seen_draining = False
    while w0.alive() and time.time() - t_term < 30:
        for i in c.instances(NAME):
            seen_draining = seen_draining or i["draining"]
        time.sleep(0.05)
    rc = w0.popen.wait(timeout=30)
    took = time.time() - t_term
    c.workers.remove(w0)
    log0 = w0.log_text()
    inflight_at_term = None
    for line in log0.splitlines():
        if "draining" in line and "request(s)" in line:
            try:
                inflight_at_term = int(line.split("draining ")[1].split(" request")[0])
            except (IndexError, ValueError):
                pass
    print(f"worker0: SIGTERM with {inflight_at_term} request(s) in flight, exited rc {rc} after {took:.2f} s")
    check(seen_draining, "/health listed the worker as draining while it drained")
    check(rc == 0, f"the worker exits 0 after SIGTERM [{rc}]")
    check(inflight_at_term is not None and inflight_at_term > 0,
          f"it had streams in flight when SIGTERM came [{inflight_at_term}]")
    check(took < 10, f"it exited once its streams were done [{took:.1f} s]")
    time.sleep(1.5)
    check(len(c.instances(NAME)) == 1, "the drained worker left /health")
    t_mid = time.time()
    rs = load.started_before(t_mid)
    done = [r for r in rs if r[1] <= t_mid]
    bad = [r for r in done if not complete(r)]
    around = [r for r in done if r[0] < t_term < r[1]]
    print(f"worker drain: {len(done)} finished streams, {len(around)} spanning the SIGTERM, {len(bad)} incomplete")
    check(len(around) > 0, "streams were in flight across the worker's SIGTERM")
    check(not bad, f"no stream was cut by the worker's drain [{bad[:3]}]")

    # 2. SIGTERM the frontend under load, while every client has a stream admitted and running.
    time.sleep(1.0)
    check(load.wait_all_in_flight_for(0.5), "every client thread has a stream in flight")
    t_fe = time.time()
    c.frontend.signal(signal.SIGTERM)
    time.sleep(0.1)
    hs, hb = c.health()
    check(hs == 503 and hb.get("status") == "draining", f"/health is 503 'draining' while it drains [{hs} {hb}]")
    st, body = c.post("/v1/completions", {"model": NAME, "prompt": "late", "max_tokens": 2}, timeout=10)
    check(st == 503, f"a new completion during the drain gets 503 [{st} {body}]")
    rc = c.frontend.popen.wait(timeout=40)
    took = time.time() - t_fe
    load.stop()
    print(f"frontend: exited rc {rc} {took:.2f} s after SIGTERM")
    check(rc == 0, f"the frontend exits 0 after SIGTERM [{rc}]")
    # A stream's start is taken when its client thread calls curl; on a loaded box the request may
    # reach the frontend a while later (after the SIGTERM: refused at the door). Streams begun
    # 0.5 s before the SIGTERM were surely admitted: each must complete. Those begun just before
    # must complete or be refused cleanly (503 before any token), never cut midway.
    rs = load.started_before(t_fe - 0.5)
    edge = [r for r in load.started_before(t_fe) if r[0] >= t_fe - 0.5]
    around = [r for r in rs + edge if r[1] > t_fe and complete(r)]
    bad = [r for r in rs if not complete(r)]
    cut = [r for r in edge if not complete(r) and not (r[2] == 503 and r[3] == 0)]
    print(f"frontend drain: {len(rs) + len(edge)} streams started before, {len(around)} finished after "
          f"the SIGTERM, {len(bad) + len(cut)} cut; {len(edge)} begun within 0.5 s of it")
    check(len(around) > 0, "streams in flight across the frontend's SIGTERM completed")
    check(not bad, f"no stream that started before the frontend's SIGTERM was cut [{bad[:3]}]")
    check(not cut, f"streams begun just before it completed or were refused before any token [{cut[:3]}]")


h.run_test(main, budget_s=90)
