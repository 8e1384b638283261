#!/usr/bin/env bash
# The GPU checks of the model jobs (issue 5) as one prepared call on a GPU machine:
# bench_gpu.py (official pattern, score mode, saliency, vision tower parts; --profile adds the top
# kernels and the GPU's busy share of each fast figure) and bench_train_gpu.py (LoRA and full-llm
# steps) and, on a GPU only, bench_shards.py (a 2-shard eval on one GPU vs one process: items/s of
# each and the ratio, issue 17). Figures and logs go to $OUT (default bench/out). Each step has its
# own time limit, so a slow or failing one does not take the others' figures with it.
#
#   bash bench/gpu_check.sh                      # on the GPU machine: ~6-9 min on an H100
#   STEPS=shards bash bench/gpu_check.sh         # just the 2-shard eval (~2-4 min)
#   DEVICE=cpu TINY=1 bash bench/gpu_check.sh    # smoke test of this script here (tiny model; no shards step)
#
# Needs torch (CUDA build), transformers 5 and peft. When they are missing and bench/out/whl holds
# wheels (carried there: the machine has no internet), they are installed from those first.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/out}"
device="${DEVICE:-cuda}"
py="${PYTHON:-python3}"
mkdir -p "$out"
tiny=()
[ -n "${TINY:-}" ] && tiny=(--tiny)

if ! "$py" -c "import transformers, peft" 2>/dev/null; then
    if [ -d bench/out/whl ]; then
        # with their dependencies from the folder when it has them all, else just these wheels
        "$py" -m pip install -q --no-index --find-links bench/out/whl transformers peft accelerate \
            || "$py" -m pip install -q --no-deps --no-index --find-links bench/out/whl \
                   transformers peft accelerate huggingface_hub tokenizers safetensors
    else
        "$py" -m pip install -q "transformers>=5,<6" peft
    fi
fi
"$py" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, \
'| device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" | tee "$out/versions.txt"

steps=" ${STEPS:-infer train shards} "
profile=()
[ "$device" != "cpu" ] && profile=(--profile)
infer=0
if [[ "$steps" == *" infer "* ]]; then
    timeout "${INFER_LIMIT_S:-420}" "$py" bench/bench_gpu.py --device "$device" "${tiny[@]}" "${profile[@]}" \
        --out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
    infer=${PIPESTATUS[0]}
fi
train=0
if [[ "$steps" == *" train "* ]]; then
    timeout "${TRAIN_LIMIT_S:-150}" "$py" bench/bench_train_gpu.py --device "$device" "${tiny[@]}" \
        --json "$out/bench_train_gpu.json" 2>&1 | tee "$out/bench_train_gpu.log"
    train=${PIPESTATUS[0]}
fi
# The shard processes share one GPU here: a CUDA-only figure (on the CPU it would time two processes
# fighting over the same cores). torchrun starts the shards; bench_shards.py makes the checkout
# importable for them when orienteer is not installed.
shards=0
if [[ "$steps" == *" shards "* ]] && [ "$device" != "cpu" ]; then
    timeout "${SHARDS_LIMIT_S:-360}" "$py" bench/bench_shards.py --device "$device" "${tiny[@]}" \
        --out "$out/bench_shards.json" 2>&1 | tee "$out/bench_shards.log"
    shards=${PIPESTATUS[0]}
fi
echo "bench_gpu exit $infer, bench_train_gpu exit $train, bench_shards exit $shards; figures in $out"
[ "$infer" -eq 0 ] && [ "$train" -eq 0 ] && [ "$shards" -eq 0 ]
