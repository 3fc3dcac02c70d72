#!/usr/bin/env bash
# Checkpoints (tests/checkpoint/keyed.yaml: datagen p2 -> map p2 -> keyed window p2 ->
# file sink, a checkpoint every 50 ms):
#  - exactly_once: every completed checkpoint is a consistent cut: what the window tasks
#    had received at their barrier equals what the map tasks had sent at theirs, and what
#    the maps had received equals what the sources had produced; the output is unchanged;
#    only the newest `retain` checkpoints are kept, each with its manifest and one
#    snapshot file per task;
#  - at_least_once: checkpoints complete, output unchanged, the window tasks' counts are
#    at least the maps' (records after a barrier may be in);
#  - an incomplete checkpoint of an earlier run is deleted at start; ids go on after the
#    newest complete one;
#  - the shell's `checkpoints` lists them and `checkpoint` triggers one now.
# Needs jq.
set -u
eddy=$1; src=$2; build=$3; work=$build/checkpoints${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
command -v jq > /dev/null || fail "jq is not installed (Debian: jq)"
job=$src/tests/checkpoint/keyed.yaml

# expected counts per key of ids 1..40000: k = id % 10, n, sum of ids
awk 'BEGIN { for (i = 1; i <= 40000; i++) { n[i % 10]++; s[i % 10] += i }
  for (k = 0; k < 10; k++) print k "," n[k] "," s[k] }' | LC_ALL=C sort > "$work/expected"

# check_output NAME: the rows (k, n, ids; the window's times are processing time) are the
# expected ones.
check_output() {
  cat "$work/$1"/part-* | grep -v '^window_start' | cut -d, -f3- | LC_ALL=C sort > "$work/$1.rows"
  cmp -s "$work/expected" "$work/$1.rows" ||
    { diff "$work/expected" "$work/$1.rows" | head; fail "$1: output differs"; }
}

# sum FILE OPERATOR FIELD: the sum of FIELD over the tasks of OPERATOR in a manifest.
sum() { jq --arg op "keyed/$2[" "[.tasks[] | select(.path | startswith(\$op)) | .$3] | add" "$1"; }

# ---- exactly_once: every checkpoint kept (retain 1000) and checked ----
run_job once "$job" --control none --set "sinks.out.path=$work/once" --set "checkpoint.dir=$work/ck" \
  --set checkpoint.retain=1000
check_output once
dirs=$(cd "$work/ck" && ls -d chk-* | sort -t- -k2 -n)
[ "$(echo "$dirs" | wc -l)" -ge 5 ] || fail "too few checkpoints to check: $(echo $dirs)"
for d in $dirs; do
  m=$work/ck/$d/MANIFEST
  [ -f "$m" ] || fail "$d has no MANIFEST"
  jq -e '.mode == "exactly_once" and (.tasks | length) == 8' "$m" > /dev/null ||
    fail "$d: manifest: $(cat "$m")"
  for f in $(jq -r '.tasks[].file' "$m"); do
    [ -s "$work/ck/$d/$f" ] || fail "$d: no snapshot file $f"
  done
  src_out=$(sum "$m" gen records_out); map_in=$(sum "$m" tagged records_in)
  map_out=$(sum "$m" tagged records_out); win_in=$(sum "$m" counts records_in)
  [ "$src_out" = "$map_in" ] && [ "$map_out" = "$win_in" ] ||
    fail "$d is not a consistent cut: sources sent $src_out, maps got $map_in; maps sent $map_out, windows got $win_in"
  [ "$win_in" -gt 0 ] || fail "$d: nothing had reached the windows"
done
echo "ok: exactly_once: all $(echo "$dirs" | wc -l) checkpoints are consistent cuts (window records in = map records out at the barrier); output exact"

# ---- at_least_once; retain 3; an earlier run's checkpoints ----
mkdir -p "$work/ck2/chk-999" "$work/ck2/chk-5"
echo '{"checkpoint": 5}' > "$work/ck2/chk-5/MANIFEST"   # a complete one of an earlier run
run_job least "$job" --control none --set "sinks.out.path=$work/least" \
  --set "checkpoint.dir=$work/ck2" --set checkpoint.mode=at_least_once
check_output least
[ ! -e "$work/ck2/chk-999" ] || fail "an incomplete checkpoint of an earlier run was not deleted"
# retain 3: three complete checkpoints; any other directory is kept only for the files
# a kept one's deltas read (SHARED, named in a kept manifest's needs)
dirs=$(cd "$work/ck2" && ls -d chk-*/MANIFEST | cut -d/ -f1 | sort -t- -k2 -n)
[ "$(echo "$dirs" | wc -l)" -eq 3 ] || fail "retain 3: kept $(echo $dirs)"
needs=$(cat "$work"/ck2/chk-*/MANIFEST | jq -r '.needs[]' | sort -u)
for d in $(cd "$work/ck2" && ls -d chk-*); do
  [ -f "$work/ck2/$d/MANIFEST" ] && continue
  [ -f "$work/ck2/$d/SHARED" ] && echo "$needs" | grep -qx "${d#chk-}" ||
    fail "retain 3: $d kept, neither complete nor needed (kept: $(echo $dirs); needs: $(echo $needs))"
