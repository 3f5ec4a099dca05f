"""The naive baseline for served GPU throughput: HF transformers `generate` on the same GPU and the
same model dimensions (random bf16 weights from a config.json), static batches of random prompts.
Usage: hf_generate_bench.py MODEL_DIR [--batches 64,256] [--input-len 512] [--output-len 64]"""
import argparse, json, time, torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--batches", default="64,256")
ap.add_argument("--input-len", type=int, default=512)
ap.add_argument("--output-len", type=int, default=64)
a = ap.parse_args()
cfg = AutoConfig.from_pretrained(a.model)
torch.manual_seed(0)
t0 = time.perf_counter()
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
      f"{torch.cuda.get_device_name()}, init {time.perf_counter() - t0:.1f} s")
print("| batch | input | output | seconds | output tok/s |")
print("|---|---|---|---|---|")
V = min(cfg.vocab_size, 100000)
for B in [int(x) for x in a.batches.split(",")]:
    ids = torch.randint(0, V, (B, a.input_len), device="cuda")
    with torch.no_grad():
        m.generate(ids[:, :16], max_new_tokens=2, do_sample=False, min_new_tokens=2)  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = m.generate(ids, max_new_tokens=a.output_len, min_new_tokens=a.output_len,
                         do_sample=False)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
    n = (out.shape[1] - a.input_len) * B
    print(f"| {B} | {a.input_len} | {a.output_len} | {dt:.2f} | {n / dt:.0f} |", flush=True)
