#!/usr/bin/env bash
# bench/flights/run.sh: the flights-hourly job (examples/flights_hourly.yaml: tumbling 1 h windows by
# origin, count/avg/max of delay) over the 3,000,000 flights of ../shared/data/flights-3m.csv.gz,
# timed for
#   eddy at parallelism 1 and 2 from the plain CSV, eddy at parallelism 1 from the .gz,
#   bench_flights_baseline (a hand-written single-threaded C loop, the COST lower bound),
#   DuckDB running the same query (tests/jobs/expected.sql) on the plain CSV.
# Every eddy and baseline output is checked against
# ../shared/data/expected/flights_hourly_by_origin.csv.gz; a difference fails the bench.
# Wall times and peak RSS come from bench_peak_rss (fork/exec + wait4's ru_maxrss).
#
# Usage: bench/flights/run.sh [--runs N] [--build DIR]
#   --runs N     runs of each measurement, the best (shortest) is reported (default 3)
#   --build DIR  build directory with tools/eddy and bench/flights/* (default: the first of
#                build/ and build-bench/ that has them)
# Last line:
#   BENCH flights.hourly eddy_p1_eps=... eddy_p2_eps=... eddy_p1_gz_eps=... baseline_eps=...
#         duckdb_s=... peak_rss_mib=...
# (events/s = 3,000,000 / best wall seconds; peak_rss_mib = the largest of the eddy p1 and p2
# runs.) Targets: eddy p1 >= 50% of the baseline and >= 3 M events/s, peak RSS < 100 MiB.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=$root/../shared
runs=3
build=

