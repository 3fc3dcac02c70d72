#!/usr/bin/env bash
# bench/checkpoint/run.sh: what checkpoints cost, on the hourly-by-origin job
# (examples/flights_hourly.yaml) over the 3,000,000 flights of ../shared/data (plain CSV,
# parallelism 1), best of N runs each:
#   - throughput without checkpoints, with a checkpoint every 1 s and every 100 ms
#     (the job takes ~0.5 s, so 1 s gives at most one; 100 ms gives ~5) — exactly_once,
#     the two-phase-commit file sink; every output is checked against the expected file;
#   - time from an injected failure to the job running again from its latest checkpoint
#     (--inject-failures, as `eddy run` reports it), median and max over the restarts;
#   - a state-heavy job: 1,000,000 distinct keys counted in one tumbling window (datagen,
#     ~1 M windows open), events/s and peak RSS, with and without 1 s checkpoints.
# Each on every keyed-state backend given (default: memory and leveldb): BENCH lines carry
# backend=... .
# Last lines: BENCH checkpoint.* ...
# Usage: bench/checkpoint/run.sh [--runs N] [--build DIR] [--backends "memory leveldb"]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=$root/../shared
runs=3
build=$root/build
backends="memory leveldb"
while (($#)); do
	case $1 in
	--runs) runs=${2:?}; shift 2 ;;
	--build) build=${2:?}; shift 2 ;;
	--backends) backends=${2:?}; shift 2 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
