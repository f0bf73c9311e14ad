#!/usr/bin/env bash
# wsdest's JavaScript client, /_wsdest/client.js, in Debian's Chromium and in
# this machine's Node (20: with the ws package as its WebSocket): records
# flow through a TCP proxy while the proxy cuts every connection and the
# wsdest behind it is stopped and restarted, then killed and restarted; each
# client keeps every record exactly once and in partition order. A wrong
# token ends the stream without retries, and the example page of
# docs/protocol.md runs as written, from another origin. client_snapshot.mjs
# checks the client's snapshot edges against a stand-in WebSocket.
#
# A first wsdest hosts the dev broker and its demo data (so the broker
# outlives the restarts); client.mjs starts and stops the one under test.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
	fail "client: $CHROMIUM not found (apt-get install chromium)"
	finish
fi
if [[ ! -d $INTEROP_DIR/node_modules/playwright-core ]]; then
	fail "client: playwright-core not installed (cd test/interop && npm ci)"
	finish
fi

# example_page: the fenced block after the client-page marker in
# docs/protocol.md.
example_page() {
	awk '
		$0 == "<!-- protocol-example: client-page -->" { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		inside { print }
	' "$REPO_ROOT/docs/protocol.md"
}

start_wsdest client-broker DEMO_INTERVAL=50ms || finish
broker=$BROKER broker_log=$WS_LOG
start_wsdest client-auth AUTH_API_KEYS="client-key-$RANDOM$RANDOM" || finish
auth_port=$WS_PORT
port=$(free_port) || {
	fail "client: no free port"
	finish
}
pass "client: dev broker with demo data on $broker; a wsdest with an API key on :$auth_port"

example_page | sed "s/localhost:8000/127.0.0.1:$port/g" >"$WORK/example.html"
if [[ -s $WORK/example.html ]]; then
	pass "client: the example page taken from the docs"
else
	fail "client: no block after <!-- protocol-example: client-page --> in docs/protocol.md"
fi

run_checker client-snapshot node "$INTEROP_DIR/client_snapshot.mjs"

mapfile -t env_args < <(clean_env)
run_checker client env CHROMIUM="$CHROMIUM" node "$INTEROP_DIR/client.mjs" \
	--bin "$WSDEST_BIN" --broker "$broker" --port "$port" --log "$WORK/client-wsdest.log" \
	--env "$(printf '%s\n' "${env_args[@]}")" --auth-port "$auth_port" --example "$WORK/example.html" --work "$WORK" || {
	show_log client-broker "$broker_log"
	show_log client-wsdest "$WORK/client-wsdest.log"
}
finish
