#!/usr/bin/env bash
# make_figures.sh: re-make every picture the README shows, with today's scripts, and score each run.
#
# Usage:
#   bash images/make_figures.sh DATA_ROOT                  # every experiment not made yet
#   bash images/make_figures.sh DATA_ROOT NAME [NAME ...]  # re-make exactly these (their old outputs go first)
#   bash images/make_figures.sh --list                     # the names, commands and pictures
#
# DATA_ROOT is the folder that holds MNIST/. Each experiment is a name, the commands a user would type
# (as the README shows them), and the pictures it copies into images/ under the README's names. The
# driver adds --out runs/figures/NAME and --data-root DATA_ROOT to each training command (runs/ is
# not committed), logs the console to runs/figures/NAME/console.txt, and copies the pictures only once
# every command of the experiment has succeeded. An experiment is skipped when its pictures and its row
# of images/scores.tsv exist.
#
# To re-make one picture: find the experiment that makes it (--list names the pictures of each), and
# give its name, e.g. `bash images/make_figures.sh ~/data nz_10` for images/dcgan_nz_10_samples.png.
# interpolate_dcgan and interpolate_cgan draw from the runs of default and cgan: re-make them with those
# (names given together run in the order of --list, whatever the order given).
#
# Scores: when ../shared/tools/mnist_quality.py exists (beside the project folder), each MNIST run's
# checkpoint draws 10,000 samples from fresh noise (a cGAN: 1,000 of each digit) into
# runs/figures/NAME/samples10k.pt, and the tool scores them. images/scores.tsv gets one row per
# experiment: name, command, fd, classes_covered, cond_acc (cGAN), the run's last spread (log.csv), and
# the minutes its commands took. The long run is also scored after every epoch: while it trains, the
# driver copies its checkpoint each time the script replaces it (once an epoch), and then scores each
# copy the same way, into images/long_epochs.tsv (epoch, step, fd, classes_covered, and the smallest
# and largest share of one digit). Without the tool the scores read NA, and no epoch is kept.
#
# Whole set: about 2 3/4 hours on a 2-core CPU with nothing else running, 2.5 hours of training and
# 15 minutes of scoring. images/scores.tsv's last column gives the minutes each experiment's commands
# took when these pictures were made (some of them while other work shared the machine). Alone on the
# machine: long 30 min (30 epochs of 53 to 67 s, then 9 min to score every epoch); wgan_gp_mnist 18
# min (8 epochs of 127 to 141 s); size_64 16 min; wgan_gp_mnist_no_gp 12 min; ndf_128 7 min; cgan,
# cgan_d_label_off, size_64_normal about 6 min each; default, default_seed1, default_seed2 about 5
# min each; wgan_gp_shapes 5 min; nz_1000 5 min; the other 3-epoch runs 1.5 to 3.5 min each;
# interpolate_dcgan and interpolate_cgan seconds. Each MNIST run's scoring adds about 20 s.
#
# For testing the driver itself (hidden settings): FIGURES_MAX_STEPS=N adds --max-steps N to each
# training command (N, 2N, ... for an experiment's successive commands, so that --resume goes on) and
# puts the runs into runs/figures-smoke/; a grid of an epoch that such a short run never reached is
# taken from its last epoch. FIGURES_SAMPLES sets the samples scored (default 10,000; 200 with
# FIGURES_MAX_STEPS). FIGURES_DIR replaces images/ as the destination of the pictures and scores.tsv:
#   FIGURES_MAX_STEPS=2 FIGURES_DIR=/tmp/figs bash images/make_figures.sh ~/data default
{  # bash reads the whole block before it runs any of it: editing this file cannot derail a run under way
set -euo pipefail

ME=make_figures.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)  # the project folder: images/ lives in it

fail() { printf '%s: error: %s\n' "$ME" "$1" >&2; exit 2; }

LIST=0
if [ "${1:-}" = "--list" ]; then
  LIST=1
