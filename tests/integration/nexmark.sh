#!/usr/bin/env bash
# The Nexmark generator (connectors/nexmark_gen.c), `eddy nexmark-gen` and the
# `connector: nexmark` source:
#  - the same seed twice gives byte-identical files, another seed other files; the
#    committed sample tests/data/nexmark/ is reproduced byte for byte;
#  - the CSV contract: field counts, no quote or CR, ids, proportions 1:3:46, event time
#    from the event number (tps), and the nexmark repository's id rules (hot auctions,
#    sellers and bidders, active people, auctions in flight, leads), all checked by awk
#    from the rules, not from eddy's code;
#  - timestamps never decrease by default; with --delayed-fraction the lag is bounded;
#  - the source with kind bid/auction/person through a file sink gives the files' rows
#    (csv-compare) at parallelism 1 and 2; kind all split back by event_type gives them
#    too; a checkpointed run with injected failures gives them exactly.
set -u
eddy=$1; src=$2; build=$3; work=$build/nexmark_test
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
shared=${EDDY_SHARED:-$src/../shared}
compare=$shared/tools/csv-compare
[ -x "$compare" ] || { echo "SKIPPED: no csv-compare in $shared/tools"; exit 77; }
cd "$work"

gen() { # gen DIR ARGS...: eddy nexmark-gen into DIR
  local dir=$1; shift
  "$eddy" nexmark-gen --out "$dir" "$@" 2> "$dir.stderr" || { cat "$dir.stderr"; fail "nexmark-gen $*"; }
}

# ---- determinism ----
N=20000
gen a --events $N --seed 1
gen b --events $N --seed 1
gen c --events $N --seed 2
for f in persons auctions bids; do
  cmp -s a/$f.csv b/$f.csv || fail "seed 1 twice: $f.csv differs"
  ! cmp -s a/$f.csv c/$f.csv || fail "seeds 1 and 2: $f.csv is the same"
done
echo "ok: the same seed gives the same bytes, another seed other bytes"
# the committed sample, made by the command in tests/data/nexmark/README.md
gen sample --events 4000 --seed 1 --tps 100
for f in persons auctions bids; do
  cmp -s sample/$f.csv "$src/tests/data/nexmark/$f.csv" ||
    fail "tests/data/nexmark/$f.csv is no longer what nexmark-gen makes"
done
echo "ok: tests/data/nexmark/ reproduced byte for byte"
# parallel subtasks make the same files' events: counted in the generator's stderr
grep -q "^eddy nexmark-gen: $N events (400 persons, 1200 auctions, 18400 bids)" a.stderr ||
  fail "nexmark-gen summary: $(cat a.stderr)"

# ---- the contract and the repository's rules (awk, from the rules) ----
# ms TS: milliseconds since 2015-07-15 00:00:00.000 of a timestamp of that day, the one
# before or the next (the first 20,000 events at 10,000 events/s take 2 s)
check_awk='
function ms(ts,   d, t) {
  if (ts !~ /^2015-07-1[456] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9]$/) bad("timestamp " ts)
  d = substr(ts, 9, 2) - 15
  return ((d * 24 + substr(ts, 12, 2)) * 60 + substr(ts, 15, 2)) * 60000 + substr(ts, 18, 2) * 1000 + substr(ts, 21, 3)
}
function bad(what) { printf "%s:%d: %s: %s\n", FILENAME, FNR, what, $0; err = 1; exit 1 }
function max(a, b) { return a > b ? a : b }
'
# persons: event n = 50k; id 1000 + k; time n / 10 ms
awk -F, "$check_awk"'
NF != 8 { bad("fields") }
{ k = NR - 1; n = 50 * k
  if ($1 != 1000 + k) bad("id")
  if (ms($7) != int(n / 10)) bad("dateTime is not event " n " at 10,000 events/s")
  if ($6 !~ /^(AZ|CA|ID|OR|WA|WY)$/) bad("state")
  if ($4 !~ /^[0-9][0-9][0-9][0-9] [0-9][0-9][0-9][0-9] [0-9][0-9][0-9][0-9] [0-9][0-9][0-9][0-9]$/) bad("creditCard")
  if ($3 !~ /^[a-z ]+@[a-z ]+\.com$/) bad("emailAddress") }
END { if (!err && NR != 400) { print "persons: " NR " rows"; exit 1 } }' a/persons.csv ||
  fail "persons.csv breaks the rules"
