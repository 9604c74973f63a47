#!/usr/bin/env bash
# One-shot GPU check of leia, at most 8 minutes on one GPU: the CUDA tests, the GPU column of the
# cipher benchmark, experiment=fast_cifar10 on the GPU (plain over 3 seeds and LE, then trainer=ddp),
# attacks on the GPU (a learned one and analytic ones), and the madono2020_fast grid with one seed
# if time is left. Every step is timed and logged to OUTDIR/<step>.log; the
# numbers go to OUTDIR/summary.md, a section ready to paste into docs/BENCHMARKS.md.
#
#   bash bench/gpu_check.sh OUTDIR
#   CIFAR=/path/to/cifar10-image-folder PYTHON=python3 bash bench/gpu_check.sh OUTDIR
#
# Environment:
#   CIFAR     CIFAR-10 image folder (train/<class>/*.jpg, test/<class>/*.jpg; a class-balanced
#             subset works); default ../shared/data/cifar10 (relative to the repository root).
#   PYTHON    the interpreter; default .venv/bin/python when it exists, else python3. A plain python3
#             needs leia's dependencies (hydra-core, omegaconf, torch, lightning, ...); src/ and the
#             repository root are put on PYTHONPATH here, so leia itself need not be installed.
#   RUNS      where the runs go (default OUTDIR/runs; the script passes force=true, so they re-run).
#   DDP_EPOCHS epochs of the DDP run (default 2); ITN runs ATTACK_EPOCHS (3). The fast runs and the
#             grids take FAST_EPOCHS (default 10: the GPU target's budget; the recipe's default of 30
#             is sized for 40 minutes of a 2-core CPU).
#   BUDGET_S  the whole check's wall-clock limit in seconds (default 480): each step gets at most
#             what is left, and steps that no longer fit are recorded as skipped.
#
# Refuses (exit 2) where torch sees no CUDA device. A failed step is recorded (FAIL and the last
# lines of its log) and the other steps still run; the exit status is 1 if any step failed.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: [CIFAR=<image folder>] [PYTHON=python3] bash bench/gpu_check.sh OUTDIR" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
OUTDIR=$(cd "$1" && pwd)
if [ -n "${CIFAR:-}" ]; then
    CIFAR_ARG=$CIFAR
    CIFAR=$(cd "$CIFAR" 2>/dev/null && pwd) || { echo "gpu_check: CIFAR=$CIFAR_ARG is not a folder" >&2; exit 2; }
fi
[ -n "${RUNS:-}" ] && { mkdir -p "$RUNS" && RUNS=$(cd "$RUNS" && pwd) || exit 2; }
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
CIFAR=${CIFAR:-$ROOT/../shared/data/cifar10}
CIFAR_ARG=${CIFAR_ARG:-../shared/data/cifar10}
RUNS=${RUNS:-$OUTDIR/runs}
DDP_EPOCHS=${DDP_EPOCHS:-2}
ATTACK_EPOCHS=${ATTACK_EPOCHS:-3}
FAST_EPOCHS=${FAST_EPOCHS:-10}
BUDGET_S=${BUDGET_S:-480}
WORKERS=${WORKERS:-$(( $(nproc) > 8 ? 8 : $(nproc) ))}
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1

# ---------------------------------------------------------------- refuse without CUDA
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>"$OUTDIR/cuda_probe.log"; then
    echo "gpu_check: no CUDA device visible to $PYTHON (torch.cuda.is_available() is False, or torch does not" >&2
    echo "import: see $OUTDIR/cuda_probe.log). This check needs a GPU; on CPU use make test / make bench." >&2
    exit 2
fi
if [ ! -d "$CIFAR/train" ] || [ ! -d "$CIFAR/test" ]; then
    echo "gpu_check: $CIFAR needs train/<class>/ and test/<class>/ image folders (set CIFAR=...)" >&2
    exit 2
