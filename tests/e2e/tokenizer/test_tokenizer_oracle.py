"""Oracle test: `wideserve tokenize` / `detokenize` must agree exactly with HF `tokenizers` and
`transformers` on the DeepSeek-V3 tokenizer over a generated corpus (seed: WS_CORPUS_SEED), and
with `tokenizers` on small tokenizers trained here that use other normalizers, pre-tokenizers,
models options and decoders. Exits non-zero on any mismatch."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import generate, random_id_lists  # noqa: E402

BIN = os.environ.get("WS_BINARY", "build/wideserve")
SRC = os.environ.get("WS_SOURCE_DIR", ".")
SEED = int(os.environ.get("WS_CORPUS_SEED", "20261128"))
N = int(os.environ.get("WS_CORPUS_SIZE", "12000"))
DS_DIR = os.path.join(SRC, "data", "tokenizers", "deepseek-v3")
# Optional comma-separated subset of tokenizer names to check (all by default).
ONLY = set(filter(None, os.environ.get("WS_ORACLE_ONLY", "").split(",")))

failures = []


def run_cli(args, lines):
    proc = subprocess.run([BIN] + args, input=("\n".join(lines) + "\n").encode("utf-8") if lines else b"",
                          capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    out = proc.stdout.decode("utf-8").split("\n")
    if out and out[-1] == "":
        out.pop()
    if len(out) != len(lines):
        sys.exit(f"FAIL: {' '.join(args)} printed {len(out)} lines for {len(lines)} inputs")
    return [json.loads(o) for o in out]


def short(x, n=160):
    r = repr(x)
    return r if len(r) <= n else r[:n] + f"...(+{len(r) - n})"


def compare(label, inputs, ours, ref):
    bad = [i for i in range(len(ref)) if ours[i] != ref[i]]
    status = "ok" if not bad else f"{len(bad)} MISMATCHES"
    print(f"  {label}: {len(ref)} compared, {status}")
    for i in bad[:5]:
        o, r = ours[i], ref[i]
        at = next((k for k in range(min(len(o), len(r))) if o[k] != r[k]), min(len(o), len(r)))
        print(f"    input  {short(inputs[i])}\n    ours   {short(o[max(0, at - 3):at + 8])} "
              f"(len {len(o)})\n    ref    {short(r[max(0, at - 3):at + 8])} (len {len(r)}) at {at}")
    if bad:
        failures.append((label, len(bad)))
    return len(ref)


def check(name, tok_dir, texts, hf, transformers_tok=None, n_random_ids=2000):
    print(f"[{name}] {len(texts)} strings", flush=True)
    lines = [json.dumps(t, ensure_ascii=False) for t in texts]
    compared = 0
    encoded = {}
    for add in (False, True):
        flag = ["--add-special-tokens"] if add else []
        ours = run_cli(["tokenize", "--tokenizer", tok_dir] + flag, lines)
        ref = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add)]
        compared += compare(f"encode add_special_tokens={add} vs tokenizers", texts, ours, ref)
        if transformers_tok is not None:
            tref = transformers_tok(texts, add_special_tokens=add)["input_ids"]
            compared += compare(f"encode add_special_tokens={add} vs transformers", texts, ours, tref)
        encoded[add] = ours
    specials = [i for i in range(hf.get_vocab_size(with_added_tokens=True))
                if hf.id_to_token(i) is not None and i in _special_ids(hf)]
    id_lists = encoded[True] + random_id_lists(SEED, n_random_ids, hf.get_vocab_size(), specials)
    id_lines = [json.dumps(ids) for ids in id_lists]
    for skip in (False, True):
        flag = ["--skip-special-tokens"] if skip else []
        ours = run_cli(["detokenize", "--tokenizer", tok_dir] + flag, id_lines)
        ref = hf.decode_batch(id_lists, skip_special_tokens=skip)
        compared += compare(f"decode skip_special_tokens={skip} vs tokenizers", id_lists, ours, ref)
        if transformers_tok is not None:
            tref = transformers_tok.batch_decode(id_lists, skip_special_tokens=skip)
            compared += compare(f"decode skip_special_tokens={skip} vs transformers", id_lists, ours,
                                tref)
    # Round trip: decode(encode(text)) without specials; report how often it restores the text.
    rt = run_cli(["detokenize", "--tokenizer", tok_dir], [json.dumps(i) for i in encoded[False]])
    ref_rt = hf.decode_batch(encoded[False], skip_special_tokens=False)
    compared += compare("round trip decode(encode(x)) vs tokenizers", texts, rt, ref_rt)
    same = sum(1 for a, b in zip(rt, texts) if a == b)
    print(f"  round trip restores the input exactly for {same}/{len(texts)} strings")
    return compared


def _special_ids(hf):
    return {i for i, t in hf.get_added_tokens_decoder().items() if t.special}


def build_secondary(tmp, texts):
    """Trains small tokenizers exercising other components; returns [(name, dir, Tokenizer)]."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)
    train = [s[:400] for s in texts[:3000]]
    out = []

    def finish(name, tok, add_byte_fallback=False):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        j = json.loads(tok.to_str())
        if add_byte_fallback:
            vocab = j["model"]["vocab"]
            nxt = max(vocab.values()) + 1
            for b in range(256):
                if f"<0x{b:02X}>" not in vocab:
                    vocab[f"<0x{b:02X}>"] = nxt
                    nxt += 1
            tok = Tokenizer.from_str(json.dumps(j))
        tok.add_tokens([AddedToken("[MASK]", lstrip=True, special=False),
                        AddedToken("<sep>", rstrip=True, special=False),
                        AddedToken("word", single_word=True, special=False),
                        AddedToken("Norm", normalized=True, special=False)])
        tok.add_special_tokens([AddedToken("<|special|>", special=True)])
        tok.save(os.path.join(d, "tokenizer.json"))
        out.append((name, d, Tokenizer.from_file(os.path.join(d, "tokenizer.json"))))

    # SentencePiece-style (Llama 2): Prepend/Replace normalizer, byte fallback, Fuse/Strip decoders.
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                   decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    t.train_from_iterator([s[:200] for s in train], trainers.BpeTrainer(
        vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120,
        show_progress=False))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    finish("spm_bytefallback", t, add_byte_fallback=True)

    # Metaspace pre-tokenizer (prepend first, split) after Digits, NFKC + Lowercase, unk fusing off.
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)])
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    t.train_from_iterator(train, trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<unk>", "<s>"], limit_alphabet=300, show_progress=False))
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                     special_tokens=[("<s>", 1), ("</s>", 0)])
    finish("metaspace_nfkc", t)

    # Llama 3 style: case-insensitive contraction regex, ByteLevel without regex, ignore_merges.
    llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    t = Tokenizer(models.BPE(ignore_merges=True))
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(llama3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(train, trainers.BpeTrainer(
        vocab_size=3000, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      special_tokens=[("<|begin_of_text|>", 0)])])
    finish("llama3_style", t)

    # GPT-2 style ByteLevel regex + prefix space, after Split behaviours and NFC/StripAccents.
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(),
                                         normalizers.NFC(), normalizers.Replace(Regex(r"\d{4,}"), "#")])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d"), behavior="merged_with_previous"),
        pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,.;]"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[A-Z][a-z]*"), behavior="isolated", invert=True),
        pre_tokenizers.Split(Regex(r"\t"), behavior="removed"),
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(train, trainers.BpeTrainer(
        vocab_size=2500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    finish("gpt2_splits", t)
    return out


def main():
    import tokenizers
    import transformers
    from transformers import AutoTokenizer
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, "
          f"seed {SEED}, {N} strings")
    texts = generate(SEED, N)
    hf = tokenizers.Tokenizer.from_file(os.path.join(DS_DIR, "tokenizer.json"))
    transformers.logging.set_verbosity_error()
    tt = AutoTokenizer.from_pretrained(DS_DIR)
    total = 0
    if not ONLY or "deepseek-v3" in ONLY:
        total += check("deepseek-v3", DS_DIR, texts, hf, tt)

    extra = ["[MASK] a  [MASK]b <sep>   x word words sword word. Norm norm NORM <|special|>x",
             "  word", "word", "a\tb-c-d,,e..f;g Hello World ABC 12345 x1y22z333"]
    sub = extra + texts[:3000]
    # WS_ORACLE_KEEP=DIR keeps the trained tokenizers there for debugging.
    keep = os.environ.get("WS_ORACLE_KEEP")
    with tempfile.TemporaryDirectory() as tmp:
        if keep:
            import shutil
            shutil.rmtree(keep, ignore_errors=True)
            os.makedirs(keep)
            tmp = keep
        for name, d, tok in build_secondary(tmp, texts):
            if ONLY and name not in ONLY:
                continue
            total += check(name, d, sub, tok, None, n_random_ids=500)
    print(f"TOTAL: {total} comparisons, {len(failures)} failing checks")
    if failures:
        for label, n in failures:
            print(f"  FAILED {label}: {n}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
