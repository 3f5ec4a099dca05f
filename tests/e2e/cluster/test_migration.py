"""Request migration (--migration-limit) end to end: a frontend and three tiny-model workers; 100
concurrent greedy streams (openai.AsyncOpenAI, return_token_ids) run once undisturbed, then again
while one worker is killed with SIGKILL mid-stream.
- --migration-limit 1: every stream completes, with exactly the token ids of the undisturbed run
  (no token lost or repeated at the splice), one finish_reason each, usage = original prompt +
  max_tokens; the frontend counted migrations; a non-streaming n=2 request spliced as well.
- --migration-limit 0 (a new frontend on the same registry port: the workers re-register): the
  streams of the killed worker end with an SSE error event, all others complete exactly."""
import asyncio, os, random, signal, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import harness as h
from harness import check

import openai

NAME = "tiny"
STREAMS = 100
MAX_TOKENS = 40
TTL_MS = 1500  # frontend --worker-ttl-ms: how soon a SIGKILLed worker is noticed
WORKER_ARGS = ("--heartbeat-interval-ms", "200", "--disable-radix-cache")


def make_prompts():
    # Token-id prompts of varied length (ids of ordinary BPE pieces); chat for every 4th stream;
    # every 10th a non-streaming n=2 completion (each choice migrates on its own).
    rng = random.Random(11)
    out = []
    for k in range(STREAMS):
        if k % 10 == 5:
            out.append(("unary_n2", [rng.randrange(1000, 20000) for _ in range(4 + k % 13)]))
        elif k % 4 == 3:
            out.append(("chat", f"Stream {k}: " + " ".join(rng.choice("river stone cloud orbit maple copper".split())
                                                             for _ in range(2 + k % 5))))
        else:
            out.append(("completions", [rng.randrange(1000, 20000) for _ in range(4 + k % 13)]))
    return out


async def one(client, kind, prompt, progress, idx):
    """One streaming request: (token ids, finish reasons, usage, error or None)."""
    ids, fins, usage = [], [], None
    extra = {"return_token_ids": True, "ignore_eos": True}
    opts = dict(model=NAME, max_tokens=MAX_TOKENS, temperature=0, stream=True,
                stream_options={"include_usage": True}, extra_body=extra)
    try:
        if kind == "unary_n2":
            r = (await client.completions.create(model=NAME, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0, n=2,
                                                 extra_body=extra)).model_dump()
            chs = sorted(r["choices"], key=lambda x: x["index"])
            if len(chs) != 2 or chs[0]["token_ids"] != chs[1]["token_ids"]:
                return [], [], None, f"n=2 choices differ (greedy): {chs}"
            progress[idx] = MAX_TOKENS
            u = dict(r["usage"])
            u["completion_tokens"] //= 2
            return chs[0]["token_ids"], [chs[0]["finish_reason"]], u, None
        if kind == "completions":
            stream = await client.completions.create(prompt=prompt, **opts)
        else:
            stream = await client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **opts)
        async for chunk in stream:
            d = chunk.model_dump()
            if d.get("error"):
                return ids, fins, usage, f"error event {d['error']}"
            if d.get("usage"):
                usage = d["usage"]
            for ch in d.get("choices") or []:
                ids += ch.get("token_ids") or []
                if ch.get("finish_reason"):
                    fins.append(ch["finish_reason"])
            progress[idx] = len(ids)
    except (openai.APIConnectionError, openai.APIStatusError) as e:
        return ids, fins, usage, f"{type(e).__name__}: {e}"
    except openai.APIError as e:  # the SDK raises this for an SSE error event
        return ids, fins, usage, f"error event {e}"
    except Exception as e:  # noqa: BLE001 -- reported as the stream's failure
        return ids, fins, usage, f"{type(e).__name__}: {e}"
    return ids, fins, usage, None


async def burst(base_url, prompts, on_progress=None):
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=170)
    progress = [0] * len(prompts)
    tasks = [asyncio.create_task(one(client, kind, p, progress, i)) for i, (kind, p) in enumerate(prompts)]
    if on_progress:
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.05)
            on_progress(progress)
    out = await asyncio.gather(*tasks)
    await client.close()
    return out


def kill_when(c, workers, fraction, state):
    """on_progress callback: once the streams received `fraction` of all tokens, SIGKILL the worker
    of `workers` with the most streams running (at least 3): on a loaded box one worker may finish
    its share early, and killing an idle worker tests nothing. state["victim"] names it."""
    def running(w):
        return sum(v for labels, v in c.metrics().get("wideserve_frontend_worker_running_requests", [])
                   if f":{w.pid}:" in labels.get("worker", ""))

    def cb(progress):
        if state.get("t") is not None or sum(progress) < fraction * STREAMS * MAX_TOKENS:
            return
        busy = max(workers, key=running)
        if running(busy) >= 3:
            state["t"] = time.time()
            state["at"] = list(progress)
            state["victim"] = busy
            busy.kill()
    return cb


def metric(c, name):
    return h.metric_sum(c.metrics(), name, model=NAME)


