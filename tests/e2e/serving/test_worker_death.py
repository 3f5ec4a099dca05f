"""A worker killed with SIGKILL mid-stream: its clients get an SSE error event within ~5 s (the
frontend's default --worker-ttl-ms is 3000), the other worker's streams complete, new requests
succeed on the remaining worker, and /health lists one instance. Mock engine, 50 ms per step."""
import json, os, signal, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h
from harness import check

import openai

NAME = "mock"
STREAMS = 8  # half through curl (raw SSE), half through the openai SDK
MAX_TOKENS = 300  # 50 ms a step: 15 s, far longer than the test needs after the kill
ERROR_WITHIN_S = 6.0


class CurlStream(threading.Thread):
    def __init__(self, c, i):
        super().__init__(daemon=True)
        body = {"model": NAME, "messages": [{"role": "user", "content": f"stream {i} tell me everything"}],
                "max_tokens": MAX_TOKENS, "stream": True, "ignore_eos": True, "return_token_ids": True}
        self.p = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "90", "-H", "Content-Type: application/json",
                                   "--data-binary", json.dumps(body), c.url + "/v1/chat/completions"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.events = []  # (time, event)
        self.tokens = 0
        self.start()

    def run(self):
        buf = b""
        for line in self.p.stdout:
            buf += line
            if line.strip() == b"":
                for ev in h.parse_sse(buf.decode("utf-8", "replace")):
                    self.events.append((time.time(), ev))
                    if isinstance(ev, dict):
                        self.tokens += sum(len(x.get("token_ids") or []) for x in ev.get("choices", []))
                buf = b""
        self.p.wait()

    def error(self):
        return next(((t, e) for t, e in self.events if isinstance(e, dict) and "error" in e), None)

    def finish(self):
        return [x["finish_reason"] for _, e in self.events if isinstance(e, dict)
                for x in e.get("choices", []) if x.get("finish_reason")]


class SdkStream(threading.Thread):
    def __init__(self, c, i):
        super().__init__(daemon=True)
        self.client = openai.OpenAI(base_url=c.base_url, api_key="none", max_retries=0, timeout=90)
        self.i = i
        self.tokens = 0
        self.fins = []
        self.exc = None  # (time, exception)
        self.start()

    def run(self):
        try:
            s = self.client.completions.create(model=NAME, prompt=f"sdk stream {self.i} goes on and on",
                                               max_tokens=MAX_TOKENS, stream=True,
                                               extra_body={"ignore_eos": True, "return_token_ids": True})
            for chunk in s:
                for x in chunk.model_dump()["choices"]:
                    self.tokens += len(x.get("token_ids") or [])
                    if x.get("finish_reason"):
                        self.fins.append(x["finish_reason"])
        except Exception as e:  # noqa: BLE001 -- the SDK raises on an SSE error event
            self.exc = (time.time(), e)


