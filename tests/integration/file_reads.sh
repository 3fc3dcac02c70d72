#!/usr/bin/env bash
# The file source reads one file the same way whatever the path it takes
# (connectors/file_source.c): a plain file at parallelism 1 is mapped 16 MiB at a time
# and cut into chunks of whole records; a FIFO is read(); a .gz is gunzipped; at
# parallelism 2 the file is split in 1 MiB blocks. The test writes a ~40 MB CSV whose
# records (20 to 400 bytes, one of 3 MB) straddle chunk and mapping boundaries, and
# compares tests/jobs/files/reads.yaml's per-key count, sum of ids and longest string
# with awk's over the same file, for each way (and a 1-line file without a final
# newline).
# usage: file_reads.sh EDDY SRC BUILD
set -u
eddy=$1; src=$2; work=$3/file_reads
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
job=tests/jobs/files/reads.yaml

# id, k (0..6), t (one day: 2024-01-01), s: 20..400 bytes; record 77777 holds 3 MB
awk 'BEGIN {
  srand(7); print "id,k,t,s";
  pad = "abcdefghijklmnopqrstuvwxyz0123456789"; while (length(pad) < 400) pad = pad pad;
  big = pad; while (length(big) < 3000000) big = big big; big = substr(big, 1, 3000000);
  for (i = 1; i <= 200000; i++) {
    s = (i == 77777) ? big : substr(pad, 1 + i % 17, 20 + int(rand() * 381));
    printf "%d,%d,2024-01-01 %02d:%02d:%02d,%s\n", i, i % 7, int(i / 3600) % 24, int(i / 60) % 60, i % 60, s
  } }' > "$work/reads.csv"
size=$(stat -c %s "$work/reads.csv")
[ "$size" -gt $((33 * 1024 * 1024)) ] || fail "the generated file is $size bytes: fewer than three 16 MiB mappings"
awk -F, 'NR > 1 { n[$2]++; ids[$2] += $1; if (length($4) > lg[$2]) lg[$2] = length($4) }
  END { print "window_start,window_end,k,n,ids,longest";
        for (k in n) printf "2024-01-01 00:00:00,2024-01-02 00:00:00,%s,%d,%.0f,%d\n", k, n[k], ids[k], lg[k] }' \
  "$work/reads.csv" > "$work/expected.csv"
grep -q ',3000000$' "$work/expected.csv" || fail "awk did not see the 3 MB record"

check() { # NAME: the run's rows are awk's
  same_rows "$work/expected.csv" "$work/$1" || fail "$1: not the rows awk computed from the file"
  echo "ok: $1"
}

run_job mapped $job --set "sources.rows.path=$work/reads.csv" --set "sinks.out.path=$work/mapped"
check mapped

mkfifo "$work/reads.fifo"
cat "$work/reads.csv" > "$work/reads.fifo" &
run_job fifo $job --set "sources.rows.path=$work/reads.fifo" --set "sinks.out.path=$work/fifo"
wait
check fifo

gzip -c "$work/reads.csv" > "$work/reads.csv.gz"
run_job gz $job --set "sources.rows.path=$work/reads.csv.gz" --set "sinks.out.path=$work/gz"
check gz

run_job split $job --set "sources.rows.path=$work/reads.csv" --set "sinks.out.path=$work/split" \
  --set parallelism=2
check split

# the last record without a final newline, and a file of the header only
printf 'id,k,t,s\n5,3,2024-01-01 00:00:05,xyz' > "$work/one.csv"
printf 'window_start,window_end,k,n,ids,longest\n2024-01-01 00:00:00,2024-01-02 00:00:00,3,1,5,3\n' \
  > "$work/one.expected.csv"
run_job one $job --set "sources.rows.path=$work/one.csv" --set "sinks.out.path=$work/one"
same_rows "$work/one.expected.csv" "$work/one" || fail "one record without a final newline"
echo "ok: a last record without a newline"
printf 'id,k,t,s\n' > "$work/header.csv"
run_job header $job --set "sources.rows.path=$work/header.csv" --set "sinks.out.path=$work/header"
[ "$(cat "$work"/header/part-* | wc -l)" = 1 ] || fail "a header-only file gave rows"
echo "ok: a file of the header only"
rm -f "$work"/reads.csv "$work"/reads.csv.gz
echo "PASS: file_reads"
