"""`wideserve bench` against a misbehaving server: HTTP 500/400 with JSON errors, stalls before
and after the headers (longer than --request-timeout-s), connections reset or closed mid-stream,
streams without usage / [DONE], in-stream errors, non-JSON chunks, and no server at all. Every
failure is counted by kind; the run never hangs or crashes."""
import socket

from bench_util import FakeServer, bench, check, finish

MIX = "ok:2,http500:1,http400:1,stall:1,stall_headers:1,drop:1,drop_close:1,nousage:1,streamerr:1,nodone:1,badjson:1"
WANT = {"http_500": 2, "http_400": 2, "timeout": 4, "disconnected": 4, "no_usage": 2,
        "stream_error": 2, "no_done": 2, "bad_response": 2}

# 1. Two cycles of every behaviour, concurrently.
with FakeServer("--ttft-ms", "20", "--itl-ms", "5", "--mix", MIX) as srv:
    r = bench(srv.url, "--num-requests", "24", "--concurrency", "6", "--output-len", "8",
              "--input-len", "16", "--request-timeout-s", "1", timeout=60)
    res = r.results
    check(r.rc == 0, f"exit code 0 when some requests succeed (rc {r.rc})")
    check(res["completed"] == 4, f"4 requests succeed ({res['completed']})")
    check(res["failed"] == 20, f"20 requests fail ({res['failed']})")
    check(res["errors"] == WANT, f"errors by kind: {res['errors']}")
    check(r.wall_s < 20, f"finishes promptly ({r.wall_s:.1f} s; stalls end at the 1 s timeout)")
    kinds = {}
    for x in r.rows:
        kinds[x["error_kind"]] = kinds.get(x["error_kind"], 0) + 1
    check(kinds == {"": 4, **WANT}, "CSV error_kind column agrees")
    http500 = [x for x in r.rows if x["error_kind"] == "http_500"]
    check(all(x["http_status"] == "500" and x["error_message"] == "fake internal error" for x in http500),
          "HTTP 500: status and the server's error message recorded")
    check(all(x["error_message"] == "fake engine failure" for x in r.rows if x["error_kind"] == "stream_error"),
          "in-stream error message recorded")
    ok = [x for x in r.rows if x["error_kind"] == ""]
    check(all(x["completion_tokens"] == "8" for x in ok), "successful requests still measured")
    check(res["total_output_tokens"] == 32, "failed requests add no tokens")
    check("http_500" in r.stdout and "timeout" in r.stdout, "error kinds in the text table")
    check("first error" in r.stderr, "first error message on stderr")

# 2. One stalled request at a time must not hold up the rest beyond its own timeout.
with FakeServer("--ttft-ms", "5", "--itl-ms", "1", "--mix", "stall_headers:1,ok:1") as srv:
    r = bench(srv.url, "--num-requests", "4", "--concurrency", "1", "--output-len", "4",
              "--input-len", "4", "--request-timeout-s", "0.5", timeout=30)
    check(r.results["errors"] == {"timeout": 2} and r.results["completed"] == 2,
          f"stall before headers -> timeout: {r.results.get('errors')}")
    check(1.0 <= r.wall_s < 8, f"two 0.5 s timeouts, serially ({r.wall_s:.2f} s)")

# 3. Everything fails: warm-up too; exit code 3, no hang.
with FakeServer("--mix", "http500:1") as srv:
    r = bench(srv.url, "--num-requests", "10", "--concurrency", "3", "--warmup-requests", "2",
              "--output-len", "4", "--input-len", "4", timeout=30)
    check(r.rc == 3, f"exit code 3 when no request succeeds (rc {r.rc})")
    check(r.results["errors"] == {"http_500": 10}, "warm-up failures are not counted")
    check(srv.stats()["requests"] == 12, "warm-up requests were sent")

# 4. No server: connection refused.
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
r = bench(f"http://127.0.0.1:{port}", "--num-requests", "5", "--concurrency", "2", timeout=30)
check(r.rc == 3 and r.results["errors"] == {"connect": 5}, f"connection refused -> connect: {r.results.get('errors')}")
check(r.wall_s < 10, "connection failures return at once")

# 5. Bad arguments are rejected with a message, not a crash.
r = bench("https://127.0.0.1:1", "--num-requests", "1")
check(r.rc not in (0, 3) and "http://" in r.stderr, "https URL rejected")
r = bench("http://127.0.0.1:1", "--random-ids", "--num-requests", "1")
check(r.rc not in (0, 3) and "--endpoint completions" in r.stderr, "--random-ids needs completions")

finish()
