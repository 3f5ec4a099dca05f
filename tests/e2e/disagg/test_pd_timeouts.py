"""PD disaggregation timeouts and client disconnects (tcp transfer backend). Each case starts its
own frontend and 1P1D workers; afterwards both workers must report running=0 waiting=0 and KV
usage 0 (--disable-radix-cache), and serve new requests.

(d) A stalled transfer: SGLANG_DISAGGREGATION_WAITING_TIMEOUT=2 on the decode side (heartbeats
    at their 5 s default, the frontend's --worker-ttl-ms 15000 so only the waiting timeout can
    fire), kill -STOP the prefill right after it got long prompts, kill -CONT it 5 s later: the
    requests fail about 2 s after they were sent with a message naming the waiting timeout;
    the decode worker aborts the rooms (pages kept until the prefill confirms) and both pools
    return to empty after the resume.
(d') The bootstrap timeout: SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT=2 on the prefill side,
    decode --max-running-requests 1 busy with a long generation, so later requests never get
    decode pages: they fail after about 2 s with a message naming the bootstrap timeout, the
    long one completes, nothing leaks.
(e) Clients that disconnect while their prompt is queued, prefilled, transferred or decoded
    (long prompts, curl --max-time from 0.3 s to 4 s, then short prompts with 1000-token
    generations cut while decoding, long enough that none finishes before its cut (at 400 tokens
    a unary request cut at 3 s once got its whole answer); streaming and unary): no page leaks on
    either side, the frontend counts every disconnect, and the workers still serve."""
import os, signal, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pd_util as u
from pd_util import check, h

LONG = 1000
STALL_LONG = 2000  # case (d)'s prompts
LONG_GEN = 1900  # the tiny model's context is 2048
EMPTY_WITHIN_S = 25.0


def long_prompts(k, seed, n=LONG):
    return [[0] + [(seed * 100003 + i * 7919 + j * 31) % 120000 + 2 for j in range(n - 1)] for i in range(k)]


def still_serves(c, procs, label):
    prompts = u.prompt_set(4, max_len=150, seed=5)
    res = u.run_concurrent(u.completion, [(c, p, 4) for p in prompts])
    check(all(st == 200 and ids and len(ids[0]) == 4 for st, ids, _ in res),
          f"[{label}] new requests succeed afterwards [{[(st, err) for st, _, err in res if st != 200]}]")
    good, st = c.wait_empty(procs, timeout=EMPTY_WITHIN_S)
    check(good, f"[{label}] and both workers return to empty again [{st}]")


def case_waiting_timeout(model):
    label = "d: waiting timeout (stalled prefill)"
    env = {"SGLANG_DISAGGREGATION_WAITING_TIMEOUT": "2", "WIDESERVE_DISAGGREGATION_TRANSFER_TIMEOUT": "3"}
    c = u.PdCluster("pdtd")
    c.start_frontend("--worker-ttl-ms", "15000")
    p, d = c.start(model, "prefill", env=env), c.start(model, "decode", env=env)
    c.wait_registered([p, d])
    t0 = time.time()
    # 2000-token prompts, stopped 0.2 s in: with 1000 tokens and 0.4 s an idle machine had
    # prefilled and sent two of the four before the stop.
    jobs = [u.Background(c, q, 8, stream=(i % 2 == 1), timeout=60)
            for i, q in enumerate(long_prompts(4, 1, n=STALL_LONG))]
    time.sleep(0.2)
    p.signal(signal.SIGSTOP)
    time.sleep(5.0)
    p.signal(signal.SIGCONT)
    for j in jobs:
        j.result(timeout=60)
    check(all(j.done() for j in jobs), f"[{label}] every request ended")
    failed = [(round(j.t_end - t0, 1), j.res[2]) for j in jobs if j.res[2]]
    print(f"[{label}] failed: {failed}", flush=True)
    timed_out = [f for f in failed if "SGLANG_DISAGGREGATION_WAITING_TIMEOUT" in (f[1] or "")
                 and "timed out" in f[1]]
    check(len(timed_out) >= 3, f"[{label}] the stalled requests failed with a message naming the waiting "
                               f"timeout [{failed}]")
    check(all(1.5 <= t <= 5.0 for t, _ in timed_out), f"[{label}] they failed about 2 s after they were sent, "
                                                      f"before the prefill resumed [{[t for t, _ in timed_out]}]")
    check(p.alive() and d.alive(), f"[{label}] both workers are alive")
    good, st = c.wait_empty([p, d], timeout=EMPTY_WITHIN_S)
    check(good, f"[{label}] the pages come back on both sides [{st}]")
    still_serves(c, [p, d], label)
    for w in c.workers + [c.frontend]:
        w.kill()


