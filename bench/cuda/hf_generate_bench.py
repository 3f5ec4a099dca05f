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
# HF's default (batched_mm) gathers each token's expert weights: 112 GiB for V3 experts at batch
# 256 x 512 tokens. grouped_mm (torch._grouped_mm) is HF's own fastest path that fits.
ap.add_argument("--experts-implementation", default="grouped_mm")
a = ap.parse_args()
cfg = AutoConfig.from_pretrained(a.model)
if getattr(cfg, "quantization_config", None) is not None:
    # FP8 checkpoints' configs: HF's naive baseline runs the same dimensions in bf16.
    del cfg.quantization_config
torch.manual_seed(0)
t0 = time.perf_counter()
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(
        cfg, dtype=torch.bfloat16, experts_implementation=a.experts_implementation).eval()
print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
      f"{torch.cuda.get_device_name()}, experts {a.experts_implementation}, "
      f"init {time.perf_counter() - t0:.1f} s")
print("| batch | input | output | seconds | output tok/s |")
print("|---|---|---|---|---|")
V = min(cfg.vocab_size, 100000)
for B in [int(x) for x in a.batches.split(",")]:
    ids = torch.randint(0, V, (B, a.input_len), device="cuda")
    try:
        with torch.no_grad():
            m.generate(ids[:, :16], max_new_tokens=2, do_sample=False, min_new_tokens=2)  # warm-up
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = m.generate(ids, max_new_tokens=a.output_len, min_new_tokens=a.output_len,
                             do_sample=False)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t
    except torch.OutOfMemoryError as e:
        print(f"| {B} | {a.input_len} | {a.output_len} | out of memory | - |  ({str(e)[:90]})", flush=True)
        del ids
        torch.cuda.empty_cache()
        continue
    n = (out.shape[1] - a.input_len) * B
    print(f"| {B} | {a.input_len} | {a.output_len} | {dt:.2f} | {n / dt:.0f} |", flush=True)
