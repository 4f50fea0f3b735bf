#!/usr/bin/env bash
# One command to try a ccpbx cluster on this machine (README "Cluster
# (trial)"): a throwaway PostgreSQL, Kamailio in front, two ccpbx nodes.
#
#   127.0.0.1:$PG_PORT      PostgreSQL (initdb in a temporary folder, fsync off)
#   127.0.0.10:5060/5080    Kamailio (packaging/kamailio/kamailio.cfg): phones / trunks
#   127.0.0.11, 127.0.0.12  ccpbx nodes n1 and n2 (the shipped config.toml,
#                           changed by this script only where a node must differ)
#
# Everything listens on loopback addresses only (Linux routes all of
# 127.0.0.0/8 to lo, no alias needed) and everything started here is stopped,
# and its folder removed, when the script ends (Ctrl-C, or any exit).
#
# Needs: Debian's postgresql (initdb, postgres) and kamailio packages, and Go
# to build ccpbx (or CCPBX_BIN=/path/to/ccpbx). Environment:
#   PG_PORT=55432        the database's port
#   CCPBX_BIN=...        a built ccpbx binary instead of `go build`
#   TRIAL_DIR=...        keep configs, data and logs here (default: a temporary
#                        folder, removed at the end)
#   TRIAL_READY_FILE=... written (with TRIAL_DIR's path) once everything is up
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
pg_port="${PG_PORT:-55432}"
kam_ip=127.0.0.10
nodes=(n1 n2)
declare -A node_ip=([n1]=127.0.0.11 [n2]=127.0.0.12)
declare -A rtp=([n1]="20000 24999" [n2]="25000 29999")
kam_modules=/usr/lib/x86_64-linux-gnu/kamailio/modules

die() {
	echo "trial: $*" >&2
	exit 1
}

pgbin=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
	[[ -x $d/initdb ]] && { pgbin=$d; break; }
done
[[ -n $pgbin ]] || pgbin="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
[[ -x $pgbin/initdb ]] || die "no initdb: apt-get install postgresql"
command -v kamailio >/dev/null || die "no kamailio: apt-get install kamailio"

# Our folder. As root, PostgreSQL runs as the postgres user (initdb refuses
# root), which must reach it: so under /tmp.
keep=0
if [[ -n ${TRIAL_DIR:-} ]]; then
	dir="$TRIAL_DIR"
	keep=1
	mkdir -p "$dir"
else
	dir="$(mktemp -d /tmp/ccpbx-trial-XXXXXX)"
fi
chmod 755 "$dir"
pids=()
pg_pid=""

