#!/usr/bin/env bash
# Bad jobs and bad input for `eddy run`: every case gets the exact exit code (0 done,
# 1 job failed, 2 bad usage or config) and a message naming where the problem is, and
# nothing crashes (no exit code >= 124, no sanitizer report) or hangs. Fixtures are in
# tests/bad/; tests/bad/job.yaml is a small valid job the input cases point at a fixture
# with --set.
#
# usage: bad_jobs.sh EDDY SRC BUILD   (set EDDY_TEST_TIMEOUT=seconds for slow builds)
set -u
eddy=$1; src=$2; build=$3; work=$3/bad_jobs
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
limit=${EDDY_TEST_TIMEOUT:-10}
job=tests/bad/job.yaml

# run NAME WANT_RC ARGS...: runs `eddy ARGS` with a time limit into $work/NAME.{stdout,stderr}
# and checks the exit code; a hang, a signal or a sanitizer report fails whatever the code.
run() {
  local name=$1 want=$2; shift 2
  out=$work/$name.stdout err=$work/$name.stderr
  timeout -k 5 "$limit" "$eddy" "$@" > "$out" 2> "$err"; rc=$?
  [ $rc -ne 124 ] && [ $rc -ne 137 ] || { cat "$err"; fail "$name: eddy $* hung (> $limit s)"; }
  [ $rc -lt 124 ] || { cat "$err"; fail "$name: eddy $* crashed (exit $rc)"; }
  ! grep -qE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' "$err" ||
    { cat "$err"; fail "$name: sanitizer report"; }
  [ $rc -eq "$want" ] || { cat "$err"; fail "$name: eddy $* exited $rc, want $want"; }
}

# line NAME TEXT: stderr has the line TEXT, exactly.
line() {
  grep -qxF -- "$2" "$err" || { cat "$err"; fail "$1: stderr lacks the line: $2"; }
}

# line_re NAME ERE: stderr has a whole line matching ERE.
line_re() {
  grep -qxE -- "$2" "$err" || { cat "$err"; fail "$1: stderr has no line matching: $2"; }
}

# only NAME TEXT: stderr is exactly TEXT (one line).
only() {
  [ "$(cat "$err")" = "$2" ] || { cat "$err"; fail "$1: stderr is not exactly: $2"; }
}

# re_quote TEXT: TEXT as an ERE matching it literally.
re_quote() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# failed NAME REASON: the job failed with a line "eddy run: job bad failed: ..." ending in
# REASON (the location and the reason are exact; the supervision wrapper is not).
failed() {
  line_re "$1" "eddy run: job bad failed: (.*: )?$(re_quote "$2")"
}

# input NAME FILE WANT_RC: runs tests/bad/job.yaml on FILE.
input() {
  local name=$1 file=$2 want=$3
  run "$name" "$want" run "$job" --set "sources.flights.path=$file" --set "sinks.out.path=$work/out-$name"
}

# summary NAME JOB IN OUT LATE SKIPPED DEAD: the summary line of a finished job.
summary() {
  line_re "$1" "eddy run: job $2 finished in [0-9]+\.[0-9]{3} s: $3 records in, $4 out, $5 late dropped, $6 skipped, $7 dead letters"
}

# rows NAME DIR EXPECTED: the part files in DIR hold exactly the lines EXPECTED (header
# once per part file, rows in any order).
rows() {
  printf '%s\n' "$3" > "$work/$1.expected"
  same_rows "$work/$1.expected" "$2" || fail "$1: wrong result"
}

hdr=window_start,window_end,origin,flights,total_delay
day='2001-01-01 00:00:00,2001-01-02 00:00:00'

# --- bad input: exit 1, FILE:LINE:COL and the reason --------------------------------
input good tests/bad/good.csv 0
summary good bad 3 2 0 0 0
rows good "$work/out-good" "$hdr
$day,ANC,1,-13
$day,ROC,2,12"
echo "ok: good (the fixture job works)"

