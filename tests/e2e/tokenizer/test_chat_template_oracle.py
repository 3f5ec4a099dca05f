#!/usr/bin/env python3
"""Chat-template oracle: `wideserve chat-template` must render exactly what HF transformers'
apply_chat_template(tokenize=False) renders, on generated conversations, for the DeepSeek-V3
template (from the tokenizer) and the R1 / Llama 3.1 / Qwen2.5 / Qwen3 / Mistral test templates.

Env: WS_BINARY, WS_SOURCE_DIR (set by ctest), WS_CORPUS_SEED (default 20240611),
WS_CORPUS_SCALE (multiplies the number of conversations, default 1).
Errors count as agreement only when both sides fail on the same conversation.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WS_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..", "..")))
BIN = os.environ.get("WS_BINARY", os.path.join(SRC, "build", "wideserve"))
SEED = int(os.environ.get("WS_CORPUS_SEED", "20240611"))
SCALE = float(os.environ.get("WS_CORPUS_SCALE", "1"))
TOK_DIR = os.path.join(SRC, "data", "tokenizers", "deepseek-v3")
FIXTURES = os.path.join(SRC, "tests", "fixtures", "chat_templates")

WORDS = ["hello", "world", "a", "the", "weather", "Paris", "x", "42", "3.14", "naïve", "café",
         "日本語", "你好", "世界", "مرحبا", "नमस्ते", "Привет", "ελληνικά", "👋", "👨‍👩‍👧‍👦", "🏳️‍🌈",
         "👍🏽", "e\u0301", "tab\there", "{{ x }}", "{% if %}", "{#", "#}", "<think>", "</think>",
         "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<|im_end|>", "[INST]", "\"quoted\"",
         "'single'", "back\\slash", "a\nb", "\r\n", "\u2028", "\u00a0", "\u3000", "\x00", "\x1f",
         "\x7f", "<tool_response>", "</tool_response>", "```json", "{\"k\": 1}", "&<>", "  ", "\n\n",
         "!", "?", "ǅ", "ß", "İ", "ﬁ"]


def rand_text(rng, allow_empty=True):
    r = rng.random()
    if allow_empty and r < 0.07:
        return ""
    if r < 0.12:
        return rng.choice([" ", "\n", "  padded  ", "\ttabbed\n", "!", "\u3000x\u3000"])
    n = rng.choice([1, 2, 3, 5, 8, 13, 30]) if rng.random() < 0.97 else rng.randint(200, 800)
    parts = [rng.choice(WORDS) for _ in range(n)]
    sep = rng.choice([" ", " ", " ", "", "\n", ", "])
    s = sep.join(parts)
    if rng.random() < 0.2:
        s = rng.choice([" ", "\n", "  "]) + s + rng.choice([" ", "\n", ""])
    return s


def rand_scalar(rng):
    return rng.choice([0, 1, -7, 2 ** 40, 1.0, 0.1, -2.5, 1e-7, 1e20, 123456.789, True, False, None,
                       "", "str", "ünï", "a\"b", "日本", "line\nbreak", "😀"])


def rand_json(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.5:
        return rand_scalar(rng)
    if r < 0.75:
        return [rand_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", "b", "city", "ключ", "n", "deep", "x y"]) + str(i): rand_json(rng, depth + 1)
            for i in range(rng.randint(0, 3))}


def rand_name(rng):
    return rng.choice(["get_weather", "search", "calc", "lookup_user", "send_email", "f", "工具"])


def rand_tools(rng):
    tools = []
    for _ in range(rng.randint(1, 3)):
        props = {}
        for i in range(rng.randint(0, 3)):
            props[rng.choice(["location", "query", "n", "unit", "日期"]) + str(i)] = {
                "type": rng.choice(["string", "integer", "number", "boolean"]),
                "description": rand_text(rng)}
        fn = {"name": rand_name(rng), "description": rand_text(rng),
              "parameters": {"type": "object", "properties": props, "required": list(props)[:1]}}
        if rng.random() < 0.2:
            fn["return"] = {"type": "string"}
        tools.append({"type": "function", "function": fn})
    return tools


def rand_args(rng, as_string):
    args = {k: rand_json(rng) for k in rng.sample(["location", "q", "n", "flag", "nested", "城市"], rng.randint(0, 3))}
    if as_string:
        return json.dumps(args, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, None, 2]))
    return args


def rand_call_id(rng, valid=True):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(rng.choice(alphabet) for _ in range(9 if valid else rng.choice([3, 8, 12])))


def gen_conversation(rng, style):
    """style: deepseek, llama, qwen, mistral, generic."""
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": rand_text(rng)})
    turns = rng.randint(1, 5)
    for t in range(turns):
        if style == "deepseek" and rng.random() < 0.08:
            msgs.append({"role": "system", "content": rand_text(rng)})
        msgs.append({"role": "user", "content": rand_text(rng)})
        last = t == turns - 1
        if last and rng.random() < 0.5:
            break
        if rng.random() < 0.35:
            ncalls = 1 if (style == "llama" and rng.random() < 0.9) else rng.randint(1, 3)
            calls = []
            for _ in range(ncalls):
                call = {"type": "function",
                        "function": {"name": rand_name(rng),
                                     "arguments": rand_args(rng, style in ("deepseek", "generic") or
                                                            (style == "qwen" and rng.random() < 0.5))}}
                if style == "mistral" or rng.random() < 0.5:
                    call["id"] = rand_call_id(rng, rng.random() < 0.93)
                calls.append(call)
            content = None if rng.random() < 0.6 else rand_text(rng)
            msg = {"role": "assistant", "content": content, "tool_calls": calls}
            if rng.random() < 0.3:
                msg["reasoning_content"] = rand_text(rng)
            msgs.append(msg)
            for call in calls:
                out = rand_text(rng) if rng.random() < 0.85 else json.dumps(rand_json(rng), ensure_ascii=False)
                tmsg = {"role": "tool", "content": out}
                if style == "mistral" or rng.random() < 0.5:
                    tmsg["tool_call_id"] = call.get("id", rand_call_id(rng))
                msgs.append(tmsg)
            if rng.random() < 0.6:
                msgs.append({"role": "assistant", "content": rand_text(rng)})
        else:
            content = rand_text(rng)
            if rng.random() < 0.25:
                content = "<think>" + rand_text(rng) + "</think>" + rand_text(rng)
            msg = {"role": "assistant", "content": content}
            if rng.random() < 0.2:
                msg["reasoning_content"] = rand_text(rng) if rng.random() < 0.9 else None
            msgs.append(msg)
    return msgs


def gen_request(rng, style):
    req = {"messages": gen_conversation(rng, style), "add_generation_prompt": rng.random() < 0.5}
    if style != "deepseek" and rng.random() < 0.4:
        req["tools"] = rand_tools(rng) if rng.random() < 0.95 else []
    if style == "llama":
        if rng.random() < 0.2:
            req["builtin_tools"] = ["brave_search", "wolfram_alpha", "code_interpreter"]
            for m in req["messages"]:
                for c in m.get("tool_calls") or []:
                    if rng.random() < 0.5:
                        c["function"]["name"] = "brave_search"
                        c["function"]["arguments"] = {"query": rand_text(rng)}
        if rng.random() < 0.3:
            req["tools_in_user_message"] = rng.random() < 0.5
        if rng.random() < 0.3:
            req["date_string"] = "01 Jan 2025"
    if style == "qwen" and rng.random() < 0.4:
        req["enable_thinking"] = rng.random() < 0.5
    if style == "generic" and rng.random() < 0.3:
        req["extra"] = rand_json(rng)
    return req


# (name, template file or None for the tokenizer's own, generator style, count)
SUITES = [
    ("deepseek-v3", None, "deepseek", 700),
    ("deepseek-r1", "deepseek_r1.jinja", "deepseek", 300),
    ("llama3.1", "llama3_1.jinja", "llama", 300),
    ("qwen2.5", "qwen2_5.jinja", "qwen", 300),
    ("qwen3", "qwen3.jinja", "qwen", 300),
    ("mistral", "mistral.jinja", "mistral", 300),
    ("features", "features.jinja", "generic", 300),
]


def hf_render(tok, template, req):
    kwargs = {k: v for k, v in req.items() if k not in ("messages", "tools", "add_generation_prompt")}
    try:
        return tok.apply_chat_template(json.loads(json.dumps(req["messages"])), tools=req.get("tools"),
                                       add_generation_prompt=req["add_generation_prompt"], tokenize=False,
                                       chat_template=template, **kwargs)
    except Exception as e:  # noqa: BLE001 - any template failure must be mirrored by ours
        return ("error", f"{type(e).__name__}: {e}")


def raw_render(tok, template, req):
    """HF's Jinja environment without apply_chat_template's message preprocessing (transformers <= 5.17)."""
    from transformers.utils import chat_template_utils

    kwargs = {k: v for k, v in req.items() if k not in ("messages", "tools", "add_generation_prompt")}
    try:
        compiled = chat_template_utils._compile_jinja_template(template or tok.chat_template)
        return compiled.render(messages=json.loads(json.dumps(req["messages"])), tools=req.get("tools"),
                               documents=None, add_generation_prompt=req["add_generation_prompt"],
                               **{**tok.special_tokens_map, **kwargs})
    except Exception as e:  # noqa: BLE001
        return ("error", f"{type(e).__name__}: {e}")


def main():
    import transformers
    from transformers import AutoTokenizer
    from transformers.utils import chat_template_utils

    tok = AutoTokenizer.from_pretrained(TOK_DIR)
    # transformers releases after 5.17 drop null message keys and alias reasoning fields.
    normalize = hasattr(chat_template_utils, "_normalize_chat_messages")
    print(f"transformers {transformers.__version__}; seed {SEED}; normalize messages: {normalize}")
    total_bad = 0
    runs = [(s, "hf") for s in SUITES]
    if normalize:
        # Also check plain Jinja semantics (what transformers 5.17 renders: null content kept).
        runs += [(s, "raw") for s in SUITES]
    for (name, tfile, style, count), mode in runs:
        rng = random.Random(f"{SEED}-{name}")
        n = max(1, int(count * SCALE))
        reqs = [gen_request(rng, style) for _ in range(n)]
        template = None
        cmd = [BIN, "chat-template", "--tokenizer", TOK_DIR, "--keep-going"]
        if normalize and mode == "hf":
            cmd.append("--hf-normalize-messages")
        if tfile:
            path = os.path.join(FIXTURES, tfile)
            with open(path, encoding="utf-8") as f:
                template = f.read()
            cmd += ["--template", path]
        render = hf_render if mode == "hf" else raw_render
        expected = [render(tok, template, r) for r in reqs]
        name = f"{name}/{mode}"
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(cmd, input="".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reqs).encode(),
                                  stdout=out, stderr=subprocess.PIPE, timeout=600)
            out.seek(0)
            got_lines = out.read().decode("utf-8").split("\n")  # not splitlines(): U+2028 is data
            if got_lines and got_lines[-1] == "":
                got_lines.pop()
        if proc.returncode != 0 or len(got_lines) != n:
            print(f"[{name}] binary failed: rc={proc.returncode} lines={len(got_lines)}/{n}\n"
                  f"{proc.stderr.decode(errors='replace')[-2000:]}")
            total_bad += n
            continue
        ok = errors_both = 0
        bad = []
        for i, (req, exp, line) in enumerate(zip(reqs, expected, got_lines)):
            got = json.loads(line)
            if isinstance(exp, tuple):
                if isinstance(got, dict) and "error" in got:
                    errors_both += 1
                else:
                    bad.append((i, req, exp, got))
            elif got == exp:
                ok += 1
            else:
                bad.append((i, req, exp, got))
        print(f"[{name}] {n} conversations: {ok} identical renders, {errors_both} failed on both sides, "
              f"{len(bad)} mismatches")
        for i, req, exp, got in bad[:3]:
            print(f"  mismatch #{i}: request={json.dumps(req, ensure_ascii=False)[:1500]}")
            if isinstance(exp, str) and isinstance(got, str):
                k = next((j for j in range(min(len(exp), len(got))) if exp[j] != got[j]), min(len(exp), len(got)))
                print(f"    first difference at char {k}: expected {exp[max(0, k - 60):k + 60]!r}\n"
                      f"                                 got      {got[max(0, k - 60):k + 60]!r}")
            else:
                print(f"    expected {str(exp)[:500]!r}\n    got      {str(got)[:500]!r}")
        total_bad += len(bad)
        if name.startswith("deepseek-v3/") and ok < 300 * min(1.0, SCALE):
            print(f"[{name}] only {ok} successful renders (< 300)")
            total_bad += 1
    if total_bad:
        print(f"FAIL: {total_bad} mismatches")
        return 1
    print("OK: all renders identical to transformers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