# auctions: event n = 50 (k / 3) + 1 + k % 3; id 1000 + k; seller: the newest person
# (n / 50) rounded down to 100 (hot) or one of the last 1,000 people + 10 ahead;
# expires within 2 × the time of the next 100 auctions (1,666 events: 166 ms)
awk -F, "$check_awk"'
NF != 10 { bad("fields") }
{ k = NR - 1; n = 50 * int(k / 3) + 1 + k % 3; last = int(n / 50)
  if ($1 != 1000 + k) bad("id")
  if (ms($6) != int(n / 10)) bad("dateTime")
  e = ms($7) - ms($6); if (e < 1 || e > 2 * (int((n + 1666) / 10) - int(n / 10))) bad("expires")
  s = $8 - 1000
  if (s == int(last / 100) * 100) hot++
  else if (s < max(0, last - 999) || s > last + 10) bad("seller " s " with newest person " last)
  if ($9 < 10 || $9 > 14) bad("category")
  if ($4 < 100 || $4 > 100000000 || $5 <= $4) bad("initialBid/reserve") }
END { if (err) exit 1
      if (NR != 1200) { print "auctions: " NR " rows"; exit 1 }
      if (hot < 0.70 * NR || hot > 0.80 * NR) { print "hot sellers: " hot " of " NR; exit 1 } }' a/auctions.csv ||
  fail "auctions.csv breaks the rules"
# bids: event n = 50 (k / 46) + 4 + k % 46; auction: the newest (3 per 50 events)
# rounded down to 100 (hot, half) or one of the last 100 + 10 ahead; bidder: newest
# person rounded down to 100, + 1 (hot, 3 in 4) or one of the last 1,000 + 10 ahead
awk -F, "$check_awk"'
NF != 7 { bad("fields") }
{ k = NR - 1; n = 50 * int(k / 46) + 4 + k % 46; la = 3 * int(n / 50) + 2; lp = int(n / 50)
  if (ms($6) != int(n / 10)) bad("dateTime")
  a = $1 - 1000
  if (a == int(la / 100) * 100) hota++
  else if (a < max(0, la - 100) || a > la + 10) bad("auction " a " with newest auction " la)
  b = $2 - 1000
  if (b == int(lp / 100) * 100 + 1) hotb++
  else if (b < max(0, lp - 999) || b > lp + 10) bad("bidder " b " with newest person " lp)
  if ($3 < 100 || $3 > 100000000) bad("price")
  if ($4 ~ /^(Google|Facebook|Baidu|Apple)$/) hotc++
  else if ($4 !~ /^channel-[0-9]+$/) bad("channel")
  if ($5 !~ /^https:\/\/www\.nexmark\.com\/[a-z_]+\/[a-z_]+\/[a-z_]+\/item\.htm\?query=1(&channel_id=-?[0-9]+)?$/) bad("url")
  if (length($7) < 54 || length($7) > 81 || $7 !~ /^[a-z]+$/) bad("extra") }
END { if (err) exit 1
      if (NR != 18400) { print "bids: " NR " rows"; exit 1 }
      if (hota < 0.45 * NR || hota > 0.56 * NR) { print "hot auctions: " hota " of " NR; exit 1 }
      if (hotb < 0.70 * NR || hotb > 0.80 * NR) { print "hot bidders: " hotb " of " NR; exit 1 }
      if (hotc < 0.45 * NR || hotc > 0.55 * NR) { print "hot channels: " hotc " of " NR; exit 1 } }' a/bids.csv ||
  fail "bids.csv breaks the rules"
! grep -q $'["\r]' a/persons.csv a/auctions.csv a/bids.csv || fail "a quote or CR in a value"
echo "ok: persons, auctions, bids follow the contract and the repository's rules"

# a channel's URL is the same in every bid of that channel
awk -F, '$4 ~ /^channel-/ { if (($4 in u) && u[$4] != $5) { print $4 ": " u[$4] " and " $5; exit 1 } u[$4] = $5 }' a/bids.csv ||
  fail "one channel, two URLs"

# ---- order: never decreasing by default; bounded lag with delays ----
for f in persons auctions bids; do
  col=7; [ $f = auctions ] && col=6; [ $f = bids ] && col=6
  awk -F, -v c=$col '$c < prev { print FILENAME ":" NR ": " $c " after " prev; exit 1 } { prev = $c }' a/$f.csv ||
    fail "$f.csv: time goes back without delays"
done
gen d --events $N --seed 1 --delayed-fraction 0.1 --max-delay-ms 3000
cmp -s a/persons.csv d/persons.csv || fail "delays changed persons"
awk -F, "$check_awk"'
{ k = NR - 1; n = 50 * int(k / 46) + 4 + k % 46; lag = int(n / 10) - ms($6)
  if (lag < 0 || lag > 3000) bad("lag " lag)
  if (lag > 0) late++ }
END { if (err) exit 1; if (late < 0.08 * NR || late > 0.12 * NR) { print "delayed: " late " of " NR; exit 1 } }' d/bids.csv ||
  fail "delayed bids: not 10% within 3 s"