# 4 fields instead of 5: the column is where the missing field should start
input short_row tests/bad/short_row.csv 1
line_re short_row "eddy run: job bad failed: (.*: )?tests/bad/short_row\.csv:3:30: expected 5 fields, found 4"
echo "ok: short_row"

input bad_int tests/bad/bad_int.csv 1
failed bad_int "tests/bad/bad_int.csv:3:21: field 'delay': 'abc' is not an int"
echo "ok: bad_int"

# projection pushdown: the job reads date, delay and origin only; the others are not
# parsed, so a bad int in 'distance' is no error until a job reads distance
run check_parses 0 check "$job"
grep -qx "      parses: date, delay, origin (3 of 5 fields: the job reads no other; they stay null)" \
  "$work/check_parses.stdout" || { cat "$work/check_parses.stdout"; fail "check: the fields a file source parses"; }
input bad_unread tests/bad/bad_unread.csv 0
summary bad_unread bad 3 2 0 0 0
rows bad_unread "$work/out-bad_unread" "$hdr
$day,ANC,1,-13
$day,ROC,2,12"
run bad_read 1 run "$job" --set sources.flights.path=tests/bad/bad_unread.csv \
  --set "sinks.out.path=$work/out-bad_read" --set "operators.daily.aggregates.total_delay=sum(distance)"
failed bad_read "tests/bad/bad_unread.csv:3:23: field 'distance': 'abc' is not an int"
echo "ok: bad_unread (a bad value in a field no operator reads is not parsed; read, it fails the job)"

input bad_timestamp tests/bad/bad_ts.csv 1
failed bad_timestamp "tests/bad/bad_ts.csv:3:1: field 'date': '2001-13-45 99:02:00' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO 8601 or epoch ms)"
echo "ok: bad_timestamp"

input unterminated_quote tests/bad/unterminated.csv 1
failed unterminated_quote "tests/bad/unterminated.csv:3:27: unterminated quoted field"
echo "ok: unterminated_quote"

input header_mismatch tests/bad/header_mismatch.csv 1
failed header_mismatch "tests/bad/header_mismatch.csv:1:1: header has 'origin' where the schema has 'date'"
echo "ok: header_mismatch"

# a 0-byte file with header: true is an empty table: no records, exit 0, header-only output
[ -f tests/bad/empty.csv ] && [ ! -s tests/bad/empty.csv ] || fail "tests/bad/empty.csv must be 0 bytes"
input empty tests/bad/empty.csv 0
summary empty bad 0 0 0 0 0
rows empty "$work/out-empty" "$hdr"
echo "ok: empty"

input header_only tests/bad/header_only.csv 0
summary header_only bad 0 0 0 0 0
rows header_only "$work/out-header_only" "$hdr"
echo "ok: header_only"

input missing tests/bad/does-not-exist.csv 1
failed missing "tests/bad/does-not-exist.csv: cannot open: No such file or directory"
echo "ok: missing"

# a gzip stream cut in half: an error naming the file, never a silent partial result
gzip -nc tests/bad/good.csv > "$work/full.csv.gz"
head -c $(($(stat -c %s "$work/full.csv.gz") / 2)) "$work/full.csv.gz" > "$work/half.csv.gz"
input truncated_gz "$work/half.csv.gz" 1
line_re truncated_gz "eddy run: job bad failed: (.*: )?$(re_quote "$work/half.csv.gz"): .*(unexpected end of file|truncated).*"
! grep -qF '<fd:' "$err" || { cat "$err"; fail "truncated_gz: the message shows zlib's internal file name <fd:N>"; }
echo "ok: truncated_gz"

# a UTF-8 byte order mark (Excel writes one) before the header is not part of the first
# column's name: the file reads as if it were not there
input bom tests/bad/bom.csv 0
summary bom bad 3 2 0 0 0
rows bom "$work/out-bom" "$hdr
$day,ANC,1,-13
$day,ROC,2,12"
echo "ok: bom"

