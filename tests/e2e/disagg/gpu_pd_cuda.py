"""GPU only (not a ctest test: run on the GPU machine through the device tool,
bench/cuda/session17_pd_cuda_run.sh): prefill/decode disaggregation on the CUDA backend. The KV
pools are GPU memory; the tcp agent stages them through host memory (disagg/kv_agent.h).

Reference: one aggregated tiny-model worker on the GPU behind its own frontend, one greedy request
at a time. Then 1P1D with --disaggregation-transfer-backend tcp (page size 16 both sides), 1P1D
with nixl (the seed's spelling: switched to tcp for a GPU pool, which the worker logs; page size 1
prefill / 16 decode), and 1P2D tcp:
  - 16 concurrent greedy /v1/completions of 1..300 tokens (chunked prefill) plus n=2 requests all
    complete with max_tokens tokens. They are not compared token for token: the GPU kernels
    depend on the batch (small-batch and grouped MoE paths round differently), and concurrent
    requests batch differently in a PD pair than in one aggregated worker, so a near-tie of the
    random tiny model can flip (seen once in 18 on the H200);
  - the same prompts one at a time (streaming and not, alternately) equal the reference token
    for token: the same kernels run on bytes the transfer must have moved exactly;
  - afterwards every worker reports running = waiting = 0 and KV usage 0."""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pd_util as u
from pd_util import check, h

GPU = ["--device", "cuda", "--max-total-tokens", "8192"]
CONCURRENT = 16
MAX_TOKENS = 8
LAYOUTS = [  # (label, decode workers, backend, prefill page size, decode page size)
    ("1P1D tcp page 16", 1, "tcp", 16, 16),
    ("1P1D nixl prefill page 1 / decode page 16", 1, "nixl", 1, 16),
    ("1P2D tcp page 16", 2, "tcp", 16, 16),
]


def run_layout(model, prompts, ref, label, nd, backend, pps, dps):
    t0 = time.time()
    c = u.PdCluster("pd")
    c.start_frontend()
    pre = [c.start(model, "prefill", *GPU, backend=backend, page_size=pps)]
    dec = [c.start(model, "decode", *GPU, backend=backend, page_size=dps) for _ in range(nd)]
    c.wait_registered(pre + dec)
    print(f"[{label}] up in {time.time() - t0:.1f} s", flush=True)
    jobs = [(c, p, MAX_TOKENS) for p in prompts]
    jobs += [(c, p, MAX_TOKENS, 2, 120, k % 2 == 1) for k, p in enumerate(prompts[-2:])]
    res = u.run_concurrent(u.completion, jobs)
    bad, same = [], 0
    for job, (st, ids, err) in zip(jobs, res):
        n = job[3] if len(job) > 3 else 1
        if st != 200 or not ids or len(ids) != n or any(len(x) != MAX_TOKENS for x in ids):
            bad.append(f"len {len(job[1])} n={n}: status {st} got {ids} err {err}")
        elif ids == [ref[tuple(job[1])]] * n:
            same += 1
    check(not bad, f"[{label}] {len(jobs)} concurrent requests complete with {MAX_TOKENS} tokens "
                   f"each ({same} equal the one-at-a-time reference) [{bad[:3]}]")
    seq_bad = []
    for k, p in enumerate(prompts):
        st, ids, err = u.completion(c, p, MAX_TOKENS, stream=k % 2 == 1)
        if st != 200 or ids != [ref[tuple(p)]]:
            seq_bad.append(f"len {len(p)}: {st} got {ids} want {ref[tuple(p)]} {err}")
    check(not seq_bad, f"[{label}] {len(prompts)} requests one at a time equal the aggregated GPU "
                       f"output token for token [{seq_bad[:3]}]")
    u.check_drained(c, pre + dec, label)
    logs = [p.log_text() for p in dec]
    check(all("of GPU memory registered" in t for t in logs),
          f"[{label}] each decode worker registered its GPU KV pool with the transfer agent")
    if backend != "tcp":
        check(all("the tcp agent stages the pool through host memory" in t for t in logs),
              f"[{label}] --disaggregation-transfer-backend {backend} was switched to tcp, with the reason")
    for p in pre + dec:
        p.kill()
    c.frontend.kill()


def main():
    model = h.tiny_model_dir()
    prompts = u.prompt_set(CONCURRENT)
    t0 = time.time()
    ref = u.reference(model, prompts, MAX_TOKENS, *GPU, one_at_a_time=True)
    print(f"reference: {len(ref)} prompts in {time.time() - t0:.1f} s", flush=True)
    for layout in LAYOUTS:
        run_layout(model, prompts, ref, *layout)


h.run_test(main, budget_s=240)
