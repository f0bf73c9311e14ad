#!/usr/bin/env bash
# Python websockets clients against wsdest with API keys and Basic
# credentials: missing and bad ones are closed with 1008 and a reason that says what to do, good ones
# get the demo data, and no secret reaches the log.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

key=interop-key-$RANDOM$RANDOM
user=interop
password="pa:ss w0rd-$RANDOM"
start_wsdest auth AUTH_API_KEYS="other-key, $key" WS_USERNAME="$user" WS_PASSWORD="$password" \
	DEMO_INTERVAL=50ms || finish
pass "auth: wsdest with AUTH_API_KEYS and WS_USERNAME/WS_PASSWORD is ready on :$WS_PORT"
run_checker auth "$PY" "$INTEROP_DIR/ws_check.py" auth --port "$WS_PORT" \
	--key "$key" --user "$user" --password "$password" ||
	show_log wsdest "$WS_LOG"
if grep -qF -e "$key" -e "$password" "$WS_LOG"; then
	fail "auth: no API key or password in wsdest's log"
else
	pass "auth: no API key or password in wsdest's log"
fi
finish