# --- bad config: exit 2, FILE:LINE:COL and a suggestion where one is close -----------
config() { # config NAME MESSAGE: eddy run tests/bad/NAME.yaml exits 2 printing MESSAGE only
  run "$1" 2 run "tests/bad/$1.yaml"
  only "$1" "eddy run: tests/bad/$1.yaml:$2"
  echo "ok: $1"
}
config invalid_yaml "7:6: invalid YAML: did not find expected ',' or '}' while parsing a flow mapping at 6:13"
config unknown_connector "4:16: 'connector' must be one of file, datagen, nexmark, got 'kafak'"
config unknown_operator "10:19: 'type' must be one of filter, map, window, union, native, top_n, split, join, got 'filtre' (did you mean 'filter'?)"
config unknown_key "2:1: unknown key 'paralelism' in the job (did you mean 'parallelism'?)"
config unknown_input "10:34: input 'flihgts' names no source, operator or side output (did you mean 'flights'?)"
config channels "8:10: 'both' would have 65536 input channels (the parallelism of its inputs added up); at most 65535"
config cycle "10:34: the graph has a cycle through 'a': an operator cannot consume its own output"
config type_error_plus "10:57: where: operator '+' cannot add string and int"
config type_error_notbool "10:50: where: the condition must be bool, got int"
# the nexmark source's options (connectors/nexmark.c)
config nexmark_negative_events "5:13: 'events' must be between 0 and 4611686018427387903, got -5"
config nexmark_unknown_kind "5:11: 'kind' must be one of person, auction, bid, all, got 'bids' (did you mean 'bid'?)"
config nexmark_bad_tps "5:10: 'tps' must be between 1 and 1000000000, got 0"
config nexmark_unknown_key "5:5: unknown key 'event' in a nexmark source (did you mean 'events'?)"
config nexmark_bad_fraction "5:23: 'delayed_fraction' must be a number from 0 to 1"
config nexmark_ooo_953 "5:30: out_of_order_group_size must not be a multiple of 953 (the order within a group is event number × 953 modulo the size)"

# top_n and split (operators/topn.c, split.c)
config topn_n "16:8: 'n' must be between 1 and 100000, got 0"
config topn_order_by "14:15: order_by: a bool cannot be ordered (order by an int, float, timestamp or string)"
config topn_window_input "17:13: window: input needs the input's window_start and window_end columns (as a window operator's output has), but the input has no 'window_start'"
config split_duplicate "17:7: duplicate key 'late' (first at 15:7)"
config split_default "17:14: default 'early' is also an output (at 16:7): the default output needs a name of its own"
config split_input "16:39: input 'kinds' is a split: name one of its outputs, 'kinds.NAME'"
setcase_file() { # setcase_file NAME FILE MESSAGE KEY=VALUE: a --set on FILE exits 2 printing MESSAGE
  run "$1" 2 run "$2" --set "$4"
  only "$1" "eddy run: $3"
  echo "ok: $1"
}
run topn_ok 0 run tests/bad/topn.yaml --control none --set "sinks.out.path=$work/out-topn_ok"
rows topn_ok "$work/out-topn_ok" "window_start,window_end,date,delay,distance,origin,destination,rank
$day,2001-01-01 00:03:00,7,528,ROC,ORD,1
$day,2001-01-01 00:02:00,5,528,ROC,ORD,2
$day,2001-01-01 00:01:00,-13,2345,ANC,LAX,3"
echo "ok: topn_ok"
setcase_file topn_session tests/bad/topn.yaml "--set operators.top.window.type: 'type' must be one of tumbling, sliding, got 'session'" operators.top.window.type=session
setcase_file topn_order tests/bad/topn.yaml "--set operators.top.order: 'order' must be one of desc, asc, got 'down'" operators.top.order=down
setcase_file topn_rank_field tests/bad/topn.yaml "--set operators.top.rank_field: the input already has a column 'delay': name the rank column with rank_field" operators.top.rank_field=delay
setcase_file split_pred tests/bad/split.yaml "--set operators.kinds.outputs.late: outputs.late: the predicate must be bool, got int" operators.kinds.outputs.late=delay

