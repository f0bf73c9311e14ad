#!/usr/bin/env bash
# The README's first command, as written: `go run ./cmd/wsdest` in the
# repository root with no configuration starts the dev broker with demo data,
# serves it on /ws, answers /healthz, /readyz and /stats, and stops cleanly
# on Ctrl-C. Run once on free ports (8000 and 9092 may be taken on a
# developer's machine) and once with the true defaults when they are free.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

mapfile -t env_args < <(clean_env)
args=()
if [[ -e $REPO_ROOT/.env ]]; then
	# A developer's own settings would change what is tested.
	echo "note: $REPO_ROOT/.env exists; these runs pass -env-file with an empty file to ignore it"
	: >"$WORK/empty.env"
	args=(-env-file "$WORK/empty.env")
fi

# readme_run NAME PORT [VAR=VALUE...]: runs `go run ./cmd/wsdest` with a
# clean environment plus VAR=VALUE and checks it on 127.0.0.1:PORT.
readme_run() {
	local name=$1 port=$2
	shift 2
	local log=$WORK/$name.log base=http://127.0.0.1:$port
	start_bg "$log" env -i -C "$REPO_ROOT" "${env_args[@]}" "$@" go run ./cmd/wsdest "${args[@]}"
	local pid=$BG_PID
	# Generous: `go run` may have to compile on a cold cache.
	if ! wait_http "$base/healthz" 180 "$pid"; then
		fail "$name: go run ./cmd/wsdest answers /healthz on :$port"
		show_log "$name" "$log"
		stop_bg "$pid"
		return
	fi
	pass "$name: go run ./cmd/wsdest answers /healthz with 200 on :$port"
	if wait_http "$base/readyz" 20 "$pid"; then
		pass "$name: /readyz answers 200"
	else
		fail "$name: /readyz answers 200: got $(http_status "$base/readyz") after 20s"
	fi
	run_checker "$name" "$PY" "$INTEROP_DIR/ws_check.py" recv --name "$name" --count 4 \
		--url "ws://127.0.0.1:$port/ws"
	local stats
	if stats=$(curl -fsS -m 5 "$base/stats") &&
		"$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(not isinstance(d, dict))' "$stats"; then
		pass "$name: /stats is a JSON object"
	else
		fail "$name: /stats is a JSON object: got ${stats:-nothing}"
	fi
	# `go run` itself exits 1 after an interrupt whatever the program did, so
	# only the program's own log tells whether it stopped cleanly (kcat.sh
	# checks the binary's exit status).
	local rc=0
	stop_bg "$pid" INT || rc=$?
	if ((rc != 124)) && ! grep -q 'level=ERROR' "$log"; then
		pass "$name: Ctrl-C (SIGINT) stops it, with no error logged"
	else
		fail "$name: Ctrl-C (SIGINT) stops it, with no error logged (go run status $rc)"
		show_log "$name" "$log"
	fi
}

if ! port=$(free_port) || ! bport=$(free_port); then
	fail "readme: no free port"
	finish
fi
readme_run readme-free-ports "$port" PORT="$port" DEV_BROKER_ADDR="127.0.0.1:$bport"

if port_in_use 8000 || port_in_use 9092; then
	skip "readme-defaults: port 8000 or 9092 is in use here, so the run with no settings at all is skipped"
else
	readme_run readme-defaults 8000
fi
finish
