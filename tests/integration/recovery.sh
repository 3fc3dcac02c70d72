#!/usr/bin/env bash
# Recovery from checkpoints (tests/checkpoint/events.yaml: datagen p2 -> map -> event-time
# windows -> two-phase-commit file sink, a checkpoint every 50 ms):
#  - kill -9 of `eddy run` in the middle, then `eddy run --restore latest`: the committed
#    output equals the expected rows exactly (no duplicate, no missing row); while the
#    job was down, the visible files held only whole, expected rows (uncommitted data is
#    in hidden files);
#  - a damaged, a cut-short and a missing snapshot or keyed-state file in the newest checkpoint: restore
#    falls back to the previous complete checkpoint with a warning, output still exact;
#    restoring that damaged checkpoint by name fails with a clear error;
#  - incremental checkpoints: deltas over earlier checkpoints' files, kept while needed,
#    restored exactly; a damaged file in the chain named; incremental: false;
#  - refusals: --restore without checkpoints, a file source, no checkpoint at all.
set -u
eddy=$1; src=$2; build=$3; work=$build/recovery${EDDY_TEST_STATE_BACKEND:+-$EDDY_TEST_STATE_BACKEND}
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
job=$src/tests/checkpoint/events.yaml

# expected: ids 1..60000, event time 2024-01-01 00:00:00 + (id - 1) s, key id % 7, counted
# per key and minute
awk 'BEGIN { for (i = 1; i <= 60000; i++) { m = int((i - 1) / 60); k = i % 7; n[m "," k]++; s[m "," k] += i }
  print "window_start,window_end,k,n,ids";
  for (key in n) { split(key, a, ","); m = a[1]; e = m + 1;
    printf "2024-01-01 %02d:%02d:00,2024-01-01 %02d:%02d:00,%d,%d,%d\n", int(m / 60), m % 60, int(e / 60), e % 60, a[2], n[key], s[key] } }' \
  > "$work/expected.csv"

# committed_ok DIR: the visible part files hold only expected rows, none twice.
committed_ok() {
  local rows=$work/committed.rows
  cat "$1"/part-* 2> /dev/null | grep -v '^window_start' | LC_ALL=C sort > "$rows"
  [ -z "$(uniq -d "$rows")" ] || { echo "duplicate committed rows"; return 1; }
  tail -n +2 "$work/expected.csv" | LC_ALL=C sort > "$work/expected.rows"
  [ "$(LC_ALL=C comm -23 "$rows" "$work/expected.rows" | wc -l)" = 0 ] ||
    { echo "committed rows that are not expected"; return 1; }
}

# crash NAME DELAY: runs the job, kills -9 it after DELAY seconds; sets $ck and $out.
crash() {
  out=$work/$1/out; ck=$work/$1/ck
  "$eddy" run "$job" --control none --set "sinks.out.path=$out" --set "checkpoint.dir=$ck" \
    > "$work/$1.crash.stdout" 2> "$work/$1.crash.stderr" &
  local pid=$!
  sleep "$2"
  kill -9 $pid; wait $pid 2> /dev/null
  ls "$ck"/chk-*/MANIFEST > /dev/null 2>&1 || fail "$1: no checkpoint completed in $2 s"
  committed_ok "$out" || fail "$1: after the crash the visible output is wrong"
  # nothing is visible before its checkpoint completed: part-<s>-<n>.csv needs chk-<n>'s
  # manifest (or a later one)
  local newest m
  newest=$(ls -d "$ck"/chk-*/MANIFEST | sed 's|.*/chk-\([0-9]*\)/MANIFEST|\1|' | sort -n | tail -1)
  for f in $(ls "$out" | grep '^part-'); do
    m=$(echo "$f" | sed 's/^part-[0-9]*-\([0-9]*\)\..*/\1/')
    [ "$m" -le "$newest" ] || fail "$1: $f is visible, but checkpoint $m never completed (newest: $newest)"
  done
}