# global windows (operators/window.c): fired once at the end of the input, nothing late
config window_global "17:23: a global window fires at the end of the input and has no late records: remove allowed_lateness"
setcase_file window_global_late tests/bad/window_global.yaml "--set operators.all_time.late_output: a global window fires at the end of the input and has no late records: remove late_output" operators.all_time.late_output=late
setcase_file window_global_size tests/bad/window_global.yaml "--set operators.all_time.window.size: unknown key 'size' in a global window" operators.all_time.window.size=1h
run window_global_ok 0 run tests/bad/window_global.yaml --control none --set operators.all_time.allowed_lateness=0s \
  --set "sinks.out.path=$work/out-window_global"
rows window_global_ok "$work/out-window_global" "window_start,window_end,origin,flights,total_delay,worst
2001-01-01 00:01:00,2001-01-01 00:01:00.001,ANC,1,-13,-13
2001-01-01 00:02:00,2001-01-01 00:03:00.001,ROC,2,12,7"
echo "ok: window_global_ok (one row per key at the end, its extent as window_start/window_end)"

# joins (operators/join.c): keys, names and bounds are checked when the plan is built
config join_no_right_key "11:5: a join is missing required key 'right_key' (a field, an expression or a list of them)"
config join_key_count "17:16: right_key has 1 key and left_key 2: they pair up in order"
config join_key_type "17:25: right_key: key 2 is int but left_key's is string: paired keys must have the same type"
config join_clash "14:12: the output would have two fields 'date' (left's and right's): set prefix: {left: ..., right: ...} to name them apart"
config join_bounds "20:12: upper (-5000 ms) is below lower (5000 ms): no pair could match"
config join_late_scalar "21:18: a join's late_output is a map {left: STREAM, right: STREAM} (either may be left out)"
run join_ok 0 run tests/bad/join.yaml --control none --set "sinks.out.path=$work/out-join"
summary join_ok bad 3 5 0 0 0
echo "ok: join_ok (the join fixture works)"
run join_input 2 run tests/bad/join.yaml --set operators.j.input=flights
only join_input "eddy run: --set operators.j.input: a join reads 'left' and 'right', not 'input'"
echo "ok: join_input"
run join_kind_option 2 run tests/bad/join.yaml --set operators.j.ttl=1m
only join_kind_option "eddy run: --set operators.j.ttl: 'ttl' is an option of a join of kind: regular, not window"
echo "ok: join_kind_option"
run join_where 2 run tests/bad/join.yaml --set "operators.j.where=a_delay + b_origin > 0"
only join_where "eddy run: --set operators.j.where: where: operator '+' cannot add int and string"
echo "ok: join_where"

# native operators (include/eddy/operator.h): the library is loaded and checked when the
# plan is built, so every problem is a config error (exit 2) before anything runs
config native "16:14: cannot load the library: tests/bad/libnope.so: cannot open shared object file: No such file or directory"
config native_no_output "10:5: a native operator is missing required key 'output' (its fields: a list like {name: amount, type: float})"
lib=$build/examples/fraud/libfraud.so
[ -f "$lib" ] || fail "native: $lib is not built"
native() { # native NAME WANT_RC MESSAGE [--set ...]: tests/bad/native.yaml with the built library
  local name=$1 want=$2 msg=$3; shift 3
  run "$name" "$want" run tests/bad/native.yaml --control none --set "operators.fraud.library=$lib" "$@"
  [ -z "$msg" ] || only "$name" "eddy run: $msg"
  echo "ok: $name"
}
native native_symbol 2 "--set operators.fraud.symbol: the library $lib has no symbol 'fraud_detectr'" \
  --set operators.fraud.symbol=fraud_detectr