def main():
    model = h.tiny_model_dir()
    c = h.Cluster("migration")
    c.start_frontend("--migration-limit", "1", "--worker-ttl-ms", str(TTL_MS))
    ws = [c.start_worker(model, NAME, *WORKER_ARGS) for _ in range(3)]
    c.wait_instances(3, NAME)
    prompts = make_prompts()

    t0 = time.time()
    ref = asyncio.run(burst(c.base_url, prompts))
    print(f"undisturbed: {STREAMS} streams in {time.time() - t0:.1f} s")
    check(all(e is None for *_, e in ref), f"undisturbed run: no errors [{[e for *_, e in ref if e][:3]}]")
    check(all(len(ids) == MAX_TOKENS for ids, *_ in ref), f"undisturbed run: {MAX_TOKENS} tokens per stream")
    ref_ids = [ids for ids, *_ in ref]
    ref_usage = [u for _, _, u, _ in ref]

    # 1. --migration-limit 1: SIGKILL a worker a quarter of the way through.
    state = {}
    m0 = metric(c, "wideserve_frontend_migrations_total")
    t0 = time.time()
    res = asyncio.run(burst(c.base_url, prompts, kill_when(c, list(ws), 0.25, state)))
    took = time.time() - t0
    check(state.get("t") is not None, "a worker was killed while the streams ran")
    if state.get("victim"):
        c.workers.remove(state["victim"])  # wait_instances() checks that every listed worker lives
    mid = sum(1 for p in state.get("at", []) if 0 < p < MAX_TOKENS)
    print(f"killed a worker at +{state.get('t', t0) - t0:.1f} s with {mid} streams mid-way; all done in {took:.1f} s")
    errors = [(i, e) for i, (*_, e) in enumerate(res) if e]
    check(not errors, f"limit 1: every stream completes without an error [{len(errors)}: {errors[:3]}]")
    wrong = [i for i, (ids, *_) in enumerate(res) if ids != ref_ids[i]]
    check(not wrong, f"limit 1: every stream's token ids == the undisturbed run's [{len(wrong)} differ, e.g. "
                     f"{[(i, res[i][0], ref_ids[i]) for i in wrong[:2]]}]")
    badfin = [i for i, (_, f, _, _) in enumerate(res) if f != ["length"]]
    check(not badfin, f"limit 1: one finish_reason 'length' per stream [{badfin[:5]}]")
    badusage = [i for i, (_, _, u, _) in enumerate(res)
                if not u or u["prompt_tokens"] != ref_usage[i]["prompt_tokens"] or u["completion_tokens"] != MAX_TOKENS]
    check(not badusage, f"limit 1: usage counts the original prompt and {MAX_TOKENS} completion tokens "
                        f"[{[(i, res[i][2], ref_usage[i]) for i in badusage[:2]]}]")
    moved = metric(c, "wideserve_frontend_migrations_total") - m0
    check(moved >= 1, f"the frontend counted migrations [{moved}]")
    log = c.frontend.log_text()
    check("moves to another worker" in log, "the frontend logged the migrations")
    c.wait_instances(2, NAME, timeout=10)

    # 2. --migration-limit 0: a new frontend on the same registry port; the two survivors re-register.
    c.frontend.signal(signal.SIGTERM)
    c.frontend.popen.wait(timeout=30)
    old_port = c.http_port
    c.http_port = h.free_port()
    c.frontend = h.Proc("frontend-limit0", [h.BIN, "frontend", "--http-port", str(c.http_port), "--http-host",
                                            "127.0.0.1", "--discovery", c.discovery, "--migration-limit", "0",
                                            "--worker-ttl-ms", str(TTL_MS)], c.dir)
    c.wait_instances(2, NAME, timeout=30)
    assert c.http_port != old_port
    state = {}
    res0 = asyncio.run(burst(c.base_url, prompts, kill_when(c, list(c.workers), 0.25, state)))
    if state.get("victim"):
        c.workers.remove(state["victim"])
    check(state.get("t") is not None, "limit 0: the worker was killed while the streams ran")
    failed = [i for i, (*_, e) in enumerate(res0) if e]
    ok = [i for i, (*_, e) in enumerate(res0) if not e]
    print(f"limit 0: {len(failed)} streams ended with an error, {len(ok)} completed")
    check(0 < len(failed) < STREAMS, f"limit 0: some streams (those of the killed worker) fail [{len(failed)}]")
    streamed = [i for i in failed if prompts[i][0] != "unary_n2"]
    unary = [i for i in failed if prompts[i][0] == "unary_n2"]
    check(all(res0[i][3].startswith("error event") for i in streamed),
          f"limit 0: the failed streams end with an SSE error event "
          f"[{[res0[i][3] for i in streamed if not res0[i][3].startswith('error event')][:2]}]")
    check(all("Error code: 503" in res0[i][3] for i in unary),
          f"limit 0: failed non-streaming requests get 503 [{[res0[i][3] for i in unary][:2]}]")
    check(all(res0[i][0] == ref_ids[i][:len(res0[i][0])] for i in failed),
          "limit 0: what the failed streams got before the error is a prefix of the undisturbed run")
    check(all(res0[i][0] == ref_ids[i] and res0[i][1] == ["length"] for i in ok),
          "limit 0: every other stream completes with the undisturbed run's tokens")
    check(metric(c, "wideserve_frontend_migrations_total") == 0, "limit 0: nothing migrated")


h.run_test(main, budget_s=180)
