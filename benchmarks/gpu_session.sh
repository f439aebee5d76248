#!/usr/bin/env bash
# Every GPU figure the README gives, measured in one pass on one lent GPU machine
# (the device time is short: one call, with a deadline).
#
#   SRC=path/to/memomentum FMNIST=dir/with/idx.gz OUT=results/ DEADLINE_S=560 bash benchmarks/gpu_session.sh
#
# 1. benchmarks/ddp_scaling.py on the GPUs present (quiet GPU, first);
# 2. Fashion-MNIST, ResNet-18, instance noise 0.2 and 0.4, seed 1, Me-Momentum and CE: the
#    four runs share the GPU at the same time (each its own process); a run still going at
#    the deadline is paused with SIGTERM (it checkpoints) and reported from its checkpoint;
# 3. $OUT/gpu_figures.json (everything) and $OUT/runs.tar.gz (logs, summaries, histories).
set -u
SRC=${SRC:-.}; FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}; OUT=${OUT:-gpu-out}
DEADLINE_S=${DEADLINE_S:-560}; SCHEDULE_ME=${SCHEDULE_ME:---epochs 20 --max-outer-loop 1 --max-inner-loop 4}
SCHEDULE_CE=${SCHEDULE_CE:---epochs 20}
R=$(mktemp -d); mkdir -p "$OUT"
SRC=$(cd "$SRC" && pwd); FMNIST=$(cd "$FMNIST" && pwd); OUT=$(cd "$OUT" && pwd)
# The code measured is the one in $SRC: the runs start from there (python -m puts the
# current directory first on the path, ahead of PYTHONPATH).
export PYTHONPATH=$SRC PYTHONUNBUFFERED=1
PY=${PY:-python3}
T0=$(date +%s)
{ nvidia-smi; $PY -c "import torch, numpy, scipy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cuda', torch.cuda.is_available())"; nproc; } >"$R/env.txt" 2>&1

echo "== ddp_scaling $(date +%T)"
# shellcheck disable=SC2086
timeout "${SCALING_TIMEOUT_S:-150}" $PY "$SRC/benchmarks/ddp_scaling.py" ${SCALING_ARGS:---device cuda --steps 40 --repeats 2 --warmup-steps 15} \
    >"$R/ddp_scaling.json" 2>"$R/ddp_scaling.err"
echo "ddp_scaling exit $? after $(( $(date +%s) - T0 )) s"

echo "== Fashion-MNIST runs $(date +%T)"
pids=()
for rate in 0.2 0.4; do
  for method in memomentum ce; do
    name=fmnist-${MODEL:-resnet18}-idn${rate#0.}-$method
    sched=$SCHEDULE_ME; [ "$method" = ce ] && sched=$SCHEDULE_CE
    # shellcheck disable=SC2086
    (cd "$SRC" && exec $PY -m memomentum run --dataset fashion-mnist --data-dir "$FMNIST" --model "${MODEL:-resnet18}" --noise-type instance \
        --noise-rate $rate --seed 1 --method $method --device "${DEVICE:-cuda}" --threads 2 $sched \
        --out "$R/$name" --json) >"$R/$name.log" 2>&1 &
    pids+=($!)
  done
done
while [ $(( $(date +%s) - T0 )) -lt "$DEADLINE_S" ]; do
  running=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
  [ $running = 0 ] && break
  sleep 2
done
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait
echo "runs ended after $(( $(date +%s) - T0 )) s"

$PY - "$R" >"$OUT/gpu_figures.json" <<'PYEOF'
import json, sys
from pathlib import Path
import torch
root = Path(sys.argv[1])
out = {"env": (root / "env.txt").read_text()[-3000:]}
try:
    out["ddp_scaling"] = json.loads((root / "ddp_scaling.json").read_text())
except Exception as e:
    out["ddp_scaling"] = {"error": repr(e), "stderr": (root / "ddp_scaling.err").read_text()[-3000:]}
runs = {}
for d in sorted(p for p in root.iterdir() if p.is_dir()):
    summary = d / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        runs[d.name] = {"finished": True, **{k: s.get(k) for k in (
            "method", "noise_type", "noise_rate", "realised_noise_rate", "test_accuracy", "best_val_accuracy",
            "epochs_run", "wall_time_s", "time_s", "device", "final_confident", "rounds", "noisy_label_precision")}}
    elif (d / "checkpoint.pt").exists():
        saved = torch.load(d / "checkpoint.pt", map_location="cpu", weights_only=False)
        st = saved["procedure"]
        runs[d.name] = {"finished": False, "epochs_run": len(st.get("history", [])), "stage": st.get("stage"),
                        "outer": st.get("outer"), "inner": st.get("inner"), "best_val_so_far": st.get("run_best_val"),
                        "test_at_best_val_so_far": st.get("run_best_test"), "rounds": st.get("rounds"),
                        "timings": st.get("timings"), "history_tail": st.get("history", [])[-3:]}
    else:
        runs[d.name] = {"finished": False, "log_tail": (root / f"{d.name}.log").read_text()[-2000:]}
out["fmnist_runs"] = runs
print(json.dumps(out, indent=1, default=str))
PYEOF
tar czf "$OUT/runs.tar.gz" -C "$R" --exclude='*.pt' --exclude='examples.csv' . 2>/dev/null
echo "done after $(( $(date +%s) - T0 )) s"
