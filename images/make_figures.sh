#!/usr/bin/env bash
# make_figures.sh: re-make every picture the README shows, with today's scripts, and score each run.
#   bash images/make_figures.sh DATA_ROOT                  # every experiment not made yet
#   bash images/make_figures.sh DATA_ROOT NAME [NAME ...]  # re-make exactly these (old outputs go first)
#   bash images/make_figures.sh --list                     # the names, commands and pictures
# DATA_ROOT holds MNIST/. An experiment is a name, the commands a user would type (as the README shows them) and the
# pictures it copies into images/ once every command succeeded. It runs in runs/figures/NAME (console.txt there), in
# --list order, and is skipped when its pictures and its row of images/scores.tsv exist. Scores (with
# ../shared/tools/mnist_quality.py; else NA): 10,000 samples of each MNIST run, from fresh noise, into
# images/scores.tsv (name, command, fd, classes_covered, cond_acc, spread, minutes), and the long run's checkpoint
# of every epoch into images/long_epochs.tsv. Whole set: about 2 3/4 hours on a 2-core CPU, plus about an hour for
# ndf_256 (minutes on a GPU). Testing the driver: FIGURES_MAX_STEPS=N adds --max-steps N, 2N, ... to an experiment's
# training commands (runs in runs/figures-smoke/; a grid not reached: the last one); FIGURES_SAMPLES sets the
# samples scored (10,000; 200 with FIGURES_MAX_STEPS); FIGURES_DIR replaces images/:
#   FIGURES_MAX_STEPS=2 FIGURES_DIR=/tmp/figs bash images/make_figures.sh ~/data default
{  # bash reads the whole block before it runs any of it: editing this file cannot derail a run under way
set -euo pipefail
ME=make_figures.sh ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)  # the project folder: images/ lives in it
fail() { printf '%s: error: %s\n' "$ME" "$1" >&2; exit 2; }
whole() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || fail "$1 must be a positive whole number, got $2"; }
minutes() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 60 }'; }
[ $# -ge 1 ] && [[ "$1" == --list || "$1" != -* ]] ||
  fail "usage: bash images/make_figures.sh DATA_ROOT [EXPERIMENT ...] (DATA_ROOT holds MNIST/), or --list"
[ "$1" = --list ] || [ -d "$1" ] || fail "DATA_ROOT $1 is not a folder; give the folder that holds MNIST/"
DATA_ROOT=$(if [ "$1" != --list ]; then cd "$1" && pwd; fi)
MAX_STEPS=${FIGURES_MAX_STEPS:-} RUNS=runs/figures N_SAMPLES=${FIGURES_SAMPLES:-10000}
[ -z "$MAX_STEPS" ] || whole FIGURES_MAX_STEPS "$MAX_STEPS"
[ -z "$MAX_STEPS" ] || RUNS=runs/figures-smoke N_SAMPLES=${FIGURES_SAMPLES:-200}  # a test of the driver
whole FIGURES_SAMPLES "$N_SAMPLES"
SHAPES=runs/figures/shapes-data  # the folder of coloured shapes, written by make_shapes.py below
TOOL=../shared/tools/mnist_quality.py
cd "$ROOT"
if [ -x .venv/bin/python ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi
# ---------------------------------------------------------------------------------------------- the experiments
NAMES=() && declare -A PICS CMDS  # experiment NAME "FILE:PICTURE ..." COMMAND...: FILE in the run folder
experiment() { NAMES+=("$1"); PICS[$1]=$2; CMDS[$1]=$(printf '%s\n' "${@:3}"); }
# dcgan_pics NAME E: dcgan_NAME_samples.png (the grid of epoch E) and dcgan_NAME_losses.png
dcgan_pics() { printf 'samples_epoch_%03d.png:dcgan_%s_samples.png losses.png:dcgan_%s_losses.png' "$2" "$1" "$1"; }
# Those without pictures give a scores row: seed noise, the FD after 3 epochs, the critic's slope without its penalty.
experiment default "samples_epoch_001.png:dcgan_default_epoch1_samples.png
  samples_epoch_003.png:dcgan_default_epoch3_samples.png samples_epoch_005.png:dcgan_default_samples.png
  progress.gif:dcgan_default_progress.gif losses.png:dcgan_default_losses.png" "python dcgan.py"
experiment saturating "$(dcgan_pics saturating 3)" "python dcgan.py --epochs 3 --loss saturating"
experiment size_64_normal "$(dcgan_pics size_64_normal 1)" \
  "python dcgan.py --epochs 1 --image-size 64 --weight-init normal --seed 1"
experiment lr_g_10x "$(dcgan_pics lr_g_10x 3)" "python dcgan.py --epochs 3 --lr-d 2e-4 --lr-g 2e-3"
experiment lr_d_10x "$(dcgan_pics lr_d_10x 3)" "python dcgan.py --epochs 3 --lr-d 2e-3 --lr-g 2e-4"
experiment lr_d_0 "$(dcgan_pics lr_d_0 1)" "python dcgan.py --epochs 1 --lr-d 0"  # D frozen: only G learns
experiment lr_g_0 "$(dcgan_pics lr_g_0 1)" "python dcgan.py --epochs 1 --lr-g 0"  # G frozen: only D learns
experiment cgan "samples_epoch_005.png:cgan_default_samples.png losses.png:cgan_default_losses.png" "python cgan.py"
experiment interpolate_dcgan "linear.png:interpolate_dcgan_linear.png slerp.png:interpolate_dcgan_slerp.png" \
  "python interpolate.py $RUNS/default --out $RUNS/interpolate_dcgan/linear.png" \
  "python interpolate.py $RUNS/default --mode slerp --out $RUNS/interpolate_dcgan/slerp.png"
experiment interpolate_cgan "3_to_8.png:interpolate_cgan_3_to_8.png label_4.png:interpolate_cgan_label_4.png" \
  "python interpolate.py $RUNS/cgan --labels 3 8 --out $RUNS/interpolate_cgan/3_to_8.png" \
  "python interpolate.py $RUNS/cgan --label 4 --out $RUNS/interpolate_cgan/label_4.png"
experiment wgan_gp_mnist "samples_epoch_005.png:wgan_gp_mnist_epoch5_samples.png
  samples_epoch_008.png:wgan_gp_mnist_samples.png losses.png:wgan_gp_mnist_losses.png" \
  "python wgan_gp.py --dataset mnist --ngf 32 --ndf 32 --epochs 5" \
  "python wgan_gp.py --resume $RUNS/wgan_gp_mnist/checkpoint.pt --epochs 8"
experiment wgan_gp_mnist_no_gp "" "python wgan_gp.py --dataset mnist --ngf 32 --ndf 32 --epochs 5 --lambda-gp 0"
experiment default_seed1 "" "python dcgan.py --seed 1"
experiment default_seed2 "" "python dcgan.py --seed 2"
experiment default_3_epochs "" "python dcgan.py --epochs 3"  # the default run's first 3 epochs: its FD there
experiment ngf_8 "$(dcgan_pics ngf_8 3)" "python dcgan.py --epochs 3 --ngf 8"
experiment ngf_128 "$(dcgan_pics ngf_128 1)" "python dcgan.py --epochs 1 --ngf 128"
experiment ndf_8 "$(dcgan_pics ndf_8 3)" "python dcgan.py --epochs 3 --ndf 8"
experiment ndf_128 "$(dcgan_pics ndf_128 1)" "python dcgan.py --epochs 1 --ndf 128"
experiment ndf_256 "$(dcgan_pics ndf_256 1)" "python dcgan.py --epochs 1 --ndf 256"  # about an hour on 2 cores
experiment init_default "$(dcgan_pics init_default 3)" "python dcgan.py --epochs 3 --weight-init default"
experiment nz_10 "$(dcgan_pics nz_10 3)" "python dcgan.py --epochs 3 --nz 10"
experiment nz_1000 "$(dcgan_pics nz_1000 3)" "python dcgan.py --epochs 3 --nz 1000"
experiment d_steps_2 "$(dcgan_pics d_steps_2 3)" "python dcgan.py --epochs 3 --d-steps 2"
experiment size_64 "$(dcgan_pics size_64 3)" "python dcgan.py --epochs 3 --image-size 64"
experiment long "samples_epoch_005.png:dcgan_long_epoch5_samples.png
  samples_epoch_011.png:dcgan_long_epoch11_samples.png samples_epoch_015.png:dcgan_long_epoch15_samples.png
  samples_epoch_027.png:dcgan_long_epoch27_samples.png samples_epoch_030.png:dcgan_long_epoch30_samples.png
  losses.png:dcgan_long_losses.png" "python dcgan.py --epochs 30"
experiment cgan_d_label_off "samples_epoch_005.png:cgan_d_label_off_samples.png" "python cgan.py --d-label off"
EVERY_EPOCH=" long "  # also scored after every epoch (a copy of each epoch's checkpoint): images/NAME_epochs.tsv
experiment wgan_gp_shapes "samples_epoch_015.png:wgan_gp_shapes_samples.png" \
  "python wgan_gp.py --dataset folder --data-root shapes --image-size 32 --ngf 32 --ndf 32 --epochs 15"
if [ "$1" = --list ]; then
  for name in "${NAMES[@]}"; do
    printf '%s\n' "$name" && sed 's/^/    /' <<< "${CMDS[$name]}"
    for pair in ${PICS[$name]}; do printf '    -> images/%s\n' "${pair#*:}"; done
    [[ "$EVERY_EPOCH" != *" $name "* ]] || printf '    -> images/%s_epochs.tsv (its scores after every epoch)\n' "$name"
  done
  exit 0
fi
shift
SELECTED=("${NAMES[@]}") FORCE=0
for name in "$@"; do [ -v "CMDS[$name]" ] || fail "unknown experiment '$name'; the experiments: ${NAMES[*]}"; done
if [ $# -gt 0 ]; then
  SELECTED=() FORCE=1
  for name in "${NAMES[@]}"; do [[ " $* " != *" $name "* ]] || SELECTED+=("$name"); done  # a run before its readers
fi
DEST=$(mkdir -p "${FIGURES_DIR:-$ROOT/images}" && cd "${FIGURES_DIR:-$ROOT/images}" && pwd)
SCORES=$DEST/scores.tsv SCORING=1
[ -f "$TOOL" ] || { SCORING=0; echo "$ME: $TOOL not found: no scoring, fd, classes_covered and cond_acc read NA"; }
# ---------------------------------------------------------------------------------------------- helpers
HELPER=$(cat <<'PY'
import csv, glob, itertools, json, math, os, subprocess, sys
n, data_root, tool, what, *args = sys.argv[1:]
log_csv = lambda path: list(csv.DictReader(open(path, newline=""))) if os.path.exists(path) else []
def score(checkpoint, folder):  # n samples of fresh noise into FOLDER/samples10k.pt, scored by the tool
    import torch, torch.nn.functional as F, interpolate
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_samples, samples = int(n), f"{folder}/samples10k.pt"
    G, z_shape, n_classes = interpolate.load_generator(checkpoint, device)  # rebuilt from the checkpoint alone
    G.eval()  # batch norm uses its running statistics
    torch.manual_seed(1234)  # fresh noise: not the run's fixed grid noise
    images, labels = [], torch.arange(n_samples) % n_classes if n_classes else None  # a cGAN: each class as often
    with torch.no_grad():
        for start in range(0, n_samples, 500):
            z = torch.randn(min(500, n_samples - start), *z_shape, device=device)
            y = [F.one_hot(labels[start:start + len(z)], n_classes).float().to(device)] if n_classes else []
            images.append(G(z, *y).cpu())
    torch.save({"images": torch.cat(images), **({"labels": labels} if n_classes else {})}, samples)
    out = subprocess.run([sys.executable, tool, samples, "--data-root", data_root], stdout=subprocess.PIPE, check=True)
    open(f"{folder}/scores.json", "wb").write(out.stdout)
    print(line := out.stdout.decode().strip().splitlines()[-1], file=sys.stderr)  # into the console log
    return json.loads(line)
def shrink(path):  # a plot in 256 colours, without dithering, looks the same at half the size (8 MB in all)
    from PIL import Image
    with Image.open(path) as image:
        plot = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    plot.save(path, format="PNG", optimize=True)
if what in ("score", "spread"):  # score|spread FOLDER [EPOCHS_TSV]: fd, classes_covered, cond_acc (or NA), spread
    folder, tsv, s = args[0], args[1] if len(args) > 1 else "", {}
    if what == "score":
        print(f"scoring {n} samples" + (f", and every epoch into {tsv}" if tsv else ""), file=sys.stderr)
        s = score(f"{folder}/checkpoint.pt", folder)
    if what == "score" and tsv:  # and each checkpoint kept in FOLDER/epochs/, one row per step
        import torch
        kept = {}  # the same state may have been copied twice
        for path in glob.glob(f"{folder}/epochs/copy_*.pt"):
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            kept[checkpoint["step"]] = (checkpoint["epoch"], path)
        with open(tsv + ".tmp", "w") as f:
            print("epoch\tstep\tfd\tclasses_covered\tsmallest_class\tlargest_class", file=f)
            for step, (epoch, path) in sorted(kept.items()):
                os.makedirs(one := f"{folder}/epochs/step_{step}", exist_ok=True)
                e = score(path, one)
                shares = [f"{k / sum(e['class_hist']):.3f}" for k in (min(e["class_hist"]), max(e["class_hist"]))]
                print(epoch, step, e["fd"], e["classes_covered"], *shares, sep="\t", file=f)
        os.replace(tsv + ".tmp", tsv)
    spread = next((r["spread"] for r in reversed(log_csv(f"{folder}/log.csv")) if r.get("spread")), "NA")
    print("\t".join([str(s.get(k, "NA")) for k in ("fd", "classes_covered", "cond_acc")] + [spread]))
elif what == "shrink":  # shrink PNG
    shrink(args[0])
elif what == "compare":  # compare OUT RUNS COLUMN YLABEL LINE_AT(-|value) LABEL=RUN ...: on a log scale
    out, runs, column, ylabel, line_at, *pairs = args
    if all(os.path.exists(f"{runs}/{pair.rsplit('=', 1)[1]}/log.csv") for pair in pairs):  # else not yet
        from matplotlib.figure import Figure
        ax = (fig := Figure(figsize=(10, 3.6), layout="constrained")).subplots()
        for label, name in (pair.rsplit("=", 1) for pair in pairs):
            rows = [(int(r["step"]), float(r[column])) for r in log_csv(f"{runs}/{name}/log.csv") if r[column]]
            line, = ax.plot(*zip(*rows), alpha=0.25, linewidth=0.6)
            ema = itertools.accumulate([v for _, v in rows], lambda a, v: v if math.isnan(a) else 0.95 * a + 0.05 * v)
            ax.plot([s for s, _ in rows], list(ema), color=line.get_color(), label=label)  # the scripts' average
        if line_at != "-":
            ax.axhline(float(line_at), color="grey", linestyle=":", linewidth=1)
        ax.set(yscale="log", ylabel=ylabel, xlabel="generator step")
        ax.legend(loc="upper right")
        fig.savefig(out, dpi=100)
        shrink(out)
PY
)
helper() { "$PY" -c "$HELPER" "$N_SAMPLES" "$DATA_ROOT" "$TOOL" "$@"; }  # WHAT ARG..., in ROOT: imports interpolate
TRAINING='^python (dcgan|cgan|wgan_gp)\.py'
is_mnist() {  # trains on MNIST: its first command's --dataset, or the script's default (wgan_gp.py's is CelebA)
  local cmd=${CMDS[$1]%%$'\n'*}
  [[ "$cmd" =~ $TRAINING ]] && [[ "$cmd" == *"--dataset mnist"* || ( "$cmd" != *--dataset* && "$cmd" != *wgan_gp* ) ]]
}
row_of() { [ -f "$SCORES" ] && awk -F'\t' -v n="$1" '$1 == n' "$SCORES" || true; }
set_row() {  # set_row NAME ROW: replace NAME's row of scores.tsv (ROW empty: remove it); rows in NAMES' order
  local other
  { printf 'name\tcommand\tfd\tclasses_covered\tcond_acc\tspread\tminutes\n'
    for other in "${NAMES[@]}"; do
      if [ "$other" != "$1" ]; then row_of "$other"; elif [ -n "$2" ]; then printf '%s\n' "$2"; fi
    done
  } > "$SCORES.tmp" && mv "$SCORES.tmp" "$SCORES"
}
done_already() {  # every picture in place, and a row (with an fd, and the epochs' scores, where they can be had)
  local pair row=$(row_of "$1")
  for pair in ${PICS[$1]}; do [ -f "$DEST/${pair#*:}" ] || return 1; done
  [ -n "$row" ] || return 1
  [ "$SCORING" = 1 ] || return 0
  [[ "$EVERY_EPOCH" != *" $1 "* ]] || [ -f "$DEST/$1_epochs.tsv" ] || return 1
  ! is_mnist "$1" || [ "$(cut -f3 <<< "$row")" != NA ]  # else an MNIST run made without the scoring tool
}

run_experiment() {  # in a subshell under set -e: any failing command fails it, and nothing is copied
  local name=$1 folder=$RUNS/$1 log=$RUNS/$1.console.txt cmd k=0 words pair src tmp now seen="" copies=0 keeper=""
  local what=spread
  mkdir -p "$RUNS" && : > "$log"
  if [[ "${CMDS[$name]}" == *"--data-root shapes"* ]] && [ ! -d "$SHAPES" ]; then
    echo "writing the shapes folder into $SHAPES" >> "$log"  # with make_shapes.py:
    mkdir -p runs/figures && tmp=$(mktemp -d runs/figures/.shapes.XXXXXX)
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
    ) >> "$log" 2>&1
    mv "$tmp/shapes" "$SHAPES" && rmdir "$tmp"
  fi
  src=${CMDS[$name]#python interpolate.py } && src=${src%% *}/checkpoint.pt
  [[ "$name" != interpolate_* ]] || [ -f "$src" ] || { echo "needs $src: make that run first" >> "$log"; return 1; }
  if [ "$SCORING" = 1 ] && [[ "$EVERY_EPOCH" == *" $name "* ]]; then  # the copier: each checkpoint.pt the run
    while sleep 2; do  # writes (once an epoch, in an atomic rename: a copy is whole), into epochs/ (--out starts empty)
      now=$(stat -c '%i %y' "$folder/checkpoint.pt" 2> /dev/null || true)
      [ -n "$now" ] && [ "$now" != "$seen" ] || continue
      mkdir -p "$folder/epochs" && cp "$folder/checkpoint.pt" "$folder/epochs/copy_$((++copies)).pt" && seen=$now
    done & keeper=$!
    trap "kill $keeper 2> /dev/null || true" EXIT  # a failing command ends this subshell: the copier with it
  fi
  local start=$SECONDS
  while IFS= read -r cmd; do
    read -r -a words <<< "${cmd/ --data-root shapes/ --data-root $SHAPES}"
    words[0]=$PY
    if [[ "$cmd" =~ $TRAINING ]]; then
      k=$((k + 1))
      [ "$k" -gt 1 ] || words+=(--out "$folder")
      [[ "$cmd" == *"--data-root shapes"* ]] || words+=(--data-root "$DATA_ROOT")
      [ -z "$MAX_STEPS" ] || words+=(--max-steps $((MAX_STEPS * k)))
    else
      mkdir -p "$folder"
    fi
    printf '$ %s\n' "${words[*]}" >> "$log"
    "${words[@]}" >> "$log" 2>&1
  done <<< "${CMDS[$name]}"
  local seconds=$((SECONDS - start)) fields
  if [ -n "$keeper" ]; then  # and the last checkpoint, had the copier not seen it yet
    kill "$keeper" 2> /dev/null || true
    mkdir -p "$folder/epochs" && cp "$folder/checkpoint.pt" "$folder/epochs/copy_last.pt"
  fi
  if [ "$SCORING" = 1 ] && is_mnist "$name"; then what=score; fi
  fields=$(helper "$what" "$folder" ${keeper:+"$DEST/${name}_epochs.tsv"} 2>> "$log")  # fd ... spread
  mkdir -p "$folder/pictures"  # each picture under its name in images/, until every one is there
  for pair in ${PICS[$name]}; do
    src=$folder/${pair%%:*}
    if [ ! -f "$src" ] && [ -n "$MAX_STEPS" ] && [[ "$src" == */samples_epoch_* ]]; then
      src=$(ls "$folder"/samples_epoch_*.png 2> /dev/null | tail -1)  # a short test run: its last grid stands in
    fi
    [ -f "$src" ] || { echo "$folder/${pair%%:*} was not written" >> "$log"; return 1; }
    cp "$src" "$folder/pictures/${pair#*:}"
    [[ "$src" != */losses.png ]] || helper shrink "$folder/pictures/${pair#*:}"
  done
  [ -z "${PICS[$name]}" ] || mv "$folder"/pictures/* "$DEST/"
  set_row "$name" "$(printf '%s\t' "$name" "${CMDS[$name]//$'\n'/; }" "$fields")$(minutes "$seconds")"
  echo "$seconds"
}
# ---------------------------------------------------------------------------------------------- the runs
failed=()
for name in "${SELECTED[@]}"; do
  if [ "$FORCE" = 0 ] && done_already "$name"; then echo "$name: skipped (its pictures and scores exist)"; continue; fi
  rm -rf "${RUNS:?}/$name" "$RUNS/$name.console.txt"
  set_row "$name" ""
  # named: its pictures go too (else the old ones stay until replaced)
  [ "$FORCE" = 0 ] || for pair in ${PICS[$name]} ":${name}_epochs.tsv"; do rm -f "$DEST/${pair#*:}"; done
  set +e  # not `if seconds=$(...)`: set -e would not work inside the condition
  seconds=$( (set -e; run_experiment "$name") ); rc=$?; set -e
  console=$RUNS/$name.console.txt
  if [ -d "$RUNS/$name" ]; then mv "$console" "$RUNS/$name/console.txt"; console=$RUNS/$name/console.txt; fi
  [ "$rc" != 0 ] || echo "$name: made in $(minutes "$seconds") min"
  [ "$rc" = 0 ] || { echo "$name: FAILED, nothing copied (see $console)"; failed+=("$name"); }
  reader=interpolate_${name/default/dcgan}
  if [ "$FORCE" = 1 ] && [[ "$name" =~ ^(default|cgan)$ ]] && [[ " ${SELECTED[*]} " != *" $reader "* ]]; then
    echo "  ($reader draws from this run: re-make it too)"
  fi
done

# Two pictures set one run's signal beside another's, from their log.csv files (redrawn each time, in seconds).
compare() { helper compare "$DEST/$1" "$RUNS" "${@:2}" || echo "$1: not drawn"; }
compare dcgan_saturating_grad_G.png grad_G "grad_G, G's gradient norm" - \
  "default loss -log D(G(z))=default" "--loss saturating, log(1 - D(G(z)))=saturating"
compare wgan_gp_slope.png grad_x_hat "the critic's slope |grad D(x_hat)|" 1 \
  "lambda = 10 (default)=wgan_gp_mnist" "--lambda-gp 0=wgan_gp_mnist_no_gp"
total=$(( $(find "$DEST" -maxdepth 1 \( -name '*.png' -o -name '*.gif' \) -printf '%s + ') 0 ))  # bytes
[ "$total" -le $((8 * 1024 * 1024)) ] ||
  echo "$ME: the pictures in $DEST take $((total / 1024)) KB, over the 8 MB the project allows"
[ ${#failed[@]} -eq 0 ] || { echo "$ME: failed: ${failed[*]}"; exit 1; }
exit 0
}