fi
mkdir -p "$RUNS"
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
TRAIN_N=$(find "$CIFAR/train" -name '*.jpg' -o -name '*.png' | wc -l)
TEST_N=$(find "$CIFAR/test" -name '*.jpg' -o -name '*.png' | wc -l)
CIPHER_IMAGES=$(( TEST_N < 10000 ? TEST_N : 10000 ))
ATTACKER_LIMIT=$(( TRAIN_N < 5000 ? TRAIN_N : 5000 ))
MACHINE=$("$PYTHON" - <<'EOF'
import os, platform, torch
p = torch.cuda.get_device_properties(0)
print(f"{torch.cuda.device_count()}× {p.name} ({p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}), "
      f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda})")
EOF
)
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
nvidia-smi >"$OUTDIR/nvidia-smi.log" 2>&1
NGPU=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")

DATA="data=cifar10 data.format=imagefolder data.root=$CIFAR data.num_workers=$WORKERS"
COMMON="logger=csv trainer.enable_progress_bar=false paths.runs=$RUNS force=true"
ROWS=()      # the results table of summary.md
DETAILS=()   # per step: the command, and what failed
FAILED=0

# run_step NAME CAP_SECONDS COMMAND...: runs COMMAND with its output in OUTDIR/NAME.log, at most
# CAP_SECONDS and never past the deadline; sets STATUS (ok, FAIL (rc N), TIMEOUT, skipped) and WALL.
run_step() {
    local name=$1 cap=$2
    shift 2
    local left=$((DEADLINE - $(date +%s)))
    (( cap > left )) && cap=$left
    local shown="$*"
    shown=${shown//"$ROOT/"/}
    DETAILS+=("- \`$name\`: \`${shown//"$CIFAR"/\$CIFAR}\`")
    if (( cap < 20 )); then
        STATUS="skipped (out of the ${BUDGET_S} s budget)"; WALL="—"
        echo "== $name: $STATUS"
        return
    fi
    echo "== $name (at most $cap s): $*"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout -k 10 "$cap" "$@" >"$OUTDIR/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 0 ]; then
        STATUS=ok
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then STATUS="TIMEOUT after $cap s"; else STATUS="FAIL (rc $rc)"; fi
        FAILED=1
        DETAILS+=("  - $STATUS; last lines of $name.log:" "" '    ```')
        while IFS= read -r line; do DETAILS+=("    $line"); done < <(grep -v '^\s*$' "$OUTDIR/$name.log" | tail -n 12 | cut -c1-300)
        DETAILS+=('    ```' "")
    fi
    echo "   $STATUS in $WALL s"
}

# numbers KIND FILE: one markdown cell of the numbers in a run's metrics.json (KIND train|attack).
numbers() {
    "$PYTHON" - "$@" <<'EOF' 2>/dev/null || echo "no metrics.json"
import json, sys
kind, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))
if kind == "train":
    t = m["test"]
    best = m.get("best_val_acc1")
    print(f"test top-1 {100 * t['acc1']:.2f}%, top-5 {100 * t.get('acc5', float('nan')):.2f}%"
          + (f", best epoch {100 * best:.2f}%" if best is not None else "")
          + f"; {m['epochs']} epochs, {m['train_images']:,} train / {m['test_images']:,} test images; run {m['duration_s']} s")
else:
    r, b, k = m["metrics"], m["baseline_encrypted"], m.get("key") or {}
    s = (f"SSIM {r['ssim']:.3f} (encrypted {b['ssim']:.3f}), PSNR {r['psnr']:.2f} dB, exact bytes {100 * r['exact_bytes']:.1f}%")
    if "key_recovered_fraction" in k:
        s += f", key {100 * k['key_recovered_fraction']:.1f}%"
    s += f"; {m['victim_images']:,} victims"
    if m.get("attacker_images"):
        s += f", {m['attacker_images']:,} attacker images, {m['epochs']} epochs"
    print(s + f"; run {m['duration_s']} s")
EOF
}

row() {  # row STEP STATUS WALL NUMBERS
    ROWS+=("| $1 | $2 | $3 | $4 |")
}

