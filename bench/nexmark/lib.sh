# bench/nexmark/lib.sh: sourced by bench/nexmark/check.sh and tests/integration/nexmark_queries.sh.
#
# nexmark_sets JOB DATA: sets the array nexmark_sets to the --set options that point the file
# sources of the query job JOB (bench/nexmark/qN.yaml) at DATA/persons.csv, auctions.csv and
# bids.csv: only for the sources the job has (ids person, auction, bid), since a --set naming
# a source the job lacks is an error.
nexmark_sets() {
	local job=$1 data=$2 s
	nexmark_sets=()
	for s in person:persons auction:auctions bid:bids; do
		if grep -q "^  - id: ${s%%:*}\$" "$job"; then
			nexmark_sets+=(--set "sources.${s%%:*}.path=$data/${s#*:}.csv")
		fi
	done
}

# nexmark_compare EXPECTED ACTUAL: EXPECTED (a CSV file with a header) and ACTUAL (a directory
# of part files, each with the header) hold the same multiset of rows. With CSV_COMPARE set
# (../shared/tools/csv-compare: columns by name, numbers within a relative 1e-9) it decides;
# without it the headers must be equal and the rows equal as text once every decimal number
# (digits '.' digits) is printed with 12 significant digits (%.12g: a float of q1 and DuckDB's
# DECIMAL(23, 3) become the same text; prices up to 10^8 times 0.908 need 11). Prints the
# first differences on a mismatch. Needs $work for its scratch files.
nexmark_compare() {
	local exp=$1 act=$2 f
	if [ -n "${CSV_COMPARE:-}" ]; then
		"$CSV_COMPARE" "$exp" "$act" > "$work/compare.out" 2>&1 || { cat "$work/compare.out"; return 1; }
		return 0
	fi
	local want got
	want=$(head -1 "$exp")
	for f in "$act"/part-*; do
		[ -f "$f" ] || { echo "no part files in $act"; return 1; }
		got=$(head -1 "$f")
		[ "$got" = "$want" ] || { echo "$f: header '$got', expected '$want'"; return 1; }
	done
	local norm='BEGIN { FS = OFS = "," } FNR > 1 { for (i = 1; i <= NF; i++) if ($i ~ /^-?[0-9]+\.[0-9]+$/) $i = sprintf("%.12g", $i); print }'
	awk "$norm" "$exp" | LC_ALL=C sort > "$work/expected.sorted"
	awk "$norm" "$act"/part-* | LC_ALL=C sort > "$work/actual.sorted"
	if ! cmp -s "$work/expected.sorted" "$work/actual.sorted"; then
		echo "rows differ from $exp ($(wc -l < "$work/expected.sorted") expected, $(wc -l < "$work/actual.sorted") actual); first differences:"
		diff "$work/expected.sorted" "$work/actual.sorted" | head -10
		return 1
	fi
}
