"""Disaggregated greedy output is token-for-token the aggregated output, through the HTTP API.

Reference: one aggregated tiny-model worker behind its own frontend (same engine flags). Then,
for each layout below, a frontend with prefill and decode workers gets 32 concurrent
/v1/completions of varied prompt lengths (1..300 tokens, --chunked-prefill-size 64 so long
prompts are prefilled in chunks) plus n=2 requests (unary and streaming, each sample its own
bootstrap room); every choice must equal the reference. Afterwards every worker reports
running = waiting = 0 and KV usage 0 (--disable-radix-cache everywhere), and in 2P2D every
prefill worker served some decode worker.

Layouts: 1P1D tcp (page size 1 both sides), 1P1D nixl (page size 16 both sides), 2P2D tcp
(prefill page size 16, decode page size 1), 2P2D ucx (prefill page size 1, decode page size 16)."""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pd_util as u
from pd_util import check, h

CONCURRENT = 32
MAX_TOKENS = 8
N2_PROMPTS = 3
LAYOUTS = [  # (label, prefill workers, decode workers, backend, prefill page size, decode page size)
    ("1P1D tcp page 1", 1, 1, "tcp", 1, 1),
    ("1P1D nixl page 16", 1, 1, "nixl", 16, 16),
    ("2P2D tcp prefill page 16 / decode page 1", 2, 2, "tcp", 16, 1),
    ("2P2D ucx prefill page 1 / decode page 16", 2, 2, "ucx", 1, 16),
]


def run_layout(model, prompts, ref, label, np_, nd, backend, pps, dps):
    t0 = time.time()
    c = u.PdCluster("pd")
    c.start_frontend()
    pre = [c.start(model, "prefill", backend=backend, page_size=pps) for _ in range(np_)]
    dec = [c.start(model, "decode", backend=backend, page_size=dps) for _ in range(nd)]
    c.wait_registered(pre + dec)
    print(f"[{label}] {np_}P{nd}D up in {time.time() - t0:.1f} s", flush=True)

    # 32 concurrent n=1 requests, and n=2 (unary + streaming) at the same time.
    jobs = [(c, p, MAX_TOKENS) for p in prompts[:CONCURRENT]]
    n2 = prompts[-N2_PROMPTS:]
    jobs += [(c, p, MAX_TOKENS, 2, 120, k % 2 == 1) for k, p in enumerate(n2)]
    t1 = time.time()
    res = u.run_concurrent(u.completion, jobs)
    print(f"[{label}] {len(jobs)} requests in {time.time() - t1:.1f} s", flush=True)
    bad = []
    for job, (st, ids, err) in zip(jobs, res):
        p = job[1]
        n = job[3] if len(job) > 3 else 1
        want = [ref[tuple(p)]] * n
        if st != 200 or ids != want:
            bad.append(f"len {len(p)} n={n}: status {st} got {ids} want {want[0]} err {err}")
    check(not bad, f"[{label}] {len(jobs)} concurrent requests (n=1 and n=2) equal the aggregated "
                   f"output [{len(bad)} differ: {bad[:3]}]")

    # A second, sequential pass over a few prompts (the peers are connected now).
    seq_bad = []
    for p in prompts[:4]:
        st, ids, err = u.completion(c, p, MAX_TOKENS, stream=True)
        if st != 200 or ids != [ref[tuple(p)]]:
            seq_bad.append(f"len {len(p)}: {st} {ids} {err}")
    check(not seq_bad, f"[{label}] sequential streaming requests equal the aggregated output [{seq_bad}]")

    u.check_drained(c, pre + dec, label)
    if np_ > 1:
        served = [p.log_text().count("decode engine ") for p in pre]
        check(all(s > 0 for s in served), f"[{label}] every prefill worker had a decode engine connect "
                                          f"[{served}]")
    for p in pre + dec:
        p.kill()
    c.frontend.kill()


def main():
    model = h.tiny_model_dir()
    prompts = u.prompt_set(CONCURRENT)
    t0 = time.time()
    ref = u.reference(model, prompts, MAX_TOKENS)
    print(f"reference: {len(ref)} prompts in {time.time() - t0:.1f} s", flush=True)
    check(all(len(v) == MAX_TOKENS for v in ref.values()), "the reference has max_tokens tokens per prompt")
    for layout in LAYOUTS:
        run_layout(model, prompts, ref, *layout)


h.run_test(main, budget_s=180)
