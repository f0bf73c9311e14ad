#!/usr/bin/env bash
# The production edges from outside: wss:// with a certificate signed by a
# test CA (openssl), checked by Python websockets with ssl and by Chromium;
# allowed origins; connection limits with clients held from 127.0.0.1 and
# 127.0.0.2; oversized subscriptions; 1007 for invalid UTF-8; /metrics over
# https, parsed.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

ca=$WORK/ca.pem
if ! (cd "$WORK" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
		-days 2 -subj "/CN=wsdest interop CA" &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out srv.csr -subj "/CN=localhost" &&
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\n' >ext.cnf &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf
) >"$WORK/openssl.log" 2>&1; then
	fail "edges: openssl could not make the test CA and certificate"
	show_log openssl "$WORK/openssl.log"
	finish
fi
pass "edges: test CA and a server certificate for localhost, 127.0.0.1 and 127.0.0.2"

WS_SCHEME=https WS_CACERT=$ca start_wsdest edges TLS_CERT_FILE="$WORK/cert.pem" TLS_KEY_FILE="$WORK/key.pem" \
	ALLOWED_ORIGINS="https://app.example.com,https://*.example.org" \
	MAX_CONNECTIONS=6 MAX_CONNECTIONS_PER_IP=3 MAX_SUBSCRIPTION_KEYS=4 DEMO_INTERVAL=50ms || finish
pass "edges: wsdest serving TLS is ready on :$WS_PORT"

run_checker edges "$PY" "$INTEROP_DIR/edge_check.py" --port "$WS_PORT" --ca "$ca" ||
	show_log wsdest "$WS_LOG"

if [[ -x ${CHROMIUM:-/usr/bin/chromium} && -d $INTEROP_DIR/node_modules/playwright-core ]]; then
	spki=$(openssl x509 -in "$WORK/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	run_checker edges-browser env CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" NODE_EXTRA_CA_CERTS="$ca" \
		node "$INTEROP_DIR/browser_tls.mjs" --port "$WS_PORT" --spki "$spki" ||
		show_log wsdest "$WS_LOG"
else
	fail "edges: chromium and playwright-core are needed for the browser checks"
fi
finish
