"""A wide-EP worker spread over two processes ("nodes") behind a real frontend:
`wideserve worker --tp-size 4 --dp-size 4 --enable-dp-attention --nnodes 2 --node-rank R
--dist-init-addr ...` (2 ranks per process, Gloo over localhost). Node 0 registers and takes the
requests; node 1 does not register and is fed by node 0.
1. Greedy completions (sequential and concurrent, so that every rank gets requests) equal a
   1-rank worker's; /health lists one instance.
2. /metrics: wideserve_ep_* series of the EP worker (4 ranks, imbalance >= 1 per MoE layer,
   tokens dispatched and forwards counted).
3. SIGKILL of node 1: node 0 fails loudly (a request gets an error, node 0 exits non-zero with a
   clear message, the frontend drops it), no hang.
4. SIGTERM of node 0 (clean stop): node 1 hears it and exits 0."""
import os, signal, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import harness as h
from harness import check

NAME = "tiny"
PROMPTS = ["The quick brown fox", "Expert parallelism moves tokens", "1 2 3 4", "hi",
           "Lockstep ranks across processes", "a b c"]


def ep_args(node, addr):
    return ["--tp-size", "4", "--dp-size", "4", "--enable-dp-attention", "--nnodes", "2",
            "--node-rank", str(node), "--dist-init-addr", addr, "--heartbeat-interval-ms", "300"]


def complete(cl, prompt, timeout=120):
    status, body = cl.post("/v1/completions", {"model": NAME, "prompt": prompt, "max_tokens": 8,
                                               "temperature": 0}, timeout=timeout)
    if status != 200:
        return status, body
    return status, body["choices"][0]["text"]


def texts(cl, concurrent):
    if not concurrent:
        return [complete(cl, p) for p in PROMPTS]
    out = [None] * len(PROMPTS)

    def one(i):
        out[i] = complete(cl, PROMPTS[i])
    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(PROMPTS))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def wait_until(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    return pred()


def start_nodes(cl, model):
    addr = f"127.0.0.1:{h.free_port()}"
    n1 = h.Proc("node1", [h.BIN, "worker", "--model-path", model, "--served-model-name", NAME,
                          "--discovery", cl.discovery, "--host", "127.0.0.1", *ep_args(1, addr)],
                cl.dir)
    n0 = cl.start_worker(model, NAME, *ep_args(0, addr))
    cl.wait_instances(1, NAME, timeout=120)
    return n0, n1


def body():
    model = h.tiny_model_dir()
    ref_cl = h.Cluster("ep_mn_ref")
    ref_cl.start_frontend()
    ref_cl.start_worker(model, NAME)
    ref_cl.wait_instances(1, NAME)
    ref = texts(ref_cl, concurrent=False)
    check(all(s == 200 for s, _ in ref), f"1-rank worker answers ({ref})")

    cl = h.Cluster("ep_mn")
    cl.start_frontend("--worker-ttl-ms", "2000")
    n0, n1 = start_nodes(cl, model)
    check(len(cl.instances(NAME)) == 1, "only node 0 registers")
    got = texts(cl, concurrent=False)
    check(got == ref, f"2 nodes x 2 ranks == 1 rank, sequential ({got} vs {ref})")
    got = texts(cl, concurrent=True)
    check(got == ref, f"2 nodes x 2 ranks == 1 rank, concurrent ({got} vs {ref})")

    # Node 0's load reports carry the EP figures; the frontend exports them.
    def ep_metrics():
        m = cl.metrics()
        # A load report sent after the requests (the first ones carry zeros).
        return m if h.metric_sum(m, "wideserve_ep_dispatched_tokens_total") > 0 else None
    m = wait_until(ep_metrics, 10) or {}
    ranks = [v for _, v in m.get("wideserve_ep_ranks", [])]
    imb = {l.get("layer"): v for l, v in m.get("wideserve_ep_expert_load_imbalance", [])}
    disp = h.metric_sum(m, "wideserve_ep_dispatched_tokens_total", model=NAME)
    fwd = h.metric_sum(m, "wideserve_ep_forwards_total", model=NAME)
    check(ranks == [4], f"wideserve_ep_ranks == 4 ({ranks})")
    check(len(imb) >= 1 and all(1.0 <= v <= 4.0 for v in imb.values()),
          f"per-layer imbalance series in [1, ranks] ({imb})")
    check("0" not in imb, f"layer labels are MoE decoder layers (layer 0 is dense) ({sorted(imb)})")
    check(disp > 0 and fwd > 0, f"tokens dispatched {disp} and forwards {fwd} counted")

    # Node 1 dies: node 0 must fail loudly, not hang.
    n1.kill()
    t0 = time.time()
    status, resp = complete(cl, "after the loss of node 1", timeout=60)
    check(status != 200, f"a request after node 1 died fails ({status} {str(resp)[:200]})")
    exited = wait_until(lambda: not n0.alive(), 30)
    check(exited and n0.popen.returncode not in (0, None),
          f"node 0 exits non-zero (rc {n0.popen.poll()}) {time.time() - t0:.1f} s after node 1 died")
    check("expert-parallel engine failed" in n0.log_text(), "node 0 says why it failed")
    cl.workers.remove(n0)
    check(wait_until(lambda: not cl.instances(NAME), 15), "the frontend drops node 0")

    # Clean stop: SIGTERM to node 0 stops node 1 too.
    cl2 = h.Cluster("ep_mn_stop")
    cl2.start_frontend()
    m0, m1 = start_nodes(cl2, model)
    s, text = complete(cl2, PROMPTS[0])
    check(s == 200 and text == ref[0][1], f"second pair answers ({s} {text})")
    m0.signal(signal.SIGTERM)
    check(wait_until(lambda: not m0.alive() and not m1.alive(), 30), "both nodes stop after SIGTERM to node 0")
    check(m0.popen.returncode == 0 and m1.popen.returncode == 0,
          f"clean exits (node 0 rc {m0.popen.returncode}, node 1 rc {m1.popen.returncode})")
    check("node 0 stopped the engine" in m1.log_text(), "node 1 reports the stop")


h.run_test(body, budget_s=240)
