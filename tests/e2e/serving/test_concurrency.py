"""256 concurrent streaming clients (openai.AsyncOpenAI) against one frontend and two tiny-model
workers: every stream completes with exactly the tokens of the sequential run of its prompt, and
afterwards nothing leaks (radix cache off: KV usage back to 0, running = waiting = 0)."""
import asyncio, os, random, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h
from harness import check

import openai

NAME = "tiny"
CLIENTS = 256
DISTINCT = 24
MAX_TOKENS = 16
WORDS = ("river stone cloud lantern orbit maple copper violin harbor meadow signal ember glacier "
         "compass thunder velvet prism falcon").split()


def make_prompts():
    # Seed 2039: no greedy output of these prompts (16 tokens) has an id past the tokenizer's
    # vocabulary, so this test does not depend on how the frontend treats the model's padding ids
    # (test_openai_api covers those).
    rng = random.Random(2039)
    prompts = []
    for k in range(DISTINCT):
        if k % 2 == 0:  # completions with a token-id prompt of varied length
            prompts.append(("completions", [0] + [rng.randrange(2, 128000) for _ in range(3 + 5 * (k % 9))]))
        else:  # chat with a varied message
            words = " ".join(rng.choice(WORDS) for _ in range(2 + k % 7))
            prompts.append(("chat", f"Prompt {k}: {words}"))
    return prompts


async def one(client, kind, prompt, extra):
    """One streaming request; returns (token ids, finish reasons, error or None)."""
    ids, fins = [], []
    try:
        if kind == "completions":
            stream = await client.completions.create(model=NAME, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0,
                                                     stream=True, extra_body=extra)
        else:
            stream = await client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": prompt}],
                                                          max_tokens=MAX_TOKENS, temperature=0, stream=True,
                                                          extra_body=extra)
        async for chunk in stream:
            d = chunk.model_dump()
            if d.get("error"):
                return ids, fins, f"error event {d['error']}"
            for ch in d["choices"]:
                ids += ch.get("token_ids") or []
                if ch.get("finish_reason"):
                    fins.append(ch["finish_reason"])
    except Exception as e:  # noqa: BLE001 -- reported as the client's failure
        return ids, fins, f"{type(e).__name__}: {e}"
    return ids, fins, None


async def burst(c, prompts):
    client = openai.AsyncOpenAI(base_url=c.base_url, api_key="none", max_retries=0, timeout=110)
    extra = {"return_token_ids": True, "ignore_eos": True}
    tasks = [one(client, *prompts[i % DISTINCT], extra) for i in range(CLIENTS)]
    out = await asyncio.gather(*tasks)
    await client.close()
    return out


def main():
    model = h.tiny_model_dir()
    c = h.Cluster("conc")
    c.start_frontend()
    for _ in range(2):
        c.start_worker(model, NAME, "--disable-radix-cache")
    c.wait_instances(2, NAME)
    prompts = make_prompts()

    # The sequential reference: each distinct prompt alone.
    cli = h.openai_client(c)
    refs = []
    t0 = time.time()
    for kind, p in prompts:
        extra = {"return_token_ids": True, "ignore_eos": True}
        if kind == "completions":
            r = cli.completions.create(model=NAME, prompt=p, max_tokens=MAX_TOKENS, temperature=0, extra_body=extra)
        else:
            r = cli.chat.completions.create(model=NAME, messages=[{"role": "user", "content": p}],
                                            max_tokens=MAX_TOKENS, temperature=0, extra_body=extra)
        refs.append(r.model_dump()["choices"][0]["token_ids"])
    print(f"sequential reference: {DISTINCT} requests in {time.time() - t0:.1f} s")
    check(all(len(r) == MAX_TOKENS for r in refs), f"sequential runs: {MAX_TOKENS} tokens each")

    m0 = c.metrics()
    t0 = time.time()
    results = asyncio.run(burst(c, prompts))
    print(f"{CLIENTS} concurrent streams in {time.time() - t0:.1f} s")
    errors = [(i, e) for i, (_, _, e) in enumerate(results) if e]
    check(not errors, f"all {CLIENTS} streams complete without error [{errors[:3]}]")
    wrong = [i for i, (ids, _, _) in enumerate(results) if ids != refs[i % DISTINCT]]
    check(not wrong, f"every stream's token ids == the sequential run of its prompt "
                     f"[{len(wrong)} differ, e.g. {[(i, results[i][0], refs[i % DISTINCT]) for i in wrong[:2]]}]")
    badfin = [i for i, (_, f, _) in enumerate(results) if f != ["length"]]
    check(not badfin, f"every stream ends with one finish_reason length [{badfin[:5]}]")

    m1 = c.metrics()
    ok = sum(h.metric_sum(m1, "wideserve_frontend_requests_total", model=NAME, request_type="stream", status="success")
             - h.metric_sum(m0, "wideserve_frontend_requests_total", model=NAME, request_type="stream",
                            status="success") for _ in [0])
    check(ok == CLIENTS, f"requests_total counted {CLIENTS} successful streams [{ok}]")
    used = set()
    for w in c.instances(NAME):
        used.add(w["instance_id"])
    check(len(used) == 2, "both workers are still registered")

    # No leak: the workers report idle and no KV in use (heartbeats may lag a little).
    inst, kv = c.wait_idle(timeout=10)
    check(len(inst) == 2 and all(i["running"] == 0 and i["waiting"] == 0 for i in inst),
          f"/health: running=0, waiting=0 on both workers afterwards [{inst}]")
    check(len(kv) == 2 and all(v == 0 for v in kv), f"/metrics worker_kv_usage back to 0 on both workers [{kv}]")
    check(h.metric_sum(c.metrics(), "wideserve_frontend_inflight_requests") == 0, "inflight_requests back to 0")
    per_worker = h.parse_metrics(h.curl(c.url + "/metrics")[1].decode()).get(
        "wideserve_frontend_worker_running_requests", [])
    check(len(per_worker) == 2 and all(v == 0 for _, v in per_worker), "worker_running_requests 0 on both")


h.run_test(main)
