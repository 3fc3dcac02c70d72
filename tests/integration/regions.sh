#!/usr/bin/env bash
# Failover regions (tests/checkpoint/regions.yaml: pipeline a, one region of 8 tasks joined
# by a keyed exchange; pipeline b, forward exchanges only, two regions of 3 tasks):
#  - `kill` of regions/doubled[0] from the shell while the job runs: exactly the 3 tasks of
#    its region restart (their `restarts` counters are 1), the 11 others never do (0); the
#    region is restored from the latest checkpoint; both outputs are exact;
#  - 8 injected failures (2 seeds): each restart names the failed task's region and its
#    size (8 tasks for a, 3 for b); both outputs are exact; no whole-job restart.
# Needs jq.
set -u
eddy=$1; src=$2; build=$3; work=$build/regions${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
command -v jq > /dev/null || fail "jq is not installed (Debian: jq)"
job=$src/tests/checkpoint/regions.yaml
printf 'regions-secret-42\n' > "$work/secret"; chmod 600 "$work/secret"

# expected: a, counts per key (id % 10) of ids 1..40000; b, id and 2 * id for 1..40000
awk 'BEGIN { for (i = 1; i <= 40000; i++) { n[i % 10]++; s[i % 10] += i }
  for (k = 0; k < 10; k++) print k "," n[k] "," s[k] }' | LC_ALL=C sort > "$work/expected-a"
awk 'BEGIN { for (i = 1; i <= 40000; i++) print i "," 2 * i }' | LC_ALL=C sort > "$work/expected-b"

# check_outputs NAME: both pipelines' committed rows are the expected ones.
check_outputs() {
  cat "$work/$1-a"/part-* | grep -v '^window_start' | cut -d, -f3- | LC_ALL=C sort > "$work/$1.a"
  cmp -s "$work/expected-a" "$work/$1.a" ||
    { diff "$work/expected-a" "$work/$1.a" | head; fail "$1: pipeline a's output differs"; }
  for f in "$work/$1-b"/part-*; do tail -n +2 "$f"; done | LC_ALL=C sort > "$work/$1.b"
  cmp -s "$work/expected-b" "$work/$1.b" ||
    { diff "$work/expected-b" "$work/$1.b" | head; fail "$1: pipeline b's output differs ($(wc -l < "$work/$1.b") rows)"; }
}
outs() { echo --set "sinks.out_a.path=$work/$1-a" --set "sinks.out_b.path=$work/$1-b" \
  --set "checkpoint.dir=$work/$1-ck"; }

# ---- a kill from the shell restarts exactly the failed task's region ----
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2> /dev/null' EXIT
"$eddy" run "$job" $(outs kill) --control tcp://127.0.0.1:0 --secret-file "$work/secret" \
  > "$work/kill.stdout" 2> "$work/kill.stderr" &
pid=$!
addr=
for _ in $(seq 200); do
  addr=$(sed -n 's/^eddy run: control at \([^ ]*\) .*/\1/p' "$work/kill.stderr")
  [ -n "$addr" ] && break; sleep 0.05
done
[ -n "$addr" ] || { cat "$work/kill.stderr"; fail "no control address printed"; }
shl() { "$eddy" shell "$addr" --secret-file "$work/secret" "$@"; }
# wait until doubled[0] has taken some records and a checkpoint completed
for _ in $(seq 200); do
  got=$(shl -c actors --json 2> /dev/null | jq '[.[] | select(.path == "regions/doubled[0]") | .records_in] | .[0] // 0')
  [ "${got:-0}" -gt 2000 ] && grep -q . <(ls "$work/kill-ck" 2> /dev/null | grep chk-) && break
  sleep 0.05
done
[ "${got:-0}" -gt 2000 ] || fail "doubled[0] took no records"
[ "$got" -lt 19000 ] || fail "doubled[0] was nearly done before the kill ($got records): nothing to test"
shl -c "kill regions/doubled[0] regions test" > /dev/null || fail "kill from the shell"
for _ in $(seq 200); do
  grep -q "region .* restored from checkpoint" "$work/kill.stderr" && break; sleep 0.05
done
grep -q "regions/doubled\[0\] failed (killed: regions test); restarting its failover region regions/region\[[0-9]*\] (3 of 14 tasks) from the latest checkpoint" "$work/kill.stderr" ||
  { cat "$work/kill.stderr"; fail "no region restart of doubled[0]'s region (3 of 14 tasks) reported"; }
shl -c actors --json > "$work/actors.json" || fail "actors after the kill"
for t in gen_b doubled out_b; do
  r=$(jq --arg p "regions/$t[0]" '.[] | select(.path == $p) | .restarts' "$work/actors.json")
  [ "$r" = 1 ] || fail "$t[0] (in the failed region) restarted $r times, expected 1"
done
for t in gen_b[1] doubled[1] out_b[1] gen_a[0] gen_a[1] tagged[0] tagged[1] counts[0] counts[1] out_a[0] out_a[1]; do
  r=$(jq --arg p "regions/$t" '.[] | select(.path == $p) | .restarts' "$work/actors.json")
  [ "$r" = 0 ] || fail "$t (in another region) restarted $r times, expected 0"
done
rc=0; wait $pid || rc=$?; pid=
[ $rc -eq 0 ] || { cat "$work/kill.stderr"; fail "the job exited $rc"; }
check_outputs kill
echo "ok: kill of doubled[0]: its region's 3 tasks restarted from a checkpoint, the other 11 never; both outputs exact"

# ---- injected failures: each restarts its own region, outputs exact ----
for seed in 1 2; do
  name=inject-$seed
  run_job $name "$job" $(outs $name) --control none --inject-failures 8 --seed $seed
  check_outputs $name
  ! grep -q "restarting from the latest checkpoint$\|^eddy run: restart [0-9]" "$work/$name.stderr" ||
    fail "$name: a whole-job restart"
  n=0
  while IFS= read -r line; do
    task=$(echo "$line" | sed -n 's/^eddy run: job regions: regions\/\([a-z_]*\)\[[0-9]\] failed.*/\1/p')
    size=$(echo "$line" | sed -n 's/.*(\([0-9]*\) of 14 tasks).*/\1/p')
    case $task in
      gen_a|tagged|counts|out_a) want=8 ;;
      gen_b|doubled|out_b) want=3 ;;
      *) fail "$name: unexpected restart line: $line" ;;
    esac
    [ "$size" = $want ] || fail "$name: $task's region has $size tasks, expected $want: $line"
    n=$((n + 1))
  done < <(grep "restarting its failover region" "$work/$name.stderr")
  [ $n -ge 1 ] || { cat "$work/$name.stderr"; fail "$name: no region restarted (nothing was tested)"; }
  echo "ok: seed $seed: $n region restarts, each of the failed task's region (8 tasks for a, 3 for b); both outputs exact"
done
