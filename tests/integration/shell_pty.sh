#!/usr/bin/env bash
# The interactive `eddy shell` on a terminal, driven through tmux against a real
# `eddy run --control ipc://...` (tests/shell/long.yaml): Tab completes command names and
# actor paths ('/', '[' and ']' inside the word); Up recalls the last command, also in a
# new session ($HOME/.eddy_history); `watch stats` refreshes every second and stops at a
# key press, giving the prompt back; quit exits 0. Exits 77 (skipped) without tmux.
#
# usage: shell_pty.sh EDDY SRC BUILD   (set EDDY_TEST_TIMEOUT=seconds for slow builds)
set -u
eddy=$1; src=$2; work=$3/shell_pty
rm -rf "$work"; mkdir -p "$work/home"
. "$src/tests/integration/lib.sh"
cd "$src"
limit=${EDDY_TEST_TIMEOUT:-15}
if ! command -v tmux > /dev/null; then
  echo "SKIPPED: shell_pty did NOT run: tmux is not installed (apt-get install tmux)"
  exit 77
fi

# ipc paths and tmux sockets must be short: they go to a directory of their own
sockdir=$(mktemp -d "${TMPDIR:-/tmp}/eddy-pty.XXXXXX") || fail "mktemp"
addr=ipc://$sockdir/ctl.sock
# each shell gets a tmux server of its own (a new server on the socket of one being killed
# can fail): $session numbers them
session=0
tm() { tmux -S "$sockdir/tmux$session" "$@"; }
job_pid=
cleanup() {
  for s in "$sockdir"/tmux*; do [ -S "$s" ] && tmux -S "$s" kill-server 2> /dev/null; done
  [ -z "$job_pid" ] || kill "$job_pid" 2> /dev/null
  wait 2> /dev/null
  rm -rf "$sockdir"
}
trap cleanup EXIT
export TERM=${TERM:-xterm}
[ "$TERM" != dumb ] || export TERM=xterm