def case_bootstrap_timeout(model):
    label = "d': bootstrap timeout (no decode pages)"
    env = {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "2"}
    c = u.PdCluster("pdtb")
    c.start_frontend()
    p = c.start(model, "prefill", env=env)
    d = c.start(model, "decode", "--max-running-requests", "1", env=env)
    c.wait_registered([p, d])
    # Long enough that it still holds decode's only slot well past the 2 s timeout on a fast
    # machine (200 tokens finished within 2.3 s on CI and let the starved requests through).
    long_gen = u.Background(c, [0, 5, 6, 7], LONG_GEN, timeout=120)
    time.sleep(1.0)
    t0 = time.time()
    starved = [u.Background(c, q, 4, stream=(i == 1), timeout=60) for i, q in enumerate(u.prompt_set(3, seed=9))]
    for j in starved:
        j.result(timeout=60)
    res = [(round(j.t_end - t0, 1), j.res[0], j.res[2]) for j in starved]
    print(f"[{label}] starved: {res}", flush=True)
    check(all(err and "SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT" in err for _, _, err in res),
          f"[{label}] requests that never get decode pages fail naming the bootstrap timeout [{res}]")
    check(all(1.5 <= t <= 6.0 for t, _, _ in res), f"[{label}] after about 2 s [{[t for t, _, _ in res]}]")
    check(not long_gen.done(), f"[{label}] the long generation still held the slot when they failed")
    st, ids, err = long_gen.result(timeout=120)
    check(st == 200 and ids and len(ids[0]) == LONG_GEN, f"[{label}] the long generation completes [{st} {err}]")
    good, st = c.wait_empty([p, d], timeout=EMPTY_WITHIN_S)
    check(good, f"[{label}] nothing leaks on either side [{st}]")
    still_serves(c, [p, d], label)
    for w in c.workers + [c.frontend]:
        w.kill()


def case_disconnect(model):
    label = "e: client disconnect"
    c = u.PdCluster("pdte")
    c.start_frontend()
    p, d = c.start(model, "prefill"), c.start(model, "decode")
    c.wait_registered([p, d])
    cuts = [0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]
    prompts = long_prompts(len(cuts), 7)

    def one(prompt, cut, stream):
        body = {"model": u.NAME, "prompt": prompt, "max_tokens": 1000, "ignore_eos": True, "stream": stream,
                "temperature": 0}
        st, _ = h.curl(c.url + "/v1/completions", body, timeout=cut, extra=["-N"] if stream else [])
        return st

    statuses = u.run_concurrent(one, [(q, t, i % 2 == 0) for i, (q, t) in enumerate(zip(prompts, cuts))])
    # Unary requests have not answered, streams have sent headers (200) but not finished.
    print(f"[{label}] curl statuses (long prompts) {statuses}", flush=True)
    # Short prompts with long generations: these leave while decoding.
    short = u.prompt_set(4, max_len=100, seed=13)
    statuses = u.run_concurrent(one, [(q, 1.5 + 0.5 * i, i % 2 == 0) for i, q in enumerate(short)])
    print(f"[{label}] curl statuses (short prompts) {statuses}", flush=True)
    want = len(cuts) + len(short)
    t_end = time.time() + 10
    while time.time() < t_end:
        gone = h.metric_sum(c.metrics(), "wideserve_frontend_disconnected_clients_total")
        if gone >= want:
            break
        time.sleep(0.25)
    check(gone == want, f"[{label}] the frontend counted {want} disconnected clients [{gone}]")
    good, st = c.wait_empty([p, d], timeout=EMPTY_WITHIN_S)
    check(good, f"[{label}] no pages leak on either side [{st}]")
    still_serves(c, [p, d], label)
    for w in c.workers + [c.frontend]:
        w.kill()


def main():
    model = h.tiny_model_dir()
    for case in (case_waiting_timeout, case_bootstrap_timeout, case_disconnect):
        t = time.time()
        case(model)
        print(f"{case.__name__}: {time.time() - t:.1f} s", flush=True)


h.run_test(main, budget_s=180)
