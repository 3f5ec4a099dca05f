"""Wide EP on the CPU through the real binary: `wideserve logits` / `generate` with N ranks
(threads, and 2 processes ("nodes") joined by Gloo at --dist-init-addr on localhost), with and
without redundant experts, static/dynamic dispatch, normal/low_latency, and with online
rebalancing, all equal to the single-rank result; `wideserve serve` with a 4-rank EP worker gives
the same tokens as 1 rank through HTTP and exports the wideserve_ep_* series on /metrics."""
import array, json, os, socket, subprocess, sys, tempfile, time, urllib.request

BIN = os.environ["WS_BINARY"]
SRC = os.environ["WS_SOURCE_DIR"]
MODEL = os.path.join(SRC, "tests/fixtures/tiny-bf16-a")
IDS = "1,5,9,200,17,33,2,700,41,42,43"
failures = []
tmp = tempfile.mkdtemp(prefix="ws_e2e_ep_")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ep_flags(n):
    return [] if n == 1 else ["--tp-size", str(n), "--dp-size", str(n), "--enable-dp-attention"]


def read_logits(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def logits(tag, n, extra=(), nodes=1):
    out = os.path.join(tmp, tag + ".bin")
    base = [BIN, "logits", "--model-path", MODEL, "--token-ids", IDS, "--out", out, *ep_flags(n),
            *extra]
    if nodes == 1:
        p = subprocess.run(base, capture_output=True, text=True, timeout=300)
        ok = p.returncode == 0
        err = p.stderr[-2000:]
    else:
        addr = f"127.0.0.1:{free_port()}"
        procs = [subprocess.Popen(base + ["--nnodes", str(nodes), "--node-rank", str(r),
                                          "--dist-init-addr", addr],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for r in range(nodes)]
        outs = [p.communicate(timeout=300) for p in procs]
        ok = all(p.returncode == 0 for p in procs)
        err = " | ".join(o[1][-1000:] for o in outs)
    check(ok, f"logits {tag} runs ({err if not ok else ''})")
    return read_logits(out) if ok else None


def close(a, b, tol=1e-4):
    return a is not None and b is not None and len(a) == len(b) and \
        max(abs(x - y) for x, y in zip(a, b)) < tol


ref = logits("ref", 1)
cases = [
    ("threads2", 2, []),
    ("threads4_ll", 4, ["--moe-a2a-backend", "deepep", "--deepep-mode", "low_latency"]),
    ("threads4_red_dyn", 4, ["--ep-num-redundant-experts", "4", "--ep-dispatch-algorithm", "dynamic",
                             "--moe-a2a-backend", "deepep", "--deepep-mode", "normal"]),
    ("threads2_red_static", 2, ["--ep-num-redundant-experts", "2", "--ep-dispatch-algorithm", "static"]),
    # The LM head: split by vocabulary over the ranks by default (3 ranks: uneven slices), whole on
    # every rank with --enable-dp-lm-head (the seed's setting).
    ("threads3_red_vocab_split", 3, ["--ep-num-redundant-experts", "2"]),
    ("threads4_dp_lm_head", 4, ["--enable-dp-lm-head"]),
]
for tag, n, extra in cases:
    check(close(logits(tag, n, extra), ref), f"logits {tag} == 1 rank")
for tag, n, extra in [("nodes2_r2", 2, []),
                      ("nodes2_r2_dp_lm_head", 2, ["--enable-dp-lm-head"]),
                      ("nodes2_r4_ll_red", 4, ["--moe-a2a-backend", "deepep", "--deepep-mode",
                                               "low_latency", "--ep-num-redundant-experts", "4"])]:
    check(close(logits(tag, n, extra, nodes=2), ref), f"logits {tag} (2 processes, gloo) == 1 rank")


def generate(n, extra=(), nodes=1):
    base = [BIN, "generate", "--model-path", MODEL, "--token-ids", IDS, "--max-new-tokens", "8",
            *ep_flags(n), *extra]
    if nodes == 1:
        p = subprocess.run(base, capture_output=True, text=True, timeout=300)
        return p.stdout.strip() if p.returncode == 0 else "error: " + p.stderr[-500:]
    addr = f"127.0.0.1:{free_port()}"
    procs = [subprocess.Popen(base + ["--nnodes", str(nodes), "--node-rank", str(r),
                                      "--dist-init-addr", addr],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(nodes)]
    outs = [p.communicate(timeout=300) for p in procs]
    if any(p.returncode for p in procs):
        return "error: " + " | ".join(o[1][-500:] for o in outs)
    return outs[0][0].strip()


gref = generate(1)
check(len(gref.split(",")) == 8, f"generate 1 rank: {gref}")
for tag, n, extra, nodes in [
        ("threads4_auto", 4, ["--moe-a2a-backend", "deepep", "--deepep-mode", "auto"], 1),
        ("threads4_eplb", 4, ["--ep-num-redundant-experts", "4", "--enable-eplb",
                              "--eplb-rebalance-num-iterations", "3", "--ep-metrics"], 1),
        ("nodes2_r4_dyn", 4, ["--ep-num-redundant-experts", "4", "--ep-dispatch-algorithm",
                              "dynamic"], 2)]:
    got = generate(n, extra, nodes)
    check(got == gref, f"generate {tag} == 1 rank ({got})")

# Errors: a clear message, no hang.
p = subprocess.run([BIN, "logits", "--model-path", MODEL, "--token-ids", IDS, "--out",
                    os.path.join(tmp, "x.bin"), *ep_flags(4), "--moe-a2a-backend", "deepep",
                    "--deepep-mode", "low_latency"], capture_output=True, text=True, timeout=120,
                   env={**os.environ, "SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK": "4"})
check(p.returncode != 0 and "SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK=4" in p.stderr,
      f"low_latency over the limit fails clearly ({p.stderr.strip()[-300:]})")
p = subprocess.run([BIN, "logits", "--model-path", MODEL, "--token-ids", IDS, "--out",
                    os.path.join(tmp, "x.bin"), *ep_flags(3)], capture_output=True, text=True,
                   timeout=120)
check(p.returncode != 0 and "divisible" in p.stderr, f"16 experts over 3 ranks rejected ({p.stderr.strip()[-200:]})")


# serve: 4-rank EP worker vs 1 rank through HTTP.
def serve_tokens(n):
    port = free_port()
    cmd = [BIN, "serve", "--http-host", "127.0.0.1", "--http-port", str(port), *ep_flags(n),
           "--log-level", "warning"]
    env = {**os.environ, "WIDESERVE_CACHE_DIR": os.path.join(tmp, "cache")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 240
        ready = False
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        ready = True
                        break
            except Exception:
                pass
            time.sleep(0.5)
        if not ready:
            return None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as r:
            model = json.loads(r.read())["data"][0]["id"]
        texts = []
        for prompt in ["The quick brown fox", "Expert parallelism moves tokens", "1 2 3 4", "hi"]:
            body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as r:
                texts.append(json.loads(r.read())["choices"][0]["text"])
        if n > 1:  # the EP worker's figures reach the frontend's /metrics with its load reports
            ep_series = {}
            deadline = time.time() + 15
            # Wait for a load report sent after the requests (the first ones carry zeros).
            while time.time() < deadline and not any(
                    v > 0 for _, v in ep_series.get("wideserve_ep_dispatched_tokens_total", [])):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    ep_series = parse_ep_metrics(r.read().decode())
                time.sleep(0.5)
            check_ep_metrics(ep_series, n)
        return texts
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def parse_ep_metrics(text):
    """wideserve_ep_* lines -> {name: [(labels, value)]}."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("wideserve_ep_"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = dict(kv.split("=", 1) for kv in rest.rstrip("}").replace('"', "").split(",") if kv)
        out.setdefault(name, []).append((labels, float(value)))
    return out


def check_ep_metrics(m, n):
    imb = m.get("wideserve_ep_expert_load_imbalance", [])
    check(len(imb) >= 1 and all(1.0 <= v <= n and "layer" in l and "worker" in l for l, v in imb),
          f"serve {n} ranks: /metrics has per-layer imbalance >= 1 ({imb})")
    disp = [v for _, v in m.get("wideserve_ep_dispatched_tokens_total", [])]
    fwd = [v for _, v in m.get("wideserve_ep_forwards_total", [])]
    check(len(disp) == 1 and disp[0] > 0 and len(fwd) == 1 and fwd[0] > 0,
          f"serve {n} ranks: dispatched tokens {disp} and forwards {fwd} counted")
    check([v for _, v in m.get("wideserve_ep_ranks", [])] == [float(n)], f"serve: wideserve_ep_ranks == {n}")


one = serve_tokens(1)
four = serve_tokens(4)
check(one is not None and four is not None, "serve with 1 and 4 ranks answers")
check(one == four, f"serve: 4-rank EP worker == 1 rank ({one} vs {four})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
