#!/usr/bin/env bash
# bench/nexmark/run.sh: the Nexmark benchmark (issue 6). On one input written by
# `eddy nexmark-gen`, for each query it runs, alternately and best of R runs:
#   eddy at parallelism 1 and 2, each without and with a 1 s checkpoint
#     (eddy run bench/nexmark/qN.yaml --set sources.{person,auction,bid}.path=DATA/...
#      --set sinks.out.path=OUT --set parallelism=P [--set checkpoint.interval=1s
#      --set checkpoint.dir=...]),
#   the hand-written single-threaded baseline bench_nexmark_baseline (q0, q5, q7),
#   with --flink the Apache Flink peer at parallelism 1 and 2 (bench/peers/flink/run.sh),
# checks the results and prints one line per query:
#   BENCH nexmark.qN events=N eddy_p1_eps=... eddy_p2_eps=... eddy_p1_ckpt_eps=...
#         eddy_p2_ckpt_eps=... baseline_eps=... flink_p1_eps=... flink_p2_eps=...
#         ratio_flink=... ratio_baseline=...
# (a value not measured is '-').
#
# Usage: bench/nexmark/run.sh [--flink] [--events N] [--seed S] [--runs R] [--data DIR]
#                             [--jobs DIR] [--build DIR] [qN ...]
#   --flink       also run the Flink peer (needs java 17+ and mvn; see bench/peers/flink)
#   --events N    events to generate: persons + auctions + bids (default 1000000)
#   --seed S      the generator's seed (default 1)
#   --runs R      runs of each measurement; the fastest counts (default 3)
#   --data DIR    where the input is (or is written): DIR/persons.csv, auctions.csv, bids.csv.
#                 Default BUILD/nexmark-data/eN-sS. A directory written by this script is
#                 reused when its events and seed match (DIR/.nexmark-gen); one without that
#                 stamp is used as it is, its events counted from its lines.
#   --jobs DIR    where qN.yaml are (default bench/nexmark)
#   --build DIR   the build directory (default: the first of build/ and build-bench/ that has
#                 tools/eddy and bench/nexmark/bench_nexmark_baseline)
#   qN ...        among q0 q1 q2 q3 q4 q5 q7 q8 (default: every one with a job file or a
#                 baseline)
#
# Measured: events/s = N / seconds, with N the events of the whole input (persons + auctions +
# bids) for every query and every system, as the nexmark repository counts them (and the
# issue's table), even for the queries that read only the bids. Seconds: for eddy and the
# baseline the wall time of the process (start to exit, bench_peak_rss); for Flink the job's
# net run time as its mini cluster reports it (JVM start and SQL planning excluded: see
# bench/peers/flink/README.md). ratio_baseline = eddy_p1_eps / baseline_eps; ratio_flink = the
# smaller of eddy_p1_eps / flink_p1_eps and eddy_p2_eps / flink_p2_eps (equal parallelism).
#
# Checked: the first run of every eddy configuration against the reference (later runs: the
# row count): for q0, q5, q7 the baseline's result, itself checked against DuckDB's answer
# (tests/data/nexmark_baseline/expected.sh; q0 only up to 2,000,000 rows); for the other
# queries DuckDB's answer to bench/nexmark/sql/qN.sql when that file and ../shared's DuckDB are
# there, else eddy's parallelism-1 result (the configurations must agree). Results are compared
# as multisets of rows: equal when an order-free digest of the header and rows (as text) is
# equal, else with ../shared/tools/csv-compare (columns by name, numbers by value; up to
# 1,000,000 rows). A difference fails the script (exit 1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${EDDY_SHARED:-$root/../shared}
compare=$shared/tools/csv-compare
duckdb_sql=$shared/tools/duckdb-sql
flink=0 events=1000000 seed=1 runs=3 data= jobs=$here build= queries=()
all_queries=(q0 q1 q2 q3 q4 q5 q7 q8)

while (($#)); do
	case $1 in
	--flink) flink=1; shift ;;
	--events) events=${2:?--events needs a number}; shift 2 ;;
	--seed) seed=${2:?--seed needs a number}; shift 2 ;;
	--runs) runs=${2:?--runs needs a number}; shift 2 ;;
	--data) data=${2:?--data needs a directory}; shift 2 ;;
	--jobs) jobs=${2:?--jobs needs a directory}; shift 2 ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	q[0-9]*) queries+=("$1"); shift ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $events =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --events $events: expected a positive number" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "run.sh: --seed $seed: expected a number" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs $runs: expected a positive number" >&2; exit 2; }