elif [ $# -lt 1 ] || [ "${1:0:1}" = "-" ]; then
  fail "usage: bash images/make_figures.sh DATA_ROOT [EXPERIMENT ...] (DATA_ROOT holds MNIST/), or --list"
else
  [ -d "$1" ] || fail "DATA_ROOT $1 is not a folder; give the folder that holds MNIST/"
  DATA_ROOT=$(cd "$1" && pwd)
  shift
fi
DEST=${FIGURES_DIR:-$ROOT/images}
if [ "$LIST" = 0 ]; then
  mkdir -p "$DEST"
  DEST=$(cd "$DEST" && pwd)
fi
MAX_STEPS=${FIGURES_MAX_STEPS:-}
if [ -n "$MAX_STEPS" ]; then
  [[ "$MAX_STEPS" =~ ^[1-9][0-9]*$ ]] || fail "FIGURES_MAX_STEPS must be a positive whole number, got $MAX_STEPS"
  RUNS=runs/figures-smoke
  N_SAMPLES=${FIGURES_SAMPLES:-200}
else
  RUNS=runs/figures
  N_SAMPLES=${FIGURES_SAMPLES:-10000}
fi
[[ "$N_SAMPLES" =~ ^[1-9][0-9]*$ ]] || fail "FIGURES_SAMPLES must be a positive whole number, got $N_SAMPLES"
SHAPES=runs/figures/shapes-data  # the folder of coloured shapes, written from the README's make_shapes.py
TOOL=../shared/tools/mnist_quality.py
cd "$ROOT"
if [ -x .venv/bin/python ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi

# ----------------------------------------------------------------------------- the experiments
# experiment NAME "PICTURES" "COMMAND" ["COMMAND" ...]
#   PICTURES: FILE:NAME pairs, FILE in the experiment's folder, NAME the picture in images/.
NAMES=()
declare -A PICS CMDS
experiment() {
  local name=$1 pics=$2
  shift 2
  NAMES+=("$name")
  PICS[$name]=$pics
  CMDS[$name]=$(printf '%s\n' "$@")
}
# A DCGAN grid, losses and the last grid: "dcgan_NAME_samples.png" from the grid of epoch E.
dcgan_pics() { printf 'samples_epoch_%03d.png:dcgan_%s_samples.png losses.png:dcgan_%s_losses.png' "$2" "$1" "$1"; }

# In the order they run: first those the docstrings and the README's first pages quote; interpolate_*
# after the runs they draw from. default_seed1 and default_seed2 (seed noise), default_3_epochs (the FD
# that the 3-epoch runs compare with) and wgan_gp_mnist_no_gp (the critic's slope without its penalty,
# against wgan_gp_mnist's) make a scores row and no picture of their own.
experiment default "samples_epoch_001.png:dcgan_default_epoch1_samples.png samples_epoch_003.png:dcgan_default_epoch3_samples.png
  samples_epoch_005.png:dcgan_default_samples.png progress.gif:dcgan_default_progress.gif losses.png:dcgan_default_losses.png" \
  "python dcgan.py"
experiment saturating "$(dcgan_pics saturating 3)" "python dcgan.py --epochs 3 --loss saturating"
experiment size_64_normal "$(dcgan_pics size_64_normal 1)" \
  "python dcgan.py --epochs 1 --image-size 64 --weight-init normal --seed 1"
experiment lr_g_10x "$(dcgan_pics lr_g_10x 3)" "python dcgan.py --epochs 3 --lr-d 2e-4 --lr-g 2e-3"
experiment lr_d_10x "$(dcgan_pics lr_d_10x 3)" "python dcgan.py --epochs 3 --lr-d 2e-3 --lr-g 2e-4"
experiment cgan "samples_epoch_005.png:cgan_default_samples.png losses.png:cgan_default_losses.png" "python cgan.py"
experiment interpolate_dcgan "linear.png:interpolate_dcgan_linear.png slerp.png:interpolate_dcgan_slerp.png" \
  "python interpolate.py $RUNS/default --out $RUNS/interpolate_dcgan/linear.png" \
  "python interpolate.py $RUNS/default --mode slerp --out $RUNS/interpolate_dcgan/slerp.png"
experiment interpolate_cgan "3_to_8.png:interpolate_cgan_3_to_8.png label_4.png:interpolate_cgan_label_4.png" \
  "python interpolate.py $RUNS/cgan --labels 3 8 --out $RUNS/interpolate_cgan/3_to_8.png" \
  "python interpolate.py $RUNS/cgan --label 4 --out $RUNS/interpolate_cgan/label_4.png"
experiment wgan_gp_mnist "samples_epoch_005.png:wgan_gp_mnist_epoch5_samples.png samples_epoch_008.png:wgan_gp_mnist_samples.png
  losses.png:wgan_gp_mnist_losses.png" \
  "python wgan_gp.py --dataset mnist --ngf 32 --ndf 32 --epochs 5" \
  "python wgan_gp.py --resume $RUNS/wgan_gp_mnist/checkpoint.pt --epochs 8"
experiment wgan_gp_mnist_no_gp "" "python wgan_gp.py --dataset mnist --ngf 32 --ndf 32 --epochs 5 --lambda-gp 0"
experiment default_seed1 "" "python dcgan.py --seed 1"
experiment default_seed2 "" "python dcgan.py --seed 2"
experiment default_3_epochs "" "python dcgan.py --epochs 3"  # the default run's first 3 epochs (same seed, same steps): its FD there
experiment ngf_8 "$(dcgan_pics ngf_8 3)" "python dcgan.py --epochs 3 --ngf 8"
experiment ngf_128 "$(dcgan_pics ngf_128 1)" "python dcgan.py --epochs 1 --ngf 128"
experiment ndf_8 "$(dcgan_pics ndf_8 3)" "python dcgan.py --epochs 3 --ndf 8"
experiment ndf_128 "$(dcgan_pics ndf_128 1)" "python dcgan.py --epochs 1 --ndf 128"
experiment init_default "$(dcgan_pics init_default 3)" "python dcgan.py --epochs 3 --weight-init default"
experiment nz_10 "$(dcgan_pics nz_10 3)" "python dcgan.py --epochs 3 --nz 10"
experiment nz_1000 "$(dcgan_pics nz_1000 3)" "python dcgan.py --epochs 3 --nz 1000"
experiment d_steps_2 "$(dcgan_pics d_steps_2 3)" "python dcgan.py --epochs 3 --d-steps 2"
experiment size_64 "$(dcgan_pics size_64 3)" "python dcgan.py --epochs 3 --image-size 64"
experiment long "samples_epoch_005.png:dcgan_long_epoch5_samples.png samples_epoch_011.png:dcgan_long_epoch11_samples.png
  samples_epoch_015.png:dcgan_long_epoch15_samples.png samples_epoch_027.png:dcgan_long_epoch27_samples.png
  samples_epoch_030.png:dcgan_long_epoch30_samples.png losses.png:dcgan_long_losses.png" \
  "python dcgan.py --epochs 30"
experiment cgan_d_label_off "samples_epoch_005.png:cgan_d_label_off_samples.png" "python cgan.py --d-label off"
EVERY_EPOCH=" long "  # also scored after every epoch (a copy of each epoch's checkpoint): images/NAME_epochs.tsv
experiment wgan_gp_shapes "samples_epoch_015.png:wgan_gp_shapes_samples.png" \
  "python wgan_gp.py --dataset folder --data-root shapes --image-size 32 --ngf 32 --ndf 32 --epochs 15"

if [ "$LIST" = 1 ]; then
  for name in "${NAMES[@]}"; do
    printf '%s\n' "$name"
    while IFS= read -r cmd; do printf '    %s\n' "$cmd"; done <<< "${CMDS[$name]}"
    for pair in ${PICS[$name]}; do printf '    -> images/%s\n' "${pair#*:}"; done
    [[ "$EVERY_EPOCH" != *" $name "* ]] || printf '    -> images/%s_epochs.tsv (its scores after every epoch)\n' "$name"
  done
  exit 0
fi

SELECTED=()
FORCE=0
if [ $# -gt 0 ]; then
  FORCE=1
  for name in "$@"; do
    [ -n "${CMDS[$name]+set}" ] || fail "unknown experiment '$name'; the experiments: ${NAMES[*]}"
  done
  for name in "${NAMES[@]}"; do  # in the list's order, whatever the order given: a run before what reads it
    [[ " $* " != *" $name "* ]] || SELECTED+=("$name")
  done
else
  SELECTED=("${NAMES[@]}")
fi

SCORES=$DEST/scores.tsv
HEADER=$(printf 'name\tcommand\tfd\tclasses_covered\tcond_acc\tspread\tminutes')
if [ -f "$TOOL" ]; then
  SCORING=1
else
  SCORING=0
  echo "$ME: $TOOL not found: no scoring, fd, classes_covered and cond_acc read NA"
fi

# ----------------------------------------------------------------------------- helpers
TRAINING='^python (dcgan|cgan|wgan_gp)\.py'
is_training() { [[ "$1" =~ $TRAINING ]]; }

is_mnist() {  # an experiment that trains on MNIST: its first command's --dataset, or the script's default
  local cmd
  cmd=$(head -1 <<< "${CMDS[$1]}")
  is_training "$cmd" || return 1
  case "$cmd" in
    *"--dataset mnist"*) return 0;;
    *--dataset*|*"--resume"*|"python wgan_gp.py"*) return 1;;  # wgan_gp.py's default is CelebA
  esac
  return 0
}

row_of() { [ -f "$SCORES" ] && awk -F'\t' -v n="$1" '$1 == n' "$SCORES" || true; }

done_already() {  # every picture in place, and a row (with an fd, where it can be had)
  local name=$1 pair row
  for pair in ${PICS[$name]}; do [ -f "$DEST/${pair#*:}" ] || return 1; done
  row=$(row_of "$name")
  [ -n "$row" ] || return 1
  if [ "$SCORING" = 1 ] && [[ "$EVERY_EPOCH" == *" $name "* ]] && [ ! -f "$DEST/${name}_epochs.tsv" ]; then
    return 1
  fi
  if [ "$SCORING" = 1 ] && is_mnist "$name" && [ "$(printf '%s' "$row" | cut -f3)" = NA ]; then
    return 1  # an MNIST run made without the scoring tool
  fi
  return 0
}

remove_outputs() {  # remove_outputs NAME [pictures]: its run folder and row; with "pictures", its pictures too
  local name=$1 pair
  rm -rf "${RUNS:?}/$name" "$RUNS/$name.console.txt"
  if [ "${2:-}" = pictures ]; then
    for pair in ${PICS[$name]}; do rm -f "$DEST/${pair#*:}"; done
  fi
  set_row "$name" ""
  [ "${2:-}" != pictures ] || rm -f "$DEST/${name}_epochs.tsv"
}

set_row() {  # set_row NAME ROW: replace NAME's row of scores.tsv (ROW empty: remove it); rows in NAMES' order
  local name=$1 row=$2 other tmp=$SCORES.tmp
  {
    printf '%s\n' "$HEADER"
    for other in "${NAMES[@]}"; do
      if [ "$other" = "$name" ]; then
        [ -z "$row" ] || printf '%s\n' "$row"
      else
        row_of "$other"
      fi
    done
  } > "$tmp"
  mv "$tmp" "$SCORES"
}

make_shapes() {  # the README's make_shapes.py, unchanged, run in a scratch folder
  local tmp
  mkdir -p runs/figures
  tmp=$(mktemp -d runs/figures/.shapes.XXXXXX)
  (cd "$tmp" && "$PY" - <<'PY'
# make_shapes.py: the folder of coloured shapes
import os, random
from PIL import Image, ImageDraw
random.seed(0)
colours = [(230, 60, 50), (40, 160, 70), (50, 90, 220), (240, 200, 40), (160, 60, 200)]
for k in range(5000):
    image = Image.new("RGB", (64, 64), (20, 20, 20))
    draw, c, r = ImageDraw.Draw(image), random.choice(colours), random.randint(10, 22)
    x, y = random.randint(r, 64 - r), random.randint(r, 64 - r)
    if k % 3 == 0:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
    elif k % 3 == 1:
        draw.rectangle([x - r, y - r, x + r, y + r], fill=c)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=c)
    os.makedirs(f"shapes/part{k % 4}", exist_ok=True)
    image.save(f"shapes/part{k % 4}/{k:05d}.png")
PY
  )
  mv "$tmp/shapes" "$SHAPES"
  rmdir "$tmp"
}

