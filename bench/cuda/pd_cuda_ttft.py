"""Time to first token with prefill/decode disaggregation on the CUDA backend against one
aggregated worker, same GPU, same model and flags: the difference is what the KV handoff costs
(the tcp agent stages the GPU pool through host memory, disagg/kv_agent.h). DeepSeek-V2-Lite
dimensions with dummy weights (make-model --config-only), prompts of 512 and 2048 random token
ids, max_tokens 2, one request at a time, five of each after a warm-up; prints the medians and
the KV bytes each prompt moves. Run on the GPU machine (bench/cuda/session17_pd_ttft_run.sh)."""
import os, random, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "disagg"))
import pd_util as u  # noqa: E402
from pd_util import h  # noqa: E402

GPU = ["--device", "cuda", "--load-format", "dummy", "--max-total-tokens", "16384"]
LENGTHS = [512, 2048]
REPS = 5
KV_BYTES_PER_TOKEN = 27 * 576 * 2  # V2-Lite: layers x latent row x bf16


def timed(c, prompt):
    t0 = time.time()
    st, ids, err = u.completion(c, prompt, 2)
    if st != 200:
        raise RuntimeError(f"request failed: {st} {err}")
    return time.time() - t0


def measure(c, label):
    out = {}
    for n in LENGTHS:
        rng = random.Random(n)
        prompts = [[0] + [rng.randrange(2, 100000) for _ in range(n - 1)] for _ in range(REPS + 1)]
        timed(c, prompts[0])  # warm-up
        out[n] = statistics.median(timed(c, p) for p in prompts[1:])
        print(f"{label}: {n}-token prompt, latency (2 tokens) median {out[n] * 1e3:.1f} ms", flush=True)
    return out


def main():
    model = tempfile.mkdtemp(prefix="v2lite.")
    subprocess.run([h.BIN, "make-model", "--preset", "v2-lite", "--config-only", "--out", model],
                   check=True, capture_output=True)
    c = u.PdCluster("agg")
    c.start_frontend()
    w = c.start(model, "agg", *GPU)
    c.wait_registered([w], timeout=240)
    agg = measure(c, "aggregated")
    w.kill()
    c.frontend.kill()
    c = u.PdCluster("pd")
    c.start_frontend()
    pre = c.start(model, "prefill", *GPU, backend="tcp")
    dec = c.start(model, "decode", *GPU, backend="tcp")
    c.wait_registered([pre, dec], timeout=240)
    pd = measure(c, "1P1D tcp")
    print("| prompt tokens | aggregated ms | 1P1D tcp ms | added ms | KV MB moved | GB/s of the added time |")
    print("|---|---|---|---|---|---|")
    for n in LENGTHS:
        mb = n * KV_BYTES_PER_TOKEN / 1e6
        extra = (pd[n] - agg[n]) * 1e3
        print(f"| {n} | {agg[n] * 1e3:.1f} | {pd[n] * 1e3:.1f} | {extra:.1f} | {mb:.1f} | "
              f"{mb / 1e3 / max(pd[n] - agg[n], 1e-9):.2f} |", flush=True)
    pre.kill()
    dec.kill()
    c.frontend.kill()


h.run_test(main, budget_s=270)
