"""KV-aware routing end to end (real binaries): `wideserve frontend --router-mode kv` with two tiny-
model workers publishing KV events.
1. Affinity: for several shared prefixes, a second request with the same prefix goes to the worker
   that served the first (seen through the router's per-worker index gauge) and reports the
   prefix as cached (usage.prompt_tokens_details.cached_tokens).
2. Restart: a worker killed with SIGKILL leaves the index; its restarted replacement starts with an
   empty index entry (its cache is empty), then fills it from its own events.
3. DP ranks: one wide-EP worker with 2 ranks (--tp-size 2 --dp-size 2 --enable-dp-attention) over
   2 processes (--nnodes 2: rank 1's cache changes reach node 0's publisher with its step
   reports), each rank with its own cache and events: the router indexes both ranks, and a repeat
   of a prefix goes to the rank that holds it (the router sends the rank with the request) and
   reports the prefix cached.
4. --busy-threshold: with one slow mock worker, a request while it is busy gets 503 with an OpenAI
   error object; once idle, requests pass again."""
import os, random, signal, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import harness as h
from harness import check

NAME = "tiny"
PAGE = 16
PREFIX_LEN = 96  # 6 blocks


def blocks_by_worker(cl):
    """{instance_id: blocks in the kv router's index}."""
    return {l["worker"]: v for l, v in cl.metrics().get("wideserve_frontend_kv_router_blocks", [])}


