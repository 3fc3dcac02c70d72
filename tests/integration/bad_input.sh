#!/usr/bin/env bash
# Bad input gets a clear error naming where it came from, and a non-zero exit.
set -u
eddy=$1; dir=$2/bad_input; mkdir -p "$dir"
fail() { echo "FAIL: $*"; exit 1; }

{ echo "date,delay,distance,origin,destination"
  echo "2001-01-01 00:01:00,-13,2345,ANC,LAX"
  echo "2001-01-01 00:02:00,5,528,ROC,ORD"
  echo "2001-01-01 00:03:00,late,528,ROC,ORD"
  echo "2001-01-01 00:04:00,1,528,ROC,ORD"; } > "$dir/bad.csv"
"$eddy" demo "$dir/bad.csv" > "$dir/out.csv" 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] || fail "malformed record: exit $rc, want 1"
grep -q "bad.csv:4: delay is not an integer" "$dir/err.txt" || fail "error does not name file:line: $(cat "$dir/err.txt")"
[ ! -s "$dir/out.csv" ] || fail "a failed job printed results"

printf 'date,delay,distance,origin,destination\n2001-01-01 00:01:00,1,2\n' > "$dir/short.csv"
"$eddy" demo "$dir/short.csv" > /dev/null 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "short.csv:2: expected 5 fields" "$dir/err.txt" || fail "short line: exit $rc: $(cat "$dir/err.txt")"

"$eddy" demo "$dir/does-not-exist.csv" > /dev/null 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "does-not-exist.csv: cannot open" "$dir/err.txt" || fail "missing file: exit $rc"

printf 'date,delay,distance,origin,destination\n2001-01-01 00:01:00,1,2,ORD,JFK,EXTRA\n' > "$dir/six.csv"
"$eddy" demo "$dir/six.csv" > /dev/null 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "six.csv:2: expected 5 fields" "$dir/err.txt" || fail "6 fields: exit $rc: $(cat "$dir/err.txt")"

printf 'date,delay,distance,origin,destination\n2001,1,1,ORD,JFK\0junk\n2001,5,1,SFO,LAX\n' > "$dir/nul.csv"
"$eddy" demo "$dir/nul.csv" > /dev/null 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "nul.csv:2: line contains a NUL byte" "$dir/err.txt" || fail "NUL byte: exit $rc: $(cat "$dir/err.txt")"

printf 'date,delay,distance,origin,destination\nx,9223372036854775807,1,ORD,JFK\nx,1,1,ORD,JFK\n' > "$dir/big.csv"
"$eddy" demo "$dir/big.csv" > /dev/null 2> "$dir/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "total delay of ORD overflows" "$dir/err.txt" || fail "overflow: exit $rc: $(cat "$dir/err.txt")"

# a gzip stream cut short, at several places: never a silent partial answer
gzip -c "$(dirname "$0")/../../examples/data/flights-sample.csv" > "$dir/full.csv.gz"
size=$(stat -c %s "$dir/full.csv.gz")
for cut in 1000 $((size / 2)) $((size - 8)) $((size - 1)); do
  head -c "$cut" "$dir/full.csv.gz" > "$dir/cut.csv.gz"
  "$eddy" demo "$dir/cut.csv.gz" > /dev/null 2> "$dir/err.txt"; rc=$?
  [ $rc -eq 1 ] || fail "gzip cut at $cut of $size bytes: exit $rc, want 1"
done

"$eddy" demo --workers zero > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "bad usage: exit $rc, want 2"
"$eddy" frobnicate > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "unknown command: exit $rc, want 2"
echo "bad input: 12 cases rejected with the right exit code and message"
