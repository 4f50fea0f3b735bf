#!/usr/bin/env bash
# Whole-PBX load run: the real ccpbx binary on 127.0.0.1 with a copy of the
# shipped config.toml, AGENTS agents registered and logged in, and sipp
# trunk callers to 3000 (the article's queue) at a fixed rate so that about
# CONCURRENT calls are up at once, each held HOLD seconds (music, then an
# agent; the agents talk and the callers echo, so audio crosses the relay
# both ways). It reports whole-process CPU of ccpbx (from /proc/PID/stat),
# its memory, the callers' and agents' success counts, the machine's UDP
# datagram rate and the sipp processes' CPU. Figures: BENCHMARKS.md, "whole
# PBX".
#
# Usage: bench/load.sh [-c CONCURRENT] [-H HOLD_SECONDS] [-t SECONDS] [-a AGENTS] [-R RATE]
#                      [-b BINARY] [-d] [-p DIR] [-T DIR] [-r] [-k]
#   -c  concurrent calls wanted (default 80); sipp's -l is set to it
#   -H  how long each caller stays (default 20; fractions allowed: 3.5)
#   -R  calls per second instead of CONCURRENT/HOLD (sipp's -l stays
#       CONCURRENT: calls beyond it wait in sipp)
#   -t  how long new calls are started (default 60); total calls = rate * t
#   -a  agents (default CONCURRENT + 20: an agent is offered again only in
#       the second after its last call ended, as in mod_callcenter)
#   -b  run this ccpbx binary instead of building the worktree's (a
#       "before" build of main, for A/B runs)
#   -d  dispatch latency: capture SIP on lo (dumpcap, only the trunk's
#       and the agents' ports) and report, per call, the time from the
#       caller's first INVITE reaching the trunk port to the PBX's first
#       INVITE reaching the agents' port, matched by the caller's number
#       (the agent INVITE's From user); p50/p90/p99/max
#   -p  profiles into DIR: /debug/pprof on (a loopback [http] listener),
#       a 10 s CPU profile from 10 s into the load, heap profiles
#       (heap?gc=1) at 10 s, at the end of the load and 40 s after it
#   -T  execution trace into DIR: /debug/pprof on, a 5 s runtime trace
#       (trace.out) from 12 s into the load, for `go tool trace` (where
#       goroutines wait: scheduler, channels, locks, syscalls, GC); no
#       other profiles are taken, so the trace is the only observer
#   -r  record every queue call (record-template, stereo WAV in the
#       temporary directory's rec/)
#   -k  keep the temporary directory (config, logs, sipp statistics)
#
# Everything listens on 127.0.0.1 on free ports; nothing else is touched.
# Needs go, sipp, sox (the agents' audio) and python3 (free ports,
# arithmetic). The run is bounded: every sipp has a -timeout and the script
# stops what it started on exit.
set -euo pipefail

CONC=80 HOLD=20 SECS=60 AGENTS="" KEEP=0 RECORD=0 BIN="" DISPATCH=0 PROF="" RATE="" TRACE=""
while getopts "c:H:t:a:R:b:dp:T:rk" o; do
	case $o in
	c) CONC=$OPTARG ;;
	H) HOLD=$OPTARG ;;
	t) SECS=$OPTARG ;;
	a) AGENTS=$OPTARG ;;
	R) RATE=$OPTARG ;;
	b) BIN=$(realpath "$OPTARG") ;;
	d) DISPATCH=1 ;;
	p) PROF=$(mkdir -p "$OPTARG" && realpath "$OPTARG") ;;
	T) TRACE=$(mkdir -p "$OPTARG" && realpath "$OPTARG") ;;
	r) RECORD=1 ;;
	k) KEEP=1 ;;
	*) sed -n '2,42p' "$0"; exit 2 ;;
	esac