echo "ok: event time never goes back by default; --delayed-fraction 0.1 lags 10% of bids by at most 3 s"

# ---- the source against nexmark-gen's files ----
# expected_csv KIND: a/KIND.csv with the header and the file sink's timestamps (.000 dropped)
header_person=id,name,emailAddress,creditCard,city,state,dateTime,extra
header_auction=id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra
header_bid=auction,bidder,price,channel,url,dateTime,extra
expected_csv() { # expected_csv FILE KIND OUT
  local h=header_$2
  { echo "${!h}"; sed -E 's/( [0-9]{2}:[0-9]{2}:[0-9]{2})\.000/\1/g' "$1"; } > "$3"
}
expected_csv a/persons.csv person exp-person.csv
expected_csv a/auctions.csv auction exp-auction.csv
expected_csv a/bids.csv bid exp-bid.csv
for kind in bid auction person; do
  for par in 1 2; do
    name=src-$kind-p$par
    run_job $name "$src/tests/nexmark/source.yaml" --control none --set "sources.events.kind=$kind" \
      --set parallelism=$par --set "sinks.out.path=$work/$name"
    "$compare" exp-$kind.csv $name > $name.cmp 2>&1 || { cat $name.cmp; fail "$name: rows differ from nexmark-gen"; }
  done
done
echo "ok: the source's bids, auctions and persons at p1 and p2 equal nexmark-gen's files"

run_job all "$src/tests/nexmark/all.yaml" --control none --set "sinks.persons_out.path=$work/all/p" \
  --set "sinks.auctions_out.path=$work/all/a" --set "sinks.bids_out.path=$work/all/b"
"$compare" exp-person.csv all/p > all.cmp 2>&1 || { cat all.cmp; fail "kind all: persons"; }
"$compare" exp-auction.csv all/a > all.cmp 2>&1 || { cat all.cmp; fail "kind all: auctions"; }
"$compare" exp-bid.csv all/b > all.cmp 2>&1 || { cat all.cmp; fail "kind all: bids"; }
[ "$(cat all/p/part-* | grep -v '^id,' | grep -vc ',true,true$')" = 0 ] ||
  fail "kind all: a person whose dateTime differs or whose other columns are not null"
echo "ok: kind all split by event_type gives the three files"

# ---- checkpoints and injected failures: exactly the rows ----
gen ck --events 40000 --seed 3
expected_csv ck/bids.csv bid exp-ck.csv
for run in 2:1 2:7 1:4; do
  par=${run%:*}; seed=${run#*:}
  name=inject-p$par-s$seed
  run_job $name "$src/tests/nexmark/checkpointed.yaml" --control none \
    --set "sinks.out.path=$work/$name/out" --set "checkpoint.dir=$work/$name/ck" \
    --set parallelism=$par --inject-failures 10 --seed $seed
  n=$(grep -c "restored from checkpoint\|starting over" "$work/$name.stderr" || true)
  "$compare" exp-ck.csv $name/out > $name.cmp 2>&1 || { cat $name.cmp; fail "$name: rows differ"; }
  echo "ok: $name: 10 injected failures ($n job restarts), exactly nexmark-gen's 36,800 bids"
done
# kill -9 in the middle, then --restore latest: the sources resume at their positions
name=kill
"$eddy" run "$src/tests/nexmark/checkpointed.yaml" --control none --set "sinks.out.path=$work/$name/out" \
  --set "checkpoint.dir=$work/$name/ck" > $name.crash.stdout 2> $name.crash.stderr &
pid=$!
sleep 0.5
kill -9 $pid; wait $pid 2> /dev/null
ls "$work/$name"/ck/chk-*/MANIFEST > /dev/null 2>&1 || fail "$name: no checkpoint completed in 0.5 s"
run_job $name "$src/tests/nexmark/checkpointed.yaml" --control none --set "sinks.out.path=$work/$name/out" \
  --set "checkpoint.dir=$work/$name/ck" --restore latest
grep -q "restored from checkpoint" $name.stderr || { cat $name.stderr; fail "$name: not restored"; }
"$compare" exp-ck.csv $name/out > $name.cmp 2>&1 || { cat $name.cmp; fail "$name: rows differ"; }
echo "ok: kill -9 at 0.5 s, --restore latest: exactly nexmark-gen's 36,800 bids"

# the example job is a valid plan (running it writes 920,000 rows: not in the suite)
"$eddy" check "$src/examples/nexmark_q0.yaml" > check.out 2>&1 || { cat check.out; fail "examples/nexmark_q0.yaml"; }
echo "ok: examples/nexmark_q0.yaml checks"

echo "all nexmark tests passed"
