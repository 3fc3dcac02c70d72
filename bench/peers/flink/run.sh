#!/usr/bin/env bash
# bench/peers/flink/run.sh: the Apache Flink peer of the Nexmark benchmark (issue 6). Runs the
# nexmark repository's Flink SQL for each query on Flink 2.3.0 (Table API, streaming mode, a
# local mini cluster in one JVM per run) over the CSV files of `eddy nexmark-gen` in DIR, with
# the blackhole sink, once per parallelism, and prints per run
#   FLINK query=qN parallelism=P events=N seconds=S eps=E
#   FLINK_TIMES query=qN parallelism=P plan_submit_seconds=... job_seconds=S execute_to_end_seconds=...
#     input_check_seconds=... checkpoint_ms=MS
# and with --checkpoint-ms also FLINK_CHECKPOINTS query=qN parallelism=P completed=K.
# First line: FLINK_VERSION flink=... java=... jvm=...
# seconds = the job's net run time measured by the mini cluster (no JVM start, no SQL planning);
# events = the lines of persons.csv + auctions.csv + bids.csv; eps = events / seconds.
#
# Usage: bench/peers/flink/run.sh --data DIR [--parallelism 1,2] [--checkpoint-ms MS] [--runs N] [qN ...]
#   --data DIR          the directory written by `eddy nexmark-gen --out DIR`
#   --parallelism LIST  comma-separated parallelisms (default 1,2)
#   --checkpoint-ms MS  aligned exactly-once checkpoints every MS ms to a temporary directory
#   --runs N            run each query N times and print the lines of the fastest run (default 1)
#   qN ...              queries among q0 q1 q2 q3 q4 q5 q7 q8 (default all)
# Builds the Maven project once (target/), offline when ~/.m2 has everything, else from Maven
# Central. Needs java 17+ and mvn. Each run's Flink log (warnings) is in target/logs/
# (qN-pP-cMS-rR.log).
# Exit: 0 all runs done, 1 a run failed (its log's tail is printed), 2 bad arguments.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

data= pars=1,2 checkpoint=0 runs=1 queries=()
while (($#)); do
	case $1 in
	--data) data=${2:?--data needs a directory}; shift 2 ;;
	--parallelism) pars=${2:?--parallelism needs a list such as 1,2}; shift 2 ;;
	--checkpoint-ms) checkpoint=${2:?--checkpoint-ms needs a number}; shift 2 ;;
	--runs) runs=${2:?--runs needs a number}; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	q[0-9]*) queries+=("$1"); shift ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -n $data ]] || { echo "run.sh: --data DIR is required" >&2; exit 2; }
[[ -d $data ]] || { echo "run.sh: --data $data: no such directory" >&2; exit 2; }
[[ $pars =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "run.sh: --parallelism $pars: expected a list such as 1,2" >&2; exit 2; }
[[ $checkpoint =~ ^[0-9]+$ ]] || { echo "run.sh: --checkpoint-ms $checkpoint: expected a number of ms" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs $runs: expected a positive number" >&2; exit 2; }
((${#queries[@]})) || queries=(q0 q1 q2 q3 q4 q5 q7 q8)
for q in "${queries[@]}"; do
	case $q in q0 | q1 | q2 | q3 | q4 | q5 | q7 | q8) ;; *) echo "run.sh: unknown query $q (q0 q1 q2 q3 q4 q5 q7 q8)" >&2; exit 2 ;; esac
done

flink_build
mkdir -p "$here/target/logs"
flink_java --version

status=0
IFS=, read -ra plist <<<"$pars"
for p in "${plist[@]}"; do
	for q in "${queries[@]}"; do
		best= best_s=
		for ((r = 1; r <= runs; r++)); do
			log=$here/target/logs/$q-p$p-c$checkpoint-r$r.log
			args=(--data "$data" --query "$q" --parallelism "$p")
			((checkpoint > 0)) && args+=(--checkpoint-ms "$checkpoint")
			if ! out=$(flink_java "${args[@]}" 2>"$log"); then
				echo "run.sh: $q at parallelism $p failed; the end of $log:" >&2
				tail -n 20 "$log" >&2
				status=1
				continue 2
			fi
			if ((checkpoint > 0)); then
				out+=$'\n'"FLINK_CHECKPOINTS query=$q parallelism=$p completed=$(grep -c 'Completed checkpoint' "$log" || true)"
			fi
			s=$(sed -n 's/^FLINK query=.* seconds=\([0-9.]*\) .*/\1/p' <<<"$out")
			[[ -n $s ]] || { echo "run.sh: $q at parallelism $p printed no FLINK line" >&2; status=1; continue 2; }
			if [[ -z $best_s ]] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
				best=$out best_s=$s
			fi
		done
		echo "$best"
	done
done
exit $status
