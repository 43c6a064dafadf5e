#!/usr/bin/env bash
# Summarization studies that each need a recipe-length training, run side by
# side on one CUDA GPU (the lent device machine; CI never runs this):
#   - the recipe's settings one change at a time, each trained for the number
#     of steps the 60-minute CPU recipe makes (5,400), to choose the settings
#     worth a 60-minute CPU run;
#   - BPE against a word vocabulary, the same recipe with each (issue 4);
#   - self-critical RL from the 60-minute CPU checkpoint, a few settings;
#   - the en-fr translation recipes (issue 8) at the step count a 60-minute
#     one-thread CPU run makes (ENFR_STEPS), one setting changed at a time;
#     these are compared by the valid loss and ROUGE-L in their metrics.jsonl.
# Every run is then scored on the test split with the recipe's decoding.
#
#   OUT=/tmp/studies bash benchmarks/text_gpu_studies.sh
#   (needs runs/text/transformer-debian/best, the RL runs' starting point,
#   and nltk, which validation's stemmed ROUGE uses: on a bare GPU machine
#   with no network, `python3 -m pip install --no-deps nltk-*.whl` first)
#
# STEPS, RL_STEPS, CAP_MIN (a safety time budget per training), DEVICE and
# EVAL_LIMIT (score only the first N test pairs) shorten it for a smoke test;
# EXTRA adds --set options to every training (e.g. a small data.train).
set -u
OUT=${OUT:-runs/gpu-studies-out}
STEPS=${STEPS:-5400}
RL_STEPS=${RL_STEPS:-400}
CAP_MIN=${CAP_MIN:-6.5}
DEVICE=${DEVICE:-cuda}
EVAL_LIMIT=${EVAL_LIMIT:-0}
START=${START:-runs/text/transformer-debian/best}
RUNS=runs/gpu-studies
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
TRIPTYCH="python3 -m triptych"
LOG=$OUT/log.txt
say() { echo "$(date +%T) $*" | tee -a "$LOG"; }

train() {  # NAME CONFIG [--set ...]
  local name=$1 cfg=$2; shift 2
  $TRIPTYCH text train "configs/text/$cfg.yaml" --out "$RUNS/$name" --device "$DEVICE" \
    --set train.max_minutes="$CAP_MIN" --set train.threads=2 "$@" ${EXTRA:-} --json \
    > "$RUNS/$name.train.json" 2> "$RUNS/$name.train.err"
  say "trained $name rc=$?"
}

score() {  # NAME CHECKPOINT
  local limit=(); [ "$EVAL_LIMIT" != 0 ] && limit=(--limit "$EVAL_LIMIT")
  $TRIPTYCH text eval --checkpoint "$2" --data data/debian-descriptions/test.jsonl.gz \
    --beam 4 --length-penalty 1.2 --device "$DEVICE" "${limit[@]}" \
    --output "$RUNS/$1.pred.txt" --json > "$RUNS/$1.eval.json" 2> "$RUNS/$1.eval.err"
  say "scored $1 rc=$?"
}

say "start on $DEVICE: $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no cuda")')"
# Which studies to run; SCORED are also scored on the test split (the others
# are compared by their validation ROUGE-L, logged in metrics.jsonl).
STUDIES=${STUDIES:-recipe word source96 dropout0 lr2e-3 rl-lr3e-5 rl-gamma0.99 rl-lr3e-5-gamma0.99}
SCORED=${SCORED:-$STUDIES}
recipe=(--set train.max_steps="$STEPS")
enfr=(--set train.max_steps="${ENFR_STEPS:-1500}" --set train.eval_every=500)
drop0=(--set model.dropout=0.0)
rl=(--set init_from="$START" --set train.max_steps="$RL_STEPS")
for study in $STUDIES; do
  case $study in
    recipe)   train recipe transformer-debian "${recipe[@]}" & ;;
    word)     train word transformer-debian "${recipe[@]}" --set tokenizer.kind=word & ;;
    source96) train source96 transformer-debian --set train.max_steps=$((STEPS * 115 / 100)) --set data.max_source_len=96 & ;;
    dropout0) train dropout0 transformer-debian "${recipe[@]}" --set model.dropout=0.0 & ;;
    lr2e-3)   train lr2e-3 transformer-debian "${recipe[@]}" --set train.lr=0.002 & ;;
    rl-lr3e-5) train rl-lr3e-5 transformer-debian-rl "${rl[@]}" --set train.lr=0.00003 & ;;
    rl-gamma0.99) train rl-gamma0.99 transformer-debian-rl "${rl[@]}" --set rl.gamma=0.99 & ;;
    rl-lr3e-5-gamma0.99) train rl-lr3e-5-gamma0.99 transformer-debian-rl "${rl[@]}" --set train.lr=0.00003 --set rl.gamma=0.99 & ;;
    enfr)     train enfr transformer-en-fr "${enfr[@]}" & ;;
    enfr-lr2e-3) train enfr-lr2e-3 transformer-en-fr "${enfr[@]}" --set train.lr=0.002 & ;;
    enfr-lr2e-3-drop0) train enfr-lr2e-3-drop0 transformer-en-fr "${enfr[@]}" --set train.lr=0.002 "${drop0[@]}" & ;;
    rnn-enfr) train rnn-enfr rnn-bahdanau-en-fr "${enfr[@]}" & ;;
    rnn-enfr-lr2e-3) train rnn-enfr-lr2e-3 rnn-bahdanau-en-fr "${enfr[@]}" --set train.lr=0.002 & ;;
    rnn-enfr-lr2e-3-drop0) train rnn-enfr-lr2e-3-drop0 rnn-bahdanau-en-fr "${enfr[@]}" --set train.lr=0.002 "${drop0[@]}" & ;;
    *) say "unknown study $study"; exit 2 ;;
  esac
done
wait

score start "$START" &
for run in $SCORED; do
  [ -d "$RUNS/$run/best" ] && score "$run" "$RUNS/$run/best" &
done
wait

tar czf "$OUT/studies.tar.gz" "$RUNS"/*.json "$RUNS"/*.err "$RUNS"/*.pred.txt \
  "$RUNS"/*/metrics.jsonl "$RUNS"/*/config.yaml "$RUNS"/word/tokenizer.json 2>/dev/null
say "done"
