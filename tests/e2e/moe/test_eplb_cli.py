"""`wideserve eplb`: the deepseek-ai/EPLB README example through the CLI (JSON output equal to the
reference's phy2log/log2phy/logcnt), a few reference fixture cases, and errors naming the bad file
or flag."""
import json, os, subprocess, tempfile

BIN = os.environ["WS_BINARY"]
SRC = os.environ["WS_SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def eplb(*args, stdin=None):
    return subprocess.run([BIN, "eplb", *args], capture_output=True, text=True, timeout=120,
                          input=stdin)


tmp = tempfile.mkdtemp(prefix="ws_e2e_eplb_")


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


readme = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
wfile = write("readme.json", json.dumps(readme))
flags = ["--num-replicas", "16", "--num-groups", "4", "--num-nodes", "2", "--num-gpus", "8"]

# 1. The README example: phy2log as published; log2phy/logcnt as the reference computes them.
p = eplb("--weight", wfile, *flags)
check(p.returncode == 0, f"README example runs (rc={p.returncode}, stderr={p.stderr.strip()})")
out = json.loads(p.stdout) if p.returncode == 0 else {}
check(sorted(out) == ["log2phy", "logcnt", "phy2log"], "output keys phy2log, log2phy, logcnt")
check(out.get("phy2log") == [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                             [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]],
      "phy2log equals the README's output")
check(out.get("logcnt") == [[1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
                            [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1]], "logcnt")
check(out.get("log2phy") == [
    [[12, -1], [15, 13], [11, -1], [6, -1], [7, 5], [0, 2], [1, -1], [3, -1], [4, -1], [9, -1],
     [8, 10], [14, -1]],
    [[13, -1], [15, 11], [8, -1], [14, -1], [9, -1], [10, 12], [2, 4], [0, -1], [6, 3], [7, -1],
     [1, -1], [5, -1]]], "log2phy [layers, experts, max replicas] with -1 padding")

# Same through stdin and with --eplb-algorithm auto / deepseek_hierarchical (hierarchical here).
for extra in (["--eplb-algorithm", "auto"], ["--eplb-algorithm", "deepseek_hierarchical"]):
    q = eplb("--weight", "-", *flags, *extra, stdin=json.dumps(readme))
    check(q.returncode == 0 and json.loads(q.stdout) == out, f"stdin weight with {extra} same")

# 2. Reference fixture cases (torch-generated, see tests/fixtures/eplb/README.md), incl. global.
cases = json.load(open(os.path.join(SRC, "tests/fixtures/eplb/cases.json")))["cases"]
picked = [c for c in cases if not c["hierarchical"]][:3] + [c for c in cases if c["hierarchical"]][:3]
for c in picked:
    f = write(c["name"] + ".json", json.dumps(c["weight"]))
    q = eplb("--weight", f, "--num-replicas", str(c["num_replicas"]), "--num-groups",
             str(c["num_groups"]), "--num-nodes", str(c["num_nodes"]), "--num-gpus",
             str(c["num_gpus"]), "--eplb-algorithm", c["algorithm"])
    got = json.loads(q.stdout) if q.returncode == 0 else {}
    check(got == {k: c[k] for k in ("phy2log", "log2phy", "logcnt")},
          f"fixture {c['name']} equals the reference")


# 3. Errors name the file or flag and exit non-zero.
def bad(args, needle, what, stdin=None):
    q = eplb(*args, stdin=stdin)
    check(q.returncode != 0 and needle in q.stderr, f"{what}: error names {needle!r} "
          f"(rc={q.returncode}, stderr={q.stderr.strip()[:200]})")


missing = os.path.join(tmp, "nope.json")
bad(["--weight", missing, *flags], missing, "missing weight file")
bad(["--weight", write("garbage.json", "[[1, 2,"), *flags], "--weight", "invalid JSON")
bad(["--weight", write("flat.json", "[1, 2, 3]"), *flags], "layer 0 is not an array", "flat list")
bad(["--weight", write("str.json", '[[1, "x"]]'), *flags], "expert 1 is not a number", "string load")
bad(["--weight", write("ragged.json", "[[1, 2, 3, 4], [1, 2]]"), "--num-replicas", "4",
     "--num-groups", "1", "--num-nodes", "1", "--num-gpus", "2"], "layer 1 has 2 experts", "ragged")
bad(["--weight", write("empty.json", "[]"), *flags], "--weight", "empty list")
bad(["--weight", wfile, "--num-replicas", "18", "--num-groups", "4", "--num-nodes", "2",
     "--num-gpus", "8"], "--num-replicas (18) must be a multiple of --num-gpus (8)", "replicas % gpus")
bad(["--weight", wfile, "--num-replicas", "8", "--num-groups", "4", "--num-nodes", "2",
     "--num-gpus", "8"], "--num-replicas (8) must be >=", "fewer replicas than experts")
bad(["--weight", wfile, "--num-replicas", "16", "--num-groups", "8", "--num-nodes", "2",
     "--num-gpus", "8"], "--num-groups (8) must divide", "groups do not divide experts")
bad(["--weight", wfile, "--num-replicas", "16", "--num-groups", "4", "--num-nodes", "3",
     "--num-gpus", "8", "--eplb-algorithm", "deepseek_hierarchical"], "--num-nodes (3)",
    "forced hierarchical with groups % nodes != 0")
bad(["--weight", wfile, *flags, "--eplb-algorithm", "greedy"], "--eplb-algorithm", "unknown algorithm")
bad(["--weight", wfile, "--num-replicas", "16"], "--num-groups", "missing required flag")

if failures:
    raise SystemExit(f"{len(failures)} failure(s): {failures}")
print("all ok")
