#!/usr/bin/env bash
# Kiln's end-to-end demo (make demo): start the dev stack in the background,
# run the churn pipeline twice (first deployment, then a canary rollout under
# live traffic), inject drift into the served traffic, and watch the monitor
# start a retrain. `scripts/demo.sh stop` (make stop) stops the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-bin/kiln}
export KILN_HOME=${KILN_HOME:-.kiln}
PIDFILE=$KILN_HOME/dev.pid
LOG=$KILN_HOME/dev.log
SERVER=http://127.0.0.1:8080
UI=http://127.0.0.1:8233
REPORTS=http://127.0.0.1:8234

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

stop() {
  if running; then
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 50); do running || break; sleep 0.2; done
    if running; then
      echo "The dev stack did not stop within 10 s; killing it."
      kill -9 "$(cat "$PIDFILE")" 2>/dev/null || true
    fi
    echo "Stopped the Kiln dev stack."
  else
    echo "No Kiln dev stack is running."
  fi
  rm -f "$PIDFILE"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if running; then
  step "Using the Kiln dev stack already running (pid $(cat "$PIDFILE"))"
else
  step "Starting the Kiln dev stack (log: $LOG)"
  mkdir -p "$KILN_HOME"
  # The content-addressed trainer tag make images built (see the Makefile).
  [ -f build/trainer-image ] && export KILN_TRAINER_IMAGE="$(cat build/trainer-image)"
  nohup "$KILN" dev >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for i in $(seq 120); do
    if grep -q "Press Ctrl-C" "$LOG" 2>/dev/null; then break; fi
    if ! running; then echo "kiln dev exited:"; cat "$LOG"; exit 1; fi
    sleep 0.5
  done
  grep -q "Press Ctrl-C" "$LOG" || { echo "kiln dev did not start in 60s:"; cat "$LOG"; exit 1; }
  sed -n '1,6p' "$LOG"
fi

# Demo runs use a short monitor cooldown, so that a demo repeated soon after
# another still shows its retrain.
PARAMS=(-p cooldown=1m)

# Live traffic from the start: on a repeated demo, run 1 is a canary too.
"$KILN" replay churn data/churn.csv --server "$SERVER" --rate 200 --duration 10m -q 2>/dev/null &
REPLAY=$!
trap 'kill $REPLAY 2>/dev/null || true' EXIT

step "Run 1: train, evaluate, register, batch-score and deploy churn"
"$KILN" run pipelines/churn.yaml --wait "${PARAMS[@]}"

step "Run 2: a new version rolls out as a canary (10% → 50% → 100%) under live traffic"
RUN2=demo-$(date +%Y%m%d-%H%M%S)
"$KILN" run pipelines/churn.yaml --wait "${PARAMS[@]}" -p seed=7 -p l2=0.01 --run-id "$RUN2"
kill $REPLAY 2>/dev/null || true
wait $REPLAY 2>/dev/null || true

step "Drift: serve shifted traffic; the monitor compares it with the training profile"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$KILN" replay churn data/churn-drifted.csv --server "$SERVER" --rate 200 --duration 10m -q &
REPLAY=$!
retrain=""
for i in $(seq 120); do
  retrain=$("$KILN" runs list --pipeline churn --trigger drift --since "$since" --json | grep -o '"workflow_id": "[^"]*"' | head -1 | cut -d'"' -f4 || true)
  [ -n "$retrain" ] && break
  sleep 1
done
if [ -z "$retrain" ]; then echo "The monitor did not start a retrain within 2 minutes."; exit 1; fi
echo "The monitor saw drift and started $retrain; following it:"
for i in $(seq 240); do
  status=$("$KILN" runs list --pipeline churn --trigger drift --since "$since" --json | grep -A3 "\"workflow_id\": \"$retrain\"" | grep -o '"status": "[a-z]*"' | cut -d'"' -f4 || true)
  [ -n "$status" ] && [ "$status" != running ] && break
  sleep 1
done
kill $REPLAY 2>/dev/null || true
"$KILN" runs show "$retrain"

step "Nightly reports: a Temporal Schedule over daily partitions, the last 3 days backfilled"
# A week of daily event partitions whose drift grows day by day.
"$KILN" demo-data --days 7 --end "$(TZ=Europe/Paris date +%Y-%m-%d)" --partitions data/events --drift 1 --rows 3000 --timezone Europe/Paris >/dev/null
if "$KILN" schedules describe nightly-churn-report >/dev/null 2>&1; then
  "$KILN" schedules update nightly-churn-report pipelines/nightly_churn_report.yaml
else
  "$KILN" schedules create pipelines/nightly_churn_report.yaml
fi
"$KILN" schedules backfill nightly-churn-report --last 3 --reprocess all --wait
"$KILN" reports list --pipeline nightly-churn-report
latest=$("$KILN" reports list --pipeline nightly-churn-report --json | grep -o '"run_key": "[^"]*"' | tail -1 | cut -d'"' -f4)
[ -n "$latest" ] && "$KILN" reports show nightly-churn-report "$latest" | sed -n '1,12p'

step "Summary"
"$KILN" models show churn
scored=$("$KILN" runs show "pipeline/churn/$RUN2" | sed -n 's/^Scored *//p' | head -1)
cat <<MSG

  Temporal web UI   $UI  (every run, step and heartbeat)
  In production     $("$KILN" models show churn@production | sed -n 's/^Model *//p')
  Scored output     ${scored:-see kiln runs show pipeline/churn/$RUN2}
  Model server      $SERVER/v1/models/churn:predict
  Nightly reports   $REPORTS/reports  (schedule nightly-churn-report: kiln schedules describe nightly-churn-report)

The dev stack keeps running so you can explore; stop it with: make stop
MSG
