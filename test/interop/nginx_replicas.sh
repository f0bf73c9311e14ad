#!/usr/bin/env bash
# Debian's nginx with deploy/nginx/wsdest.conf in front of three wsdest
# replicas, each in a network namespace of its own with its own address, and
# one broker (a wsdest with the dev broker and demo data, in a namespace too;
# the replicas read it through Quix__Broker__Address). nginx and the clients
# run in a fifth namespace. Checks, through nginx:
#   - the shipped configuration passes `nginx -t` as it is;
#   - SSE streams unbuffered, the client's address reaches the replicas
#     through X-Forwarded-For, and a WebSocket handshake through an nginx
#     server without the upgrade lines gets wsdest's 426 naming the fix;
#   - a client that drops its connection every second and resumes with its
#     cursor lands on all three replicas, nothing lost or duplicated;
#   - one replica killed with SIGKILL mid-stream: its clients move to the
#     others and lose nothing;
#   - all three restarted one after another: nothing lost.
# The namespaces, veth pairs and the bridge are made here and removed at
# exit; where `ip netns` is not permitted, those checks are skipped.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
if [[ ! -x $NGINX ]]; then
	fail "nginx_replicas: $NGINX not found (apt-get install nginx-light)"
	finish
fi
conf_src=$REPO_ROOT/deploy/nginx/wsdest.conf

# nginx_main DIR INCLUDE [EXTRA]: writes DIR/nginx.conf, a main
# configuration whose http block includes INCLUDE, as Debian's does with
# conf.d/*.conf, and EXTRA, with everything nginx writes kept in DIR.
nginx_main() {
	local dir=$1 include=$2 extra=${3:-}
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<-CONF
		daemon off;
		user root;
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log warn;
		events { worker_connections 1024; }
		http {
		    log_format wsdest '\$request_uri \$status \$upstream_addr';
		    access_log $dir/access.log wsdest;
		    client_body_temp_path $dir/body;
		    proxy_temp_path $dir/proxy;
		    include $include;
		    $extra
		}
	CONF
}

nginx_main "$WORK/nginx-t" "$conf_src"
if out=$("$NGINX" -t -q -p "$WORK/nginx-t" -c "$WORK/nginx-t/nginx.conf" 2>&1); then
	pass "nginx_replicas: deploy/nginx/wsdest.conf as shipped passes nginx -t"
else
	fail "nginx_replicas: deploy/nginx/wsdest.conf as shipped fails nginx -t: $out"
fi

# The network: a bridge on the host without an address, and five
# namespaces on it. Names are short (interface names have 15 characters at
# most) and unique to this run.
tag=wsd$$
probe=$tag-probe
if ! err=$(ip netns add "$probe" 2>&1); then
	skip "nginx_replicas: ip netns is not permitted here ($err): the replica checks need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
	finish
fi
ip netns del "$probe"
net=""
for ((i = 0; i < 20; i++)); do
	n=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
	ip -4 route | grep -q "^$n\." || {
		net=$n
		break
	}
done
[[ -n $net ]] || {
	fail "nginx_replicas: no free 10.x.y.0/24 subnet"
	finish
}

NAMESPACES=()
netns_cleanup() {
	local ns
	for ns in "${NAMESPACES[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip link del "br$tag" 2>/dev/null
}
trap 'cleanup; netns_cleanup' EXIT

ip link add "br$tag" type bridge && ip link set "br$tag" up || {
	fail "nginx_replicas: create bridge br$tag"
	finish
}
# add_ns NAME HOSTPART: a namespace with one interface on the bridge,
# address $net.HOSTPART.
add_ns() {
	local ns=$tag-$1 veth=v$tag$1
	ip netns add "$ns" || return 1
	NAMESPACES+=("$ns")
	ip link add "$veth" type veth peer name eth0 netns "$ns" &&
		ip link set "$veth" master "br$tag" && ip link set "$veth" up &&
		ip -n "$ns" link set lo up && ip -n "$ns" link set eth0 up &&
		ip -n "$ns" addr add "$net.$2/24" dev eth0
}
for spec in b:2 n:3 1:11 2:12 3:13; do
	add_ns "${spec%%:*}" "${spec##*:}" || {
		fail "nginx_replicas: create namespace $tag-${spec%%:*}"
		finish
	}
