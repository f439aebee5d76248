#!/usr/bin/env bash
# Every GPU figure the open work asks for, measured in one pass on one lent GPU machine
# (the device time is short: one call, with a deadline).
#
#   SRC=path/to/memomentum FMNIST=dir/with/idx.gz OUT=results/ DEADLINE_S=520 bash benchmarks/gpu_session.sh
#
# 1. benchmarks/graph_step.py: the training step eager and recorded as a CUDA graph
#    (--cuda-graph), ResNet-18 (CIFAR shapes) and LeNet at batch 128, images/s and whether
#    the numbers agree; with RUN_SCALING=1 also benchmarks/ddp_scaling.py;
# 2. the full protocol (the defaults: 100-epoch phases, 3 outer loops, inner bound 20) on
#    Fashion-MNIST, ResNet-18, instance noise 0.2 and 0.4, Me-Momentum and CE, seeds $SEEDS,
#    as one `memomentum grid` sharing the GPU ($CELLS_PER_GPU cells at once, each its own
#    process), with --cuda-graph when step 1 found the recorded step faster and in agreement;
#    at the deadline the grid gets SIGTERM (every cell checkpoints), the table lists the
#    finished cells and gpu_figures.json says where each unfinished cell stood;
# 3. $OUT/gpu_figures.json (everything) and $OUT/runs.tar.gz (logs, configs, summaries,
#    histories and the table files; no checkpoints: they are too large to bring back).
set -u
SRC=${SRC:-.}; FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}; OUT=${OUT:-gpu-out}
DEADLINE_S=${DEADLINE_S:-520}; SEEDS=${SEEDS:-1,2,3}; DEVICE=${DEVICE:-cuda}
# 12 cells on one GPU at once; a dry run on a CPU machine: DEVICE=cpu PLACEMENT="--jobs 2"
PLACEMENT=${PLACEMENT:---gpus auto --cells-per-gpu ${CELLS_PER_GPU:-12}}
R=$(mktemp -d); mkdir -p "$OUT"
SRC=$(cd "$SRC" && pwd); FMNIST=$(cd "$FMNIST" && pwd); OUT=$(cd "$OUT" && pwd)
# The code measured is the one in $SRC: the runs start from there (python -m puts the
# current directory first on the path, ahead of PYTHONPATH).
export PYTHONPATH=$SRC PYTHONUNBUFFERED=1
PY=${PY:-python3}
T0=$(date +%s)
{ nvidia-smi; $PY -c "import torch, numpy, scipy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cuda', torch.cuda.is_available())"; nproc; git -C "$SRC" rev-parse HEAD; } >"$R/env.txt" 2>&1

echo "== graph_step $(date +%T)"
# shellcheck disable=SC2086
timeout "${GRAPH_TIMEOUT_S:-150}" $PY "$SRC/benchmarks/graph_step.py" --device "$DEVICE" ${GRAPH_ARGS:-} \
    >"$R/graph_step.json" 2>"$R/graph_step.err"
echo "graph_step exit $? after $(( $(date +%s) - T0 )) s"
if [ "${RUN_SCALING:-0}" = 1 ]; then
  # shellcheck disable=SC2086
  timeout "${SCALING_TIMEOUT_S:-150}" $PY "$SRC/benchmarks/ddp_scaling.py" ${SCALING_ARGS:---device cuda --steps 40 --repeats 2 --warmup-steps 15} \
      >"$R/ddp_scaling.json" 2>"$R/ddp_scaling.err"
fi

# --cuda-graph for the grid only if the recorded step was faster and its numbers agreed
GRAPH_FLAG=$($PY - "$R/graph_step.json" <<'PYEOF'
import json, sys
try:
    case = json.load(open(sys.argv[1]))["cases"]["resnet18"]
    ok = case["speedup"] > 1.05 and case["numbers"]["max_relative_parameter_difference"] < 0.05
except Exception:
    ok = False
print("--cuda-graph" if ok else "")
PYEOF
)
echo "== full-protocol grid ${GRAPH_FLAG:-eager} $(date +%T)"
GRID=$R/grid
# shellcheck disable=SC2086
(cd "$SRC" && exec $PY -m memomentum grid --dataset fashion-mnist --data-dir "$FMNIST" --model "${MODEL:-resnet18}" \
    --noise-type instance --noise-rate 0.2,0.4 --method memomentum,ce --seed "$SEEDS" --device "$DEVICE" $GRAPH_FLAG \
    $PLACEMENT ${GRID_ARGS:-} --out "$GRID") >"$R/grid.log" 2>&1 &
grid=$!
while [ $(( $(date +%s) - T0 )) -lt "$DEADLINE_S" ] && kill -0 "$grid" 2>/dev/null; do sleep 2; done
kill -TERM "$grid" 2>/dev/null  # pauses every running cell resumably
wait "$grid"
echo "grid ended after $(( $(date +%s) - T0 )) s"
(cd "$SRC" && $PY -m memomentum table "$GRID") >"$R/table.txt" 2>&1

$PY - "$R" "$GRAPH_FLAG" >"$OUT/gpu_figures.json" <<'PYEOF'
import json, sys
from pathlib import Path
import torch
root = Path(sys.argv[1])
out = {"env": (root / "env.txt").read_text()[-3000:], "grid_flags": sys.argv[2] or "eager"}
for name in ("graph_step", "ddp_scaling"):
    try:
        out[name] = json.loads((root / f"{name}.json").read_text())
    except Exception as e:
        err = root / f"{name}.err"
        out[name] = {"error": repr(e), "stderr": err.read_text()[-3000:] if err.exists() else None}
try:
    out["table"] = json.loads((root / "grid" / "table.json").read_text())
except Exception as e:
    out["table"] = {"error": repr(e), "printed": (root / "table.txt").read_text()[-3000:]}
cells = {}
for d in sorted(p for p in (root / "grid").glob("*") if p.is_dir() and not p.name.startswith(".")):
    if (d / "summary.json").exists():
        s = json.loads((d / "summary.json").read_text())
        cells[d.name] = {"finished": True, **{k: s.get(k) for k in (
            "test_accuracy", "epochs_run", "wall_time_s", "final_confident", "rounds")}}
    elif (d / "checkpoint.pt").exists():
        st = torch.load(d / "checkpoint.pt", map_location="cpu", weights_only=False)["procedure"]
        cells[d.name] = {"finished": False, "epochs_run": len(st.get("history", [])), "stage": st.get("stage"),
                         "outer": st.get("outer"), "inner": st.get("inner"), "best_val_so_far": st.get("run_best_val"),
                         "test_at_best_val_so_far": st.get("run_best_test"), "timings": st.get("timings")}
    else:
        cells[d.name] = {"finished": False, "started": False}
out["grid_cells"] = cells
out["grid_log_tail"] = (root / "grid.log").read_text()[-4000:]
print(json.dumps(out, indent=1, default=str))
PYEOF
tar czf "$OUT/runs.tar.gz" -C "$R" --exclude='*.pt' --exclude='examples.csv' . 2>/dev/null
echo "done after $(( $(date +%s) - T0 )) s"
