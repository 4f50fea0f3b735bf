#!/usr/bin/env bash
# Overload runs (BENCHMARKS.md "Overload"): a ccpbx binary on 127.0.0.1 with a
# copy of a config.toml plus USERS directory users u1000… (password 1234), and
# bench/sipload offering RATE REGISTERs (digest) per second to the internal
# profile or RATE trunk calls per second to queue 3000, for SECS seconds. It
# prints sipload's summary and ccpbx's CPU time and peak memory.
#
# Usage: bench/overload.sh -m register|invite -r RATE [-t SECS] [-b BINARY]
#          [-c CONFIG] [-u USERS] [-H HOLD] [-x 'key = value' …] [-p DIR] [-k]
#   -b  the ccpbx binary (default: built from this tree)
#   -c  the config.toml to start from (default: this tree's); an older
#       tree's config for an older binary, which refuses unknown keys
#   -x  a line appended to [core] (repeatable, e.g. -x 'overload_delay = "0s"')
#   -X  a line appended to each profile (repeatable)
#   -p  profile: the binary must be built with -tags benchprofile; cpu.pprof
#       and heap.pprof of seconds 5-15 of the run land in DIR
#   -P  profile any binary through [http] pprof = true (a free loopback
#       port): cpu.pprof of seconds 2-12 of the load, then block.pprof,
#       mutex.pprof and heap.pprof, land in DIR
#   -k  keep the temporary directory
set -euo pipefail

MODE=register RATE=100 SECS=20 BIN="" CFGSRC="" USERS=1000 HOLD=1s PROF="" HTTPPROF="" KEEP=0
CORE=() PROFX=()
while getopts "m:r:t:b:c:u:H:x:X:p:P:k" o; do
	case $o in
	m) MODE=$OPTARG ;;
	r) RATE=$OPTARG ;;
	t) SECS=$OPTARG ;;
	b) BIN=$OPTARG ;;
	c) CFGSRC=$OPTARG ;;
	u) USERS=$OPTARG ;;
	H) HOLD=$OPTARG ;;
	x) CORE+=("$OPTARG") ;;
	X) PROFX+=("$OPTARG") ;;
	p) PROF=$OPTARG ;;
	P) HTTPPROF=$OPTARG ;;
	k) KEEP=1 ;;
	*) sed -n '2,22p' "$0"; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/ccpbx-overload.XXXXXX)
PBX=""
cleanup() {
	if [ -n "$PBX" ]; then kill "$PBX" 2>/dev/null || true; wait "$PBX" 2>/dev/null || true; fi
	if [ "$KEEP" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

if [ -z "$BIN" ]; then
	(cd "$ROOT" && go build -o "$TMP/ccpbx" ./cmd/ccpbx)
	BIN=$TMP/ccpbx
fi
(cd "$ROOT" && go build -o "$TMP/sipload" ./bench/sipload)

read -r INT TRUNK ESL WEB < <(free_ports 4)

CFG=$TMP/config.toml
extra_core=$(printf '%s\\n' "${CORE[@]}")
extra_prof=$(printf '%s\\n' "${PROFX[@]}")
sed -e 's/^listen_ip = "0.0.0.0"/listen_ip = "127.0.0.1"\nadvertise_ip = "127.0.0.1"/' \
	-e "s/^port = 5060$/port = $INT/" -e "s/^port = 5080$/port = $TRUNK/" \
	-e "s/^listen = \"127.0.0.1:8021\"/listen = \"127.0.0.1:$ESL\"/" \
	-e "s|^data_dir = \"data\"|data_dir = \"$TMP/data\"|" \
	-e 's/^log_level = "info"/log_level = "warn"/' \
	-e "s|^\[core\]|[core]\n$extra_core|" \
	-e "s|^context = \(.*\)|context = \1\n$extra_prof|" \
	"${CFGSRC:-$ROOT/config.toml}" >"$CFG"
for i in $(seq 0 $((USERS - 1))); do
	printf '\n[[directory.user]]\nid = "u%d"\n[directory.user.params]\npassword = "1234"\n' $((1000 + i)) >>"$CFG"
done

if [ -n "$HTTPPROF" ]; then
	mkdir -p "$HTTPPROF"
	printf '\n[http]\nlisten = "127.0.0.1:%d"\npprof = true\n' "$WEB" >>"$CFG"
fi
if [ -n "$PROF" ]; then mkdir -p "$PROF"; export CCPBX_PROFILE_DIR=$PROF CCPBX_PROFILE_AFTER=5 CCPBX_PROFILE_FOR=10; fi
(cd "$ROOT" && exec "$BIN" serve -config "$CFG") >"$TMP/ccpbx.log" 2>&1 &
PBX=$!
for _ in $(seq 100); do
	"$BIN" cli -config "$CFG" -x status >/dev/null 2>&1 && break
	sleep 0.1
done
"$BIN" cli -config "$CFG" -x status >/dev/null

case $MODE in
register) TARGET=127.0.0.1:$INT ;;
invite) TARGET=127.0.0.1:$TRUNK ;;
*) echo "mode: register or invite" >&2; exit 2 ;;
esac
udp_drops() { awk '/^Udp:/ {n++; if (n == 2) print $6}' /proc/net/snmp; }
# Datagrams the kernel dropped at ccpbx's own socket of the target profile
# (its receive buffer was full), as opposed to the machine's total.
sock_drops() { awk -v a="$(printf '0100007F:%04X' "${TARGET##*:}")" '$2 == a {n = $NF} END {print (n == "" ? "n/a" : n)}' /proc/net/udp; }
drops0=$(udp_drops)
ticks0=$(awk '{print $14 + $15}' /proc/$PBX/stat)
PROFILER=""
if [ -n "$HTTPPROF" ]; then
	(
		sleep 2
		get() { curl -sS --max-time 60 -o "$HTTPPROF/$1" "http://127.0.0.1:$WEB/debug/pprof/$2"; }
		get cpu.pprof 'profile?seconds=10'
		get block.pprof block
		get mutex.pprof mutex
		get heap.pprof heap
	) &
	PROFILER=$!
fi
"$TMP/sipload" -mode "$MODE" -target "$TARGET" -rate "$RATE" -duration "${SECS}s" -users "$USERS" -hold "$HOLD"
if [ -n "$PROFILER" ]; then wait "$PROFILER" || true; fi
ticks1=$(awk '{print $14 + $15}' /proc/$PBX/stat)
drops1=$(udp_drops)
hz=$(getconf CLK_TCK)
echo "ccpbx: cpu=$(python3 -c "print(round(($ticks1-$ticks0)/$hz, 1))")s peak_rss=$(awk '/VmHWM/{print $2, $3}' /proc/$PBX/status) log_lines=$(wc -l <"$TMP/ccpbx.log") shed_logs=$(grep -c 'overload: shedding' "$TMP/ccpbx.log" || true) udp_rcvbuf_drops=$((drops1 - drops0)) (whole machine) ccpbx_socket_drops=$(sock_drops)"