# ---- kill -9 and restore latest, at two moments ----
for when in 0.7 1.4; do
  name=kill-$when
  crash $name $when
  before=$(cat "$out"/part-* 2> /dev/null | grep -vc '^window_start')
  hidden=$(ls -A "$out" | grep -c '^\.part-' || true)
  run_job $name "$job" --control none --set "sinks.out.path=$out" --set "checkpoint.dir=$ck" \
    --restore latest
  grep -q "restored from checkpoint" "$work/$name.stderr" || fail "$name: not restored"
  same_rows "$work/expected.csv" "$out" || fail "$name: output after the restore"
  # nothing uncommitted is left (files of a checkpoint that never completed are kept
  # rolled back, hidden, for a savepoint of that history)
  [ -z "$(ls -A "$out" | grep -E '^\.part-.*\.(inprogress|pending)$')" ] ||
    fail "$name: uncommitted files left: $(ls -A "$out")"
  echo "ok: kill -9 at $when s ($before rows committed, $hidden hidden files), --restore latest: exactly the 7000 expected rows"
done

# ---- injected failures: the job restarts from its latest checkpoint in the process ----
for par in 2 1; do
  for seed in 1 7; do
    name=inject-p$par-s$seed
    run_job $name "$job" --control none --set "sinks.out.path=$work/$name/out" \
      --set "checkpoint.dir=$work/$name/ck" --set parallelism=$par --set supervision.intensity=50 \
      --inject-failures 10 --seed $seed
    n=$(grep -c "restored from checkpoint\|starting over" "$work/$name.stderr" || true)
    same_rows "$work/expected.csv" "$work/$name/out" || fail "$name: output under injected failures"
    echo "ok: parallelism $par, 10 injected failures (seed $seed; $n job restarts from checkpoints): exactly the expected rows"
  done
done

# at_least_once: no expected row is missing (counts may include records twice)
name=inject-least
run_job $name "$job" --control none --set "sinks.out.path=$work/$name/out" \
  --set "checkpoint.dir=$work/$name/ck" --set checkpoint.mode=at_least_once \
  --set supervision.intensity=50 --inject-failures 10 --seed 3
cat "$work/$name"/out/part-* | grep -v '^window_start' > "$work/$name.rows"
missing=$(awk -F, 'NR == FNR { got[$1 "," $3] = $4; next } FNR > 1 && !(got[$1 "," $3] >= $4) { print }' \
  "$work/$name.rows" "$work/expected.csv" | wc -l)
[ "$missing" -eq 0 ] || fail "$name: $missing expected rows missing or short under at_least_once"
echo "ok: at_least_once under 10 injected failures: no expected row missing"

# ---- damaged checkpoints fall back to the previous complete one ----
for kind in snap state; do # the task's snapshot, and the window's keyed-state file
for damage in corrupt truncate remove; do
  name=damage-$kind-$damage
  crash $name 1.0
  # the newest complete one (a newer one may have been in progress at the kill)
  newest=$ck/chk-$(ls -d "$ck"/chk-*/MANIFEST | sed 's|.*/chk-\([0-9]*\)/MANIFEST|\1|' | sort -n | tail -1)
  f=$(ls "$newest"/*.$kind | grep 'minutes\[1\]')
  [ -f "$f" ] || fail "$name: no .$kind file of minutes[1] in $newest"
  case $damage in
    corrupt) printf '\x55' | dd of="$f" bs=1 seek=20 conv=notrunc 2> /dev/null ;;
    truncate) truncate -s 10 "$f" ;;
    remove) rm "$f" ;;
  esac
  rc=0; "$eddy" run "$job" --control none --set "sinks.out.path=$out" --set "checkpoint.dir=$ck" \
    --restore "$newest" > /dev/null 2> "$work/$name.named.stderr" || rc=$?
  [ $rc -eq 2 ] && grep -q "cannot restore: .*minutes\[1\]" "$work/$name.named.stderr" ||
    { cat "$work/$name.named.stderr"; fail "$name: restoring the damaged checkpoint by name must fail (exit $rc)"; }
  run_job $name "$job" --control none --set "sinks.out.path=$out" --set "checkpoint.dir=$ck" \
    --restore latest
  grep -q "warning: skipping checkpoint $newest" "$work/$name.stderr" ||
    { cat "$work/$name.stderr"; fail "$name: no warning about the damaged checkpoint"; }
  same_rows "$work/expected.csv" "$out" || fail "$name: output after falling back"
  echo "ok: a $damage .$kind file in the newest checkpoint: named restore fails (exit 2), latest falls back with a warning, output exact"
done
done

# ---- incremental checkpoints: a task's keyed state as a delta over earlier files ----
# The window's state goes into a checkpoint as a delta naming its parent file in an older
# checkpoint ("state_parent"); the older checkpoints a kept one needs ("needs") stay past
# `retain`; a restore by name from a checkpoint with deltas reads the chain and gives the
# exact output; a damaged file in the chain makes it fail naming that file; with
# incremental: false every file is whole.
name=incremental
crash $name 1.0
if [ "${EDDY_TEST_STATE_BACKEND:-}" = leveldb ]; then
  [ -z "$(cat "$ck"/chk-*/MANIFEST | jq -r '.tasks[] | .state_parent // empty')" ] ||
    fail "$name: LevelDB state must be written whole"
  echo "ok: incremental checkpoints: LevelDB state is written whole (no state_parent)"
