"""The model CLI contract: make-model, logits, generate; error paths; and (when torch is installed)
HF transformers loading our generated checkpoints and computing the same logits."""
import shutil, json, os, struct, subprocess, sys, tempfile

BIN = os.environ["WS_BINARY"]
SRC = os.environ["WS_SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"command failed: {args}")
    return p


def read_f32(path):
    data = open(path, "rb").read()
    return struct.unpack("<%df" % (len(data) // 4), data)


tmp = tempfile.mkdtemp(prefix="ws_e2e_model_")
ids = "5,17,42,1000,128000,1"

# 1. The HF fixture through the CLI: file format and values.
fx = os.path.join(SRC, "tests/fixtures/tiny-bf16-a")
ref = json.load(open(os.path.join(fx, "reference.json")))
case = ref["cases"][2]
out = os.path.join(tmp, "fx.f32")
run("logits", "--model-path", fx, "--token-ids", ",".join(map(str, case["prompt"])), "--out", out)
got, want = read_f32(out), read_f32(os.path.join(fx, case["logits_file"]))
check(len(got) == len(want), f"logits file has [tokens, vocab] = {case['logits_shape']} floats")
err = max(abs(a - b) for a, b in zip(got, want)) / max(abs(b) for b in want)
check(err < 1e-3, f"fixture logits via CLI: max rel err {err:.2e} < 1e-3")
g = run("generate", "--model-path", fx, "--token-ids", ",".join(map(str, case["prompt"])), "--max-new-tokens", "12")
toks = [int(x) for x in g.stdout.strip().split(",")]
ref_toks = [t for t, _ in case["greedy"]]
agree = 0
for a, (b, margin) in zip(toks, case["greedy"]):
    if a != b:
        check(margin < 1e-2, f"greedy divergence only at a near-tie (margin {margin:.3g})")
        break
    agree += 1
check(agree > 0, f"generate agrees with HF greedy on {agree}/12 tokens before any near-tie")

# 2. make-model: both layouts of one seed are the same model; FP8 loads too.
dirs = {}
for name, extra in [("hf", []), ("ds", ["--layout", "deepseek"]), ("hf8", ["--fp8"]), ("ds8", ["--fp8", "--layout", "deepseek"])]:
    d = os.path.join(tmp, name)
    run("make-model", "--preset", "tiny", "--out", d, "--seed", "7", *extra)
    check(all(os.path.exists(os.path.join(d, f)) for f in ["config.json", "tokenizer.json", "tokenizer_config.json"]),
          f"make-model {name}: config and tokenizer files written")
    run("logits", "--model-path", d, "--token-ids", ids, "--out", d + ".f32")
    dirs[name] = d
check(open(dirs["hf"] + ".f32", "rb").read() == open(dirs["ds"] + ".f32", "rb").read(),
      "hf and deepseek layouts of one seed give identical logits")
check(open(dirs["hf8"] + ".f32", "rb").read() == open(dirs["ds8"] + ".f32", "rb").read(),
      "fp8 hf and deepseek layouts give identical logits")
check(os.path.exists(os.path.join(dirs["ds"], "model.safetensors.index.json")), "deepseek layout is sharded with an index")
cfg = json.load(open(os.path.join(dirs["ds8"], "config.json")))
check(cfg["quantization_config"]["weight_block_size"] == [128, 128], "fp8 config names its 128x128 blocks")

# 3. generate = prefill once, then decode from the cache; its first token is the argmax of logits.
g = run("generate", "--model-path", dirs["hf"], "--token-ids", ids, "--max-new-tokens", "6")
toks = [int(x) for x in g.stdout.strip().split(",")]
check(len(toks) == 6, "generate prints exactly --max-new-tokens ids on one line")
lg = read_f32(dirs["hf"] + ".f32")
V = 129280
last = lg[-V:]
check(toks[0] == max(range(V), key=lambda i: last[i]), "first generated token is the argmax of the last logits row")

# 4. Errors are clear and name what is wrong; never a crash.
p = run("logits", "--model-path", os.path.join(tmp, "nope"), "--token-ids", "1", "--out", out, ok=False)
check(p.returncode == 1 and "nope" in p.stderr, "missing model dir: exit 1, message names the path")
p = run("generate", "--model-path", dirs["hf"], "--token-ids", "5,x", ok=False)
check(p.returncode != 0 and "--token-ids" in p.stderr, "bad --token-ids is named")
p = run("generate", "--model-path", dirs["hf"], "--token-ids", "999999999", ok=False)
check(p.returncode != 0 and "outside vocabulary" in p.stderr, "out-of-vocabulary token id rejected")
p = run("generate", "--model-path", dirs["hf"], "--token-ids", "1", "--bogus-flag", ok=False)
check(p.returncode != 0 and "bogus-flag" in p.stderr, "unknown flag is named")
p = run("make-model", "--preset", "huge", "--out", os.path.join(tmp, "x"), ok=False)
check(p.returncode != 0 and "--preset" in p.stderr, "bad --preset is named")
p = run("generate", "--model-path", dirs["hf"], "--token-ids", "1", "--device", "tpu", ok=False)
check(p.returncode != 0 and "--device" in p.stderr, "bad --device is named")
p = run("logits", "--model-path", dirs["hf"], "--token-ids", "1", "--out", out, "--device", "cuda",
        "--tp-size", "2", "--dp-size", "2", "--enable-dp-attention", ok=False)
check(p.returncode != 0 and "one rank" in p.stderr, "--device cuda with wide EP is refused, saying why")
if shutil.which("nvidia-smi") is None:  # no GPU here (CI): --device cuda fails loudly, no crash
    for cmd in (["logits", "--out", out], ["generate"]):
        p = run(*cmd, "--model-path", dirs["hf"], "--token-ids", "1", "--device", "cuda", ok=False)
        check(p.returncode == 1 and ("no GPU" in p.stderr or "without the CUDA backend" in p.stderr),
              f"{cmd[0]} --device cuda without a GPU: exit 1 naming why ({p.stderr.strip()[-120:]})")

# 5. HF transformers loads what make-model writes and computes the same logits (needs torch).
try:
    import torch
    from transformers import AutoModelForCausalLM
except Exception:
    torch = None
    print("skip HF cross-check: torch is not installed (CI installs no torch; run locally or on the GPU machine)")
if torch is not None:
    for name in ["hf", "ds"]:
        m = AutoModelForCausalLM.from_pretrained(dirs[name], dtype=torch.float32).eval()
        with torch.no_grad():
            hl = m(torch.tensor([[int(x) for x in ids.split(",")]])).logits[0].flatten().tolist()
        ours = read_f32(dirs[name] + ".f32")
        e = max(abs(a - b) for a, b in zip(hl, ours)) / max(abs(b) for b in hl)
        check(e < 1e-3, f"HF transformers on make-model {name} output: max rel err {e:.2e}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
