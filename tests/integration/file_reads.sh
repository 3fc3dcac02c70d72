#!/usr/bin/env bash
# The file source reads one file the same way whatever the path it takes
# (connectors/file_source.c): a plain file at parallelism 1 is mapped 16 MiB at a time
# and cut into chunks of whole records; a FIFO is read(); a .gz is gunzipped; at
# parallelism 2 the file is split in 1 MiB blocks. The test writes a ~40 MB CSV whose
# records (20 to 400 bytes, one of 3 MB) straddle chunk and mapping boundaries, and
# compares tests/jobs/files/reads.yaml's per-key count, sum of ids and longest string
# with awk's over the same file, for each way (and a 1-line file without a final
# newline), and a file appended to while it is read (no record cut in two).
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
# no header yet: a byte order mark or blank lines only are an empty file (no rows, no
# error: they failed with 'FILE:0:0: ' before); a header after blank lines is the header
for f in bom:'\xef\xbb\xbf' blank:'\n\n' bom_blank:'\xef\xbb\xbf\n'; do
  printf "${f#*:}" > "$work/${f%%:*}.csv"
  run_job "${f%%:*}" $job --set "sources.rows.path=$work/${f%%:*}.csv" --set "sinks.out.path=$work/${f%%:*}"
  [ "$(cat "$work/${f%%:*}"/part-* | wc -l)" = 1 ] || fail "${f%%:*}: a file without a header gave rows"
done
printf '\xef\xbb\xbf\n\nid,k,t,s\n5,3,2024-01-01 00:00:05,xyz\n' > "$work/late_header.csv"
run_job late_header $job --set "sources.rows.path=$work/late_header.csv" --set "sinks.out.path=$work/late_header"
same_rows "$work/one.expected.csv" "$work/late_header" || fail "a header after blank lines"
echo "ok: a byte order mark or blank lines alone are an empty file; a header after blank lines"

# a file appended to while it is read (mapped, p1): a writer adds 61-byte records in
# 4096-byte writes (each ends inside a record), 1 ms apart, after a 20 MB head start (more than the
# source's mailbox holds: the reader reaches its end only as the records are parsed). Every
# record read must be whole (id k: 59 - len(k) x's), but for the last one read, which may
# be a partial one if the reader reached the writer (as read() at the end of a file): a
# record cut in two gives a short row and a dead letter before the end
python3 - "$work/grow.csv" <<'PY' &
import os, sys, time
data = b"".join(b"%d,%s\n" % (i, b"x" * (59 - len(str(i)))) for i in range(1, 500001))
fd = os.open(sys.argv[1] + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data[:20001000])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
for o in range(20001000, len(data), 4096):
    os.write(fd, data[o:o + 4096]); time.sleep(0.001)
PY
writer=$!
for _ in $(seq 200); do [ -f "$work/grow.csv" ] && break; sleep 0.05; done
run_job grow tests/jobs/files/grow.yaml --control none --set "sources.rows.path=$work/grow.csv" \
  --set "sinks.out.path=$work/grow" --set "sinks.dead.path=$work/grow_dead"
wait $writer
# the rows (id, length of s) by id, then the dead letters' lines (a line is an id here)
last=$( (tail -q -n +2 "$work"/grow/part-* | cut -d, -f1; tail -q -n +2 "$work"/grow_dead/part-* |
  cut -d, -f2) | sort -n | tail -1)
cut_rows=$(tail -q -n +2 "$work"/grow/part-* | awk -F, -v last="$last" \
  '$1 != last && length($2) != 59 - length($1) { n++ } END { print n + 0 }')
early_dead=$(tail -q -n +2 "$work"/grow_dead/part-* | awk -F, -v last="$last" '$2 != last { n++ } END { print n + 0 }')
rows=$(tail -q -n +2 "$work"/grow/part-* | wc -l)
[ "$cut_rows" = 0 ] && [ "$early_dead" = 0 ] ||
  fail "a file appended to while read: $cut_rows short rows and $early_dead dead letters before the last record ($rows rows)"
[ "$rows" -ge 327885 ] || fail "a file appended to while read: $rows rows, fewer than the head start's"
echo "ok: a file appended to while read: $rows whole records, none cut in two"
rm -f "$work"/reads.csv "$work"/reads.csv.gz "$work"/grow.csv
echo "PASS: file_reads"
