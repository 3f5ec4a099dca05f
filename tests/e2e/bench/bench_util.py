"""Helpers for the `wideserve bench` e2e tests: start the fake server, run the bench, read results."""
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

BIN = os.environ["WS_BINARY"]
HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def near(got, want, tol, what):
    check(abs(got - want) <= tol, f"{what}: {got:.3f} within {tol:.3f} of {want:.3f}")


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


class FakeServer:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_openai_server.py"), *args],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "PORT", f"fake server did not start: {line}"
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.load(r)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


class Result:
    pass


def bench(url, *args, timeout=120):
    tmp = tempfile.mkdtemp(prefix="ws_bench_")
    res = Result()
    res.json_path, res.csv_path = os.path.join(tmp, "out.json"), os.path.join(tmp, "out.csv")
    cmd = [BIN, "bench", "--url", url, "--model", "fake-model", "--output-json", res.json_path,
           "--output-csv", res.csv_path, *args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    res.wall_s = time.monotonic() - t0
    res.rc, res.stdout, res.stderr = p.returncode, p.stdout, p.stderr
    if p.returncode not in (0, 3):
        print(" ".join(cmd), "\n", p.stdout, p.stderr)
    res.json = json.load(open(res.json_path)) if os.path.exists(res.json_path) else None
    res.results = res.json["results"] if res.json else {}
    res.rows = list(csv.DictReader(open(res.csv_path))) if os.path.exists(res.csv_path) else []
    return res


def read_png(path):
    """(width, height, rgb bytes) of an 8-bit RGB PNG with filter-0 rows, checking chunk CRCs."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    at, idat, w, h = 8, b"", 0, 0
    while at < len(data):
        n = int.from_bytes(data[at:at + 4], "big")
        typ, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        assert zlib.crc32(typ + body) == int.from_bytes(data[at + 8 + n:at + 12 + n], "big"), typ
        if typ == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            assert body[8:] == b"\x08\x02\x00\x00\x00", "8-bit RGB"
        elif typ == b"IDAT":
            idat += body
        at += 12 + n
    raw = zlib.decompress(idat)
    assert len(raw) == h * (w * 3 + 1)
    return w, h, raw