else
  with_delta=
  for m in $(ls -d "$ck"/chk-*/MANIFEST | sort -t- -k2 -n); do
    for id in $(jq -r '.needs[]' "$m"); do
      [ -f "$ck/chk-$id/MANIFEST" ] || [ -f "$ck/chk-$id/SHARED" ] ||
        fail "$name: $m needs chk-$id, which was deleted"
    done
    [ -n "$(jq -r '.tasks[] | .state_parent // empty' "$m")" ] && with_delta=$(dirname "$m")
  done
  [ -n "$with_delta" ] || fail "$name: no checkpoint holds a delta: $(cat "$ck"/chk-*/MANIFEST)"
  kept="$(ls -d "$ck"/chk-*/MANIFEST | wc -l) kept and $(ls -d "$ck"/chk-*/SHARED 2> /dev/null | wc -l) kept for their files"
  rm -rf "$work/$name.out"; cp -r "$out" "$work/$name.out"
  run_job $name "$job" --control none --set "sinks.out.path=$work/$name.out" \
    --set "checkpoint.dir=$work/$name.ck2" --restore "$with_delta"
  same_rows "$work/expected.csv" "$work/$name.out" || fail "$name: output after restoring $with_delta"
  parent=$(jq -r '[.tasks[] | .state_parent // empty][0]' "$with_delta/MANIFEST")
  printf '\x55' | dd of="$with_delta/$parent" bs=1 seek=30 conv=notrunc 2> /dev/null
  rc=0; "$eddy" run "$job" --control none --set "sinks.out.path=$out" --set "checkpoint.dir=$ck" \
    --restore "$with_delta" > /dev/null 2> "$work/$name.damaged.stderr" || rc=$?
  [ $rc -eq 2 ] && grep -q "$(basename "$parent" | sed 's/\[/\\[/g').*checksum" "$work/$name.damaged.stderr" ||
    { cat "$work/$name.damaged.stderr"; fail "$name: a damaged parent file must fail the restore naming it (exit $rc)"; }
  name=whole
  run_job $name "$job" --control none --set "sinks.out.path=$work/$name/out" \
    --set "checkpoint.dir=$work/$name/ck" --set checkpoint.incremental=false
  same_rows "$work/expected.csv" "$work/$name/out" || fail "$name: output"
  [ -z "$(cat "$work/$name"/ck/chk-*/MANIFEST | jq -r '.tasks[] | .state_parent // empty')" ] &&
    [ "$(cat "$work/$name"/ck/chk-*/MANIFEST | jq -c '.needs' | sort -u)" = "[]" ] ||
    fail "$name: incremental: false wrote deltas"
  echo "ok: incremental checkpoints: $kept (retain 3); restore from $(basename "$with_delta") (deltas) exact; its damaged parent $(basename "$parent") named; incremental: false writes whole files only"
fi

# ---- refusals ----
rc=0; "$eddy" run "$job" --control none --set "checkpoint.dir=$work/none" --restore latest \
  2> "$work/r1.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "no complete checkpoint in $work/none" "$work/r1.stderr" ||
  { cat "$work/r1.stderr"; fail "restore with no checkpoint (exit $rc)"; }
rc=0; "$eddy" run "$src/tests/control/pipe.yaml" --control none --restore latest 2> "$work/r2.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "has no checkpoint: section" "$work/r2.stderr" ||
  { cat "$work/r2.stderr"; fail "restore of a job without checkpoints (exit $rc)"; }
rc=0; "$eddy" run "$job" --control none --set "checkpoint.dir=$work/inject-p2-s1/ck" --restore latest \
  --set parallelism=1 2> "$work/r3.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "operator 'gen' (datagen) cannot change its parallelism (2 in the checkpoint, 1 now)" "$work/r3.stderr" ||
  { cat "$work/r3.stderr"; fail "restore at another parallelism (exit $rc)"; }