def wait_until(pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def complete(cl, ids, max_tokens=2):
    status, body = cl.post("/v1/completions", {"model": NAME, "prompt": ids, "max_tokens": max_tokens,
                                               "temperature": 0})
    cached = (body.get("usage") or {}).get("prompt_tokens_details", {}).get("cached_tokens", 0) \
        if status == 200 else None
    return status, body, cached


def served_by(cl, ids, blocks=blocks_by_worker, what="worker"):
    """Sends one request and returns (the worker, or with blocks=blocks_by_rank the DP rank, whose
    index grew, cached tokens). The suffix of every prompt is fresh, so only the one that served
    it stores new blocks."""
    before = blocks(cl)
    status, body, cached = complete(cl, ids)
    check(status == 200, f"request answered 200 (got {status}: {str(body)[:200]})")
    grew = wait_until(lambda: [w for w, v in blocks(cl).items() if v > before.get(w, 0)])
    check(len(grew) == 1, f"exactly one {what}'s index grew ({grew})")
    return (grew[0] if grew else None), cached


def kv_phase(model):
    rng = random.Random(7)
    cl = h.Cluster("kvr")
    cl.start_frontend("--router-mode", "kv", "--worker-ttl-ms", "1500")
    worker_args = ["--page-size", str(PAGE), "--max-total-tokens", "8192", "--heartbeat-interval-ms", "200"]
    for _ in range(2):
        cl.start_worker(model, NAME, *worker_args)
    cl.wait_instances(2, NAME)
    ids = {i["instance_id"] for i in cl.instances(NAME)}
    check(wait_until(lambda: set(blocks_by_worker(cl)) == ids), "the router indexes both workers")

    def fresh(n):
        return [rng.randrange(1000, 30000) for _ in range(n)]

    prefixes = [fresh(PREFIX_LEN) for _ in range(4)]
    owner = {}
    for k, p in enumerate(prefixes):
        w1, c1 = served_by(cl, p + fresh(24))
        check(c1 == 0, f"prefix {k}: first request has nothing cached ({c1})")
        w2, c2 = served_by(cl, p + fresh(24))
        check(w2 == w1, f"prefix {k}: second request went to the worker holding the prefix ({w1} -> {w2})")
        check(c2 is not None and c2 >= PREFIX_LEN, f"prefix {k}: second request reports the prefix cached ({c2})")
        owner[k] = w1
    print("prefix owners:", owner, "index:", blocks_by_worker(cl))

    # Kill the owner of prefix 0; its index entry goes with it.
    victim_id = owner[0]
    inst = {i["instance_id"]: i for i in cl.instances(NAME)}
    victim = next(w for w in cl.workers if f":{w.pid}:" in victim_id)
    survivor_id = next(i for i in inst if i != victim_id)
    survivor_blocks = blocks_by_worker(cl)[survivor_id]
    victim.kill()
    cl.workers.remove(victim)  # wait_instances() checks that every listed worker lives
    check(wait_until(lambda: victim_id not in blocks_by_worker(cl) and len(cl.instances(NAME)) == 1, 15),
          "the killed worker's index entry is dropped with it")
    check(blocks_by_worker(cl).get(survivor_id) == survivor_blocks, "the survivor's index is untouched")
    cl.start_worker(model, NAME, *worker_args)
    cl.wait_instances(2, NAME)
    new_id = next(i["instance_id"] for i in cl.instances(NAME) if i["instance_id"] != survivor_id)
    check(wait_until(lambda: new_id in blocks_by_worker(cl)), "the restarted worker is indexed")
    check(blocks_by_worker(cl).get(new_id) == 0, "the restarted worker's index starts empty (cache cleared)")
    # Prefix 0 is cached nowhere now: wherever it goes, the repeat follows it and hits the cache.
    w1, c1 = served_by(cl, prefixes[0] + fresh(24))
    if w1 == new_id:
        check(c1 == 0, f"the restarted worker had nothing cached for prefix 0 ({c1})")
    w2, c2 = served_by(cl, prefixes[0] + fresh(24))
    check(w2 == w1 and c2 >= PREFIX_LEN, f"after the restart, the repeat follows the new holder ({w1} -> {w2}, cached {c2})")
    # Prefixes the survivor holds still go there.
    for k, w in owner.items():
        if w == survivor_id:
            wk, ck = served_by(cl, prefixes[k] + fresh(24))
            check(wk == survivor_id and ck >= PREFIX_LEN, f"prefix {k} still goes to the survivor ({wk}, cached {ck})")
    fe_log = cl.frontend.log_text()
    check("Traceback" not in fe_log and "CRITICAL" not in fe_log, "frontend log clean")


def blocks_by_rank(cl):
    """{dp_rank: blocks in the kv router's index} of the one multi-rank worker."""
    return {int(l["dp_rank"]): v for l, v in cl.metrics().get("wideserve_frontend_kv_router_rank_blocks", [])}


def ep_phase(model):
    rng = random.Random(11)
    cl = h.Cluster("kvr_ep")
    cl.start_frontend("--router-mode", "kv")
    addr = f"127.0.0.1:{h.free_port()}"
    ep = ["--page-size", str(PAGE), "--max-total-tokens", "8192", "--heartbeat-interval-ms", "200",
          "--tp-size", "2", "--dp-size", "2", "--enable-dp-attention", "--load-balance-method",
          "round_robin", "--nnodes", "2", "--dist-init-addr", addr]
    node1 = h.Proc("kvr-node1", [h.BIN, "worker", "--model-path", model, "--served-model-name", NAME,
                                 "--discovery", cl.discovery, "--host", "127.0.0.1", *ep, "--node-rank", "1"],
                   cl.dir)
    cl.start_worker(model, NAME, *ep, "--node-rank", "0")
    cl.wait_instances(1, NAME, timeout=120)
    check(wait_until(lambda: set(blocks_by_rank(cl)) == {0, 1}), "the router indexes both DP ranks")

    def served_by_rank(ids):
        return served_by(cl, ids, blocks_by_rank, "rank")

    owners = {}
    # New prefixes tie on cost and go to either rank at random: keep going until both ranks own
    # one (rank 1's cache is known through node 1's reports), at most 12 (a miss: 2^-11).
    for k in range(12):
        if k >= 4 and set(owners.values()) == {0, 1}:
            break
        p = [rng.randrange(1000, 30000) for _ in range(PREFIX_LEN)]
        r1, c1 = served_by_rank(p + [rng.randrange(1000, 30000) for _ in range(24)])
        check(c1 == 0, f"EP prefix {k}: first request has nothing cached ({c1})")
        # The worker's own round robin would alternate ranks; the routed rank must win.
        r2, c2 = served_by_rank(p + [rng.randrange(1000, 30000) for _ in range(24)])
        check(r2 == r1, f"EP prefix {k}: the repeat went to the rank holding the prefix ({r1} -> {r2})")
        check(c2 is not None and c2 >= PREFIX_LEN, f"EP prefix {k}: the repeat reports the prefix cached ({c2})")
        owners[k] = r1
    routed = {int(l["dp_rank"]): v for l, v in
              cl.metrics().get("wideserve_frontend_worker_rank_routed_requests", [])}
    print("EP prefix owners:", owners, "index:", blocks_by_rank(cl), "routed:", routed)
    check(set(owners.values()) == {0, 1}, f"prefixes are cached on both ranks ({owners})")
    check(sum(routed.values()) == 2 * len(owners),
          f"the router counted {2 * len(owners)} requests over the ranks ({routed})")
    log = cl.frontend.log_text()
    check("Traceback" not in log and "CRITICAL" not in log, "frontend log clean")
    for w in cl.workers + [cl.frontend]:
        w.kill()
    node1.kill()


def busy_phase(model):
    cl = h.Cluster("kvr_busy")
    cl.start_frontend("--router-mode", "kv", "--busy-threshold", "0")
    cl.start_worker(model, NAME, "--mock-decode-ms", "20", "--heartbeat-interval-ms", "200", mock=True)
    cl.wait_instances(1, NAME)
    # The worker reports its pool size with its first heartbeats.
    time.sleep(0.6)
    status, _, _ = complete(cl, [1000, 1001, 1002], max_tokens=1)
    check(status == 200, f"an idle worker is not busy ({status})")
    import threading
    long_result = {}

    def long_request():
        long_result["r"] = complete(cl, list(range(1000, 1040)), max_tokens=150)  # ~3 s of decode

    t = threading.Thread(target=long_request)
    t.start()
    time.sleep(0.5)
    status, body, _ = complete(cl, [2000, 2001], max_tokens=1)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    check(status == 503, f"every worker busy: 503 (got {status})")
    check(err.get("type") == "service_unavailable" and "busy" in err.get("message", ""),
          f"503 carries an OpenAI error object ({body})")
    m = cl.metrics()
    check(h.metric_sum(m, "wideserve_frontend_requests_total", status="rejected") >= 1,
          "the refusal is counted as rejected")
    t.join(60)
    check(long_result.get("r", (0,))[0] == 200, "the long request finished normally")
    ok = wait_until(lambda: complete(cl, [3000, 3001], max_tokens=1)[0] == 200, 10)
    check(ok, "once the worker is idle again requests pass")


def main():
    model = h.tiny_model_dir()
    kv_phase(model)
    ep_phase(model)
    busy_phase(model)


if __name__ == "__main__":
    h.run_test(main, budget_s=180)
