#!/usr/bin/env bash
# `eddy shell` without a terminal: -c, --json, scripts on stdin, exit codes (0 ok, 1 the
# server replied an error, 2 bad usage, 3 unreachable) and their messages, against a real
# `eddy run --control ipc://...` running tests/shell/long.yaml (generated rows until
# stopped). JSON is checked by a small validator in awk (always) and by python3 or jq
# when they are installed. Nothing may crash, hang or leave a sanitizer report.
#
# usage: shell_cli.sh EDDY SRC BUILD   (set EDDY_TEST_TIMEOUT=seconds for slow builds)
set -u
eddy=$1; src=$2; work=$3/shell_cli
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"
cd "$src"
limit=${EDDY_TEST_TIMEOUT:-20}

# an ipc path must be short (about 100 bytes): the sockets go to a directory of their own
sockdir=$(mktemp -d "${TMPDIR:-/tmp}/eddy-shell.XXXXXX") || fail "mktemp"
addr=ipc://$sockdir/ctl.sock
job_pid=; job2_pid=
cleanup() {
  [ -z "$job_pid" ] || kill "$job_pid" 2>/dev/null
  [ -z "$job2_pid" ] || kill "$job2_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$sockdir"
}
trap cleanup EXIT

# sh NAME WANT_RC [ARGS...]: runs `eddy shell ARGS` (stdin from $stdin, default /dev/null)
# into $work/NAME.{stdout,stderr}, checks the exit code; a hang, a crash or a sanitizer
# report fails whatever the code.
stdin=/dev/null
sh() {
  local name=$1 want=$2; shift 2
  out=$work/$name.stdout err=$work/$name.stderr
  timeout -k 5 "$limit" "$eddy" shell "$@" < "$stdin" > "$out" 2> "$err"; rc=$?
  [ $rc -ne 124 ] && [ $rc -ne 137 ] || { cat "$err"; fail "$name: eddy shell $* hung (> $limit s)"; }
  [ $rc -lt 124 ] || { cat "$err"; fail "$name: eddy shell $* crashed (exit $rc)"; }
  ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$err" ||
    { cat "$err"; fail "$name: sanitizer report"; }
  [ $rc -eq "$want" ] ||
    { cat "$out" "$err"; fail "$name: eddy shell $* exited $rc, want $want"; }
}

# has NAME FILE ERE: a line of FILE matches ERE.
has() {
  grep -qE -- "$3" "$2" || { echo "--- $2:"; cat "$2"; fail "$1: no line matching: $3"; }
}