bad_abi=$build/examples/fraud/libfraud_badabi.so
native native_abi 2 "tests/bad/native.yaml:17:13: 'fraud_detector' in $bad_abi is not an ev_operator of ABI 1 (it says 2): rebuild it against this eddy's include/eddy/operator.h" \
  --set "operators.fraud.library=$bad_abi"
native native_param_key 2 "--set operators.fraud.params.smal: unknown key 'smal' in the params of fraud_detector (did you mean 'small'?)" \
  --set operators.fraud.params.smal=1
native native_param_duration 2 "--set operators.fraud.params.window: 'params.window': expected a duration like 250ms, 10s, 5m, 1h or 1d, got '1minute'" \
  --set operators.fraud.params.window=1minute
native native_param_float 2 "--set operators.fraud.params.large: 'params.large' must be a number, got 'lots'" \
  --set operators.fraud.params.large=lots
native native_key 2 "--set operators.fraud.librar: unknown key 'librar' in a native operator (did you mean 'library'?)" \
  --set operators.fraud.librar=x
native native_type 2 "--set operators.fraud.output.1.type: 'type' must be one of int, float, bool, string, timestamp, got 'integer'" \
  --set operators.fraud.output.1.type=integer
# the operator's own failure at run time (open): exit 1 with its reason
native native_open_fails 1 "" --set operators.fraud.params.account=acct
failed native_open_fails "fraud_detector: the input has no field 'acct'"
native native_ok 0 ""
[ "$(head -1 "$out")" = "account_id,small_time,small_amount,large_time,large_amount" ] ||
  fail "native_ok: no alerts printed"

run check_ok 0 check "$job"
echo "ok: check_ok"
run check_bad 2 check tests/bad/unknown_key.yaml
only check_bad "eddy check: tests/bad/unknown_key.yaml:2:1: unknown key 'paralelism' in the job (did you mean 'parallelism'?)"
[ ! -s "$out" ] || fail "check_bad: printed a plan for an invalid job"
echo "ok: check_bad"

# --- on_error: skip and dead_letter ------------------------------------------------
# mixed.csv: 5 rows, 2 bad (line 3 'abc' in delay, line 5 a bad date)
mixed_result="$hdr
$day,ANC,2,-3
$day,ROC,1,7"

run skip 0 run tests/bad/skip.yaml --set "sinks.out.path=$work/out-skip"
summary skip skip 3 2 0 2 0
rows skip "$work/out-skip" "$mixed_result"
echo "ok: skip"

run dead_letter 0 run tests/bad/dead_letter.yaml --set "sinks.out.path=$work/out-dead" \
  --set "sinks.dead.path=$work/dead-letters"
summary dead_letter dead 3 4 0 0 2
rows dead_letter "$work/out-dead" "$mixed_result"
rows dead_letter_file "$work/dead-letters" "file,line,error,record
tests/bad/mixed.csv,3,column 21: field 'delay': 'abc' is not an int,\"2001-01-01 00:02:00,abc,528,ROC,ORD\"
tests/bad/mixed.csv,5,\"column 1: field 'date': 'not a date' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO 8601 or epoch ms)\",\"not a date,1,2,SFO,LAX\""
echo "ok: dead_letter"

# a stray quote inside an unquoted field (line 3) is one bad record: the records after it
# are read as usual, not swallowed into it
run skip_stray_quote 0 run tests/bad/skip.yaml --set sources.flights.path=tests/bad/stray_quote.csv \
  --set "sinks.out.path=$work/out-skip_stray_quote"
summary skip_stray_quote skip 4 4 0 1 0
rows skip_stray_quote "$work/out-skip_stray_quote" "$hdr
$day,A,1,1
$day,G,1,1
$day,I,1,1
$day,K,1,1"
echo "ok: skip_stray_quote"

