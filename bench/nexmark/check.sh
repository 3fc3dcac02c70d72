#!/usr/bin/env bash
# bench/nexmark/check.sh: checks eddy's Nexmark queries (bench/nexmark/qN.yaml) against DuckDB on
# a generated input of N events (default 1,000,000; the suite's tests/integration/
# nexmark_queries.sh does the same on 200,000). It makes the input with `eddy nexmark-gen`
# (or takes --data DIR), DuckDB's answers with bench/nexmark/expected.sh (the SQL of
# bench/nexmark/sql/), runs every query at parallelism 1 and 2 and compares with
# ../shared/tools/csv-compare (rows as multisets, numbers within a relative 1e-9). q7 is
# compared with both sql/q7.sql (the nexmark repository's meaning) and sql/q7_top1.sql
# (eddy's Window Top-N); see q7.yaml. Per run it prints
#   qN p1 OK   rows=R seconds=S eps=E        or      qN p1 DIFF (and the first differences)
# where eps = the input's events (persons + auctions + bids, for every query, as Nexmark
# counts them) / the wall seconds of `eddy run` (start to exit, one run, not a benchmark:
# bench/nexmark/run.sh is). Last line: CHECK eddy ok=K diff=D.
#
# Usage: bench/nexmark/check.sh [--events N] [--seed S] [--tps R] [--data DIR] [--keep DIR]
#                               [--parallelism "1 2"] [qN ...]
#   --events N, --seed S, --tps R   nexmark-gen's options (defaults 1000000, 1, 10000: the
#                                   repository's rate, so 1 M events span 100 s of event time)
#   --data DIR    use the files in DIR instead of generating them (--events etc. ignored)
#   --keep DIR    keep the input, DuckDB's answers and eddy's outputs in DIR
#   qN ...        among q0 q1 q2 q3 q4 q5 q7 q8 (default all)
# Environment: EDDY (default build/tools/eddy), EDDY_SHARED (default ../shared).
# Exit: 0 all OK, 1 a DIFF or a failed run, 2 bad arguments or missing tools.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${EDDY_SHARED:-$root/../shared}
eddy=${EDDY:-$root/build/tools/eddy}
# shellcheck source=lib.sh
. "$here/lib.sh"

events=1000000 seed=1 tps=10000 data= keep= pars="1 2" queries=()
while (($#)); do
	case $1 in
	--events) events=${2:?--events needs a number}; shift 2 ;;
	--seed) seed=${2:?--seed needs a number}; shift 2 ;;
	--tps) tps=${2:?--tps needs a number}; shift 2 ;;
	--data) data=${2:?--data needs a directory}; shift 2 ;;
	--keep) keep=${2:?--keep needs a directory}; shift 2 ;;
	--parallelism) pars=${2:?--parallelism needs a list}; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	q[0-9]) queries+=("$1"); shift ;;
	*) echo "check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
((${#queries[@]})) || queries=(q0 q1 q2 q3 q4 q5 q7 q8)
for q in "${queries[@]}"; do
	[[ -f $here/$q.yaml ]] || { echo "check.sh: unknown query $q (no $here/$q.yaml)" >&2; exit 2; }
done
for p in $pars; do
	[[ $p =~ ^[1-9][0-9]*$ ]] || { echo "check.sh: --parallelism: '$p' is not a number" >&2; exit 2; }
done
[[ -x $eddy ]] || { echo "check.sh: $eddy is missing (build eddy, or set EDDY)" >&2; exit 2; }
for t in csv-compare duckdb-sql; do
	[[ -x $shared/tools/$t ]] || { echo "check.sh: $shared/tools/$t is missing (set EDDY_SHARED)" >&2; exit 2; }
done
export DUCKDB_SQL=$shared/tools/duckdb-sql
CSV_COMPARE=$shared/tools/csv-compare

if [[ -n $keep ]]; then
	mkdir -p "$keep"
	work=$(cd "$keep" && pwd)
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
if [[ -z $data ]]; then
	data=$work/input
	"$eddy" nexmark-gen --events "$events" --seed "$seed" --tps "$tps" --out "$data" >&2
fi
[[ -d $data ]] || { echo "check.sh: --data $data: no such directory" >&2; exit 2; }
data=$(cd "$data" && pwd)
total=0
for f in persons auctions bids; do
	[[ -f $data/$f.csv ]] || { echo "check.sh: $data/$f.csv is missing" >&2; exit 2; }
	total=$((total + $(wc -l < "$data/$f.csv")))
done
echo "input: $data ($total events)"

exp=()
for q in "${queries[@]}"; do
	exp+=("$q")
	[[ $q != q7 ]] || exp+=(q7_top1)
done
"$here/expected.sh" "$data" "$work/duckdb" "${exp[@]}"

ok=0 diff=0
mkdir -p "$work/eddy"
cd "$root"
for p in $pars; do
	for q in "${queries[@]}"; do
		out=$work/eddy/$q-p$p
		rm -rf "$out"
		nexmark_sets "$here/$q.yaml" "$data"
		t0=$(date +%s%N)
		if ! "$eddy" run "$here/$q.yaml" --control none "${nexmark_sets[@]}" --set parallelism="$p" \
			--set "sinks.out.path=$out" > "$out.log" 2>&1; then
			echo "$q p$p DIFF (eddy run failed:)"
			tail -n 5 "$out.log" | sed 's/^/    /'
			diff=$((diff + 1))
			continue
		fi
		t1=$(date +%s%N)
		bad=0
		for e in $q $([[ $q != q7 ]] || echo q7_top1); do
			if ! "$CSV_COMPARE" "$work/duckdb/$e.csv" "$out" > "$out.compare" 2>&1; then
				echo "$q p$p DIFF (against sql/$e.sql)"
				head -n 25 "$out.compare" | sed 's/^/    /'
				bad=1
			fi
		done
		if ((bad)); then
			diff=$((diff + 1))
			continue
		fi
		rows=$(($(wc -l < "$work/duckdb/$q.csv") - 1))
		awk -v q="$q" -v p="$p" -v r="$rows" -v n="$total" -v ns=$((t1 - t0)) \
			'BEGIN { printf "%s p%s OK   rows=%d seconds=%.3f eps=%.0f\n", q, p, r, ns / 1e9, n / (ns / 1e9) }'
		ok=$((ok + 1))
	done
done
echo "CHECK eddy ok=$ok diff=$diff"
((diff == 0))
