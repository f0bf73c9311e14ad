#!/usr/bin/env bash
# What a user sees when wsdest's ports are taken (8000 and 9092 often are on
# a developer's machine): a one-line start-up error that names the port and
# the variable to change, and exit status 2; never a panic.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

start_wsdest busy DEMO_DATA=false || finish
pass "busy: a first wsdest holds :$WS_PORT and the dev broker port $BROKER"
mapfile -t env_args < <(clean_env)

# busy_case NAME VAR PORT VAR=VALUE...: runs a second wsdest that must fail.
busy_case() {
	local name=$1 var=$2 port=$3 out rc=0
	shift 3
	out=$(timeout -k 5 20 env -i -C "$WORK" "${env_args[@]}" DEMO_DATA=false "$@" "$WSDEST_BIN" 2>&1) || rc=$?
	local why=""
	((rc == 2)) || why+="exit status $rc, want 2; "
	[[ $out == *panic* ]] && why+="it panicked; "
	[[ $out == *"$port"* && $out == *"$var"* ]] || why+="the message does not name $var and $port; "
	if [[ -z $why ]]; then
		pass "busy: $name taken: exit status 2 and a message naming $var"
	else
		fail "busy: $name taken: ${why%; }"
		printf '%s\n' "$out" | tail -n 8 | sed 's/^/    /'
	fi
}

busy_case "PORT" PORT "$WS_PORT" PORT="$WS_PORT" DEV_BROKER_ADDR=127.0.0.1:0
busy_case "DEV_BROKER_ADDR" DEV_BROKER_ADDR "${BROKER##*:}" PORT=0 DEV_BROKER_ADDR="$BROKER"
finish
