"""`wideserve bench` on correct streams with known timing: the fake server sends the first chunk
after TTFT and one chunk per ITL, so every metric has an exact expected value (within scheduling
tolerance on a shared machine). Also: request bodies, datasets, warm-up, rate and duration modes,
goodput, CSV/JSON/PNG outputs."""
import json
import os
import statistics
import subprocess
import tempfile
import threading

from bench_util import BIN, FakeServer, bench, check, finish, near, read_png

TTFT, ITL = 60.0, 15.0

# 1. Chat, closed loop, warm-up, SLOs, plot.
with FakeServer("--ttft-ms", str(TTFT), "--itl-ms", str(ITL)) as srv:
    png = os.path.join(tempfile.mkdtemp(), "plot.png")
    r = bench(srv.url, "--num-requests", "24", "--concurrency", "4", "--input-len", "32",
              "--output-len", "16", "--warmup-requests", "4", "--slo-ttft-ms", "1000",
              "--slo-itl-ms", "100", "--plot", png)
    res = r.results
    check(r.rc == 0, "exit code 0")
    check(res["completed"] == 24 and res["failed"] == 0, "24 requests completed, none failed")
    st = srv.stats()
    check(st["requests"] == 28, f"server saw 24 + 4 warm-up requests ({st['requests']})")
    b = st["bodies"][0]
    check(b["stream"] is True and b["stream_options"] == {"include_usage": True},
          "streaming with stream_options.include_usage")
    check(b["max_tokens"] == 16 and b["ignore_eos"] is True and b["model"] == "fake-model",
          "max_tokens, ignore_eos, model")
    check(len(b["messages"]) == 1 and b["messages"][0]["role"] == "user" and
          len(b["messages"][0]["content"].split()) == 32, "chat message with 32 words")
    check(len({x["messages"][0]["content"] for x in st["bodies"]}) == 28, "every request has a fresh prompt")
    check(res["total_output_tokens"] == 24 * 16, "output tokens from usage: 24 x 16")
    check(res["total_input_tokens"] == 24 * 32, "input tokens from usage: 24 x 32 (server-counted)")
    # Timing: the server schedules chunks at TTFT + i * ITL; the client adds connect + scheduling.
    near(res["ttft_ms"]["p50"], TTFT + 3, 8, "median TTFT (ms)")
    check(res["ttft_ms"]["min"] >= TTFT - 1, f"TTFT never below the server's delay ({res['ttft_ms']['min']:.2f})")
    near(res["itl_ms"]["mean"], ITL, 1.5, "mean ITL (ms)")
    near(res["itl_ms"]["p50"], ITL, 3, "median ITL (ms)")
    check(res["itl_ms"]["count"] == 24 * 15, "ITL samples: 15 gaps per request")
    near(res["tpot_ms"]["p50"], ITL, 1.5, "median TPOT (ms)")
    e2e = TTFT + 15 * ITL
    near(res["e2e_latency_ms"]["p50"], e2e + 3, 10, "median end-to-end latency (ms)")
    # 24 requests at concurrency 4: 6 waves of one e2e latency each.
    near(res["duration_s"], 6 * e2e / 1000, 0.5, "duration (s)")
    near(res["request_throughput"], 24 / res["duration_s"], 1e-6, "request throughput = completed / duration")
    near(res["output_token_throughput"], 384 / res["duration_s"], 1e-6, "output tok/s = tokens / duration")
    check(res["good_requests"] == 24 and abs(res["goodput"] - res["request_throughput"]) < 1e-9,
          "all requests meet loose SLOs: goodput = throughput")
    check(len(r.rows) == 24 and all(x["error_kind"] == "" and x["chunks"] == "16" for x in r.rows),
          "CSV: 24 rows, 16 content chunks each")
    rows_ttft = sorted(float(x["ttft_ms"]) for x in r.rows)
    near(statistics.median(rows_ttft), res["ttft_ms"]["p50"], 1e-2, "CSV TTFTs agree with the JSON median")
    check(r.json["config"]["concurrency"] == 4 and r.json["config"]["endpoint"] == "chat", "JSON config")
    check("\r" not in r.stderr and "[#" not in r.stderr, "no progress bar when stderr is not a TTY")
    check("Time to First Token" in r.stdout, "text table on stdout")
    w, h, raw = read_png(png)
    check((w, h) == (1200, 800), "plot: 1200x800 RGB PNG")
    check(raw.count(b"\xff\xff\xff") < len(raw) // 3, "plot is not blank")

# 2. Completions with token-id prompts (exact input lengths), several tokens per chunk,
#    so ITL (per chunk) and TPOT (per token) differ.
with FakeServer("--ttft-ms", "40", "--itl-ms", "20", "--tokens-per-chunk", "4") as srv:
    r = bench(srv.url, "--endpoint", "completions", "--random-ids", "--input-len", "40",
              "--random-range-ratio", "0.5", "--output-len", "16", "--num-requests", "12",
              "--concurrency", "3", "--random-id-low", "5", "--random-id-high", "9")
    res = r.results
    st = srv.stats()
    lens = [len(b["prompt"]) for b in st["bodies"]]
    check(res["completed"] == 12, "completions: 12 requests completed")
    check(all(isinstance(b["prompt"], list) for b in st["bodies"]) and
          all(5 <= t < 9 for b in st["bodies"] for t in b["prompt"]), "prompts are token ids in range")
    check(all(20 <= n <= 40 for n in lens) and len(set(lens)) > 1, f"input lengths in [20, 40]: {lens}")
    check(res["total_input_tokens"] == sum(lens), "input tokens = ids sent")
    maxes = sorted(b["max_tokens"] for b in st["bodies"])
    check(sorted(int(x["completion_tokens"]) for x in r.rows) == maxes and 8 <= maxes[0] and
          maxes[-1] <= 16, "output lengths in [8, 16] = max_tokens (ignore_eos)")
    check(all(int(x["chunks"]) == (int(x["completion_tokens"]) + 3) // 4 for x in r.rows),
          "4 tokens per content chunk")
    near(res["itl_ms"]["p50"], 20, 3, "ITL is per chunk (ms)")
    # TPOT = (e2e - ttft) / (tokens - 1), per request; the stream body after the first chunk
    # takes (chunks - 1) gaps of 20 ms.
    worst = max(abs(float(x["tpot_ms"]) - (float(x["e2e_ms"]) - float(x["ttft_ms"])) /
                    (int(x["completion_tokens"]) - 1)) for x in r.rows)
    check(worst < 0.01, f"TPOT = (e2e - ttft) / (tokens - 1) per request (max error {worst:.4f} ms)")
    body = statistics.median(float(x["e2e_ms"]) - float(x["ttft_ms"]) - (int(x["chunks"]) - 1) * 20
                             for x in r.rows)
    near(body, 0, 4, "median (e2e - ttft) - (chunks - 1) * ITL (ms)")

# 3. Writes split at random byte offsets (SSE lines and chunk framing cut anywhere): chunked and
#    close-delimited bodies; prefix-sharing workload.
with FakeServer("--ttft-ms", "5", "--itl-ms", "2", "--fragment", "--seed", "1") as srv:
    r = bench(srv.url, "--num-requests", "20", "--concurrency", "4", "--output-len", "30",
              "--input-len", "5")
    check(r.results["completed"] == 20 and r.results["total_output_tokens"] == 600,
          "fragmented chunked streams: 20 requests, 600 tokens")
    check(all(x["chunks"] == "30" for x in r.rows), "fragmented: every content chunk seen")
with FakeServer("--ttft-ms", "5", "--itl-ms", "2", "--close-delimited", "--fragment") as srv:
    r = bench(srv.url, "--dataset", "prefix", "--prefix-groups", "2", "--prefix-users", "3",
              "--prefix-len", "50", "--input-len", "10", "--output-len", "5", "--num-requests", "6",
              "--concurrency", "2", "--slo-ttft-ms", "1")
    res = r.results
    st = srv.stats()
    systems = [b["messages"][0]["content"] for b in st["bodies"]]
    users = [b["messages"][1]["content"] for b in st["bodies"]]
    check(res["completed"] == 6, "close-delimited streams complete")
    check(len(set(systems)) == 2 and all(systems.count(s) == 3 for s in systems),
          "prefix workload: 2 system prompts x 3 users")
    check(len(set(users)) == 6, "6 distinct questions")
    check(res["total_input_tokens"] == 6 * 60, "input tokens: 50 + 10 words each")
    check(res["good_requests"] == 0 and res["goodput"] == 0, "a 1 ms TTFT SLO is never met")

# 4. ShareGPT file.
with FakeServer("--ttft-ms", "1", "--itl-ms", "1") as srv:
    path = os.path.join(tempfile.mkdtemp(), "sg.json")
    convs = [{"conversations": [{"from": "human", "value": f"question number {i} about things"},
                                {"from": "gpt", "value": "an answer " * (i + 2)}]} for i in range(10)]
    json.dump(convs, open(path, "w"))
    r = bench(srv.url, "--dataset", "sharegpt", "--dataset-path", path, "--num-requests", "10",
              "--concurrency", "5", "--sharegpt-output-len", "7")
    st = srv.stats()
    check(r.results["completed"] == 10, "ShareGPT: 10 requests")
    check(sorted(b["messages"][0]["content"] for b in st["bodies"]) ==
          sorted(c["conversations"][0]["value"] for c in convs), "ShareGPT human turns are the prompts")
    check(all(b["max_tokens"] == 7 for b in st["bodies"]), "fixed ShareGPT output length")

# 5. Open loop: Poisson arrivals at 25 req/s; duration mode.
with FakeServer("--ttft-ms", "2", "--itl-ms", "1") as srv:
    r = bench(srv.url, "--request-rate", "25", "--num-requests", "100", "--output-len", "4",
              "--input-len", "8", "--seed", "3")
    starts = sorted(float(x["start_s"]) for x in r.rows)
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    check(r.results["completed"] == 100, "rate mode: 100 requests")
    near(rate, 25, 25 * 0.3, "Poisson arrival rate (req/s)")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    cv = statistics.pstdev(gaps) / statistics.mean(gaps)
    near(cv, 1.0, 0.35, "exponential gaps: coefficient of variation ~ 1")
    r = bench(srv.url, "--request-rate", "25", "--burstiness", "100", "--num-requests", "50",
              "--output-len", "4", "--input-len", "8")
    starts = sorted(float(x["start_s"]) for x in r.rows)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    check(statistics.pstdev(gaps) / statistics.mean(gaps) < 0.35, "burstiness 100: nearly regular gaps")
    r = bench(srv.url, "--duration-s", "1.5", "--concurrency", "2", "--output-len", "20",
              "--input-len", "8")
    n = r.results["completed"]
    starts = [float(x["start_s"]) for x in r.rows]
    check(10 <= n <= 2 * 1.5 / 0.022 + 2, f"duration mode: {n} requests in 1.5 s at concurrency 2")
    check(max(starts) < 1.5, "no request starts after the duration")

# 6. On a terminal (stderr is a TTY) a live progress bar is drawn in place.
with FakeServer("--ttft-ms", "20", "--itl-ms", "20") as srv:
    master, slave = os.openpty()
    chunks = []
    reader = threading.Thread(target=lambda: [chunks.append(b) for b in iter(lambda: _read(master), b"")])

    def _read(fd):
        try:
            return os.read(fd, 4096)
        except OSError:
            return b""

    reader.start()
    p = subprocess.run([BIN, "bench", "--url", srv.url, "--model", "m", "--num-requests", "8",
                        "--concurrency", "2", "--output-len", "20", "--input-len", "4"],
                       stdout=subprocess.PIPE, stderr=slave, timeout=60)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    tty = b"".join(chunks).decode(errors="replace")
    check(p.returncode == 0 and "\r[" in tty and "8/8 req" in tty, "progress bar on a TTY: " + repr(tty[-120:]))

finish()
