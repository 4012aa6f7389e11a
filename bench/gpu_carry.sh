#!/usr/bin/env bash
# bench/gpu_carry.sh: prepare the GPU run of bench/sft.py and print the device calls to make.
#
# A device call carries at most 64 MiB (the working tree plus the paths in `carry`), and the
# machine stays warm for about 30 s after a call (../shared/GPU.md, "Bringing weights"). So:
#   - the joined 0.5B GGUF is split into n equal pieces, .gpu/piece-1 ... .gpu/piece-n, each
#     small enough to travel beside the tree and .gpu/extra;
#   - .gpu/extra holds what the first call also unpacks: the train and dev text (xz), the gguf
#     wheel (transformers needs it to dequantize; pure Python, installed with --no-deps) and
#     model.sha256;
#   - calls 1..n copy their piece to /root/weights; call n also joins the pieces, checks the
#     sha256, installs gguf and runs --part speed; call n+1 trains both adapters and starts
#     evaluating (compare --time-limit), later calls go on (compare --skip-train, resumable).
# Results stay in /root/runs/bench-sft on the machine and come back through $OUT.
#
#   bench/gpu_carry.sh                 # the packaged default model
#   MODEL=path/to/model.gguf bench/gpu_carry.sh
#
# Checks here: the pieces join back to the sha256, and the tree fits beside every piece.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
PY=${PYTHON:-python}
TEXT=${TEXT:-../shared/data/text}
LIMIT_BYTES=$((64 * 1024 * 1024))
MARGIN_BYTES=$((3 * 1024 * 1024 / 2))

gguf=$(PYTHONPATH=src $PY -c 'import sys
from simulinterp.llm.models import ensure_model
print(ensure_model(sys.argv[1]))' "${MODEL:-default}")
name=$(basename "$gguf")
size=$(stat -c %s "$gguf")

rm -rf .gpu/piece-* .gpu/extra
mkdir -p .gpu/extra
sha=$(sha256sum "$gguf" | cut -d' ' -f1)
echo "$sha  $name" >.gpu/extra/model.sha256
tar -C "$TEXT" -cJf .gpu/extra/data.tar.xz train dev
version=$($PY -c 'import importlib.metadata as m; print(m.version("gguf"))')
$PY -m pip download -q --no-deps --only-binary=:all: -d .gpu/extra "gguf==$version"
wheel=$(basename .gpu/extra/gguf-*.whl)

# what travels with every call: tracked and untracked, not ignored, files
tree=$(git ls-files -z --cached --others --exclude-standard |
    xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
extra=$(du -cb .gpu/extra | tail -1 | cut -f1)
room=$((LIMIT_BYTES - tree - extra - MARGIN_BYTES))
pieces=$(((size + room - 1) / room))
[ "$pieces" -ge 2 ] || pieces=2 # call 1 carries .gpu/extra, the last one joins
piece=$(((size + pieces - 1) / pieces))
split -b "$piece" -d -a 2 "$gguf" .gpu/part-
i=0
for part in .gpu/part-*; do
    i=$((i + 1))
    mkdir -p ".gpu/piece-$i"
    mv "$part" ".gpu/piece-$i/"
done
joined=$(cat .gpu/piece-*/part-* | sha256sum | cut -d' ' -f1)
if [ "$joined" != "$sha" ]; then
    echo "the pieces do not join back to $name ($joined != $sha)" >&2
    exit 1
fi

mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
largest=$(stat -c %s .gpu/piece-1/part-*)
echo "$name: $(mib "$size") in $pieces pieces of $(mib "$largest"), sha256 ${sha:0:12}... (joined back: OK)"
echo "tree $(mib "$tree"), .gpu/extra $(mib "$extra"): call 1 carries $(mib $((tree + extra + largest))) of 64 MiB"

# the device calls ------------------------------------------------------------------------
run="export PYTHONPATH=src:/root/site PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore; B='python3 bench/sft.py --model /root/weights/$name --data /root/data/train --dev /root/data/dev --out /root/runs/bench-sft'"
copy() { echo "set -e; mkdir -p /root/weights; cp .gpu/piece-$1/part-* /root/weights/; ls /root/weights | wc -l"; }
call() { # number, carry (JSON list), timeout, command
    printf '\n--- call %s: run(carry=%s, timeout_s=%s, command=\n%s\n)\n' "$1" "$2" "$3" "$4"
}

echo
echo "Device calls, back to back (the machine is given back 30 s after a call ends):"
call 1 '[".gpu/piece-1", ".gpu/extra"]' 300 "set -e; mkdir -p /root/weights /root/data; cp .gpu/piece-1/part-* .gpu/extra/model.sha256 .gpu/extra/$wheel /root/weights/; tar -xJf .gpu/extra/data.tar.xz -C /root/data; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; python3 -c 'import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__, torch.cuda.is_available())'; ls /root/weights /root/data"
for i in $(seq 2 $((pieces - 1))); do
    call "$i" "[\".gpu/piece-$i\"]" 120 "$(copy "$i")"
done
call "$pieces" "[\".gpu/piece-$pieces\"]" 600 "set -o pipefail; cp .gpu/piece-$pieces/part-* /root/weights/ && (cd /root/weights && cat part-* >$name && sha256sum -c model.sha256 && rm part-*) && python3 -m pip install -q --no-index --no-deps --target /root/site /root/weights/$wheel || exit 1; $run; for s in '--batch-rows 4 --pack-tokens 2048' '--batch-rows 8 --pack-tokens 2048' '--full --batch-rows 8 --pack-tokens 1024' '--full --batch-rows 4 --pack-tokens 2048'; do \$B --part speed \$s 2>&1 | tee -a \$OUT/speed.log; done; cp /root/runs/bench-sft/speed-*.json \$OUT/"
pack="cd /root/runs/bench-sft && tar -czf \$OUT/results.tgz compare.json train-*.json eval"
half="python3 -c 'import sys; from safetensors.torch import load_file, save_file; [save_file({k: v.half() for k, v in load_file(p).items()}, p.replace(\".safetensors\", \".f16.safetensors\")) for p in sys.argv[1:]]' adapters/*/adapter_model.safetensors"
call $((pieces + 1)) '[]' 600 "$run; \$B --part compare --time-limit 450 2>&1 | tee \$OUT/compare.log; cd /root/runs/bench-sft && $half && tar -czf - --exclude=adapter_model.safetensors adapters | split -b 15M - \$OUT/adapters.tgz.; $pack"
call $((pieces + 2)) '[]' 600 "$run; \$B --part compare --skip-train --time-limit 480 2>&1 | tee \$OUT/compare.log; $pack"
echo
echo "--- call $((pieces + 3)), ...: the call above again while compare.log ends with 'time limit:"
echo "    N shards left' (each run resumes from the finished 25-line shards; the machine keeps"
echo "    /root/runs while it stays warm)."
echo
echo "Back here (FILES: the reply's files_at):"
echo "  mkdir -p runs/bench-sft-gpu && cat FILES/adapters.tgz.* | tar -xz -C runs/bench-sft-gpu"
echo "  tar -xzf FILES/results.tgz -C runs/bench-sft-gpu"
echo "  for d in runs/bench-sft-gpu/adapters/*/; do mv \$d/adapter_model.f16.safetensors \$d/adapter_model.safetensors; done"
echo "  python bench/sft.py --part compare --skip-train --eval-backend llamacpp --out runs/bench-sft-gpu"