cleanup() {
	trap - EXIT INT TERM
	echo
	echo "trial: stopping"
	# The nodes first (SIGTERM: they hang up their calls), then Kamailio,
	# then the database; only the processes this script started.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [[ -n $pg_pid ]]; then
		kill -INT "$pg_pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pg_pid" 2>/dev/null || true
	fi
	if ((keep)); then
		echo "trial: logs and data kept in $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_pg() {
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------- ccpbx binary
bin="${CCPBX_BIN:-}"
if [[ -z $bin ]]; then
	command -v go >/dev/null || die "no go on PATH: install Go or set CCPBX_BIN"
	echo "trial: building ccpbx"
	(cd "$root" && go build -o "$dir/ccpbx" ./cmd/ccpbx)
	bin="$dir/ccpbx"
fi

# ---------------------------------------------------------------- PostgreSQL
echo "trial: PostgreSQL on 127.0.0.1:$pg_port"
mkdir -p "$dir/pg"
((EUID == 0)) && chown postgres: "$dir/pg"
as_pg "$pgbin/initdb" -D "$dir/pg/data" -U ccpbx -A trust -E UTF8 --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log"; die "initdb failed"; }
# fsync off: a throwaway database, safe against process kills (not machine crashes).
as_pg "$pgbin/postgres" -D "$dir/pg/data" -p "$pg_port" -k "$dir/pg" -c listen_addresses=127.0.0.1 \
	-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 \
	>"$dir/postgres.log" 2>&1 </dev/null &
pg_pid=$!
up=0
for _ in $(seq 150); do
	kill -0 "$pg_pid" 2>/dev/null || break
	if "$pgbin/psql" -h 127.0.0.1 -p "$pg_port" -U ccpbx -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
		up=1
		break
	fi
	sleep 0.2
done
((up)) || { tail -n 20 "$dir/postgres.log"; die "PostgreSQL did not start (port $pg_port taken? set PG_PORT)"; }
"$pgbin/psql" -h 127.0.0.1 -p "$pg_port" -U ccpbx -d postgres -qc 'CREATE DATABASE ccpbx' >/dev/null
dsn="host=127.0.0.1 port=$pg_port dbname=ccpbx user=ccpbx sslmode=disable connect_timeout=5"

# ---------------------------------------------------------------- ccpbx nodes
# The shipped config.toml with what differs per node: its address, ports,
# data folder, the database and [cluster]. Each change must match exactly,
# so a changed config.toml fails here instead of silently running something
# else.
edit() { # edit FILE PYTHON-REGEX REPLACEMENT COUNT
	python3 - "$@" <<'EOF'
import re, sys
path, pat, repl, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = open(path).read()
n = len(re.findall(pat, s, flags=re.M))
if n != want:
    sys.exit(f"trial: config.toml: {pat!r} matched {n} times, want {want}")
open(path, "w").write(re.sub(pat, lambda m: repl, s, flags=re.M))
EOF
}

for n in "${nodes[@]}"; do
	ip=${node_ip[$n]}
	read -r rs re <<<"${rtp[$n]}"
	mkdir -p "$dir/$n"
	cfg="$dir/$n/config.toml"
	cp "$root/config.toml" "$cfg"
	edit "$cfg" '^listen_ip = "0\.0\.0\.0"$' "listen_ip = \"$ip\"
advertise_ip = \"$ip\"" 2
	edit "$cfg" '^listen = "127\.0\.0\.1:8021"$' "listen = \"$ip:8021\"" 1
	edit "$cfg" '^data_dir = "[^"]*"$' "data_dir = \"$dir/$n/data\"" 1
	edit "$cfg" '^recordings_dir = "[^"]*"$' "recordings_dir = \"$dir/$n/recordings\"" 1
	edit "$cfg" '^rtp_start = \d+$' "rtp_start = $rs" 1
	edit "$cfg" '^rtp_end = \d+$' "rtp_end = $re" 1
	edit "$cfg" '^driver = "sqlite"$' "driver = \"postgres\"
dsn = \"$dsn\"" 1
	# Agents are shared: a node (re)starting must not log everyone out by
	# re-applying the shipped status; new agents start Logged Out anyway.
	edit "$cfg" '^status = "Logged Out"\n' '' 2
	cat >>"$cfg" <<EOF

# ---------------------------------------------------------------- trial.sh
[http]
listen = "$ip:8080"

[cluster]
node_id = "$n"
EOF
	"$bin" check -config "$cfg" >"$dir/$n/check.log" 2>&1 || { cat "$dir/$n/check.log"; die "$n: ccpbx check failed"; }
done

for n in "${nodes[@]}"; do
	echo "trial: ccpbx $n on ${node_ip[$n]}"
	# From the sources' root: the shipped sounds/ and scripts/ paths are relative.
	(cd "$root" && exec "$bin" serve -config "$dir/$n/config.toml" >"$dir/$n/ccpbx.log" 2>&1 </dev/null) &
	pids+=($!)
done
for n in "${nodes[@]}"; do
	ok=0
	for _ in $(seq 100); do
		if (cd "$root" && "$bin" cli -config "$dir/$n/config.toml" -x status >/dev/null 2>&1); then
			ok=1
			break
		fi
		sleep 0.3
	done
	((ok)) || { tail -n 20 "$dir/$n/ccpbx.log"; die "$n did not start"; }
done

# ---------------------------------------------------------------- Kamailio
# The one shipped kamailio.cfg, its addresses given as defines; the node
# list generated: trunk calls round-robin over both nodes (DS_TRUNK_ALG=4),
# phones register with n1 first, n2 when n1 is down (priority).
cat >"$dir/dispatcher.list" <<EOF
# setid destination flags priority
1 sip:${node_ip[n1]}:5080 0 10
1 sip:${node_ip[n2]}:5080 0 10
2 sip:${node_ip[n1]}:5060 0 10
2 sip:${node_ip[n2]}:5060 0 5
EOF
echo "trial: Kamailio on $kam_ip"
kamailio -f "$root/packaging/kamailio/kamailio.cfg" -DD -E -L "$kam_modules" -w "$dir" -Y "$dir" -m 64 -M 8 \
	-A "KAM_IP=$kam_ip" -A "DS_LIST=\"$dir/dispatcher.list\"" -A DS_TRUNK_ALG=4 -A NODE_FR_TIMER=1000 -A DS_PING_INTERVAL=1 \
	>"$dir/kamailio.log" 2>&1 </dev/null &
pids+=($!)
sleep 1
kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 20 "$dir/kamailio.log"; die "kamailio did not start"; }

cat <<EOF

ccpbx cluster trial is up (folder $dir)

  Phones:   register 1001 or 1002 (password 1234) at $kam_ip:5060 (UDP);
            dial 300 to log in as an agent, 301 to log out.
  Trunk:    send calls for 3000 (the queue) to $kam_ip:5080; Kamailio hands
            them to n1 and n2 in turn.
  Console:  $bin cli -config $dir/n1/config.toml
            (n2: $dir/n2/config.toml), e.g. -x 'callcenter_config agent list'
            or -x 'cluster status'
  Database: psql -h 127.0.0.1 -p $pg_port -U ccpbx ccpbx
  Logs:     $dir/n1/ccpbx.log, $dir/n2/ccpbx.log, $dir/kamailio.log, $dir/postgres.log
  Failover: kill -9 ${pids[0]} (n1); within the lease TTL n2 declares it dead
            (cluster status) and new calls go to n2. Start n1 again with
            (cd $root && $bin serve -config $dir/n1/config.toml)
            (this script does not stop a node you start yourself).

Ctrl-C stops everything.
EOF
if [[ -n ${TRIAL_READY_FILE:-} ]]; then
	echo "$dir" >"$TRIAL_READY_FILE"
fi

# Until Ctrl-C, or until the database or Kamailio exits by itself (a node
# may be killed on purpose, and started again by hand: see the banner).
kam_pid=${pids[-1]}
while :; do
	for p in "$pg_pid" "$kam_pid"; do
		kill -0 "$p" 2>/dev/null || { echo "trial: process $p exited; see the logs above"; exit 1; }
	done
	sleep 1
done