done
pass "nginx_replicas: five namespaces on bridge br$tag, $net.0/24"

broker=$net.2:9092
proxy=$net.3 # nginx's address, as the replicas see it
mapfile -t env_args < <(clean_env)
# in_ns NS CMD...: runs CMD in namespace $tag-NS.
in_ns() {
	local ns=$1
	shift
	ip netns exec "$tag-$ns" "$@"
}
# ready_in URL SECONDS PID: waits until URL, fetched from the nginx
# namespace, answers 200.
ready_in() {
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		in_ns n curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_bg "$WORK/broker.log" ip netns exec "$tag-b" env -i -C "$WORK" "${env_args[@]}" \
	HOST="$net.2" PORT=8000 DEV_BROKER_ADDR="$broker" DEMO_INTERVAL=50ms "$WSDEST_BIN"
broker_pid=$BG_PID
if ! ready_in "http://$net.2:8000/readyz" 30 "$broker_pid"; then
	fail "nginx_replicas: broker (wsdest with the dev broker) on $broker"
	show_log broker "$WORK/broker.log"
	finish
fi

declare -A PIDS
# start_replica I: starts replica I in its namespace at $net.1I:8000.
start_replica() {
	start_bg "$WORK/replica$1.log" ip netns exec "$tag-$1" env -i -C "$WORK" "${env_args[@]}" \
		HOST="$net.1$1" PORT=8000 Quix__Broker__Address="$broker" input=input \
		TRUSTED_PROXIES="$proxy" LOG_LEVEL=debug "$WSDEST_BIN"
	PIDS[$1]=$BG_PID
	if ! ready_in "http://$net.1$1:8000/readyz" 30 "$BG_PID"; then
		fail "nginx_replicas: replica $1 ready on $net.1$1:8000"
		show_log "replica$1" "$WORK/replica$1.log"
		return 1
	fi
}
for i in 1 2 3; do
	start_replica "$i" || finish
done
pass "nginx_replicas: broker and three replicas ready ($net.11-13:8000, broker $broker)"

# The shipped file with only the replicas and the listen address changed.
conf=$WORK/wsdest.conf
sed -e "s|^\( *\)server 127.0.0.1:8000 \(.*\)|\1server $net.11:8000 \2\n\1server $net.12:8000 \2\n\1server $net.13:8000 \2|" \
	-e 's|^\( *\)listen 80;|\1listen 127.0.0.1:8080;|' "$conf_src" >"$conf"
if [[ $(grep -c "server $net.1[123]:8000" "$conf") != 3 ]] || ! grep -q 'listen 127.0.0.1:8080;' "$conf"; then
	fail "nginx_replicas: rewrite the upstream and listen lines of wsdest.conf (did their form change?)"
	finish
fi
# Beside it, a server as many are first written: proxying to the same
# replicas without the upgrade lines.
nginx_main "$WORK/nginx" "$conf" "server { listen 127.0.0.1:8081; location / { proxy_pass http://wsdest; proxy_http_version 1.1; } }"
start_bg "$WORK/nginx.log" ip netns exec "$tag-n" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
nginx_pid=$BG_PID
if ! ready_in "http://127.0.0.1:8080/readyz" 10 "$nginx_pid"; then
	fail "nginx_replicas: nginx up on 127.0.0.1:8080 in $tag-n"
	show_log nginx "$WORK/nginx.log"
	show_log nginx-error "$WORK/nginx/error.log"
	finish
fi
pass "nginx_replicas: nginx with the shipped wsdest.conf proxies to the three replicas"

# SSE through nginx: events arrive unbuffered (the first two demo records
# within a few seconds).
sse=$(in_ns n timeout 5 curl -sS -N -m 4 'http://127.0.0.1:8080/sse?envelope=true' 2>/dev/null | grep -c '^data: {"topic"')
if ((sse >= 2)); then
	pass "nginx_replicas: SSE through nginx streams events as they come ($sse in 4 s)"
else
	fail "nginx_replicas: SSE through nginx: $sse events in 4 s"
fi

# X-Forwarded-For: the replica that served the SSE client names the
# client's address (127.0.0.1 in nginx's namespace), not nginx's.
if grep -h "client connected" "$WORK"/replica[123].log | grep -q "transport=sse.* remote=\"127.0.0.1 via $net.3:"; then
	pass "nginx_replicas: with TRUSTED_PROXIES, the replica logs the client's address from X-Forwarded-For"
else
	fail "nginx_replicas: no replica logged the SSE client as remote=127.0.0.1: $(cat "$WORK"/replica[123].log | grep 'client connected' | head -3)"
fi

# A WebSocket handshake through the server without the upgrade lines:
# nginx drops Upgrade and Connection, and wsdest says so.
body=$(in_ns n curl -sS -m 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13' \
	-w '\n%{http_code}' 'http://127.0.0.1:8081/ws')
if [[ ${body##*$'\n'} == 426 && $body == *"a proxy between the client and wsdest dropped them"* &&
	$body == *'proxy_set_header Upgrade $http_upgrade;'* ]]; then
	pass "nginx_replicas: a WebSocket handshake through nginx without the upgrade lines gets 426 saying a proxy dropped them, with the lines"
else
	fail "nginx_replicas: 426 for a request without Upgrade: $body"
fi

# The clients, through nginx, until $stop exists.
stop=$WORK/stop
start_bg "$WORK/clients.out" ip netns exec "$tag-n" "$PY" "$INTEROP_DIR/replica_client.py" \
	--url ws://127.0.0.1:8080/ws --stop "$stop" --droppers 1 --stayers 6 --drop-every 1
clients_pid=$BG_PID
sleep 7

# One replica killed mid-stream, then started again.
victim=2
before=$(grep -c "^/ws?.*client=stayer" "$WORK/nginx/access.log")
STOPPED+=("${PIDS[$victim]}")
{
	kill -KILL "${PIDS[$victim]}"
	wait "${PIDS[$victim]}"
} 2>/dev/null
sleep 3
moved=$(grep "^/ws?.*client=stayer" "$WORK/nginx/access.log" | tail -n +$((before + 1)) | grep -c " $net.1$victim:8000")
if ((moved >= 1)); then
	pass "nginx_replicas: replica $victim killed with SIGKILL: $moved of its streams ended (their clients reconnect to the others)"
else
	fail "nginx_replicas: replica $victim killed: no stream of a stayer on it ended (none was on it?)"
fi
start_replica "$victim" || finish
sleep 2

# All three restarted one after another (SIGTERM: 1001 going away).
for i in 1 2 3; do
	stop_bg "${PIDS[$i]}" || fail "nginx_replicas: replica $i stopped cleanly on SIGTERM"
	start_replica "$i" || finish
	sleep 1
done
pass "nginx_replicas: all three replicas restarted one after another"
sleep 3
touch "$stop"
for ((i = 0; i < 100; i++)); do
	kill -0 "$clients_pid" 2>/dev/null || break
	sleep 0.1
done
STOPPED+=("$clients_pid")
wait "$clients_pid" 2>/dev/null
summary=$(grep '^{"clients"' "$WORK/clients.out")
if [[ -z $summary ]]; then
	fail "nginx_replicas: the clients printed no summary"
	show_log clients "$WORK/clients.out"
	finish
fi

# Every client: records throughout, no gap, no repeat, no notice.
"$PY" - "$summary" <<-'PY'
	import json, sys
	clients = json.loads(sys.argv[1])["clients"]
	for name, c in sorted(clients.items()):
	    ok = c["records"] >= 300 and not c["gaps"] and not c["dups"] and not c["notices"]
	    print(("PASS" if ok else "FAIL"), f"nginx_replicas: {name}: {c['records']} records over {c['connections']} connections,",
	          f"no gap, no repeat" if ok else f"gaps={c['gaps']} dups={c['dups']} notices={c['notices']} errors={c['errors']}")
PY
# The dropper's connections landed on every replica.
# (Of its upgraded connections, the replica that answered: the last
# address when nginx had to try more than one.)
mapfile -t served < <(grep '^/ws?.*client=dropper0.* 101 ' "$WORK/nginx/access.log" | cut -d' ' -f3- | awk -F', ' '{print $NF}' | sort -u)
landed=$(printf '%s\n' "${served[@]}" | grep -c "^$net.1[123]:8000$")
if ((landed == 3)); then
	pass "nginx_replicas: the dropping client landed on all three replicas (${served[*]})"
else
	fail "nginx_replicas: the dropping client landed on $landed replicas: ${served[*]}"
fi
stop_bg "$nginx_pid"
finish