echo "ok: --restore refused without checkpoints, without a checkpoint section, at another parallelism"

# ---- a file source resumes at its position (plain split over 2 subtasks, and gzip) ----
fjob=$src/tests/checkpoint/file.yaml
N=1500000
awk -v n=$N 'BEGIN { print "id,ts,k"; for (i = 1; i <= n; i++) { s = i - 1;
  printf "%d,2024-%02d-%02d %02d:%02d:%02d,%d\n", i, 1 + int(s / 2678400), 1 + int(s % 2678400 / 86400),
    int(s % 86400 / 3600), int(s % 3600 / 60), s % 60, i % 5 } }' > "$work/events.csv"
gzip -1 -c "$work/events.csv" > "$work/events.csv.gz"
for input in events.csv events.csv.gz; do
  name=file-$input
  run_job $name-ref "$fjob" --control none --set "sources.events.path=$work/$input" \
    --set "sinks.out.path=$work/$name/ref" --set "checkpoint.dir=$work/$name/ck-ref"
  cat "$work/$name/ref"/part-* | grep -v '^window_start' | LC_ALL=C sort > "$work/$name.ref"
  [ "$(awk -F, '{ n += $4 } END { print n }' "$work/$name.ref")" = $N ] ||
    fail "$name: the reference run did not count $N events"
  restored=0
  for seed in 1 2 3; do
    run_job $name-$seed "$fjob" --control none --set "sources.events.path=$work/$input" \
      --set "sinks.out.path=$work/$name/out-$seed" --set "checkpoint.dir=$work/$name/ck-$seed" \
      --inject-failures 10 --seed $seed
    restored=$((restored + $(grep -c "restored from checkpoint" "$work/$name-$seed.stderr" || true)))
    cat "$work/$name/out-$seed"/part-* | grep -v '^window_start' | LC_ALL=C sort > "$work/$name.got"
    cmp -s "$work/$name.ref" "$work/$name.got" ||
      { diff "$work/$name.ref" "$work/$name.got" | head -5; fail "$name seed $seed: output differs from the run without failures"; }
  done
  [ $restored -ge 1 ] || fail "$name: no run restored from a checkpoint (nothing was tested)"
  echo "ok: $input ($N events): injected failures, 3 seeds, $restored restores at file positions: the same $(wc -l < "$work/$name.ref") rows as without failures"
done

# ---- savepoints: stop with one at parallelism 2, restore at 1 and at 3 ----
# (the source stays at parallelism 1: a datagen's position cannot be redistributed)
name=savepoint
sp=$work/$name/sp
"$eddy" run "$job" --control none --set "sinks.out.path=$work/$name/out" \
  --set "checkpoint.dir=$work/$name/ck" --set sources.gen.parallelism=1 \
  --set sources.gen.rows_per_second=20000 --stop-with-savepoint "$sp" \
  > /dev/null 2> "$work/$name.stderr" &
pid=$!
sleep 1
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$work/$name.stderr"; fail "$name: stop with a savepoint exited $rc"; }
grep -q "savepoint [0-9]* written to $sp" "$work/$name.stderr" ||
  { cat "$work/$name.stderr"; fail "$name: no savepoint written"; }
jq -e '.savepoint == true' "$sp/MANIFEST" > /dev/null 2>&1 || grep -q '"savepoint": true' "$sp/MANIFEST" ||
  fail "$name: the manifest does not say savepoint"
committed_ok "$work/$name/out" || fail "$name: output at the savepoint"
at=$(cat "$work/$name"/out/part-* | grep -vc '^window_start' || true)
[ "$at" -lt 7000 ] || fail "$name: the job was not stopped before its end ($at rows)"
for par in 1 3; do
  run_job $name-p$par "$job" --control none --set "sinks.out.path=$work/$name/out" \
    --set "checkpoint.dir=$work/$name/ck" --set sources.gen.parallelism=1 \
    --set parallelism=$par --restore "$sp"
  same_rows "$work/expected.csv" "$work/$name/out" || fail "$name: restored at parallelism $par"
  echo "ok: stopped with a savepoint at parallelism 2 ($at rows written), restored at parallelism $par: exactly the 7000 expected rows"
done
rc=0; "$eddy" run "$job" --control none --set "checkpoint.dir=$work/$name/ck" --set parallelism=3 \
  --restore "$sp" 2> "$work/$name-src.stderr" || rc=$?