draw_samples() {  # draw_samples RUN_FOLDER N: N samples of its generator, from fresh noise, into RUN_FOLDER/samples10k.pt
  "$PY" - "$1" "$2" <<'PY'
import os, sys
import torch
import torch.nn.functional as F
import interpolate

folder, n = sys.argv[1], int(sys.argv[2])
path = os.path.join(folder, "checkpoint.pt")
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
G, z_shape, n_classes = interpolate.load_generator(path, device)  # rebuilt from the checkpoint alone
G.eval()  # batch norm uses its running statistics
torch.manual_seed(1234)  # fresh noise: not the run's fixed grid noise
images, labels = [], torch.arange(n) % n_classes if n_classes else None  # a cGAN: every class as often
with torch.no_grad():
    for start in range(0, n, 500):
        z = torch.randn(min(500, n - start), *z_shape, device=device)
        inputs = [z] + ([F.one_hot(labels[start:start + len(z)], n_classes).float().to(device)] if n_classes else [])
        images.append(G(*inputs).cpu())
torch.save({"images": torch.cat(images), **({"labels": labels} if n_classes else {})},
           os.path.join(folder, "samples10k.pt"))
PY
}

keep_checkpoints() {  # keep_checkpoints FOLDER: until killed, copy FOLDER/checkpoint.pt into FOLDER/epochs/ each
  # time the run replaces it (at each epoch's end; the script replaces it in one atomic rename, so a copy is whole)
  local folder=$1 seen="" now k=0
  while true; do
    now=$(stat -c '%i %y' "$folder/checkpoint.pt" 2>/dev/null || true)
    if [ -n "$now" ] && [ "$now" != "$seen" ]; then  # epochs/ only now: the script wants a new or empty --out
      k=$((k + 1))
      mkdir -p "$folder/epochs"
      cp "$folder/checkpoint.pt" "$folder/epochs/copy_$k.pt" && seen=$now
    fi
    sleep 2
  done
}

