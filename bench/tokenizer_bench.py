"""Single-thread encode throughput: `wideserve tokenize --bench` vs HF `tokenizers`, same corpus,
same machine, one run. Usage:
  python3 bench/tokenizer_bench.py --binary build/wideserve [--iters 5] [--corpus mixed,code]
Corpora: "mixed" = the oracle test corpus (tests/e2e/tokenizer/corpus.py, fixed seed);
"code" = ~4 MB of Python sources (English docstrings + code) from the installed transformers
package, cut into 4 KB documents. Both sides encode without special tokens; HF runs in-process
with parallelism off (encode_batch, one thread); ours reports encode-only time (no process start,
no loading, no JSON parsing)."""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_RS_NUM_THREADS"] = "1"
os.environ["RAYON_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "tokenizer"))


def corpus_mixed():
    from corpus import generate
    return generate(20261128, 12000)


def corpus_code(limit=4_000_000):
    import transformers
    files = sorted(glob.glob(os.path.join(os.path.dirname(transformers.__file__), "**", "*.py"),
                             recursive=True))
    docs, total = [], 0
    for f in files:
        text = open(f, encoding="utf-8", errors="replace").read()
        for i in range(0, len(text), 4096):
            docs.append(text[i:i + 4096])
            total += len(docs[-1].encode())
        if total >= limit:
            break
    return docs


def bench_hf(tok, texts, iters):
    tok.encode_batch(texts, add_special_tokens=False)  # warm-up (fills HF's word cache too)
    best = 1e30
    for _ in range(iters):
        t0 = time.perf_counter()
        enc = tok.encode_batch(texts, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
    return best, sum(len(e.ids) for e in enc)


def bench_ours(binary, tok_dir, texts, iters):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
        path = f.name
    try:
        out = subprocess.run([binary, "tokenize", "--tokenizer", tok_dir, "--bench", path,
                              "--bench-iters", str(iters)], check=True, capture_output=True)
    finally:
        os.unlink(path)
    r = json.loads(out.stdout)
    return r["best_seconds"], r["tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.environ.get("WS_BINARY", "build/wideserve"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "data", "tokenizers", "deepseek-v3"))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--corpus", default="mixed,code")
    args = ap.parse_args()
    import tokenizers
    hf = tokenizers.Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    rows = []
    for name in args.corpus.split(","):
        texts = {"mixed": corpus_mixed, "code": corpus_code}[name]()
        nbytes = sum(len(t.encode()) for t in texts)
        ours_s, ours_tok = bench_ours(args.binary, args.tokenizer, texts, args.iters)
        hf_s, hf_tok = bench_hf(hf, texts, args.iters)
        if ours_tok != hf_tok:
            print(f"WARNING: token counts differ on {name}: ours {ours_tok}, HF {hf_tok}")
        rows.append((name, len(texts), nbytes, ours_s, ours_tok, hf_s, hf_tok))
    print(f"tokenizers {tokenizers.__version__}; best of {args.iters} timed passes after warm-up")
    print("| corpus | strings | MB | wideserve MB/s | wideserve tok/s | HF MB/s | HF tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, nbytes, o_s, o_t, h_s, h_t in rows:
        print(f"| {name} | {n} | {nbytes / 1e6:.2f} | {nbytes / o_s / 1e6:.2f} | {o_t / o_s:,.0f} | "
              f"{nbytes / h_s / 1e6:.2f} | {h_t / h_s:,.0f} | {h_s / o_s:.2f}x |")


if __name__ == "__main__":
    main()