# --- --set and the command line: exit 2 ---------------------------------------------
setcase() { # setcase NAME MESSAGE KEY=VALUE
  run "$1" 2 run "$job" --set "$3"
  only "$1" "eddy run: $2"
  echo "ok: $1"
}
setcase set_no_equals "--set: expected KEY=VALUE, got 'parallelism'" parallelism
setcase set_empty_key "--set: expected KEY=VALUE, got '=1'" =1
setcase set_empty_segment "--set sources..path=x: empty segment in key 'sources..path'" sources..path=x
setcase set_unknown_id "--set sources.nope.path=x: no entry with id 'nope' in sources" sources.nope.path=x
setcase set_unknown_key "--set sources.flights.nosuch: unknown key 'nosuch' in a file source" sources.flights.nosuch=x
setcase set_not_int "--set parallelism: 'parallelism' must be an integer, got 'abc'" parallelism=abc
setcase set_zero "--set parallelism: 'parallelism' must be between 1 and 128, got 0" parallelism=0
setcase set_scalar "--set sources.flights.path.x=1: 'sources.flights.path' is a scalar, not a map" sources.flights.path.x=1
setcase set_enum "--set sources.flights.connector: 'connector' must be one of file, datagen, nexmark, got 'fiel' (did you mean 'file'?)" sources.flights.connector=fiel
setcase sup_strategy "--set supervision.strategy: 'strategy' must be one of one_for_one, one_for_all, rest_for_one, got 'one_for_al' (did you mean 'one_for_all'?)" supervision.strategy=one_for_al
setcase sup_period "--set supervision.period: 'period' must be more than 0" supervision.period=0
setcase sup_key "--set supervision.intensty: unknown key 'intensty' in supervision (did you mean 'intensity'?)" supervision.intensty=2
setcase sup_multiplier "--set supervision.backoff.multiplier: 'multiplier' must be a number from 1 to 1000" supervision.backoff.multiplier=0.5
setcase ckpt_mode "--set checkpoint.mode: 'mode' must be one of exactly_once, at_least_once, got 'exactly-once' (did you mean 'exactly_once'?)" checkpoint.mode=exactly-once
setcase ckpt_interval "--set checkpoint.interval: 'interval' must be at least 10ms" checkpoint.interval=5ms
setcase ckpt_retain "--set checkpoint.retain: 'retain' must be between 1 and 1000, got 0" checkpoint.retain=0
setcase ckpt_max_alignment "--set checkpoint.max_alignment: 'max_alignment' must be at least 1B" checkpoint.max_alignment=0
setcase ckpt_max_alignment_unit "--set checkpoint.max_alignment: 'max_alignment': expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, got 'lots'" checkpoint.max_alignment=lots
setcase ckpt_incremental "--set checkpoint.incremental: 'incremental' must be true or false (also yes/no, on/off), got 'maybe'" checkpoint.incremental=maybe
setcase control_key "--set control.adress: unknown key 'adress' in control (did you mean 'address'?)" control.adress=x

run set_no_value 2 run "$job" --set
only set_no_value "eddy run: --set needs a value"
echo "ok: set_no_value"

run no_file 2 run
[ "$(head -1 "$err")" = "usage: eddy run JOB.yaml [--set KEY=VALUE ...] [--workers N]" ] ||
  { cat "$err"; fail "no_file: no usage on stderr"; }
echo "ok: no_file"

run unknown_option 2 run "$job" --frob
[ "$(head -1 "$err")" = "eddy run: unknown option --frob" ] || { cat "$err"; fail "unknown_option"; }
line unknown_option "usage: eddy run JOB.yaml [--set KEY=VALUE ...] [--workers N]"
echo "ok: unknown_option"

run two_files 2 run "$job" tests/bad/skip.yaml
only two_files "eddy run: one job file only (got $job and tests/bad/skip.yaml)"
echo "ok: two_files"

run missing_job 2 run tests/bad/no-such-job.yaml
only missing_job "eddy run: tests/bad/no-such-job.yaml: cannot open: No such file or directory"
echo "ok: missing_job"

run bad_workers 2 run "$job" --workers 0
only bad_workers "eddy run: --workers takes a number from 1 to 1024"
echo "ok: bad_workers"

echo "all bad-job tests passed"