score_epochs() {  # score_epochs FOLDER TSV: score each checkpoint kept in FOLDER/epochs/, one row per step
  local folder=$1 tsv=$2 epoch step path one
  "$PY" - "$folder/epochs" > "$folder/epochs/index.txt" <<'PY'
import glob, os, sys
import torch
kept = {}  # the same state may have been copied twice
for path in glob.glob(os.path.join(sys.argv[1], "copy_*.pt")):
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    kept[checkpoint["step"]] = (checkpoint["epoch"], path)
for step, (epoch, path) in sorted(kept.items()):
    print(epoch, step, path)
PY
  printf 'epoch\tstep\tfd\tclasses_covered\tsmallest_class\tlargest_class\n' > "$tsv.tmp"
  while read -r epoch step path <&3; do
    one=$folder/epochs/step_$step
    mkdir -p "$one"
    cp "$path" "$one/checkpoint.pt"
    draw_samples "$one" "$N_SAMPLES"
    "$PY" "$TOOL" "$one/samples10k.pt" --data-root "$DATA_ROOT" > "$one/scores.json"
    "$PY" -c 'import json, sys; s = json.loads(sys.stdin.read().strip().splitlines()[-1]); h = s["class_hist"]
print("\t".join(sys.argv[1:] + [str(s["fd"]), str(s["classes_covered"]), f"{min(h) / sum(h):.3f}", f"{max(h) / sum(h):.3f}"]))' \
      "$epoch" "$step" < "$one/scores.json" >> "$tsv.tmp"
  done 3< "$folder/epochs/index.txt"
  mv "$tsv.tmp" "$tsv"
}