while (($#)); do
	case $1 in
	--runs) runs=${2:?--runs needs a number}; shift 2 ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive number" >&2; exit 2; }

data_gz=$shared/data/flights-3m.csv.gz
expected=$shared/data/expected/flights_hourly_by_origin.csv.gz
if [[ ! -r $data_gz || ! -r $expected ]]; then
	echo "SKIPPED: bench/flights needs ../shared/data"
	exit 0
fi
compare=$shared/tools/csv-compare
duckdb_sql=$shared/tools/duckdb-sql
events=3000000

if [[ -z $build ]]; then
	for d in "$root/build" "$root/build-bench"; do
		if [[ -x $d/tools/eddy && -x $d/bench/flights/bench_flights_baseline ]]; then
			build=$d
			break
		fi
	done
fi
[[ -n $build && -d $build ]] || { echo "run.sh: no build directory; build first" >&2; exit 1; }
build=$(cd "$build" && pwd)
eddy=$build/tools/eddy
baseline=$build/bench/flights/bench_flights_baseline
peak_rss=$build/bench/flights/bench_peak_rss
for b in "$eddy" "$baseline" "$peak_rss"; do
	[[ -x $b ]] || { echo "run.sh: $b missing; build first (cmake --build ...)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-flights.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
csv=$tmp/flights-3m.csv
gzip -dc "$data_gz" >"$csv"

fail() {
	echo "run.sh: FAILED: $*" >&2
	exit 1
}

# measure NAME COMMAND...: runs COMMAND under bench_peak_rss, its output in $tmp/NAME.log;
# sets wall (seconds) and rss (KiB).
measure() {
	local name=$1
	shift
	if ! "$peak_rss" -o "$tmp/$name.rep" "$@" >"$tmp/$name.log" 2>&1; then
		cat "$tmp/$name.log" >&2
		fail "$name: $* exited with an error"
	fi
	read -r wall rss < <(sed 's/wall_s=\([^ ]*\) peak_rss_kib=\(.*\)/\1 \2/' "$tmp/$name.rep")
}

verify() { # NAME OUTPUT
	if ! "$compare" "$expected" "$2" >"$tmp/$1.cmp" 2>&1; then
		cat "$tmp/$1.cmp" >&2
		fail "$1: output differs from $expected"
	fi
}

# Best (smallest) time and largest RSS per measurement, over the runs.
declare -A best maxrss
declare -A this_run
record() { # NAME
	this_run[$1]=$wall
	best[$1]=$(awk -v a="${best[$1]:-inf}" -v b="$wall" 'BEGIN { print (a == "inf" || b < a) ? b : a }')
	maxrss[$1]=$(( rss > ${maxrss[$1]:-0} ? rss : ${maxrss[$1]:-0} ))
}

eddy_run() { # NAME INPUT PARALLELISM
	local out=$tmp/$1.out late=$tmp/$1.late
	rm -rf "$out" "$late"
	measure "$1" "$eddy" run examples/flights_hourly.yaml --set "sources.flights.path=$2" \
		--set "sinks.out.path=$out" --set "sinks.late.path=$late" --set "parallelism=$3"
	record "$1"
	grep -q "finished in .*: $events records in" "$tmp/$1.log" ||
		{ cat "$tmp/$1.log" >&2; fail "$1: eddy did not read $events records"; }
	verify "$1" "$out"
	# the input is in order: nothing may come out as late
	local nlate
	nlate=$(find "$late" -type f -exec awk 'FNR > 1' {} + 2>/dev/null | wc -l)
	((nlate == 0)) || fail "$1: $nlate late records in $late"
}

hourly_sql="COPY (SELECT time_bucket(INTERVAL 1 hour, date) AS window_start, time_bucket(INTERVAL 1 hour, date) + INTERVAL 1 hour AS window_end, origin, count(*) AS flights, avg(delay) AS avg_delay, max(delay) AS max_delay FROM read_csv('$csv', header=true, columns={'date':'TIMESTAMP','delay':'BIGINT','distance':'BIGINT','origin':'VARCHAR','destination':'VARCHAR'}) GROUP BY ALL) TO '$tmp/duckdb.csv' (HEADER)"

# duckdb-sql prints only the rows, no timing. Its time is therefore the wall time of the whole
# command minus that of 'SELECT 1' (starting Node.js and loading DuckDB), each the best of the
# runs. DuckDB uses both cores. The first call may install DuckDB's npm package: warm it up.
duckdb=yes
if ! "$duckdb_sql" "SELECT 1" >"$tmp/duckdb-warmup.log" 2>&1; then
	echo "run.sh: warning: $duckdb_sql does not work, no DuckDB figure:" >&2
	cat "$tmp/duckdb-warmup.log" >&2
	duckdb=
fi

cd "$root"
for ((r = 1; r <= runs; r++)); do
	rm -f "$tmp/baseline.csv"
	measure baseline "$baseline" -o "$tmp/baseline.csv" "$csv"
	record baseline
	verify baseline "$tmp/baseline.csv"
	eddy_run eddy_p1 "$csv" 1
	eddy_run eddy_p2 "$csv" 2
	eddy_run eddy_p1_gz "$data_gz" 1
	if [[ -n $duckdb ]]; then
		measure duckdb_select1 "$duckdb_sql" "SELECT 1"
		record duckdb_select1
		measure duckdb "$duckdb_sql" "$hourly_sql"
		record duckdb
		# DuckDB is the reference, not the subject: check its result once
		((r > 1)) || verify duckdb "$tmp/duckdb.csv"
	fi
	printf 'run %d: seconds:' "$r" >&2
	for n in baseline eddy_p1 eddy_p2 eddy_p1_gz duckdb duckdb_select1; do
		[[ -z ${this_run[$n]:-} ]] || printf ' %s=%.3f' "$n" "${this_run[$n]}" >&2
	done
	echo >&2
done

eps() { awk -v s="$1" -v n="$events" 'BEGIN { printf "%.0f", n / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
base_s=${best[baseline]}
printf '\nflights.hourly: %d events, best of %d runs (%s)\n' "$events" "$runs" "$build"
printf '%-26s %9s %14s %10s %12s\n' "" "seconds" "events/s" "peak MiB" "vs baseline"
row() { # LABEL NAME
	local s=${best[$2]}
	printf '%-26s %9.3f %14s %10s %11.0f%%\n' "$1" "$s" "$(eps "$s")" "$(mib "${maxrss[$2]}")" \
		"$(awk -v b="$base_s" -v s="$s" 'BEGIN { print 100 * b / s }')"
}
row "baseline (C, 1 thread)" baseline
echo "  (the baseline's RSS counts the pages of the 106 MB file it maps)"
row "eddy p1, plain CSV" eddy_p1
row "eddy p2, plain CSV" eddy_p2
row "eddy p1, .gz" eddy_p1_gz
duckdb_s=NA
if [[ -n $duckdb ]]; then
	duckdb_s=$(awk -v a="${best[duckdb]}" -v b="${best[duckdb_select1]}" 'BEGIN { printf "%.3f", a - b }')
	printf '%-26s %9.3f %14s %10s %11.0f%%   (%.3f s - %.3f s for SELECT 1)\n' \
		"duckdb (2 threads)" "$duckdb_s" "$(eps "$duckdb_s")" "-" \
		"$(awk -v b="$base_s" -v s="$duckdb_s" 'BEGIN { print 100 * b / s }')" \
		"${best[duckdb]}" "${best[duckdb_select1]}"
fi
peak_kib=$(( maxrss[eddy_p1] > maxrss[eddy_p2] ? maxrss[eddy_p1] : maxrss[eddy_p2] ))
yesno() { awk "BEGIN { exit !($1) }" && echo met || echo "NOT met"; }
p1_eps=$(eps "${best[eddy_p1]}")
printf 'targets: eddy p1 >= 50%% of baseline: %s; eddy p1 >= 3 M events/s: %s; peak RSS < 100 MiB: %s\n\n' \
	"$(yesno "${best[eddy_p1]} <= 2 * $base_s")" "$(yesno "$p1_eps >= 3000000")" \
	"$(yesno "$peak_kib < 100 * 1024")"

echo "BENCH flights.hourly eddy_p1_eps=$p1_eps eddy_p2_eps=$(eps "${best[eddy_p2]}")" \
	"eddy_p1_gz_eps=$(eps "${best[eddy_p1_gz]}") baseline_eps=$(eps "$base_s")" \
	"duckdb_s=$duckdb_s peak_rss_mib=$(mib "$peak_kib")"