[ $rc -eq 2 ] && grep -q "operator 'gen' (datagen) cannot change its parallelism (1 in the checkpoint, 3 now)" "$work/$name-src.stderr" ||
  { cat "$work/$name-src.stderr"; fail "$name: rescaling a datagen must be refused (exit $rc)"; }
echo "ok: rescaling a source is refused"
# the window keeps panes (no allowed lateness); one with allowed lateness keeps one state per
# window: the savepoint cannot be restored into it, and the failure names both. The run has
# its own (empty) checkpoint directory: its restarts restore the savepoint again (not a
# fresh start), so it fails
rc=0; "$eddy" run "$job" --control none --set "sinks.out.path=$work/$name/out-lateness" \
  --set "checkpoint.dir=$work/$name/ck-lateness" --set sources.gen.parallelism=1 \
  --set operators.minutes.allowed_lateness=1s --restore "$sp" 2> "$work/$name-lateness.stderr" || rc=$?
[ $rc -ne 0 ] && grep -q "window: the checkpoint keeps panes, this window keeps one state per window" "$work/$name-lateness.stderr" ||
  { cat "$work/$name-lateness.stderr"; fail "$name: a savepoint of panes restored into a window with allowed lateness (exit $rc)"; }
grep -q "starting over" "$work/$name-lateness.stderr" &&
  { cat "$work/$name-lateness.stderr"; fail "$name: a restart after a failed restore started over instead of restoring the savepoint"; }
echo "ok: a savepoint of a window's panes is not restored into a window with allowed lateness"
# a window of another size (or slide, keys, aggregates) would read its state wrongly: refused
rc=0; "$eddy" run "$job" --control none --set "sinks.out.path=$work/$name/out-size" \
  --set "checkpoint.dir=$work/$name/ck-size" --set sources.gen.parallelism=1 \
  --set operators.minutes.window.size=2m --restore "$sp" 2> "$work/$name-size.stderr" || rc=$?
[ $rc -ne 0 ] && grep -q "window: the checkpoint's window is 'tumbling 60000/0/0/0 keys int aggs count sum:int', this one is 'tumbling 120000/0/0/0 keys int aggs count sum:int'" "$work/$name-size.stderr" ||
  { cat "$work/$name-size.stderr"; fail "$name: a savepoint of a 1m window restored into a 2m one (exit $rc)"; }
echo "ok: a savepoint of a window is not restored into a window of another size"

# a savepoint, then the job goes back to an older checkpoint (a failure right after the
# savepoint): the job's output stays exact, and the savepoint can still be restored exactly
# (the rolled-back files of its history come back; checkpoint ids are never reused)
name=sp-rollback
w=$work/$name
"$eddy" run "$job" --control "ipc://$w.sock" --set "sinks.out.path=$w/out" --set "checkpoint.dir=$w/ck" \
  --set checkpoint.interval=1s --set sources.gen.rows_per_second=10000 --set supervision.intensity=100 \
  > /dev/null 2> "$w.stderr" &
pid=$!
sleep 1.5
"$eddy" shell "ipc://$w.sock" -c "savepoint $w/sp" > /dev/null || fail "$name: savepoint"
for _ in $(seq 100); do [ -f "$w/sp/MANIFEST" ] && break; sleep 0.02; done
"$eddy" shell "ipc://$w.sock" -c "kill events/minutes[0] right after the savepoint" > /dev/null || fail "$name: kill"
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$w.stderr"; fail "$name: exited $rc"; }
same_rows "$work/expected.csv" "$w/out" || fail "$name: the job's output after going back"
spid=$(sed -n 's/.*"checkpoint": \([0-9]*\).*/\1/p' "$w/sp/MANIFEST")
back=$(sed -n 's/.*restored from checkpoint \([0-9]*\).*/\1/p' "$w.stderr" | head -1)
for par in 1 3; do
  run_job $name-p$par "$job" --control none --set "sinks.out.path=$w/out" --set "checkpoint.dir=$w/ck2" \
    --set parallelism=$par --set sources.gen.parallelism=2 --restore "$w/sp"
  same_rows "$work/expected.csv" "$w/out" || fail "$name: the savepoint restored at p$par"
done
echo "ok: savepoint $spid, then the job went back to checkpoint ${back:-?}$([ "${back:-0}" -lt "${spid:-0}" ] && echo ' (before the savepoint)'): its output and the savepoint restored at p1 and p3 are exact"

echo "PASS: recovery"