done
AGENTS=${AGENTS:-$((CONC + 20))}
# calls per second so that rate * hold = CONC, unless given
RATE=${RATE:-$(python3 -c "print(round($CONC/$HOLD, 3))")}
TOTAL=$(python3 -c "print(int($RATE*$SECS))")
HOLD_MS=$(python3 -c "print(int($HOLD*1000))")
HOLD_S=$(python3 -c "import math; print(math.ceil($HOLD))")

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/ccpbx-load.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		pkill -P "$p" 2>/dev/null || true # the callers' sipp under its subshell
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

if [ -n "$BIN" ]; then
	echo "== binary $BIN"
	cp "$BIN" "$TMP/ccpbx"
else
	echo "== build"
	(cd "$ROOT" && go build -o "$TMP/ccpbx" ./cmd/ccpbx)
fi

# Free ports: SIP profiles listen on UDP and TCP, so each must be free in
# both; the sipp ports only on UDP.
read -r INT TRUNK ESL AGENT_SIP AGENT_MEDIA CALLER_SIP CALLER_MEDIA HTTP < <(free_ports 8)

# The shipped config on 127.0.0.1 with those ports, a private data dir, and
# AGENTS extra users 2001… with agents on 3000@default (wrap-up 0),
# Available from the start.
CFG=$TMP/config.toml
sed -e 's/^listen_ip = "0.0.0.0"/listen_ip = "127.0.0.1"\nadvertise_ip = "127.0.0.1"/' \
	-e "s/^port = 5060$/port = $INT/" -e "s/^port = 5080$/port = $TRUNK/" \
	-e "s/^listen = \"127.0.0.1:8021\"/listen = \"127.0.0.1:$ESL\"/" \
	-e "s|^data_dir = \"data\"|data_dir = \"$TMP/data\"|" \
	-e 's/^max_sessions = .*/max_sessions = 0/' -e 's/^sessions_per_second = .*/sessions_per_second = 0/' \
	-e 's/^calls_per_second_per_ip = 30$/calls_per_second_per_ip = 0/' -e 's/^max_calls_per_ip = 500$/max_calls_per_ip = 0/' \
	"$ROOT/config.toml" >"$CFG"
# The callers are one sipp on one address: the trunk's per-address and the
# global call caps (503) are off, so the load measures the PBX, not its
# admission limits. Overload shedding (overload_delay) stays as shipped.
[ "$(grep -c -E '^(max_sessions|sessions_per_second|calls_per_second_per_ip|max_calls_per_ip) = 0$' "$CFG")" = 4 ] ||
	{ echo "config.toml's call limits changed: update load.sh's edits"; exit 1; }
if [ -n "$PROF" ] || [ -n "$TRACE" ]; then
	sed -i -e "s|^# \[http\]|[http]\nlisten = \"127.0.0.1:$HTTP\"\npprof = true|" "$CFG"
	grep -q '^pprof = true' "$CFG" || { echo "-p: no '# [http]' line to enable in config.toml"; exit 1; }
fi
if [ "$RECORD" = 1 ]; then
	sed -i -e "s|^recordings_dir = \"recordings\"|recordings_dir = \"$TMP/rec\"|" \
		-e 's|^name = "3000@default"|&\nrecord-template = "${caller_id_number}-${cc_member_uuid}.wav"|' "$CFG"
fi
: >"$TMP/agents.csv"
echo "SEQUENTIAL" >>"$TMP/agents.csv"
for i in $(seq 1 "$AGENTS"); do
	id=$((2000 + i))
	echo "$id;[authentication username=$id password=1234]" >>"$TMP/agents.csv"
	cat >>"$CFG" <<EOF

[[directory.user]]
id = "$id"
[directory.user.params]
password = "1234"
[directory.user.variables]
user_context = "default"
effective_caller_id_number = "$id"

[[callcenter.agent]]
name = "$id"
type = "callback"
contact = "[call_timeout=60]user/$id"
status = "Available"
max-no-answer = 3
wrap-up-time = 0
reject-delay-time = 30
busy-delay-time = 60
no-answer-delay-time = 10

[[callcenter.tier]]
agent = "$id"
queue = "3000@default"
level = 1
position = 1
EOF
done

