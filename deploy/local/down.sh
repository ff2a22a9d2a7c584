#!/usr/bin/env bash
# deploy/local/down.sh: stop the Kiln local cluster deploy/local/up.sh started
# (KILN_CLUSTER_DIR, default build/cluster): the Kiln processes first, then the
# UI, the object store, Temporal's services and PostgreSQL. With --purge it
# then removes the cluster directory (data, logs, binaries).
set -euo pipefail

say() { printf '[down] %s\n' "$*"; }
die() {
	printf '[down] ERROR: %s\n' "$*" >&2
	exit 1
}

purge=false
for arg in "$@"; do
	case $arg in
	--purge) purge=true ;;
	-h | --help)
		sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $arg (usage: down.sh [--purge])" ;;
	esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KILN_CLUSTER_DIR:-$REPO/build/cluster}
if [ ! -d "$CLUSTER" ]; then
	say "no cluster directory $CLUSTER: nothing to stop"
	exit 0
fi
CLUSTER=$(cd "$CLUSTER" && pwd)
[ -f "$CLUSTER/.kiln-cluster" ] || die "$CLUSTER is not a cluster directory of deploy/local/up.sh (no .kiln-cluster)"

# alive PID: the process exists and is not a zombie.
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $s != Z* ]]
}

# stop NAME: SIGTERM the pid in pids/NAME.pid, SIGKILL after 20 s.
stop() {
	local name=$1 pidfile=$CLUSTER/pids/$1.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if ! alive "$pid"; then
		rm -f "$pidfile"
		return 0
	fi
	# The pid may have been reused since: only stop a process started from
	# this cluster directory.
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$CLUSTER"; then
		if ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qF "$CLUSTER"; then
			say "pid $pid of $name is not a process of this cluster: leaving it"
			rm -f "$pidfile"
			return 0
		fi
	fi
	say "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.2
	done
	if alive "$pid"; then
		say "$name did not stop in 20s: kill -9 $pid"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

for name in worker-a worker-b serve-a serve-b ui objstore temporal-worker frontend matching history; do
	stop "$name"
done

PGDIR=$CLUSTER/postgres
if [ -f "$PGDIR/data/postmaster.pid" ]; then
	if [ -z "${PG_BIN:-}" ]; then
		PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -1)
	fi
	RUNAS=()
	if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); fi
	say "stopping postgres (pg_ctl stop -m fast)"
	(cd "$PGDIR" && "${RUNAS[@]}" "$PG_BIN/pg_ctl" -D data -m fast -w -t 60 stop) >/dev/null ||
		die "pg_ctl stop failed: see $CLUSTER/logs/postgres.log"
fi
rm -f "$CLUSTER/pids/postgres.pid"

if $purge; then
	say "removing $CLUSTER"
	rm -rf "$CLUSTER"
fi
say "down"