shrink() {  # shrink PNG...: a plot in 256 colours, without dithering, looks the same at half the size (8 MB in all)
  "$PY" - "$@" <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    with Image.open(path) as image:
        plot = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    plot.save(path, format="PNG", optimize=True)
PY
}

last_spread() {  # the last non-empty value of log.csv's spread column, or NA
  "$PY" - "$1" <<'PY'
import csv, sys
try:
    with open(sys.argv[1], newline="") as f:
        values = [row.get("spread") for row in csv.DictReader(f)]
except FileNotFoundError:
    values = []
print(next((v for v in reversed(values) if v), "NA"))
PY
}

score_fields() {  # the tool's JSON line -> fd, classes_covered, cond_acc (tab-separated)
  "$PY" -c 'import json, sys; s = json.loads(sys.stdin.read().strip().splitlines()[-1])
print("\t".join(str(s.get(k, "NA")) for k in ("fd", "classes_covered", "cond_acc")))'
}

run_experiment() {  # in a subshell: any failing command fails the experiment, and nothing is copied
  local name=$1 folder=$RUNS/$1 log=$RUNS/$1.console.txt
  local cmd k=0 start words seconds fields spread pair src dst needs i
  mkdir -p "$RUNS"
  : > "$log"
  if [[ "${CMDS[$name]}" == *"--data-root shapes"* ]] && [ ! -d "$SHAPES" ]; then
    echo "writing the shapes folder into $SHAPES" >> "$log"
    make_shapes >> "$log" 2>&1
  fi
  if [[ "$name" == interpolate_* ]]; then
    needs=${CMDS[$name]#python interpolate.py }
    needs=${needs%% *}
    [ -f "$needs/checkpoint.pt" ] || { echo "needs $needs/checkpoint.pt: make that run first" >> "$log"; return 1; }
  fi
  local keeper=""
  if [ "$SCORING" = 1 ] && [[ "$EVERY_EPOCH" == *" $name "* ]]; then
    keep_checkpoints "$folder" &
    keeper=$!
    trap "kill $keeper 2> /dev/null || true" EXIT  # a failing command ends this subshell: the copier with it
  fi
  start=$(date +%s)
  while IFS= read -r cmd; do
    read -r -a words <<< "$cmd"
    words[0]=$PY
    if is_training "$cmd"; then
      k=$((k + 1))
      [ "$k" -gt 1 ] || words+=(--out "$folder")
      if [[ " $cmd " == *" --data-root shapes "* ]]; then
        for i in "${!words[@]}"; do [ "${words[$i]}" != shapes ] || words[$i]=$SHAPES; done
      else
        words+=(--data-root "$DATA_ROOT")
      fi
      [ -z "$MAX_STEPS" ] || words+=(--max-steps $((MAX_STEPS * k)))
    else
      mkdir -p "$folder"
    fi
    printf '$ %s\n' "${words[*]}" >> "$log"
    "${words[@]}" >> "$log" 2>&1
  done <<< "${CMDS[$name]}"
  seconds=$(( $(date +%s) - start ))
  if [ -n "$keeper" ]; then
    kill "$keeper" 2> /dev/null || true
    mkdir -p "$folder/epochs"
    cp "$folder/checkpoint.pt" "$folder/epochs/copy_last.pt"  # the last one, had the copier not seen it yet
  fi

  fields=$(printf 'NA\tNA\tNA')
  if [ "$SCORING" = 1 ] && is_mnist "$name"; then
    echo "scoring $N_SAMPLES samples" >> "$log"
    draw_samples "$folder" "$N_SAMPLES" >> "$log" 2>&1
    "$PY" "$TOOL" "$folder/samples10k.pt" --data-root "$DATA_ROOT" > "$folder/scores.json" 2>> "$log"
    cat "$folder/scores.json" >> "$log"
    fields=$(score_fields < "$folder/scores.json")
    if [ -n "$keeper" ]; then
      echo "scoring every epoch into $DEST/${name}_epochs.tsv" >> "$log"
      score_epochs "$folder" "$DEST/${name}_epochs.tsv" >> "$log" 2>&1
    fi
  fi
  spread=NA
  [ "$k" -eq 0 ] || spread=$(last_spread "$folder/log.csv")

  for pair in ${PICS[$name]}; do  # every picture must exist before any is copied
    src=$folder/${pair%%:*}
    if [ ! -f "$src" ] && [ -n "$MAX_STEPS" ] && [[ "$src" == */samples_epoch_* ]]; then
      src=$(ls "$folder"/samples_epoch_*.png | tail -1)  # a short test run: its last grid stands in
    fi
    [ -f "$src" ] || { echo "$src was not written" >> "$log"; return 1; }
  done
  for pair in ${PICS[$name]}; do
    src=$folder/${pair%%:*}
    [ -f "$src" ] || src=$(ls "$folder"/samples_epoch_*.png | tail -1)
    dst=$DEST/${pair#*:}
    cp "$src" "$dst.tmp"
    [[ "$src" != */losses.png ]] || shrink "$dst.tmp"
    mv "$dst.tmp" "$dst"
  done
  set_row "$name" "$(printf '%s\t%s\t%s\t%s\t%s' "$name" "$(printf '%s' "${CMDS[$name]}" | paste -sd';' - | sed 's/;/; /g')" \
    "$fields" "$spread" "$(awk -v s="$seconds" 'BEGIN { printf "%.1f", s / 60 }')")"
  echo "$seconds"
}

# ----------------------------------------------------------------------------- the runs
failed=()
for name in "${SELECTED[@]}"; do
  if [ "$FORCE" = 0 ] && done_already "$name"; then
    echo "$name: skipped (its pictures and scores exist)"
    continue
  fi
  if [ "$FORCE" = 1 ]; then remove_outputs "$name" pictures; else remove_outputs "$name"; fi  # else: old pictures stay until replaced
  set +e
  seconds=$( (set -e; run_experiment "$name") )
  rc=$?
  set -e
  [ ! -d "$RUNS/$name" ] || mv "$RUNS/$name.console.txt" "$RUNS/$name/console.txt"
  console=$RUNS/$name/console.txt
  [ -f "$console" ] || console=$RUNS/$name.console.txt
  if [ "$rc" = 0 ]; then
    echo "$name: made in $(awk -v s="$seconds" 'BEGIN { printf "%.1f", s / 60 }') min"
  else
    echo "$name: FAILED, nothing copied (see $console)"
    failed+=("$name")
  fi
  if [ "$FORCE" = 1 ] && [[ "$name" =~ ^(default|cgan)$ ]] && [[ " ${SELECTED[*]} " != *" interpolate_${name/default/dcgan} "* ]]; then
    echo "  (interpolate_${name/default/dcgan} draws from this run: re-make it too)"
  fi
done

# Two pictures set one run's signal beside another's, from their log.csv files (redrawn each time, in seconds).
compare() {  # compare PICTURE COLUMN YLABEL LOG_SCALE(0|1) LINE_AT(-|value) LABEL=RUN ...
  local picture=$1
  shift
  "$PY" - "$DEST/$picture" "$RUNS" "$@" <<'PY' || echo "$picture: not drawn"
import csv, math, os, sys
from matplotlib.figure import Figure

out, runs, column, ylabel, log_scale, line_at, *pairs = sys.argv[1:]
fig = Figure(figsize=(10, 3.6), layout="constrained")
ax = fig.subplots()
for pair in pairs:
    label, name = pair.rsplit("=", 1)
    with open(os.path.join(runs, name, "log.csv"), newline="") as f:
        rows = [(int(r["step"]), float(r[column])) for r in csv.DictReader(f) if r[column]]
    steps, values = zip(*rows)
    line, = ax.plot(steps, values, alpha=0.25, linewidth=0.6)
    smooth, avg = [], math.nan
    for v in values:  # the scripts' exponential moving average
        avg = v if math.isnan(avg) else 0.95 * avg + 0.05 * v
        smooth.append(avg)
    ax.plot(steps, smooth, color=line.get_color(), label=label)
if line_at != "-":
    ax.axhline(float(line_at), color="grey", linestyle=":", linewidth=1)
ax.set(yscale="log" if log_scale == "1" else "linear", ylabel=ylabel, xlabel="generator step")
ax.legend(loc="upper right")
fig.savefig(out, dpi=100)
PY
  [ ! -f "$DEST/$picture" ] || shrink "$DEST/$picture"
}
if [ -f "$RUNS/default/log.csv" ] && [ -f "$RUNS/saturating/log.csv" ]; then
  compare dcgan_saturating_grad_G.png grad_G "grad_G, G's gradient norm" 1 - \
    "default loss -log D(G(z))=default" "--loss saturating, log(1 - D(G(z)))=saturating"
fi
if [ -f "$RUNS/wgan_gp_mnist/log.csv" ] && [ -f "$RUNS/wgan_gp_mnist_no_gp/log.csv" ]; then
  compare wgan_gp_slope.png grad_x_hat "the critic's slope |grad D(x_hat)|" 1 1 \
    "lambda = 10 (default)=wgan_gp_mnist" "--lambda-gp 0=wgan_gp_mnist_no_gp"
fi

total=$(find "$DEST" -maxdepth 1 \( -name '*.png' -o -name '*.gif' \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
if [ "$total" -gt $((8 * 1024 * 1024)) ]; then
  echo "$ME: the pictures in $DEST take $((total / 1024)) KB, over the 8 MB the project allows"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "$ME: failed: ${failed[*]}"
  exit 1
fi
exit 0
}