# json_valid NAME FILE: FILE is one JSON document ending in a newline.
json_valid() {
  [ "$(tail -c 1 "$2" | od -An -c | tr -d ' ')" = '\n' ] || fail "$1: JSON not newline-terminated"
  LC_ALL=C awk '
  function ws() { while (p <= n && index(" \t\n\r", substr(s, p, 1))) p++ }
  function bad(m) { if (msg == "") msg = m " at byte " p; return 0 }
  function value(d,  c) {
    if (d > 100) return bad("too deep")
    ws(); if (p > n) return bad("unexpected end")
    c = substr(s, p, 1)
    if (c == "{") return container(d, "}")
    if (c == "[") return container(d, "]")
    if (c == "\"") return str()
    if (substr(s, p, 4) == "true" || substr(s, p, 4) == "null") { p += 4; return 1 }
    if (substr(s, p, 5) == "false") { p += 5; return 1 }
    if (match(substr(s, p, 400), /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
      p += RLENGTH; return 1
    }
    return bad("not a value")
  }
  function container(d, cl,  c) {
    p++; ws()
    if (substr(s, p, 1) == cl) { p++; return 1 }
    for (;;) {
      if (cl == "}") {
        ws(); if (substr(s, p, 1) != "\"") return bad("expected a key")
        if (!str()) return 0
        ws(); if (substr(s, p, 1) != ":") return bad("expected :")
        p++
      }
      if (!value(d + 1)) return 0
      ws(); c = substr(s, p, 1); p++
      if (c == ",") continue
      if (c == cl) return 1
      return bad("expected , or " cl)
    }
  }
  function str(  c) {
    p++
    while (p <= n) {
      c = substr(s, p, 1)
      if (c == "\"") { p++; return 1 }
      if (c == "\\") {
        c = substr(s, p + 1, 1)
        if (c == "u") {
          if (substr(s, p + 2, 4) !~ /^[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]$/)
            return bad("bad \\u escape")
          p += 6; continue
        }
        if (c == "" || index("\"\\/bfnrt", c) == 0) return bad("bad escape")
        p += 2; continue
      }
      if (c < " ") return bad("raw control character in a string")
      p++
    }
    return bad("unterminated string")
  }
  { s = s (NR > 1 ? "\n" : "") $0 }
  END {
    p = 1; n = length(s); msg = ""
    if (value(0)) { ws(); if (p <= n) bad("text after the document") }
    if (msg != "") { print msg; exit 1 }
  }' "$2" > "$work/json.err" || { cat "$2"; fail "$1: invalid JSON: $(cat "$work/json.err")"; }
  if command -v python3 > /dev/null && python3 -c 'import json' 2> /dev/null; then
    python3 -m json.tool < "$2" > /dev/null || { cat "$2"; fail "$1: python3 rejects the JSON"; }
  elif command -v jq > /dev/null; then
    jq . < "$2" > /dev/null || { cat "$2"; fail "$1: jq rejects the JSON"; }
  fi
}

# the validator itself must reject what is not JSON
printf '{"a":[1,2.5e3,"x\\"y",null,true]}\n' > "$work/good.json"
json_valid "validator accepts" "$work/good.json"
for bad_json in '{"a":1,}' '[1 2]' $'{"a":"b\tc"}' '{a:1}' '[nan]' '"x\q"' '[1]x' '[1.]'; do
  printf '%s\n' "$bad_json" > "$work/bad.json"
  ( json_valid "validator" "$work/bad.json" ) > /dev/null &&
    fail "the JSON validator accepted $bad_json"
done
echo "PASS: the JSON validator accepts JSON and rejects 8 kinds of non-JSON"

# ---- without a server ----
sh usage-option 2 --bogus
has usage-option "$err" "^eddy shell: unknown option --bogus"
sh usage-two-addresses 2 ipc:///a ipc:///b
has usage-two-addresses "$err" "unexpected argument 'ipc:///b'"
sh usage-c-missing 2 -c
has usage-c-missing "$err" "^eddy shell: -c needs a COMMAND$"
sh usage-timeout 2 --timeout 0 -c jobs
has usage-timeout "$err" "^eddy shell: --timeout takes milliseconds"
sh usage-address 2 localhost:7600 -c jobs
has usage-address "$err" "^eddy shell: bad address 'localhost:7600'"
sh usage-scheme 2 foo://bar -c jobs
has usage-scheme "$err" "^eddy shell: bad address 'foo://bar'"
sh help-option 0 --help
has help-option "$out" "^usage: eddy shell \[ADDRESS\]"
echo "PASS: bad usage exits 2 with a message; --help exits 0"

sh unreachable 3 "ipc://$sockdir/nobody.sock" -c jobs
has unreachable "$err" "^eddy shell: cannot reach ipc://$sockdir/nobody.sock: "
echo "PASS: an address nobody listens on exits 3 naming the address"

sh local-help 0 "ipc://$sockdir/nobody.sock" -c help
has local-help "$out" "^  kill PATH \[REASON\.\.\.\] "
sh local-help-one 0 "ipc://$sockdir/nobody.sock" -c "help watch"
has local-help-one "$out" "^usage: watch COMMAND$"
sh local-nosuch 2 "ipc://$sockdir/nobody.sock" -c nosuch
has local-nosuch "$err" "^eddy shell: unknown command 'nosuch'"
sh local-near 2 "ipc://$sockdir/nobody.sock" -c jbos
has local-near "$err" "^eddy shell: unknown command 'jbos' \(did you mean 'jobs'\?\)"
sh local-args 2 "ipc://$sockdir/nobody.sock" -c info
has local-args "$err" "^eddy shell: usage: info PATH$"
sh local-log 2 "ipc://$sockdir/nobody.sock" -c "log many"
has local-log "$err" "^eddy shell: log: N must be a number from 1 to 1024$"
echo "PASS: help needs no server; unknown commands and bad arguments exit 2 (did you mean)"

# ---- against a running job ----
"$eddy" run tests/shell/long.yaml --control "$addr" > "$work/job.stdout" 2> "$work/job.stderr" &
job_pid=$!
for _ in $(seq 100); do
  "$eddy" shell "$addr" -c jobs < /dev/null > /dev/null 2>&1 && break
  kill -0 "$job_pid" 2> /dev/null || { cat "$work/job.stderr"; fail "the job exited early"; }
  sleep 0.1
done
sh jobs 0 "$addr" -c jobs
has jobs "$out" "^JOB +STATUS +UPTIME +RECORDS-IN +RECORDS-OUT +IN/s +OUT/s$"
has jobs "$out" "^shelltest +running +[0-9.]+ (ms|s) +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+$"
echo "PASS: jobs lists the running job"

sh actors 0 "$addr" -c actors
has actors "$out" "^PATH +OP +STATUS +MAILBOX +IN/s +OUT/s +BUSY% +RESTARTS +LAST-ERROR$"
has actors "$out" "^shelltest/win\[0\] +window +(running|parked) +[0-9]+/16 "
has actors "$out" "^shelltest/gen\[0\] +datagen "
sh actors-glob 0 "$addr" -c "actors *win*"
[ "$(wc -l < "$out")" -eq 2 ] || { cat "$out"; fail "actors *win*: want the header and one actor"; }
has actors-glob "$out" "^shelltest/win\[0\] "
echo "PASS: actors prints an aligned table; a GLOB selects"

sh tree 0 "$addr" -c tree
has tree "$out" "^shelltest +supervisor +[a-z]+ +one_for_(one|all|rest), intensity [0-9]+ in "
has tree "$out" "^  shelltest/win\[0\] +task +[a-z]+ +restart: [a-z]+$"
echo "PASS: tree indents children under their supervisor with strategy and restart type"

sh info 0 "$addr" -c "info shelltest/win[0]"
has info "$out" "^path: +shelltest/win\[0\]$"
has info "$out" "^op: +window$"
has info "$out" "^parent: +shelltest$"
has info "$out" "^watermark: +(-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)$"
sh info-missing 1 "$addr" -c "info shelltest/nosuch[0]"
has info-missing "$err" "^eddy shell: .*shelltest/nosuch\[0\]"
[ ! -s "$out" ] || fail "info-missing: printed on stdout: $(cat "$out")"
echo "PASS: info prints key: value lines, times in ISO-8601; an error reply exits 1 on stderr"

sh stats 0 "$addr" -c stats
has stats "$out" "^JOB +STATUS +RECORDS-IN +RECORDS-OUT +IN/s +OUT/s +WATERMARK +LAG +BACKPRESSURED$"
has stats "$out" "^shelltest +running +[0-9]+ +[0-9]+ "
has stats "$out" "^control: [0-9]+ requests, [0-9]+ rejected"
echo "PASS: stats"

for c in jobs actors tree "info shelltest/win[0]" stats "log 5"; do
  name=json-${c%% *}
  sh "$name" 0 "$addr" --json -c "$c"
  json_valid "$name" "$out"
  [ "$(wc -l < "$out")" -eq 1 ] || fail "$name: not one line"
done
grep -qF '"path":"shelltest/win[0]"' "$work/json-actors.stdout" || fail "json-actors: no win[0]"
grep -qE '^\{.*"jobs":\[\{"name":"shelltest"' "$work/json-stats.stdout" || fail "json-stats: shape"
echo "PASS: --json prints one valid JSON document per command"

sh watch-once 0 "$addr" -c "watch stats"
[ "$(grep -c '^every 1s: stats' "$out")" -eq 1 ] ||
  { cat -A "$out"; fail "watch with stdin at its end: want one run"; }
! grep -q "$(printf '\033')" "$out" ||
  { cat -A "$out"; fail "watch into a pipe: no clear-screen codes"; }
has watch-once "$out" "every 1s: stats"
has watch-once "$out" "^shelltest +running "
sh watch-bad 2 "$addr" -c "watch nosuch"
has watch-bad "$err" "unknown command 'nosuch'"
echo "PASS: watch with stdin at its end runs once; a bad command exits 2"

printf 'jobs\n\n# a comment\nnosuch\nwatch jobs\nstats\n' > "$work/script"
stdin=$work/script
sh script 2 "$addr"
stdin=/dev/null
has script "$out" "^shelltest +running +[0-9.]+ (ms|s) "
has script "$out" "^control: "
has script "$err" "^eddy shell: unknown command 'nosuch'"
[ "$(grep -c 'every 1s: jobs' "$out")" -eq 1 ] ||
  fail "script: watch must stop at once when more input is waiting"
echo "PASS: a script on stdin runs every line, exits with the failure's code (2)"

# ---- a secret ----
printf 'sesame\n' > "$work/secret"; chmod 600 "$work/secret"
printf 'wrong\n' > "$work/wrong"; chmod 600 "$work/wrong"
printf 'sesame\n' > "$work/open"; chmod 644 "$work/open"
addr2=ipc://$sockdir/secret.sock
"$eddy" run tests/shell/long.yaml --control "$addr2" --secret-file "$work/secret" \
  > "$work/job2.stdout" 2> "$work/job2.stderr" &
job2_pid=$!
for _ in $(seq 100); do
  "$eddy" shell "$addr2" --secret-file "$work/secret" -c jobs < /dev/null > /dev/null 2>&1 && break
  sleep 0.1
done
sh secret 0 "$addr2" --secret-file "$work/secret" -c jobs
has secret "$out" "^shelltest +running "
sh secret-none 1 "$addr2" -c jobs
has secret-none "$err" "^eddy shell: .*secret"
sh secret-wrong 1 "$addr2" --secret-file "$work/wrong" -c jobs
has secret-wrong "$err" "^eddy shell: .*secret"
sh secret-mode 2 "$addr2" --secret-file "$work/open" -c jobs
has secret-mode "$err" "^eddy shell: secret file $work/open: mode 0644"
echo "PASS: --secret-file sends the secret; none or a wrong one is refused (1); mode 0644 exits 2"

# the reason of a kill comes back in the reply: quotes and backslashes escaped in JSON
sh kill-json 0 "$addr2" --secret-file "$work/secret" --json -c 'kill shelltest/win[0] say "hi" c:\dir'
json_valid kill-json "$out"
grep -qxF '{"killed":"shelltest/win[0]","reason":"say \"hi\" c:\\dir"}' "$out" ||
  { cat "$out"; fail "kill-json: reply"; }
echo "PASS: kill joins the rest of the line as the reason; JSON escapes it"
rc=0; wait "$job2_pid" || rc=$?
job2_pid=
[ $rc -eq 1 ] || { cat "$work/job2.stderr"; fail "the killed job exited $rc, want 1 (failed)"; }

# ---- cancel ends the job ----
sh cancel-wrong 1 "$addr" -c "cancel nosuchjob"
has cancel-wrong "$err" "^eddy shell: .*nosuchjob"
sh cancel 0 "$addr" -c "cancel shelltest"
has cancel "$out" "^cancelled shelltest"
for _ in $(seq 100); do kill -0 "$job_pid" 2> /dev/null || break; sleep 0.1; done
kill -0 "$job_pid" 2> /dev/null && fail "the job still runs 10 s after cancel"
rc=0; wait "$job_pid" || rc=$?
job_pid=
[ $rc -eq 0 ] || { cat "$work/job.stderr"; fail "the cancelled job exited $rc, want 0"; }
sh gone 3 "$addr" --timeout 500 -c jobs
has gone "$err" "$(printf '%s' "$addr" | sed 's/[][\\.*^$+?(){}|]/\\&/g')"
echo "PASS: cancel stops the job (exit 0); then the address is unreachable (3)"
