#!/usr/bin/env bash
# Debian's Chromium, driven by playwright-core, runs the README's JavaScript
# client in a page: demo data arrives and parses as JSON; with auth on, a bad
# token sees onclose with 1008 "credential not accepted", none 1008 pointing
# at ?token=.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
	fail "browser: $CHROMIUM not found (apt-get install chromium)"
	finish
fi
if [[ ! -d $INTEROP_DIR/node_modules/playwright-core ]]; then
	fail "browser: playwright-core not installed (cd test/interop && npm ci)"
	finish
fi

start_wsdest browser-open DEMO_INTERVAL=50ms || finish
open_port=$WS_PORT open_log=$WS_LOG
key=browser-key-$RANDOM$RANDOM
start_wsdest browser-auth AUTH_API_KEYS="$key" DEMO_INTERVAL=50ms || finish
auth_port=$WS_PORT auth_log=$WS_LOG
pass "browser: two wsdest instances ready (no auth :$open_port, auth :$auth_port)"

run_checker browser env CHROMIUM="$CHROMIUM" \
	node "$INTEROP_DIR/browser.mjs" --open-port "$open_port" --auth-port "$auth_port" --key "$key" || {
	show_log wsdest-open "$open_log"
	show_log wsdest-auth "$auth_log"
}
finish