eddy=$build/tools/eddy
rss=$build/bench/flights/bench_peak_rss
[ -x "$eddy" ] && [ -x "$rss" ] || { echo "run.sh: build first (need $eddy and $rss)" >&2; exit 2; }
[ -r "$shared/data/flights-3m.csv.gz" ] || { echo "run.sh: needs $shared/data" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$shared/data/flights-3m.csv.gz" > "$work/flights.csv"
expected=$shared/data/expected/flights_hourly_by_origin.csv.gz
zcat "$expected" | tail -n +2 | LC_ALL=C sort > "$work/expected"
cd "$root"

# sargs: the state backend's options for every run (bench_backend sets them)
sargs=()
bench_backend() {
backend=$1
sargs=(--set "state.backend=$backend")
[ "$backend" = leveldb ] && sargs+=(--set "state.dir=$work/leveldb")
echo "== keyed state on $backend"
# best SECONDS of N runs of eddy run ARGS; checks the output; prints "seconds peak_mib"
best() {
	local b=999 m=0
	for _ in $(seq "$runs"); do
		rm -rf "$work/out" "$work/ck"
		"$rss" -o "$work/r" "$eddy" run examples/flights_hourly.yaml --control none --set parallelism=1 \
			--set "sources.flights.path=$work/flights.csv" --set "sinks.out.path=$work/out" \
			--set "sinks.late.path=$work/late" "${sargs[@]}" "$@" 2> "$work/err"
		local r
		r=$(sed 's/wall_s=\([^ ]*\) peak_rss_kib=\(.*\)/\1 \2/' "$work/r")
		cat "$work"/out/part-* | grep -v '^window_start' | LC_ALL=C sort | cmp -s - "$work/expected" ||
			{ cat "$work/err"; echo "run.sh: wrong output with $*" >&2; exit 1; }
		local s=${r% *} k=${r#* }
		b=$(awk -v a="$b" -v c="$s" 'BEGIN { print (c < a ? c : a) }')
		m=$(awk -v a="$m" -v c="$k" 'BEGIN { print (c > a ? c : a) }')
	done
	echo "$b $m"
}
read -r none none_kib <<< "$(best)"
read -r one one_kib <<< "$(best --set checkpoint.interval=1s --set "checkpoint.dir=$work/ck")"
read -r fast fast_kib <<< "$(best --set checkpoint.interval=100ms --set "checkpoint.dir=$work/ck")"
eps() { awk -v s="$1" 'BEGIN { printf "%d", 3000000 / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
printf '%-34s %8s %12s %8s\n' run seconds events/s "% of none"
printf '%-34s %8.3f %12d %8s\n' "no checkpoints" "$none" "$(eps "$none")" 100
printf '%-34s %8.3f %12d %8s\n' "checkpoint every 1 s" "$one" "$(eps "$one")" "$(pct "$none" "$one")"
printf '%-34s %8.3f %12d %8s\n' "checkpoint every 100 ms" "$fast" "$(eps "$fast")" "$(pct "$none" "$fast")"

# recovery time: 10 injected failures, 100 ms checkpoints; "running again N ms after"
rm -rf "$work/out" "$work/ck"
"$eddy" run examples/flights_hourly.yaml --control none --set parallelism=1 \
	--set "sources.flights.path=$work/flights.csv" --set "sinks.out.path=$work/out" \
	--set "sinks.late.path=$work/late" --set checkpoint.interval=100ms --set "checkpoint.dir=$work/ck" \
	--set supervision.intensity=50 --set supervision.backoff.initial=0ms \
	--inject-failures 10 --seed 5 "${sargs[@]}" 2> "$work/inj.err"
cat "$work"/out/part-* | grep -v '^window_start' | LC_ALL=C sort | cmp -s - "$work/expected" ||
	{ echo "run.sh: wrong output under injected failures" >&2; exit 1; }
sed -n 's/.*running again \([0-9]*\) ms after the failure.*/\1/p' "$work/inj.err" | sort -n > "$work/rec"
nrec=$(wc -l < "$work/rec")
med=$(awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }' "$work/rec")
max=$(tail -1 "$work/rec")
echo "recovery: $nrec restarts (of failover regions) from checkpoints, running again after: median ${med} ms, max ${max:--} ms (backoff 0)"

# state-heavy: 1,000,000 keys, one tumbling window each, counted (datagen, event time)
cat > "$work/keys.yaml" <<'YAML'
job: keys
parallelism: 1
sources:
  - id: gen
    connector: datagen
    count: 3000000
    fields:
      id: {kind: sequence, start: 0}
      ts: {kind: timestamp, start: '2024-01-01 00:00:00', step: 1ms}
    watermark: {event_time: ts, max_out_of_orderness: 0ms}
operators:
  - {id: keyed, type: map, input: gen, select: {k: id % 1000000, ts: ts}}
  - id: counts
    type: window
    input: keyed
    key_by: k
    window: {type: tumbling, size: 1h}
    aggregates: {n: count()}
sinks:
  - {id: out, connector: file, input: counts, path: OUT, format: csv}
YAML
heavy() {
	local b=999 m=0
	for _ in $(seq "$runs"); do
		rm -rf "$work/kout" "$work/kck"
		"$rss" -o "$work/r" "$eddy" run "$work/keys.yaml" --control none --set "sinks.out.path=$work/kout" "${sargs[@]}" "$@" 2> "$work/kerr"
		local r
		r=$(sed 's/wall_s=\([^ ]*\) peak_rss_kib=\(.*\)/\1 \2/' "$work/r")
		[ "$(cat "$work"/kout/part-* | grep -vc '^window_start')" = 1000000 ] ||
			{ cat "$work/kerr"; echo "run.sh: the state-heavy job did not write 1,000,000 rows" >&2; exit 1; }
		local s=${r% *} k=${r#* }
		b=$(awk -v a="$b" -v c="$s" 'BEGIN { print (c < a ? c : a) }')
		m=$(awk -v a="$m" -v c="$k" 'BEGIN { print (c > a ? c : a) }')
	done
	echo "$b $m"
}
read -r hs hk <<< "$(heavy)"
read -r hcs hck <<< "$(heavy --set checkpoint.interval=1s --set "checkpoint.dir=$work/kck")"
echo "state-heavy (1,000,000 keys open): $(eps "$hs") events/s, peak $(awk -v k="$hk" 'BEGIN { printf "%.0f", k / 1024 }') MiB; with 1 s checkpoints $(eps "$hcs") events/s, peak $(awk -v k="$hck" 'BEGIN { printf "%.0f", k / 1024 }') MiB"
# a longer job, so that a 1 s interval takes several checkpoints: 20,000,000 generated
# events (tests/checkpoint/events.yaml at full speed, 1 s of event time each, 1-minute windows
# per key), parallelism 1
long() {
	local b=999
	for _ in $(seq "$runs"); do
		rm -rf "$work/lout" "$work/lck"
		"$rss" -o "$work/r" "$eddy" run tests/checkpoint/events.yaml --control none --set parallelism=1 \
			--set sources.gen.rows_per_second=0 --set sources.gen.count=20000000 \
			--set "sinks.out.path=$work/lout" --set "checkpoint.dir=$work/lck" "${sargs[@]}" "$@" 2> "$work/lerr"
		[ "$(cat "$work"/lout/part-* | grep -vc '^window_start')" = 2333338 ] ||
			{ cat "$work/lerr"; echo "run.sh: the long job wrote the wrong number of rows" >&2; exit 1; }
		local s
		s=$(sed 's/wall_s=\([^ ]*\) .*/\1/' "$work/r")
		b=$(awk -v a="$b" -v c="$s" 'BEGIN { print (c < a ? c : a) }')
	done
	echo "$b"
}
lnone=$(long --set checkpoint.interval=1h)
lone=$(long --set checkpoint.interval=1s)
lcount=$(ls -d "$work"/lck/chk-* 2> /dev/null | wc -l)
leps() { awk -v s="$1" 'BEGIN { printf "%d", 20000000 / s }'; }
echo "long job (20 M events, p1): no checkpoints $(leps "$lnone") events/s; checkpoint every 1 s $(leps "$lone") events/s ($(pct "$lnone" "$lone")%)"
bench_lines+=("BENCH checkpoint.long backend=$backend events=20000000 none_eps=$(leps "$lnone") ckpt_1s_eps=$(leps "$lone") ckpt_1s_pct=$(pct "$lnone" "$lone")")
bench_lines+=("BENCH checkpoint.hourly backend=$backend none_eps=$(eps "$none") ckpt_1s_eps=$(eps "$one") ckpt_1s_pct=$(pct "$none" "$one") ckpt_100ms_eps=$(eps "$fast") ckpt_100ms_pct=$(pct "$none" "$fast")")
bench_lines+=("BENCH checkpoint.recovery backend=$backend restarts=$nrec median_ms=$med max_ms=${max:--}")
bench_lines+=("BENCH checkpoint.state_heavy backend=$backend keys=1000000 eps=$(eps "$hs") peak_rss_mib=$(awk -v k="$hk" 'BEGIN { printf "%.1f", k / 1024 }') ckpt_1s_eps=$(eps "$hcs") ckpt_1s_peak_rss_mib=$(awk -v k="$hck" 'BEGIN { printf "%.1f", k / 1024 }')")
}
bench_lines=()
for b in $backends; do
	bench_backend "$b"
done
printf '%s\n' "${bench_lines[@]}"
