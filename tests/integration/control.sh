#!/usr/bin/env bash
# The control plane on running jobs (tests/control/pipe.yaml, ~5 s each):
#  - `eddy shell ADDR -c actors --json` lists every actor of the plan with every field;
#  - `kill` of a map task and of a sink task: `info` shows the restart and the reason,
#    `log` the failure and the restart, and the job still writes exactly the expected rows;
#  - more kills than the restart intensity escalate: the job fails, naming the intensity;
#    a kill of a source (a critical task) fails the job at once;
#  - `curl /metrics` passes `promtool check metrics`;
#  - 1,000 random frames, oversized frames and wrong secrets (tests/tools/ctl_hostile)
#    while the job runs: it keeps running, its output stays exact, rejects are counted;
#  - `cancel` stops the job cleanly; secret-file and address rules refuse to start.
# Needs jq, curl and promtool (Debian: jq curl prometheus).
set -u
eddy=$1; src=$2; build=$3; work=$build/control
hostile=$build/tests/ctl_hostile
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
for tool in jq curl promtool; do
  command -v $tool > /dev/null || fail "$tool is not installed (Debian: jq curl prometheus)"
done
job=$src/tests/control/pipe.yaml
printf 'correct-horse-battery\n' > "$work/secret"; chmod 600 "$work/secret"

# expected rows of pipe.yaml: ids 1..20000 whose id*7919%1000 >= 100
awk 'BEGIN { print "id,amount,twice";
  for (i = 1; i <= 20000; i++) { a = (i * 7919) % 1000; if (a >= 100) print i "," a "," 2 * a } }' \
  > "$work/pipe.expected.csv"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null; done; }
trap cleanup EXIT

# start NAME [ARGS...]: starts the job in the background; sets $pid and $addr (the
# control address it printed, as a client dials it).
start() {
  local name=$1; shift
  "$eddy" run "$job" --set "sinks.out.path=$work/$name" "$@" \
    > "$work/$name.stdout" 2> "$work/$name.stderr" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 200); do
    addr=$(sed -n 's/^eddy run: control at \([^ ]*\) .*/\1/p' "$work/$name.stderr")
    [ -n "$addr" ] && break
    kill -0 $pid 2> /dev/null || { cat "$work/$name.stderr"; fail "$name: eddy run exited early"; }
    sleep 0.05
  done
  [ -n "$addr" ] || fail "$name: no control address printed"
  addr=${addr/0.0.0.0/127.0.0.1}
}

# sh ARGS...: eddy shell on $addr with the secret; prints its output.
shl() { "$eddy" shell "$addr" --secret-file "$work/secret" "$@"; }

# wait_exit NAME: waits for the job and sets $rc.
wait_exit() { rc=0; wait "$pid" || rc=$?; }

# until_true SECONDS CMD...: polls CMD every 50 ms.
until_true() {
  local t=$1; shift
  for _ in $(seq $((t * 20))); do "$@" && return 0; sleep 0.05; done
  return 1
}

