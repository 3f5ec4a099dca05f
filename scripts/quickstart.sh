#!/usr/bin/env bash
# The embedded default: installs what is missing, builds, makes the tiny DeepSeek-V3-architecture
# model once (random weights, real DeepSeek tokenizer) and generates from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
MODEL=${WIDESERVE_TINY_MODEL:-$HOME/.cache/wideserve/tiny}
if [ ! -f "$MODEL/config.json" ]; then
  ./build/wideserve make-model --preset tiny --out "$MODEL" --seed 0
fi
PROMPT=${1:-"The capital of France is"}
IDS=$(printf '%s\n' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$PROMPT")" \
  | ./build/wideserve tokenize --tokenizer "$MODEL" --add-special-tokens | tr -d '[] ')
echo "prompt: $PROMPT"
echo "prompt ids: $IDS"
OUT=$(./build/wideserve generate --model-path "$MODEL" --token-ids "$IDS" --max-new-tokens 16)
echo "generated ids: $OUT"
echo "generated text (random weights, so expect gibberish): $(echo "[$OUT]" | ./build/wideserve detokenize --tokenizer "$MODEL")"