[[ -d $jobs ]] || { echo "run.sh: --jobs $jobs: no such directory" >&2; exit 2; }
jobs=$(cd "$jobs" && pwd)
for q in "${queries[@]}"; do
	[[ " ${all_queries[*]} " == *" $q "* ]] || { echo "run.sh: unknown query $q (${all_queries[*]})" >&2; exit 2; }
done
has_baseline() { [[ $1 == q0 || $1 == q5 || $1 == q7 ]]; }
if ((${#queries[@]} == 0)); then
	for q in "${all_queries[@]}"; do
		if [[ -f $jobs/$q.yaml ]] || has_baseline "$q"; then queries+=("$q"); fi
	done
fi

if [[ -z $build ]]; then
	for d in "$root/build" "$root/build-bench"; do
		if [[ -x $d/tools/eddy && -x $d/bench/nexmark/bench_nexmark_baseline ]]; then
			build=$d
			break
		fi
	done
fi
[[ -n $build && -d $build ]] || { echo "run.sh: no build directory; build first" >&2; exit 1; }
build=$(cd "$build" && pwd)
eddy=$build/tools/eddy
baseline=$build/bench/nexmark/bench_nexmark_baseline
peak_rss=$build/bench/flights/bench_peak_rss
for b in "$eddy" "$baseline" "$peak_rss"; do
	[[ -x $b ]] || { echo "run.sh: $b missing; build first (cmake --build ...)" >&2; exit 1; }
done

fail() {
	echo "run.sh: FAILED: $*" >&2
	exit 1
}

# ---- the input, generated once per (events, seed) ----
[[ -n $data ]] || data=$build/nexmark-data/e$events-s$seed
mkdir -p "$data"
data=$(cd "$data" && pwd)
stamp="events=$events seed=$seed"
if [[ -f $data/.nexmark-gen ]]; then
	[[ $(cat "$data/.nexmark-gen") == "$stamp" ]] ||
		fail "$data holds the input of $(cat "$data/.nexmark-gen"), not $stamp: give another --data"
elif [[ -f $data/bids.csv ]]; then
	echo "run.sh: $data has no .nexmark-gen stamp: its files are used as they are" >&2
	stamp=
else
	echo "generating $events events (seed $seed) into $data" >&2
	"$eddy" nexmark-gen --events "$events" --seed "$seed" --out "$data" >&2 ||
		fail "eddy nexmark-gen"
	echo "$stamp" >"$data/.nexmark-gen"
fi
for f in persons auctions bids; do
	[[ -f $data/$f.csv ]] || fail "$data/$f.csv missing"
done
if [[ -z $stamp ]]; then
	events=$(cat "$data/persons.csv" "$data/auctions.csv" "$data/bids.csv" | wc -l)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-nexmark.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

flink_run=
if ((flink)); then
	if [[ -x $root/bench/peers/flink/run.sh ]]; then
		flink_run=$root/bench/peers/flink/run.sh
	else
		echo "run.sh: Flink peer not found ($root/bench/peers/flink/run.sh): Flink skipped" >&2
	fi
fi

# ---- measuring ----
declare -A best this_run rss ckpts

# measure NAME COMMAND...: runs COMMAND under bench_peak_rss (output in $tmp/NAME.log), keeps
# the fastest time of NAME in best[NAME] and its peak RSS (KiB) in rss[NAME]
measure() {
	local name=$1 wall kib
	shift
	if ! "$peak_rss" -o "$tmp/$name.rep" "$@" >"$tmp/$name.log" 2>&1; then
		tail -n 20 "$tmp/$name.log" >&2
		fail "$name: $* exited with an error"
	fi
	read -r wall kib < <(sed 's/wall_s=\([^ ]*\) peak_rss_kib=\(.*\)/\1 \2/' "$tmp/$name.rep")
	this_run[$name]=$wall
	if [[ -z ${best[$name]:-} ]] || awk -v a="$wall" -v b="${best[$name]}" 'BEGIN { exit !(a < b) }'; then
		best[$name]=$wall
	fi
	((kib <= ${rss[$name]:-0})) || rss[$name]=$kib
}

# rows FILE_OR_DIR: the data rows (each file, a part file too, starts with a header)
rows() {
	local n=0 f l
	for f in "$1" "$1"/*; do
		[[ -f $f ]] || continue
		l=$(wc -l <"$f")
		((l == 0)) || n=$((n + l - 1))
	done
	echo "$n"
}

# digest FILE_OR_DIR: "header rows digest" of a CSV result, the rows as a multiset (order-free);
# decimal numbers count by value to 12 significant digits
digest() {
	PYTHONHASHSEED=0 python3 -c '
import os, sys
p = sys.argv[1]
files = sorted(os.path.join(p, n) for n in os.listdir(p) if not n.startswith(".")) if os.path.isdir(p) else [p]
header, rows, total = None, 0, 0
for f in files:
    with open(f, "rb") as fh:
        h = fh.readline().rstrip(b"\r\n")
        if header is None: header = h
        elif h != header: sys.exit(f"{f}: header {h!r}, not {header!r}")
        for line in fh:
            line = line.rstrip(b"\r\n")
            if b"." in line:  # floats by value, to 12 significant digits (a DECIMAL 11357.264
                fs = line.split(b",")  # and the double 11357.264000000001 are one value)
                for i, x in enumerate(fs):
                    if b"." in x and b":" not in x:
                        try: fs[i] = b"%.12g" % float(x)
                        except ValueError: pass
                line = b",".join(fs)
            total = (total + hash(line)) & 0xFFFFFFFFFFFFFFFF
            rows += 1
print((header or b"").decode(), rows, format(total, "016x"))' "$1"
}

# same NAME EXPECTED ACTUAL: ACTUAL (a file or a directory of part files) holds the rows of
# EXPECTED: the same digests (same header, same rows as text), else csv-compare up to
# 1,000,000 rows (columns by name, numbers by value)
same() {
	local name=$1 exp=$2 act=$3 n de da
	de=$(digest "$exp") && da=$(digest "$act") || return 1
	[[ $de != "$da" ]] || return 0
	n=$(rows "$exp")
	if ((n <= 1000000)) && [[ -x $compare ]]; then
		if ! "$compare" "$exp" "$act" >"$tmp/$name.cmp" 2>&1; then
			head -n 20 "$tmp/$name.cmp" >&2
			return 1
		fi
		return 0
	fi
	echo "expected: $de" >&2
	echo "actual:   $da" >&2
	return 1
}

# which of the sources person, auction, bid the job file has (eddy check with a --set of each)
job_sources() { # JOB
	local s out=()
	for s in person auction bid; do
		if "$eddy" check "$1" --set "sources.$s.path=/dev/null" >/dev/null 2>&1; then out+=("$s"); fi
	done
	echo "${out[@]}"
}

normalize_ts() { # FILE: DuckDB's timestamps ('.1', '.12') as eddy's ('.100', none for .000)
	sed -E 's/(:[0-9]{2})\.([0-9])(,|$)/\1.\200\3/g; s/(:[0-9]{2})\.([0-9]{2})(,|$)/\1.\20\3/g; s/(:[0-9]{2})\.000(,|$)/\1\2/g' "$1"
}

# ---- per query ----
duck=
[[ -x $duckdb_sql ]] && "$duckdb_sql" "SELECT 1" >/dev/null 2>&1 && duck=$duckdb_sql
[[ -n $duck ]] || echo "run.sh: no DuckDB ($duckdb_sql): results checked against the baseline and between eddy's runs only" >&2
expected_dir=$data/expected
mkdir -p "$expected_dir"

lines=()
summary=()
for q in "${queries[@]}"; do
	job=$jobs/$q.yaml
	have_job=0
	[[ -f $job ]] && have_job=1
	((have_job)) || echo "run.sh: $q: no $job (bench/nexmark/qN.yaml come from the queries' branch): eddy skipped" >&2
	configs=()
	set_args=()
	if ((have_job)); then
		configs=(eddy_p1 eddy_p2 eddy_p1_ckpt eddy_p2_ckpt)
		for s in $(job_sources "$job"); do
			case $s in person) f=persons ;; auction) f=auctions ;; bid) f=bids ;; esac
			set_args+=(--set "sources.$s.path=$data/$f.csv")
		done
		((${#set_args[@]})) || fail "$job has no source person, auction or bid"
		if grep -q '^checkpoint:' "$job"; then
			echo "run.sh: WARNING: $job has a checkpoint: section, so its runs 'without a checkpoint' checkpoint too" >&2
		fi
	fi

	# the reference result, and what it was checked against
	ref= ref_w= ref_what=
	if has_baseline "$q"; then
		"$baseline" -q "$q" -o "$tmp/$q.ref.csv" "$data/bids.csv" 2>"$tmp/$q.ref.log" ||
			{ cat "$tmp/$q.ref.log" >&2; fail "baseline $q"; }
		ref=$tmp/$q.ref.csv ref_what="the baseline"
		if [[ $q != q0 ]]; then
			"$baseline" -q "$q" -W -o "$tmp/$q.ref-w.csv" "$data/bids.csv" 2>/dev/null || fail "baseline $q -W"
			ref_w=$tmp/$q.ref-w.csv
		fi
		if [[ -n $duck ]] && { [[ $q != q0 ]] || (($(rows "$ref") <= 2000000)); }; then
			eq=$q
			[[ $q == q0 ]] || eq=${q}w
			if [[ ! -f $expected_dir/baseline.$eq.expected.csv ]]; then
				echo "computing DuckDB's $q on $data (tests/data/nexmark_baseline/expected.sh)" >&2
				DUCKDB_SQL=$duck "$root/tests/data/nexmark_baseline/expected.sh" "$data/bids.csv" \
					"$expected_dir/baseline" "$eq" || fail "expected.sh $q"
			fi
			same "baseline-$q" "$expected_dir/baseline.$eq.expected.csv" "${ref_w:-$ref}" ||
				fail "the baseline's $q differs from DuckDB's"
			ref_what="the baseline (= DuckDB's)"
		fi
	elif [[ -n $duck && -f $root/bench/nexmark/sql/$q.sql && -f $root/bench/nexmark/sql/tables.sql ]]; then
		if [[ ! -f $expected_dir/$q.csv ]]; then
			echo "computing DuckDB's $q on $data (bench/nexmark/sql/$q.sql)" >&2
			mapfile -t stmts < <(sed "s|\${DATA}|$data|g" "$root/bench/nexmark/sql/tables.sql" |
				sed 's/--.*//' | tr '\n' ' ' | tr ';' '\n' | sed '/^[[:space:]]*$/d')
			sql=$(sed 's/--.*//' "$root/bench/nexmark/sql/$q.sql" | tr '\n' ' ' | sed 's/;[[:space:]]*$//')
			"$duck" "${stmts[@]}" "COPY ($sql) TO '$tmp/$q.duck.csv' (HEADER)" >/dev/null ||
				fail "DuckDB on bench/nexmark/sql/$q.sql"
			normalize_ts "$tmp/$q.duck.csv" >"$expected_dir/$q.csv"
		fi
		ref=$expected_dir/$q.csv ref_what="DuckDB's (bench/nexmark/sql/$q.sql)"
	fi

	for ((r = 1; r <= runs; r++)); do
		if has_baseline "$q"; then
			rm -f "$tmp/$q.baseline.csv"
			measure "$q.baseline" "$baseline" -q "$q" -o "$tmp/$q.baseline.csv" -e "$events" "$data/bids.csv"
			cmp -s "$tmp/$q.baseline.csv" "$ref" || fail "baseline $q: another result in run $r"
			rm -f "$tmp/$q.baseline.csv"
		fi
		for c in "${configs[@]}"; do
			out=$tmp/$q.$c.out ck=$tmp/$q.$c.ck
			rm -rf "$out" "$ck"
			p=${c#eddy_p}
			p=${p%%_*}
			args=("${set_args[@]}" --set "sinks.out.path=$out" --set "parallelism=$p")
			[[ $c != *_ckpt ]] || args+=(--set checkpoint.interval=1s --set "checkpoint.dir=$ck")
			measure "$q.$c" "$eddy" run "$job" "${args[@]}" --control none
			if [[ $c == *_ckpt ]]; then
				n=$(find "$ck" -path '*/chk-*/MANIFEST' 2>/dev/null | sed 's|.*/chk-\([0-9]*\)/MANIFEST|\1|' | sort -n | tail -1)
				((${n:-0} <= ${ckpts[$q.$c]:-0})) || ckpts[$q.$c]=$n
			fi
			# the check: the whole result the first time, the row count after
			if [[ -z $ref ]]; then
				ref=$tmp/$q.eddy-ref
				cp -r "$out" "$ref"
				ref_what="eddy's first run ($c; no other reference)"
			elif ((r == 1)); then
				exp=$ref
				if [[ -n $ref_w ]] && head -qn 1 "$out"/* 2>/dev/null | head -1 | grep -q 'window_start.*window_end'; then
					exp=$ref_w # eddy writes the windows: compare them too
				fi
				same "$q.$c" "$exp" "$out" || fail "eddy $q $c: the result differs from $ref_what"
			else
				[[ $(rows "$out") == "$(rows "$ref")" ]] ||
					fail "eddy $q $c run $r: $(rows "$out") rows, $ref_what has $(rows "$ref")"
			fi
			rm -rf "$out" "$ck"
		done
		if [[ -n $flink_run ]]; then
			for p in 1 2; do
				if ! "$flink_run" --data "$data" --parallelism "$p" "$q" >"$tmp/$q.flink_p$p.log" 2>&1; then
					tail -n 20 "$tmp/$q.flink_p$p.log" >&2
					fail "flink $q at parallelism $p"
				fi
				s=$(sed -n "s/^FLINK query=$q parallelism=$p events=[0-9]* seconds=\([0-9.]*\) .*/\1/p" "$tmp/$q.flink_p$p.log")
				[[ -n $s ]] || fail "flink $q p$p printed no FLINK line"
				this_run[$q.flink_p$p]=$s
				if [[ -z ${best[$q.flink_p$p]:-} ]] || awk -v a="$s" -v b="${best[$q.flink_p$p]}" 'BEGIN { exit !(a < b) }'; then
					best[$q.flink_p$p]=$s
				fi
			done
		fi
		printf '%s run %d: seconds:' "$q" "$r" >&2
		for n in baseline "${configs[@]}" flink_p1 flink_p2; do
			[[ -z ${this_run[$q.$n]:-} ]] || printf ' %s=%s' "$n" "${this_run[$q.$n]}" >&2
			unset "this_run[$q.$n]"
		done
		echo >&2
	done

	eps() { # NAME: events / best seconds, or -
		local s=${best[$q.$1]:-}
		if [[ -z $s ]]; then echo -; else awk -v n="$events" -v s="$s" 'BEGIN { printf "%.0f", n / s }'; fi
	}
	ratio() { # A B: A / B to 2 decimals, or -
		if [[ $1 == - || $2 == - ]]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
	}
	e1=$(eps eddy_p1) e2=$(eps eddy_p2) e1c=$(eps eddy_p1_ckpt) e2c=$(eps eddy_p2_ckpt)
	b=$(eps baseline) f1=$(eps flink_p1) f2=$(eps flink_p2)
	r1=$(ratio "$e1" "$f1") r2=$(ratio "$e2" "$f2")
	rf=$r1
	if [[ $r2 != - ]] && { [[ $rf == - ]] || awk -v a="$r2" -v b="$rf" 'BEGIN { exit !(a < b) }'; }; then rf=$r2; fi
	rb=$(ratio "$e1" "$b")
	lines+=("BENCH nexmark.$q events=$events eddy_p1_eps=$e1 eddy_p2_eps=$e2 eddy_p1_ckpt_eps=$e1c eddy_p2_ckpt_eps=$e2c baseline_eps=$b flink_p1_eps=$f1 flink_p2_eps=$f2 ratio_flink=$rf ratio_baseline=$rb")
	ck1=${ckpts[$q.eddy_p1_ckpt]:-0} ck2=${ckpts[$q.eddy_p2_ckpt]:-0}
	[[ ${#configs[@]} -gt 0 ]] || ck1=- ck2=-
	summary+=("$(printf '%-3s %10s %10s %10s %10s %10s %10s %10s %6s %6s  %s rows, checked against %s; checkpoints completed (newest id) p1 %s, p2 %s' \
		"$q" "$e1" "$e2" "$e1c" "$e2c" "$b" "$f1" "$f2" "$rf" "$rb" "$(if [[ -n $ref ]]; then rows "$ref"; else echo -; fi)" \
		"${ref_what:-nothing}" "$ck1" "$ck2")")
done

printf '\nNexmark: %s events (persons + auctions + bids) in %s, best of %d runs, events/s\n' "$events" "$data" "$runs"
printf '%-3s %10s %10s %10s %10s %10s %10s %10s %6s %6s\n' "" eddy_p1 eddy_p2 p1_ckpt p2_ckpt baseline flink_p1 flink_p2 x_flink x_base
for s in "${summary[@]}"; do echo "$s"; done
echo
for l in "${lines[@]}"; do echo "$l"; done