# ---- A: listing, kills that restart, metrics, hostile frames; output exact ----
start a --control tcp://0.0.0.0:0 --secret-file "$work/secret" --metrics 127.0.0.1:0
shl -c "actors" --json > "$work/actors.json" || fail "shell -c actors --json exited $?"
want_paths="pipe pipe/big[0] pipe/big[1] pipe/gen[0] pipe/out[0] pipe/out[1] pipe/shaped[0] pipe/shaped[1]"
got_paths=$(jq -r '.[].path' "$work/actors.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
[ "$got_paths" = "$want_paths" ] || fail "actors: got '$got_paths', want '$want_paths'"
fields='["path","type","op","status","mailbox_len","mailbox_cap","records_in","records_out","in_per_s","out_per_s","busy_pct","restarts","last_error","last_error_ms"]'
missing=$(jq -r --argjson f "$fields" '.[] | . as $a | $f[] as $k | select($a | has($k) | not) | "\($a.path):\($k)"' "$work/actors.json") ||
  fail "actors: cannot check the fields"
[ -z "$missing" ] || fail "actors: fields missing: $missing"
bad=$(jq -r '.[] | select((.status | IN("new","running","parked","restarting","stopped") | not)
  or (.mailbox_cap | type) != "number" or .mailbox_cap < 1 or (.busy_pct | type) != "number")
  | .path' "$work/actors.json")
[ -z "$bad" ] || fail "actors: bad status/mailbox/busy values for: $bad"
[ "$(jq -r '.[] | select(.path == "pipe/shaped[0]") | .op' "$work/actors.json")" = map ] ||
  fail "actors: pipe/shaped[0] is not shown as a map"
echo "ok: shell -c actors --json lists all 8 actors of the plan with all 14 fields"

shl -c "tree" --json > "$work/tree.json" || fail "tree"
[ "$(jq -r '.[] | select(.path == "pipe") | "\(.strategy) \(.intensity) \(.period_ms)"' "$work/tree.json")" = "one_for_one 3 60000" ] ||
  fail "tree: the job supervisor's strategy/intensity: $(cat "$work/tree.json")"
[ "$(jq -r '.[] | select(.path == "pipe/gen[0]") | .restart' "$work/tree.json")" = critical ] ||
  fail "tree: a source should be a critical child"
[ "$(jq -r '.[] | select(.path == "pipe/shaped[1]") | "\(.restart) \(.depth)"' "$work/tree.json")" = "transient 1" ] ||
  fail "tree: a map task should be a transient child at depth 1"
echo "ok: tree shows one_for_one, intensity 3 in 60 s; sources critical, maps transient"

shl -c "kill pipe/shaped[1] injected by control.sh" --json > "$work/kill.json" ||
  fail "kill exited $?"
restarted() { [ "$(shl -c "info pipe/shaped[1]" --json | jq -r .restarts)" = 1 ]; }
until_true 10 restarted || fail "info: pipe/shaped[1] did not show 1 restart"
shl -c "info pipe/shaped[1]" --json > "$work/info.json"
jq -e '.last_error | contains("injected by control.sh")' "$work/info.json" > /dev/null ||
  fail "info: last_error is '$(jq -r .last_error "$work/info.json")'"
jq -e '(.last_error_ms | type) == "number" and .parent == "pipe" and .op == "map"
  and (.state_bytes | type) == "number" and has("watermark") and (.children | length) == 0' \
  "$work/info.json" > /dev/null || fail "info: fields: $(cat "$work/info.json")"
shl -c "log 100" --json > "$work/log.json"
jq -e '[.[] | select(.path == "pipe/shaped[1]" and .what == "failed" and (.detail | contains("injected by control.sh")))] | length == 1' \
  "$work/log.json" > /dev/null || fail "log: no failure of pipe/shaped[1]: $(cat "$work/log.json")"
jq -e '[.[] | select(.what == "restarted" and (.path == "pipe/shaped[1]" or (.detail | contains("pipe/shaped[1]"))))] | length >= 1' \
  "$work/log.json" > /dev/null || fail "log: no restart of pipe/shaped[1]: $(cat "$work/log.json")"
echo "ok: kill of a map task: info shows restarts 1 and the reason; log shows failed + restarted"

shl -c "kill pipe/out[0] sink killed" > /dev/null || fail "kill of a sink"
sink_restarted() { [ "$(shl -c "info pipe/out[0]" --json | jq -r .restarts)" = 1 ]; }
until_true 10 sink_restarted || fail "info: pipe/out[0] did not show 1 restart"
echo "ok: kill of a file sink task: restarted"

metrics=$(sed -n 's/^eddy run: metrics at \(.*\)$/\1/p' "$work/a.stderr")
curl -sf "$metrics" > "$work/metrics.txt" || fail "curl $metrics"
promtool check metrics < "$work/metrics.txt" > "$work/promtool.txt" 2>&1 ||
  { cat "$work/promtool.txt"; fail "promtool check metrics"; }
for m in 'eddy_actor_records_in_total{actor="pipe/shaped[1]",op="map"}' \
         'eddy_actor_restarts_total{actor="pipe/shaped[1]",op="map"} 1' \
         'eddy_actor_mailbox_length{' 'eddy_actor_busy_seconds_total{' \
         'eddy_job_records_in_per_second{job="pipe"}' 'eddy_job_watermark_seconds{job="pipe"}' \
         'eddy_control_rejected_total{reason="unauthorized"}'; do
  grep -qF "$m" "$work/metrics.txt" || fail "metrics: no $m"
done
echo "ok: /metrics ($(grep -vc '^#' "$work/metrics.txt") samples) passes promtool check metrics"

port=${addr##*:}
"$hostile" "$addr" "$(head -1 "$work/secret")" 127.0.0.1 "$port" > "$work/hostile.txt" 2>&1 ||
  { cat "$work/hostile.txt"; fail "hostile frames"; }
sed 's/^/  /' "$work/hostile.txt"
kill -0 $pid 2> /dev/null || fail "eddy run died under hostile frames"
shl -c "stats" --json > "$work/stats.json" || fail "stats after the hostile frames"
jq -e '.control.rejected >= 1060 and .control.rejected_by.oversized == 10' "$work/stats.json" \
  > /dev/null || fail "stats: rejects not counted: $(jq -c .control "$work/stats.json")"
jq -e '.jobs[0].name == "pipe" and (.jobs[0].backpressured | type) == "array"
  and has("jobs") and (.jobs[0] | has("watermark_lag_ms") and has("in_per_s"))' \
  "$work/stats.json" > /dev/null || fail "stats: fields: $(cat "$work/stats.json")"
shl -c "jobs" --json | jq -e '.[0].name == "pipe" and .[0].status == "running" and .[0].uptime_ms > 0' \
  > /dev/null || fail "jobs: not running"
echo "ok: the process survived the hostile frames; stats counts the rejects"

wait_exit
[ $rc -eq 0 ] || { cat "$work/a.stderr"; fail "job a exited $rc"; }
same_rows "$work/pipe.expected.csv" "$work/a" || fail "job a: output after the kills"
echo "ok: after 2 kills and the hostile frames the job finished with exactly the expected $(($(wc -l < "$work/pipe.expected.csv") - 1)) rows"

# ---- B: more kills than the intensity escalate ----
start b --control "ipc://$work/b.sock" --set supervision.intensity=1
for k in 1 2; do
  shl -c "kill pipe/big[0] kill number $k" > /dev/null || fail "b: kill $k"
  [ $k = 2 ] && break
  big_restarted() { [ "$(shl -c "info pipe/big[0]" --json | jq -r .restarts)" = 1 ]; }
  until_true 10 big_restarted || fail "b: no restart after kill 1"
done
wait_exit
[ $rc -eq 1 ] || fail "b: a kill beyond the intensity should fail the job (exit $rc)"
grep -q "reached max restart intensity (1 in 60000 ms); last failure: pipe/big\[0\]: killed: kill number 2" "$work/b.stderr" ||
  { cat "$work/b.stderr"; fail "b: the failure does not name the intensity"; }
echo "ok: a second kill with intensity 1 escalates: the job fails naming the intensity"

# ---- C: a source is critical ----
start c --control "ipc://$work/c.sock"
shl -c "kill pipe/shaped[0] recovered first" > /dev/null || fail "c: kill of a map"
map_restarted() { [ "$(shl -c "info pipe/shaped[0]" --json | jq -r .restarts)" = 1 ]; }
until_true 10 map_restarted || fail "c: the map did not restart"
shl -c "kill pipe/gen[0] source down" > /dev/null || fail "c: kill"
wait_exit
[ $rc -eq 1 ] || fail "c: killing a source should fail the job (exit $rc)"
grep -q "pipe/gen\[0\] failed and cannot be restarted (critical" "$work/c.stderr" ||
  { cat "$work/c.stderr"; fail "c: message"; }
grep -qx "eddy run: job pipe failed: killed: source down" "$work/c.stderr" ||
  { cat "$work/c.stderr"; fail "c: the headline must name the fatal failure, not the recovered one"; }
echo "ok: a kill of a source (critical: its position would be lost) fails the job at once"

# ---- D: cancel ----
start d --set "control.address=ipc://$work/d.sock"  # the job file's control: section
shl -c "cancel nosuch" > /dev/null 2>&1 && fail "d: cancel of an unknown job succeeded"
shl -c "cancel pipe" > /dev/null || fail "d: cancel"
wait_exit
[ $rc -eq 0 ] || fail "d: a cancelled job should exit 0 (exit $rc)"
grep -q "job pipe stopped" "$work/d.stderr" || { cat "$work/d.stderr"; fail "d: not stopped"; }
cat "$work"/d/part-* | tail -n +2 | grep -v '^id,' | LC_ALL=C sort > "$work/d.rows"
tail -n +2 "$work/pipe.expected.csv" | LC_ALL=C sort > "$work/all.rows"
n=$(wc -l < "$work/d.rows")
[ "$(LC_ALL=C comm -23 "$work/d.rows" "$work/all.rows" | wc -l)" = 0 ] && [ "$n" -lt 18000 ] ||
  fail "d: a cancelled job wrote rows that are not expected, or all of them ($n)"
echo "ok: cancel stops the job, exit 0, $n rows written, each an expected one"

# ---- E: refusals ----
chmod 644 "$work/secret"
rc=0; "$eddy" run "$job" --control "ipc://$work/e.sock" --secret-file "$work/secret" 2> "$work/e.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "mode 0644 lets others read it; it must be 0600" "$work/e.stderr" ||
  { cat "$work/e.stderr"; fail "a 0644 secret file must be refused (exit $rc)"; }
chmod 600 "$work/secret"
rc=0; "$eddy" run "$job" --control tcp://0.0.0.0:0 2> "$work/e2.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "is not loopback-only: it needs a shared secret" "$work/e2.stderr" ||
  { cat "$work/e2.stderr"; fail "a non-loopback address without a secret must be refused (exit $rc)"; }
rc=0; "$eddy" run "$job" --control "bogus://x" 2> "$work/e3.stderr" || rc=$?
[ $rc -eq 2 ] || { cat "$work/e3.stderr"; fail "a bad control address must be refused (exit $rc)"; }
rc=0; "$eddy" run "$job" --metrics "nocolon" 2> "$work/e4.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "expected HOST:PORT" "$work/e4.stderr" ||
  { cat "$work/e4.stderr"; fail "a bad metrics address must be refused (exit $rc)"; }
echo "ok: a 0644 secret file, a public address without a secret, bad addresses: refused, exit 2"
echo "PASS: control plane"
