"""Clients that leave mid-request make the worker abort: a curl stream killed after a few events, an
openai SDK stream closed early, and a non-streaming request whose client gives up. Each time
/health shows running=0 within a few seconds, wideserve_frontend_disconnected_clients_total grows
by one, and (radix cache off) the worker's KV usage returns to 0."""
import json, os, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h
from harness import check

NAME = "tiny"
LONG = 2000  # tokens asked for: minutes of decoding on the CPU; only an abort ends it early
SETTLE_S = 6.0
# Token-id prompts whose greedy outputs stay inside the tokenizer's vocabulary for a long while
# (288, 342 and over 400 tokens), so this test does not depend on how the frontend treats the
# model's padding ids (test_openai_api covers those).
PROMPTS = [[0, 5, 6], [0, 42], [0, 9999]]


def disconnected(c):
    return h.metric_sum(c.metrics(), "wideserve_frontend_disconnected_clients_total")


def wait_running(c, want, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        inst = c.instances(NAME)
        if inst and inst[0]["running"] == want:
            return True
        time.sleep(0.1)
    return False


def check_released(c, what, before):
    t0 = time.time()
    inst, kv = c.wait_idle(timeout=SETTLE_S)
    took = time.time() - t0
    check(inst and inst[0]["running"] == 0 and inst[0]["waiting"] == 0,
          f"{what}: /health shows running=0, waiting=0 within {SETTLE_S} s [{inst}, {took:.1f} s]")
    check(kv and all(v == 0 for v in kv), f"{what}: worker KV usage back to 0 [{kv}]")
    d = disconnected(c) - before
    check(d == 1, f"{what}: disconnected_clients_total grew by 1 [{d}]")
    status, _ = h.curl(c.url + "/health")
    check(status == 200, f"{what}: the frontend still answers")


def body(prompt, stream):
    return {"model": NAME, "prompt": prompt, "max_tokens": LONG, "temperature": 0, "ignore_eos": True,
            "stream": stream}


def main():
    model = h.tiny_model_dir()
    c = h.Cluster("disc")
    c.start_frontend()
    c.start_worker(model, NAME, "--disable-radix-cache")
    c.wait_instances(1, NAME)
    check(disconnected(c) == 0, "disconnected_clients_total starts at 0")

    # 1. curl stream, killed after three data events.
    before = disconnected(c)
    p = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "--data-binary",
                          json.dumps(body(PROMPTS[0], True)), c.url + "/v1/completions"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    events = 0
    deadline = time.time() + 60
    while events < 3 and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        events += line.startswith(b"data: {")
    check(events == 3, "curl stream: three data events arrived")
    check(wait_running(c, 1), "curl stream: the worker reports it running")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    check_released(c, "curl stream killed", before)

    # 2. openai SDK stream closed after two chunks.
    before = disconnected(c)
    cli = h.openai_client(c, timeout=60)
    s = cli.completions.create(model=NAME, prompt=PROMPTS[1], max_tokens=LONG, temperature=0, stream=True,
                               extra_body={"ignore_eos": True})
    got = 0
    for _ in s:
        got += 1
        if got == 2:
            break
    check(got == 2 and wait_running(c, 1), "SDK stream: two chunks arrived, the worker reports it running")
    s.close()
    check_released(c, "SDK stream closed", before)

    # 3. A non-streaming request whose client gives up after 3 s.
    before = disconnected(c)
    t0 = time.time()
    p = subprocess.Popen(["curl", "-sS", "--max-time", "3", "-H", "Content-Type: application/json",
                          "--data-binary", json.dumps(body(PROMPTS[2], False)), c.url + "/v1/completions"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    check(wait_running(c, 1, timeout=3), "non-streaming: the worker reports it running")
    out, err = p.communicate(timeout=30)
    check(p.returncode == 28 and time.time() - t0 < 10, f"non-streaming: curl gave up at its --max-time "
                                                         f"[rc {p.returncode}, {out[:200]!r}]")
    check_released(c, "non-streaming client gone", before)

    # Disconnects are counted as such, and the server goes on serving.
    m = c.metrics()
    d = h.metric_sum(m, "wideserve_frontend_requests_total", status="disconnected")
    check(d == 3, f"requests_total{{status=disconnected}} counts the 3 requests [{d}]")
    check(h.metric_sum(m, "wideserve_frontend_inflight_requests") == 0, "inflight_requests back to 0")
    r = cli.completions.create(model=NAME, prompt=PROMPTS[0], max_tokens=4, temperature=0,
                               extra_body={"ignore_eos": True, "return_token_ids": True})
    ids = r.model_dump()["choices"][0]["token_ids"]
    check(ids == h.generate_ids(model, PROMPTS[0], 4), "a request after the disconnects gives the greedy tokens")


h.run_test(main)
