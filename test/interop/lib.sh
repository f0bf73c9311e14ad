# shellcheck shell=bash
# Helpers shared by the interop scripts; sourced, never run.
#
# Every script that sources this file gets a private scratch directory
# ($WORK), PASS/FAIL reporting, and an EXIT trap that stops every process it
# started through start_bg (each in its own process group, so `go run` and
# its child go together) and removes $WORK.
#
# The scripts read:
#   WSDEST_BIN  the wsdest binary to test (run.sh builds it; when unset,
#               start_wsdest builds one)
#   PY          a Python 3 that can import websockets (default /usr/bin/python3,
#               Debian's python3-websockets; a pyenv python3 would not see it)

set -u -o pipefail

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
PY=${PY:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsdest-interop.XXXXXX")
BG_PIDS=()  # started by start_bg
STOPPED=()  # stopped by stop_bg
FAILURES=0

pass() { echo "PASS $*"; }
fail() {
	echo "FAIL $*"
	FAILURES=$((FAILURES + 1))
}
skip() { echo "SKIP $*"; }

# finish: exits 1 if any check failed, else 0.
finish() { exit $((FAILURES > 0 ? 1 : 0)); }

# run_checker NAME CMD...: runs CMD, a checker that prints PASS/FAIL lines
# (ws_check.py, browser.mjs), under a time limit, and passes its lines on.
# A checker that fails without saying so, or says nothing, is one FAIL.
# Returns 1 if anything failed.
run_checker() {
	local name=$1 out rc=0
	shift
	out=$(timeout -k 5 120 "$@" 2>&1) || rc=$?
	printf '%s\n' "$out"
	local nfail
	nfail=$(grep -c '^FAIL ' <<<"$out")
	FAILURES=$((FAILURES + nfail))
	if ((rc == 124)); then
		fail "$name: timed out after 120s"
	elif ((rc != 0 && nfail == 0)); then
		fail "$name: exited with status $rc"
	elif ! grep -q '^PASS ' <<<"$out" && ((nfail == 0)); then
		fail "$name: reported no check"
	fi
	((rc == 0 && nfail == 0))
}

# stop_bg PID [SIGNAL]: signals PID's process group (default TERM), waits up
# to 15 s for the leader to exit, then kills the group. Returns the leader's
# exit status, or 124 if it had to be killed.
stop_bg() {
	local pid=$1 sig=${2:-TERM} i
	STOPPED+=("$pid")
	kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	# Children of `go run` may outlive it for a moment; they share its group.
	kill -KILL -- "-$pid" 2>/dev/null
	return "$rc"
}

cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		[[ " ${STOPPED[*]} " == *" $pid "* ]] || stop_bg "$pid" TERM
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg LOG CMD...: starts CMD in the background in a new process group,
# output to LOG, and sets BG_PID.
start_bg() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: prints a port nothing listens on, below Linux's ephemeral range
# so that outgoing connections do not take it meanwhile.
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		port_in_use "$p" || {
			echo "$p"
			return 0
		}
	done
	return 1
}

# wait_http URL SECONDS [PID]: waits until URL answers 2xx; gives up early if
# PID has exited.
wait_http() {
	local url=$1 pid=${3:-} deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		curl -fsS -m 2 ${WS_CACERT:+--cacert "$WS_CACERT"} -o /dev/null "$url" 2>/dev/null && return 0
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# http_status URL: prints the HTTP status code of a GET of URL.
http_status() {
	curl -sS -m 5 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true
}

# clean_env: prints NAME=VALUE arguments for `env -i` that keep the toolchain
# working (PATH, HOME, TMPDIR and Go's own settings) and drop everything else,
# so that no stray wsdest variable (PORT, input, Quix__*) from the caller's
# environment changes what is tested.
clean_env() {
	local v
	printf '%s\n' "PATH=$PATH" "HOME=${HOME:-/root}"
	[[ -n ${TMPDIR:-} ]] && printf '%s\n' "TMPDIR=$TMPDIR"
	for v in $(compgen -e); do
		[[ $v == GO* ]] && printf '%s\n' "$v=${!v}"
	done
}

# show_log NAME FILE: prints the tail of a log after a failure.
show_log() {
	echo "---- last lines of $1 ($2) ----"
	tail -n 25 "$2" 2>/dev/null | sed 's/^/    /'
	echo "----"
}

# start_wsdest NAME [VAR=VALUE...]: starts $WSDEST_BIN with a clean
# environment plus the given variables, on a free PORT and a free
# DEV_BROKER_ADDR port, and waits until /readyz answers 200. Sets WS_PID,
# WS_PORT, BROKER (host:port of the dev broker) and WS_LOG. A port taken
# between the choice and the bind is retried with other ports.
start_wsdest() {
	local name=$1 env_args _
	shift
	if [[ -z ${WSDEST_BIN:-} ]]; then
		# Run on its own, not from run.sh: build the binary here.
		WSDEST_BIN=$WORK/wsdest
		if ! (cd "$REPO_ROOT" && go build -o "$WSDEST_BIN" ./cmd/wsdest); then
			fail "$name: go build ./cmd/wsdest"
			return 1
		fi
	fi
	mapfile -t env_args < <(clean_env)
	for _ in 1 2 3; do
		local bport
		if ! WS_PORT=$(free_port) || ! bport=$(free_port); then
			fail "$name: no free port found"
			return 1
		fi
		[[ $bport == "$WS_PORT" ]] && continue
		BROKER=127.0.0.1:$bport
		WS_LOG=$WORK/$name.log
		# The scratch directory as working directory: no stray .env is read.
		start_bg "$WS_LOG" env -i -C "$WORK" "${env_args[@]}" \
			PORT="$WS_PORT" DEV_BROKER_ADDR="$BROKER" "$@" "$WSDEST_BIN"
		WS_PID=$BG_PID
		# WS_SCHEME=https (with WS_CACERT) for a wsdest serving TLS.
		if wait_http "${WS_SCHEME:-http}://127.0.0.1:$WS_PORT/readyz" 20 "$WS_PID"; then
			return 0
		fi
		if ! kill -0 "$WS_PID" 2>/dev/null; then
			local rc=0
			wait "$WS_PID" 2>/dev/null || rc=$?
			STOPPED+=("$WS_PID")
			grep -q 'address already in use' "$WS_LOG" && continue
			fail "$name: wsdest exited with status $rc before /readyz answered"
		else
			fail "$name: wsdest not ready on :$WS_PORT within 20s: /readyz answers $(http_status "http://127.0.0.1:$WS_PORT/readyz")"
		fi
		show_log "$name" "$WS_LOG"
		return 1
	done
	fail "$name: no free port after 3 attempts"
	return 1
}