# ---------------------------------------------------------------- 1. the CUDA tests
run_step cuda_tests 120 "$PYTHON" -m pytest -p no:cacheprovider -q -rs tests/ciphers/test_devices.py
counts=$(grep -E '^[=]* *[0-9]+ (passed|failed|skipped|error|errors|deselected)' "$OUTDIR/cuda_tests.log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')
row "CUDA tests (tests/ciphers/test_devices.py)" "$STATUS" "$WALL" "${counts:-no pytest summary line}"

# ---------------------------------------------------------------- 2. cipher benchmark, GPU column
run_step ciphers 150 "$PYTHON" bench/ciphers.py --cifar "$CIFAR" --out "$OUTDIR/ciphers.md" --images "$CIPHER_IMAGES" --reps 5
if [ -f "$OUTDIR/ciphers.md" ]; then
    gfloor=$(sed -n 's/^Gather floor.*\*\*\([0-9,]*\) images\/s\*\* on CPU, \([0-9,]*\) images\/s on GPU.*/\1 images\/s on CPU, \2 on GPU/p' \
        "$OUTDIR/ciphers.md" | head -1)
    row "cipher benchmark ($CIPHER_IMAGES CIFAR-10 test images)" "$STATUS" "$WALL" "gather floor ${gfloor:-?}; table below"
else
    row "cipher benchmark ($CIPHER_IMAGES CIFAR-10 test images)" "$STATUS" "$WALL" "no ciphers.md"
fi

# ---------------------------------------------------------------- 3. the fast recipe on one GPU
# experiment=fast_cifar10 (all images, FAST_EPOCHS epochs), plain over 3 seeds and LE: the issue's GPU
# target is plain >= 93.0% (mean of 3 seeds, no test-time augmentation) in <= 30 s per run.
FAST="experiment=fast_cifar10 data.root=$CIFAR trainer=gpu trainer.max_epochs=$FAST_EPOCHS"
for run in plain:0 plain:1 plain:2 tanaka:0; do
    scheme=${run%%:*} seed=${run##*:}
    name=gpu-check-fast-$scheme-seed$seed
    run_step "fast_${scheme}_seed$seed" 90 "$PYTHON" train.py $FAST scheme=$scheme seed=$seed $COMMON name=$name
    row "train.py experiment=fast_cifar10 trainer=gpu, $scheme, seed $seed" "$STATUS" "$WALL" "$(numbers train "$RUNS/$name/metrics.json")"
done

# ---------------------------------------------------------------- 4. trainer=ddp on the GPUs present
name=gpu-check-ddp-fast-tanaka
run_step train_ddp 100 "$PYTHON" train.py $FAST trainer=ddp trainer.devices="$NGPU" scheme=tanaka \
    trainer.max_epochs="$DDP_EPOCHS" $COMMON name=$name
row "train.py experiment=fast_cifar10 trainer=ddp devices=$NGPU, tanaka, $DDP_EPOCHS epochs" "$STATUS" "$WALL" "$(numbers train "$RUNS/$name/metrics.json")"

# ---------------------------------------------------------------- 5. attacks on the GPU
ADATA="data=cifar10 data.format=imagefolder data.root=$CIFAR victims.limit=1000"
name=gpu-check-itn-etc
run_step attack_itn 100 "$PYTHON" attack.py $ADATA scheme=etc attack=itn attack.epochs="$ATTACK_EPOCHS" \
    attacker.limit="$ATTACKER_LIMIT" trainer=gpu $COMMON name=$name
row "attack.py trainer=gpu, itn on etc (learned)" "$STATUS" "$WALL" "$(numbers attack "$RUNS/attacks/$name/metrics.json")"
name=gpu-check-tanaka_cpa-tanaka
run_step attack_tanaka_cpa 60 "$PYTHON" attack.py $ADATA scheme=tanaka attack=tanaka_cpa trainer=gpu $COMMON name=$name
row "attack.py trainer=gpu, tanaka_cpa on tanaka (analytic)" "$STATUS" "$WALL" "$(numbers attack "$RUNS/attacks/$name/metrics.json")"
name=gpu-check-skk_greedy-skk_per_image
run_step attack_skk_greedy 60 "$PYTHON" attack.py $ADATA scheme=skk_per_image attack=skk_greedy attack.first_pixel=given \
    trainer=gpu $COMMON name=$name
row "attack.py trainer=gpu, skk_greedy (first pixel given) on per-image skk (analytic)" "$STATUS" "$WALL" "$(numbers attack "$RUNS/attacks/$name/metrics.json")"

# ---------------------------------------------------------------- 6. the madono2020_fast grid, 1 seed, if time allows
# target: <= 6 minutes on one GPU; its report beside the paper goes to OUTDIR/madono2020_fast.md
run_step grid_madono2020_fast 420 env CIFAR="$CIFAR" "$PYTHON" train.py experiment=sweep/madono2020_fast trainer=gpu trainer.max_epochs=$FAST_EPOCHS \
    hydra.sweeper.params.seed=0 sweep=gpu-check-madono2020_fast logger=csv trainer.enable_progress_bar=false \
    paths.runs=$RUNS force=true
if [ "$STATUS" = ok ]; then
    "$PYTHON" -m leia.report "$RUNS/sweeps/gpu-check-madono2020_fast" --paper madono2020 \
        --out "$OUTDIR/madono2020_fast" >/dev/null 2>&1 && cp "$OUTDIR/madono2020_fast/report.md" "$OUTDIR/madono2020_fast.md"
fi
row "madono2020_fast grid (5 schemes × 2 adaptations, seed 0)" "$STATUS" "$WALL" "report: madono2020_fast.md"

# ---------------------------------------------------------------- 7. the ScrambleMix rows (issue #14), if time allows
# LE, skk and ScrambleMix (D = 4, tested with T = 4 views and with one view) at the fast recipe's budget
run_step grid_scramblemix_fast 300 env CIFAR="$CIFAR" "$PYTHON" train.py experiment=sweep/scramblemix_fast trainer=gpu trainer.max_epochs=$FAST_EPOCHS \
    sweep=gpu-check-scramblemix_fast logger=csv trainer.enable_progress_bar=false paths.runs=$RUNS force=true
if [ "$STATUS" = ok ]; then
    "$PYTHON" -m leia.report "$RUNS/sweeps/gpu-check-scramblemix_fast" --paper madono2023 \
        --out "$OUTDIR/scramblemix_fast" >/dev/null 2>&1 && cp "$OUTDIR/scramblemix_fast/report.md" "$OUTDIR/scramblemix_fast.md"
fi
row "scramblemix_fast grid (plain, LE, skk, ScrambleMix with and without T = 4 averaging; seed 0)" "$STATUS" "$WALL" \
    "report: scramblemix_fast.md"

# ---------------------------------------------------------------- summary.md
TOTAL=$(( $(date +%s) - START ))
{
    echo "## GPU check (bench/gpu_check.sh)"
    echo
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $MACHINE${DRIVER:+, driver $DRIVER}."
    echo "Command: \`PYTHON=$PYTHON CIFAR=$CIFAR_ARG bash bench/gpu_check.sh OUTDIR\` ($TOTAL s in all, budget $BUDGET_S s)."
    echo "Data: $TRAIN_N train / $TEST_N test CIFAR-10 JPEGs under \`$CIFAR_ARG\` (image folder)."
    echo "Wall s = the step's whole command (Python start, imports and JPEG decoding included); \"run\" = the"
    echo "run's own duration_s from its metrics.json."
    echo
    echo "| step | status | wall s | numbers |"
    echo "|---|---|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    if [ -f "$OUTDIR/ciphers.md" ]; then
        echo "Cipher benchmark (bench/ciphers.py; CPU columns measured on this machine's CPUs, last column on the GPU):"
        echo
        grep -E '^(Machine:|Gather floor)' "$OUTDIR/ciphers.md" | sed 's/^/- /'
        echo
        grep -E '^\|' "$OUTDIR/ciphers.md"
        echo
    fi
    echo "Commands (run from the repository root; \$CIFAR = the image folder; OUTDIR/RUNS are paths of this run):"
    echo
    printf '%s\n' "${DETAILS[@]//$OUTDIR/OUTDIR}"
} >"$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
exit $FAILED