# screen: the pane with its scrollback, trailing blank lines dropped
screen() { tm capture-pane -p -S -1000 -t shell | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
# visible: the visible pane only
visible() { tm capture-pane -p -t shell; }
# last_line: the last non-blank line of the pane
last_line() { screen | tail -n 1; }

# wait_for WHAT TEST...: runs TEST until it succeeds, for at most $limit s; else fails
# showing the pane.
wait_for() {
  local what=$1; shift
  local end=$(( $(date +%s) + limit ))
  while ! "$@"; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "--- the pane:"; screen; echo "---"
      fail "$what (waited $limit s)"
    fi
    sleep 0.1
  done
}
line_is() { [ "$(last_line)" = "$1" ]; }            # the last line is exactly TEXT
screen_has() { screen | grep -qE -- "$1"; }          # a line of the pane matches ERE
count_is() { [ "$(screen | grep -cE -- "$1")" -eq "$2" ]; }   # ERE matches N lines

"$eddy" run tests/shell/long.yaml --control "$addr" > "$work/job.stdout" 2> "$work/job.stderr" &
job_pid=$!
job_up() { "$eddy" shell "$addr" -c jobs < /dev/null > /dev/null 2>&1; }
wait_for "the job's control endpoint answers" job_up

# start_shell: a new tmux server with the shell in a 200x50 window; the pane stays
# after the shell exits and prints its exit code.
start_shell() {
  tm kill-server 2> /dev/null
  session=$((session + 1))
  tm new-session -d -s shell -x 200 -y 50 \
    "HOME='$work/home' '$eddy' shell '$addr'; echo \"SHELL-EXITED rc=\$?\"; sleep 600" ||
    fail "tmux new-session"
  wait_for "the prompt 'eddy> '" line_is "eddy>"
}
start_shell
# tmux drops the prompt's trailing blank in captures: "eddy>" is the empty prompt

# (a) completion
tm send-keys -t shell -l "tre"
tm send-keys -t shell Tab
wait_for "Tab completes 'tre' to 'tree'" line_is "eddy> tree"
tm send-keys -t shell Enter
wait_for "tree prints the supervision tree" screen_has "^  shelltest/win\[0\] +task "
echo "PASS: Tab completes a command name"

tm send-keys -t shell -l "info shelltest/win"
tm send-keys -t shell Tab
wait_for "Tab completes 'info shelltest/win' to the path 'shelltest/win[0]'" \
  line_is "eddy> info shelltest/win[0]"
tm send-keys -t shell Enter
wait_for "info shows the completed actor" screen_has "^path: +shelltest/win\[0\]$"
wait_for "info shows its operator" screen_has "^op: +window$"
wait_for "the prompt after info" line_is "eddy>"
echo "PASS: Tab completes an actor path with '/' and '[0]'; Enter shows its info"

# (b) history
tm send-keys -t shell -l "jobs"
tm send-keys -t shell Enter
wait_for "jobs prints the job" count_is "^shelltest +running " 1
wait_for "the prompt after jobs" line_is "eddy>"
tm send-keys -t shell Up
wait_for "Up recalls 'jobs'" line_is "eddy> jobs"
tm send-keys -t shell Enter
wait_for "the recalled jobs runs again (two job lines)" count_is "^shelltest +running " 2
wait_for "two 'eddy> jobs' lines" count_is "^eddy> jobs$" 2
echo "PASS: Up recalls the last command; Enter runs it again"

# (c) watch
tm send-keys -t shell -l "watch stats"
tm send-keys -t shell Enter
watching() { visible | grep -qE "^every 1s: stats " && visible | grep -qE "^shelltest +running "; }
wait_for "watch stats shows a screen" watching
first=$(visible)
changed() { watching && [ "$(visible)" != "$first" ]; }
wait_for "watch stats refreshes (a second, different screen)" changed
second=$(visible)
[ "$(printf '%s\n' "$first" | grep -E '^every 1s')" != "$(printf '%s\n' "$second" | grep -E '^every 1s')" ] ||
  fail "watch: the header's time did not change between refreshes"
tm send-keys -t shell q
wait_for "a key ends watch and the prompt comes back" line_is "eddy>"
sleep 1.5 # past a refresh: nothing more may be drawn, and the key must not reach the line
line_is "eddy>" || { screen; fail "watch drew after the key, or the key reached the line"; }
tm send-keys -t shell -l "jobs"
wait_for "typing echoes after watch" line_is "eddy> jobs"
tm send-keys -t shell Enter
wait_for "jobs after watch" line_is "eddy>"
echo "PASS: watch stats refreshes every second and stops at a key press; the terminal is restored"

# a very long line and Tab: no completion, no crash (libedit reallocates the buffer
# rl_line_buffer points into; ASan caught a use after free here)
tm send-keys -t shell -l "info $(head -c 6000 /dev/zero | tr '\0' x)"
tm send-keys -t shell Tab
tm send-keys -t shell C-u
tm send-keys -t shell -l "log 1"
tm send-keys -t shell Enter
wait_for "the shell still answers after Tab on a 6,000-character line" screen_has "^TIME +PATH +WHAT"
! screen_has "^SHELL-EXITED" || { screen; fail "the shell exited after Tab on a long line"; }
echo "PASS: Tab on a 6,000-character line completes nothing and the shell goes on"

# quit; history persists into a new session
tm send-keys -t shell -l "quit"
tm send-keys -t shell Enter
wait_for "quit exits 0" screen_has "^SHELL-EXITED rc=0$"
# (libedit writes a blank inside a line as \040)
grep -qx "jobs" "$work/home/.eddy_history" && grep -qxE 'log( |\\040)1' "$work/home/.eddy_history" ||
  { cat "$work/home/.eddy_history"; fail "\$HOME/.eddy_history lacks 'jobs' or 'log 1'"; }
start_shell
tm send-keys -t shell Up
wait_for "Up in a new session recalls 'quit'" line_is "eddy> quit"
tm send-keys -t shell Up
wait_for "Up again recalls 'log 1'" line_is "eddy> log 1"
tm send-keys -t shell C-u
tm send-keys -t shell C-d
wait_for "Ctrl-D on an empty line exits 0" screen_has "^SHELL-EXITED rc=0$"
echo "PASS: history persists in \$HOME/.eddy_history; Ctrl-D exits 0"

kill -0 "$job_pid" 2> /dev/null || { cat "$work/job.stderr"; fail "the job died during the test"; }
