"""The same prefill/decode measurement as model_bench, run by HF transformers (the peer) on the same
checkpoint, in float32 on the CPU. Usage: hf_model_bench.py MODEL_DIR [--batch 1,8] [--prompt-len 128]
[--decode-steps 32] [--threads N]"""
import argparse, time, torch, transformers
from transformers import AutoModelForCausalLM, DynamicCache

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--batch", default="1,8")
ap.add_argument("--prompt-len", type=int, default=128)
ap.add_argument("--decode-steps", type=int, default=32)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", type=int, default=0)
a = ap.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
m = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
V = m.config.vocab_size
print(f"transformers {transformers.__version__}, torch {torch.__version__}, threads {torch.get_num_threads()}")
print("| batch | prompt len | prefill tok/s | decode steps | decode tok/s | decode ms/step |")
print("|---|---|---|---|---|---|")
for B in [int(x) for x in a.batch.split(",")]:
    ids = torch.tensor([[(b * 7919 + i * 104729) % V for i in range(a.prompt_len)] for b in range(B)])
    best_pre = best_dec = 0.0
    for _ in range(a.repeats):
        with torch.no_grad():
            cache = DynamicCache(config=m.config)
            t0 = time.perf_counter()
            out = m(ids, past_key_values=cache, use_cache=True)
            t1 = time.perf_counter()
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _s in range(a.decode_steps):
                out = m(nxt, past_key_values=out.past_key_values, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t2 = time.perf_counter()
        best_pre = max(best_pre, B * a.prompt_len / (t1 - t0))
        best_dec = max(best_dec, B * a.decode_steps / (t2 - t1))
    print(f"| {B} | {a.prompt_len} | {best_pre:.0f} | {a.decode_steps} | {best_dec:.1f} | {1000 * B / best_dec:.2f} |")