done
[ "$(echo "$dirs" | head -1 | cut -d- -f2)" -gt 6 ] || fail "ids do not go on after 5: $(echo $dirs)"
n=0
for m in "$work"/ck2/chk-*/MANIFEST; do
  jq -e '.mode == "at_least_once"' "$m" > /dev/null || fail "at_least_once: $(cat "$m")"
  [ "$(sum "$m" counts records_in)" -ge "$(sum "$m" tagged records_out)" ] ||
    fail "at_least_once: windows got fewer records than the maps sent: $m"
  n=$((n + 1))
done
[ $n -ge 1 ] || fail "at_least_once: no checkpoint completed"
echo "ok: at_least_once: output exact; retain 3 kept $(echo $dirs); an incomplete checkpoint of an earlier run deleted, ids went on after it"

# ---- the shell: checkpoints, checkpoint ----
"$eddy" run "$job" --control "ipc://$work/c.sock" --set "sinks.out.path=$work/shell" \
  --set "checkpoint.dir=$work/ck3" --set checkpoint.interval=1h \
  --set sources.gen.rows_per_second=5000 > "$work/shell.stdout" 2> "$work/shell.stderr" &
pid=$!
trap 'kill -9 $pid 2> /dev/null' EXIT
up() { "$eddy" shell "ipc://$work/c.sock" -c jobs > /dev/null 2>&1; }
for _ in $(seq 100); do up && break; sleep 0.05; done
# The control socket is up before the job's actors are: until the coordinator runs,
# 'checkpoint' says it is not running (exit 1), so it is retried.
trigger() { "$eddy" shell "ipc://$work/c.sock" -c checkpoint > "$work/trigger.out" 2>&1; }
ok=0
for _ in $(seq 100); do trigger && { ok=1; break; }; sleep 0.05; done
[ $ok = 1 ] || fail "checkpoint: $(cat "$work/trigger.out")"
done_one() {
  "$eddy" shell "ipc://$work/c.sock" -c checkpoints --json > "$work/list.json" &&
    jq -e '[.[] | select(.status == "completed")] | length >= 1' "$work/list.json" > /dev/null
}
for _ in $(seq 100); do done_one && break; sleep 0.05; done
done_one || fail "checkpoint from the shell did not complete: $(cat "$work/list.json")"
jq -e '.[0] | has("id") and has("duration_ms") and has("bytes") and has("alignment_ms") and .tasks == 8 and .acks == 8' \
  "$work/list.json" > /dev/null || fail "checkpoints: fields: $(cat "$work/list.json")"
# info shows a task's alignment: the checkpoint it aligns (none between checkpoints: the
# interval is 1h) and the elements it holds back for it
"$eddy" shell "ipc://$work/c.sock" -c "info keyed/counts[0]" --json > "$work/info.json" ||
  fail "info keyed/counts[0]"
jq -e '.aligning == null and .held == 0' "$work/info.json" > /dev/null ||
  fail "info: aligning/held: $(cat "$work/info.json")"
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$work/shell.stderr"; fail "the job exited $rc"; }
check_output shell
[ "$(ls -d "$work"/ck3/chk-*/MANIFEST | wc -l)" -ge 1 ] || fail "no manifest from the shell's checkpoint"
echo "ok: the shell's 'checkpoint' triggers one (interval 1h) and 'checkpoints' lists it"
# ---- max_alignment: a task whose alignment holds more declines the checkpoint ----
# tests/checkpoint/skew.yaml: two sources flood a union; barriers reach it at different
# moments, so it holds records while it aligns; with max_alignment 1B it declines: the
# coordinator aborts that checkpoint naming the task (a line on stderr), the held records go
# on and the output stays exact. Expected: ids 1..10,000,000 twice, counted per id % 10.
awk 'BEGIN { N = 10000000; for (k = 0; k < 10; k++) { f = k ? k : 10; n = int((N - f) / 10) + 1
  printf "%d,%d,%.0f\n", k, 2 * n, 2 * (n * f + 10 * n * (n - 1) / 2) } }' | LC_ALL=C sort > "$work/skew.expected"
run_job skew "$src/tests/checkpoint/skew.yaml" --control none --set "sinks.out.path=$work/skew" \
  --set "checkpoint.dir=$work/ck4" --set checkpoint.max_alignment=1B
grep -qE "^eddy run: job skew: checkpoint [0-9]+ aborted: skew/both\[0\] declined it: its alignment held [0-9]+ bytes of records, over checkpoint.max_alignment \(1 bytes\)$" \
  "$work/skew.stderr" || { cat "$work/skew.stderr"; fail "skew: no checkpoint declined by max_alignment"; }
cat "$work/skew"/part-* | grep -v '^window_start' | cut -d, -f3- | LC_ALL=C sort > "$work/skew.rows"
cmp -s "$work/skew.expected" "$work/skew.rows" ||
  { diff "$work/skew.expected" "$work/skew.rows" | head; fail "skew: output differs"; }
declines=$(grep -c "declined it" "$work/skew.stderr")
echo "ok: max_alignment 1B: the union declined $declines checkpoints (aborted, each on stderr naming it), the output is exact"

echo "PASS: checkpoints"
