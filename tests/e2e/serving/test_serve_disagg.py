"""`wideserve serve --disagg`: frontend + one prefill + one decode worker on the embedded default.
Greedy completions through HTTP equal `wideserve generate` (so the KV really moved from the
prefill engine to the decode engine), both workers are listed, and SIGTERM stops everything."""
import os, re, signal, sys, time, json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h
from harness import check

READY_TIMEOUT_S = 120


def main():
    model = h.tiny_model_dir()
    work = h.temp_dir("servepd")
    port = h.free_port()
    serve = h.Proc("serve", [h.BIN, "serve", "--disagg", "--http-port", str(port), "--model-path", model,
                             "--served-model-name", "tiny", "--disable-radix-cache"], work)
    deadline = time.time() + READY_TIMEOUT_S
    ready = False
    while time.time() < deadline and serve.alive():
        if re.search(r"wideserve ready: http://\S+/v1", serve.log_text()):
            ready = True
            break
        time.sleep(0.2)
    check(ready, f"serve --disagg became ready within {READY_TIMEOUT_S} s")
    if not ready:
        return
    base = f"http://127.0.0.1:{port}"
    status, health = h.curl_json(base + "/health")
    check(status == 200 and len(health["instances"]) == 2, f"/health lists 2 workers [{health}]")
    log = serve.log_text()
    check("prefill disaggregation: bootstrap server" in log and "decode disaggregation" in log,
          "one prefill and one decode worker started")
    for prompt in ([5, 17, 42, 99, 1000, 2000, 3000], list(range(100, 180))):
        status, body = h.curl_json(base + "/v1/completions",
                                   {"model": "tiny", "prompt": prompt, "max_tokens": 10, "temperature": 0,
                                    "ignore_eos": True, "return_token_ids": True})
        got = body["choices"][0]["token_ids"] if status == 200 else body
        want = h.generate_ids(model, prompt, 10)
        check(status == 200 and got == want,
              f"PD greedy tokens equal `wideserve generate` for a {len(prompt)}-token prompt [{got} vs {want}]")
    check("connected to prefill engine" in serve.log_text(), "the decode worker used the prefill engine")
    serve.signal(signal.SIGTERM)
    try:
        rc = serve.popen.wait(timeout=40)
    except Exception:
        rc = None
    check(rc == 0, f"SIGTERM: serve exits 0 (got {rc})")


h.run_test(main, budget_s=180)
