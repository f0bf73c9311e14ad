#!/usr/bin/env bash
# Headless Chromium's own EventSource against the real wsdest binary: it
# streams envelope records over Server-Sent Events, wsdest is stopped
# (SIGTERM) and started again on the same port while records keep being
# produced, and EventSource reconnects by itself with Last-Event-ID: every
# record arrives once, none is lost, no partition skips an offset.
#
# A first wsdest hosts the dev broker and its demo data (so the broker
# outlives the restarts); sse_restart.mjs starts and stops the second one.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
	fail "sse_restart: $CHROMIUM not found (apt-get install chromium)"
	finish
fi
if [[ ! -d $INTEROP_DIR/node_modules/playwright-core ]]; then
	fail "sse_restart: playwright-core not installed (cd test/interop && npm ci)"
	finish
fi

start_wsdest sse-broker DEMO_INTERVAL=50ms || finish
broker=$BROKER broker_log=$WS_LOG
port=$(free_port) || {
	fail "sse_restart: no free port"
	finish
}
pass "sse_restart: dev broker with demo data on $broker"

mapfile -t env_args < <(clean_env)
run_checker sse_restart env CHROMIUM="$CHROMIUM" node "$INTEROP_DIR/sse_restart.mjs" \
	--bin "$WSDEST_BIN" --broker "$broker" --port "$port" --log "$WORK/sse-wsdest.log" \
	--env "$(printf '%s\n' "${env_args[@]}")" || {
	show_log sse-broker "$broker_log"
	show_log sse-wsdest "$WORK/sse-wsdest.log"
}
finish