echo "== start ccpbx (internal :$INT, trunk :$TRUNK, event socket :$ESL)"
(cd "$TMP" && exec ./ccpbx serve -config "$CFG") >"$TMP/ccpbx.log" 2>&1 &
PBX=$!
PIDS+=("$PBX")
cli() { "$TMP/ccpbx" cli -config "$CFG" -x "$1"; }
for _ in $(seq 100); do
	cli status >/dev/null 2>&1 && break
	sleep 0.1
done
cli status >/dev/null

echo "== register $AGENTS agents"
sipp -sf "$ROOT/bench/sipp/register_agents.xml" -inf "$TMP/agents.csv" -m "$AGENTS" -r 100 -l 40 \
	-i 127.0.0.1 -p "$AGENT_SIP" -timeout 30s -nostdin -trace_err -error_file "$TMP/register_err.log" \
	127.0.0.1:"$INT" >"$TMP/register.out" 2>&1 || { echo "registration failed:"; tail -20 "$TMP/register_err.log"; exit 1; }
REGS=$(cli "show registrations" | tail -2 | grep -o '^[0-9]* total' || true)
echo "   $REGS"

# One sipp answers for every agent (their Contacts are its port): it rings
# for 200 ms, answers, talks (the shipped music as raw mu-law) and takes the
# PBX's BYE. rtp_stream reads talk.ul from sipp's working directory.
sox "$ROOT/sounds/ivr/common/music-on-hold.wav" -t ul -r 8000 -c 1 "$TMP/talk.ul"
(cd "$TMP" && exec sipp -sf "$ROOT/bench/sipp/agent_talk.xml" -i 127.0.0.1 -p "$AGENT_SIP" -mi 127.0.0.1 -mp "$AGENT_MEDIA" \
	-d 200 -l 100000 -timeout $((SECS + HOLD_S + 60))s -nostdin \
	-trace_stat -stf "$TMP/agents_stat.csv" -fd 5 -trace_err -error_file "$TMP/agents_err.log" \
	>"$TMP/agents.out" 2>&1) &
AGENT_UAS=$!
PIDS+=("$AGENT_UAS")

# The agents are Available from the config (status is applied at start);
# no call reaches the queue before they are registered.
AVAIL=$(cli "callcenter_config agent list" | grep -c '|Available|' || true)
[ "$AVAIL" = "$AGENTS" ] || { echo "agents Available: $AVAIL of $AGENTS"; exit 1; }