def main():
    model = h.tiny_model_dir()  # the tokenizer; the mock engine makes the tokens
    c = h.Cluster("death")
    c.start_frontend()
    for _ in range(2):
        c.start_worker(model, NAME, "--mock-decode-ms", "50", mock=True)
    c.wait_instances(2, NAME)
    by_id = {}
    for i in c.instances(NAME):
        by_id[i["instance_id"]] = i
    check(len(by_id) == 2, "two mock workers registered")

    # Started one by one (each once it streams), so round-robin gives each worker both kinds.
    streams = []
    for i in range(STREAMS):
        streams.append(CurlStream(c, i) if i % 4 < 2 else SdkStream(c, i))
        t = time.time() + 20
        while streams[-1].tokens == 0 and time.time() < t:
            time.sleep(0.02)
    # Wait until every stream has tokens and the heartbeats show all of them running.
    deadline = time.time() + 30
    while time.time() < deadline:
        inst = c.instances(NAME)
        if all(s.tokens > 0 for s in streams) and sum(i["running"] for i in inst) == STREAMS:
            break
        time.sleep(0.2)
    inst = c.instances(NAME)
    running = {i["instance_id"]: i["running"] for i in inst}
    check(all(s.tokens > 0 for s in streams) and sum(running.values()) == STREAMS,
          f"all {STREAMS} streams flowing, /health counts them running [{running}]")
    # The victim: the worker process whose instance id names its pid (id is host:pid:nonce).
    victim = c.workers[0]
    vid = next((k for k in running if k.split(":")[1:2] == [str(victim.pid)]), None)
    if vid is None:  # instance ids need not name the pid: take the one registered at that endpoint
        vid = next(iter(running))
    n_victim = running.get(vid, 0)
    check(n_victim > 0 and n_victim < STREAMS, f"the victim {vid} serves some but not all streams [{n_victim}]")

    t_kill = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    victim.popen.wait(timeout=10)
    print(f"killed worker pid {victim.pid} ({vid}) serving {n_victim} streams")

    for s in streams:
        s.join(timeout=60)
    check(all(not s.is_alive() for s in streams), "every stream ended")

    errored, completed, other = [], [], []
    for s in streams:
        if isinstance(s, CurlStream):
            err = s.error()
            if err:
                errored.append((s, err[0], err[1]))
            elif s.finish() == ["length"] and s.tokens == MAX_TOKENS and s.events[-1][1] == "[DONE]":
                completed.append(s)
            else:
                other.append((s, s.finish(), s.tokens, s.events[-2:]))
        else:
            if s.exc:
                errored.append((s, s.exc[0], s.exc[1]))
            elif s.fins == ["length"] and s.tokens == MAX_TOKENS:
                completed.append(s)
            else:
                other.append((s, s.fins, s.tokens))
    check(not other, f"every stream either completed or got an error [{other}]")
    check(len(errored) == n_victim, f"exactly the victim's {n_victim} streams got an error [{len(errored)}]")
    check(len(completed) == STREAMS - n_victim, f"the other {STREAMS - n_victim} streams completed "
                                                 f"({MAX_TOKENS} tokens, finish length) [{len(completed)}]")
    late = [round(t - t_kill, 2) for _, t, _ in errored if t - t_kill > ERROR_WITHIN_S]
    check(not late, f"the errors arrived within {ERROR_WITHIN_S} s of the kill "
                    f"[{[round(t - t_kill, 2) for _, t, _ in errored]}]")
    raw = [(s, e) for s, _, e in errored if isinstance(s, CurlStream)]
    check(all(isinstance(e["error"], dict) and e["error"].get("message") for _, e in raw) and raw,
          f"curl clients saw an SSE data event with an error object [{[e for _, e in raw][:1]}]")
    check(all(s.events[-1][1] == "[DONE]" or "error" in s.events[-1][1] for s, _ in raw),
          "after the error event the stream ends")
    sdk = [e for s, _, e in errored if isinstance(s, SdkStream)]
    check(sdk and all(isinstance(e, openai.APIError) for e in sdk), f"SDK clients raised openai.APIError [{sdk}]")

    # New requests keep succeeding on the survivor.
    cli = h.openai_client(c, timeout=30)
    ok = 0
    for i in range(6):
        try:
            r = cli.chat.completions.create(model=NAME, messages=[{"role": "user", "content": f"after {i}"}],
                                            max_tokens=5, extra_body={"ignore_eos": True})
            ok += r.choices[0].finish_reason == "length"
        except openai.APIError as e:
            print(f"request {i} after the kill failed: {e}")
    check(ok == 6, f"6 new requests after the kill all succeed [{ok}]")
    status, ev = c.stream("/v1/completions", {"model": NAME, "prompt": "after", "max_tokens": 5, "stream": True})
    check(status == 200 and ev[-1] == "[DONE]" and not any(isinstance(e, dict) and "error" in e for e in ev),
          "a new stream after the kill succeeds")
    inst = c.instances()
    check(len(inst) == 1 and inst[0]["instance_id"] != vid, f"/health lists one instance, not the victim [{inst}]")
    _, hb = c.health()
    check(hb.get("status") == "healthy", "/health still healthy with one worker")
    inst, _ = c.wait_idle(timeout=10)
    check(inst and inst[0]["running"] == 0 and inst[0]["waiting"] == 0, f"the survivor ends idle [{inst}]")


h.run_test(main)
