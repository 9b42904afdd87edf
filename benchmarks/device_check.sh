#!/bin/bash
# The accuracy and loop benchmarks side by side on one GPU, within one device call (the H200 rows of
# docs/ACCURACY.md come from it): eleven jobs, each with its own budget, every job killed after
# JOB_TIMEOUT_S so the call ends in time. Logs and result JSONs land in one archive, OUT/results.tgz.
#
#   bash benchmarks/device_check.sh DATA_DIR OUT [MINUTES=5] [LOOP_MINUTES=1.5] [JOB_TIMEOUT_S=500]
#
# DATA_DIR is a copy of ../shared/data that travelled with the code (the device has no ../shared):
# `cp -r ../shared/data .gpu/data` (git ignores .gpu), then run(..., carry=[".gpu"]) with DATA_DIR=$PWD/.gpu/data.
set -u
DATA=$1; OUT=$2; M=${3:-5}; LM=${4:-1.5}; T=${5:-500}
PY=${PY:-python3}
export EMPORTAL_SHARED_DATA=$DATA PYTHONUNBUFFERED=1
LOGS=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
job() { local log=$1; shift; timeout "$T" $PY "$@" > "$LOGS/$log.log" 2>&1 & }

RUN="--minutes $M --patience 30 --threads 2 --device auto --ema 0.99 --tta"  # what every accuracy and phantom job shares
A="$RUN --scale 2 --width 32"
job sbem-s0 benchmarks/accuracy.py $A --datasets cdeep3m_sbem_mito --seed 0 --tag gpu-sbem-s0
job sbem-s1 benchmarks/accuracy.py $A --datasets cdeep3m_sbem_mito --seed 1 --tag gpu-sbem-s1
job dros benchmarks/accuracy.py $A --datasets drosophila_vnc_sstem --tag gpu-dros
job hela benchmarks/accuracy.py $A --datasets hela_sbfsem --tag gpu-hela
job sbem-w16p96 benchmarks/accuracy.py $RUN --scale 2 --width 16 --patch 96 --datasets cdeep3m_sbem_mito --tag gpu-sbem-w16p96
P="$RUN --width 32"
job ph-s0 benchmarks/phantom_accuracy.py $P --seeds 0 --tag gpu-ph-s0
job ph-s1 benchmarks/phantom_accuracy.py $P --seeds 1 --tag gpu-ph-s1
L="--rounds 3 --k 4 --tile 256 --minutes $LM --round-steps 110 --random-seeds 2 --keep-last --ema 0.99 --threads 1 --device auto"
for s in 0 1; do
  job loop-sbem-s$s benchmarks/loop.py $L --datasets cdeep3m_sbem_mito --seed $s --tag gpu-loop-sbem-s$s
  job loop-dros-s$s benchmarks/loop.py $L --datasets drosophila_vnc_sstem --seed $s --tag gpu-loop-dros-s$s
done
wait

for f in "$LOGS"/*.log; do  # the last lines of each, without progress bars
  echo "== $(basename "$f")"; tr '\r' '\n' < "$f" | grep -v '/s\]\|%|\|^\s*$' | tail -12
done
cp benchmarks/results/*-gpu-*.json "$LOGS"/ 2>/dev/null
tar czf "$OUT/results.tgz" -C "$LOGS" .  # one file: the device returns at most eight
