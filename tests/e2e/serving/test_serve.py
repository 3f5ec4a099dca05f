"""`wideserve serve --http-port P` with no model path, as a new user runs it: the tiny model is made
under $HOME, the ready line names the URL and model, one chat request through the openai SDK
succeeds, and SIGTERM stops every child, exits 0 and frees the port."""
import os, re, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h
from harness import check

import openai

READY_TIMEOUT_S = 90


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def exists(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    home = h.temp_dir("servehome")
    env = {k: v for k, v in os.environ.items() if k != "WIDESERVE_CACHE_DIR"}
    env["HOME"] = home
    port = h.free_port()
    serve = h.Proc("serve", [h.BIN, "serve", "--http-port", str(port)], home, env=env)

    # The ready line, read from the log as it grows.
    ready = None
    deadline = time.time() + READY_TIMEOUT_S
    while time.time() < deadline and serve.alive():
        m = re.search(r"wideserve ready: (http://\S+/v1) \(model (\S+)\)", serve.log_text())
        if m:
            ready = m
            break
        time.sleep(0.2)
    check(ready is not None, f"serve printed 'wideserve ready: http://HOST:{port}/v1 (model NAME)' "
                             f"within {READY_TIMEOUT_S} s")
    if ready is None:
        return
    url, model = ready.group(1), ready.group(2)
    check(url.endswith(f":{port}/v1"), f"the ready URL names the port [{url}]")
    made = [os.path.join(r, f) for r, _, fs in os.walk(home) for f in fs if f == "config.json"]
    check(len(made) == 1, f"the tiny model was made under $HOME [{made}]")

    kids = children(serve.pid)
    check(len(kids) >= 2, f"serve runs a frontend and at least one worker as children [{kids}]")

    base = url.replace("0.0.0.0", "127.0.0.1")
    cli = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=60)
    check(model in [m.id for m in cli.models.list().data], f"GET /v1/models lists {model}")
    r = cli.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=8,
                                    temperature=0, extra_body={"ignore_eos": True, "return_token_ids": True})
    d = r.model_dump()
    ch = d["choices"][0]
    check(ch["message"]["role"] == "assistant" and isinstance(ch["message"]["content"], str)
          and ch["finish_reason"] == "length" and d["usage"]["completion_tokens"] == 8
          and len(ch.get("token_ids") or []) == 8, f"one chat request through the SDK [{d}]")

    t0 = time.time()
    serve.popen.send_signal(signal.SIGTERM)  # to serve alone: it must stop its children itself
    try:
        rc = serve.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"serve exits 0 after SIGTERM [{rc}, {time.time() - t0:.1f} s]")
    deadline = time.time() + 5
    while time.time() < deadline and any(exists(k) for k in kids):
        time.sleep(0.1)
    check(not any(exists(k) for k in kids), f"every child exited [{[k for k in kids if exists(k)]}]")
    check(h.port_free(port), f"port {port} is free again")


h.run_test(main)