kill -0 "$AGENT_UAS" 2>/dev/null || { echo "agents' sipp did not start:"; tail -5 "$TMP/agents.out" "$TMP/agents_err.log"; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Nanoseconds all of a process's threads spent runnable but waiting for a
# CPU (the OS run queue; /proc/PID/task/*/schedstat, second field).
rq_wait_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{n += $2} END {printf "%.0f\n", n}'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
sleep 1

echo "== load: $TOTAL calls at $RATE/s, at most $CONC at once, each held ${HOLD}s"
# UDP datagrams sent on the machine: each RTP packet is sent once, by the
# PBX, a caller or an agent (counting receptions would miss what the agents'
# sipp never reads once its socket buffer is full). Other work on the
# machine adds to it.
udp_out() { awk '/^Udp:/ {n++; if (n == 2) print $5}' /proc/net/snmp; }
if [ "$DISPATCH" = 1 ]; then
	# Only what reaches the trunk's and the agents' SIP ports: the callers'
	# requests and the PBX's requests to the agents (no RTP).
	dumpcap -q -i lo -B 64 -f "udp and (dst port $TRUNK or dst port $AGENT_SIP)" -w "$TMP/sip.pcap" 2>"$TMP/dumpcap.log" &
	CAP=$!
	PIDS+=("$CAP")
	for _ in $(seq 50); do [ -s "$TMP/sip.pcap" ] && break; sleep 0.1; done
fi
pprof_get() { curl -sf "http://127.0.0.1:$HTTP/debug/pprof/$1" -o "${3:-$PROF}/$2" || echo "   pprof $1 failed"; }
if [ -n "$TRACE" ]; then
	( sleep 12; pprof_get "trace?seconds=5" trace.out "$TRACE" ) &
	PIDS+=("$!")
fi
if [ -n "$PROF" ]; then
	( sleep 10; pprof_get "heap?gc=1" heap-10s.pb.gz; pprof_get "profile?seconds=10" cpu.pb.gz
	  pprof_get "goroutine?debug=1" goroutine-20s.txt ) &
	PIDS+=("$!")
fi
U0=$(udp_out)
T0=$(date +%s.%N)
C0=$(ticks "$PBX")
W0=$(rq_wait_ns "$PBX")
# In a subshell whose `times` afterwards is the callers' sipp's CPU.
(
	rc=0
	sipp -sf "$ROOT/bench/sipp/trunk_load.xml" -s 3000 -i 127.0.0.1 -p "$CALLER_SIP" -mi 127.0.0.1 -mp "$CALLER_MEDIA" -rtp_echo \
	-r "$RATE" -l "$CONC" -m "$TOTAL" -d "$HOLD_MS" -timeout $((SECS + HOLD_S + 30))s -nostdin \
	-trace_stat -stf "$TMP/callers_stat.csv" -fd 5 -trace_err -error_file "$TMP/callers_err.log" \
	127.0.0.1:"$TRUNK" >"$TMP/callers.out" 2>&1 || rc=$?
	times >"$TMP/callers_times" # not in a pipe: that would be a new process's times
	exit $rc
) &
CALLERS=$!
PIDS+=("$CALLERS")

# Sample ccpbx's CPU every 5 s while the callers run.
# calls: what 'show calls count' says (callers' legs, waiting or bridged)
printf "   %6s %6s %8s %8s\n" "t(s)" "calls" "cores" "RSS(MB)"
prev_t=$T0 prev_c=$C0 peak=0 peak_rss=0
while kill -0 "$CALLERS" 2>/dev/null; do
	sleep 5
	kill -0 "$PBX" 2>/dev/null || { echo "ccpbx died"; tail -20 "$TMP/ccpbx.log"; exit 1; }
	now=$(date +%s.%N) c=$(ticks "$PBX") rss=$(rss_kb "$PBX")
	chans=$(cli "show calls count" 2>/dev/null | grep -o '^[0-9]*' | head -1 || true)
	cores=$(python3 -c "print(f'{($c-$prev_c)/$HZ/($now-$prev_t):.3f}')")
	printf "   %6.0f %6s %8s %8.1f\n" "$(python3 -c "print($now-$T0)")" "${chans:-?}" "$cores" "$(python3 -c "print($rss/1024)")"
	peak=$(python3 -c "print(max($peak, $cores))")
	peak_rss=$((rss > peak_rss ? rss : peak_rss))
	prev_t=$now prev_c=$c
done
wait "$CALLERS" && CALLERS_RC=0 || CALLERS_RC=$?
CALLERS_CPU=$(awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print n }' <(sed -n 2p "$TMP/callers_times"))
AGENTS_CPU=$(python3 -c "print(round($(ticks "$AGENT_UAS") / $HZ, 2))")
T1=$(date +%s.%N)
C1=$(ticks "$PBX")
W1=$(rq_wait_ns "$PBX")
U1=$(udp_out)
sleep 2 # the last BYEs to the agents
[ -n "$PROF" ] && pprof_get "heap?gc=1" heap-end.pb.gz

# sipp's statistics file: the last line, columns by header name.
stat() { # file column
	python3 - "$1" "$2" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
print(rows[-1][rows[0].index(sys.argv[2])] if len(rows) > 1 else "?")
EOF
}
# SIGUSR1 makes sipp stop taking calls and quit once its calls are over,
# writing its final statistics.
kill -USR1 "$AGENT_UAS" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$AGENT_UAS" 2>/dev/null || break; sleep 0.1; done

echo "== summary"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "calls: $TOTAL at $RATE/s, limit $CONC concurrent, hold ${HOLD}s, $AGENTS agents"
echo "callers: successful $(stat "$TMP/callers_stat.csv" 'SuccessfulCall(C)'), failed $(stat "$TMP/callers_stat.csv" 'FailedCall(C)') (sipp exit $CALLERS_RC)"
echo "agents:  answered $(stat "$TMP/agents_stat.csv" 'SuccessfulCall(C)') ended by the PBX's BYE, failed $(stat "$TMP/agents_stat.csv" 'FailedCall(C)')"
echo "ccpbx CPU over the load: $(python3 -c "print(f'{($C1-$C0)/$HZ/($T1-$T0):.3f}')") cores average, peak 5 s sample $peak cores; peak RSS $((peak_rss / 1024)) MB"
echo "ccpbx threads runnable but waiting for a CPU (OS run queue, schedstat): $(python3 -c "print(f'{($W1-$W0)/1e9/($T1-$T0):.3f}')") thread-seconds per second"
echo "UDP datagrams sent (machine-wide): $(python3 -c "print(round(($U1-$U0)/($T1-$T0)))")/s; a bridged call makes 200/s (agent, relay to caller, caller's echo, relay to agent)"
echo "sipp CPU: callers $CALLERS_CPU s, agents $AGENTS_CPU s (ccpbx: $(python3 -c "print(round(($C1-$C0)/$HZ, 2))") s)"
echo "ccpbx CPU per call: $(python3 -c "print(f'{($C1-$C0)/$HZ*1000/max($TOTAL,1):.1f}')") ms"
echo "channels left: $(cli 'show channels count' | tr -d '\n')"
if [ "$RECORD" = 1 ]; then
	echo "recordings: $(find "$TMP/rec" -name '*.wav' 2>/dev/null | wc -l) files, $(du -sh "$TMP/rec" 2>/dev/null | cut -f1)"
fi
if [ "$DISPATCH" = 1 ]; then
	kill -INT "$CAP" 2>/dev/null || true
	wait "$CAP" 2>/dev/null || true
	# Per caller number: its first INVITE at the trunk, the first INVITE
	# to an agent whose From user is that number.
	tshark -r "$TMP/sip.pcap" -d "udp.port==$TRUNK,sip" -d "udp.port==$AGENT_SIP,sip" -Y 'sip.Method == "INVITE"' \
		-T fields -E separator=';' -e frame.time_epoch -e udp.dstport -e sip.from.user 2>/dev/null >"$TMP/invites.txt" || true
	python3 - "$TMP/invites.txt" "$TRUNK" "$AGENT_SIP" <<'EOF'
import sys
trunk, agent = int(sys.argv[2]), int(sys.argv[3])
caller, offered = {}, {}
for line in open(sys.argv[1]):
    f = line.strip().split(';')
    if len(f) < 3 or not f[2]:
        continue
    t, port, user = float(f[0]), int(f[1]), f[2]
    d = caller if port == trunk else offered if port == agent else None
    if d is not None and user not in d:
        d[user] = t
lat = sorted((offered[u] - caller[u]) * 1000 for u in caller if u in offered)
def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float('nan')
print(f"dispatch (caller INVITE at the trunk -> agent INVITE on the wire, dumpcap on lo): {len(lat)} of {len(caller)} callers offered;"
      f" p50 {q(.5):.1f} ms, p90 {q(.9):.1f} ms, p99 {q(.99):.1f} ms, max {lat[-1] if lat else float('nan'):.1f} ms")
EOF
fi
if [ -n "$PROF" ]; then
	echo "   waiting 40 s idle (SIP timers) for heap-idle.pb.gz"
	sleep 40
	pprof_get "heap?gc=1" heap-idle.pb.gz
	echo "profiles in $PROF; RSS after 40 s idle: $(($(rss_kb "$PBX") / 1024)) MB"
fi
echo "members still waiting or trying: $(cli 'callcenter_config queue list members 3000@default' | grep -c -E '\|(Waiting|Trying)\|' || true)"
