#!/usr/bin/env bash
# deploy/local/up.sh: bring up Kiln's production topology on this machine,
# from nothing but Debian's PostgreSQL and Go (no image registry): PostgreSQL;
# the Temporal server (go.temporal.io/server at the version Kiln pins) as four
# processes, frontend, history, matching and worker, on PostgreSQL with several
# history shards, its schema set up by temporal-sql-tool; the Temporal web UI;
# an S3-compatible object store (cmd/kiln-objstore); two `kiln serve`
# replicas; two `kiln worker` processes with their own Kiln homes on their own
# task queues; Kiln's registry on PostgreSQL. See deploy/local/README.md.
#
#   deploy/local/up.sh                 # cluster in build/cluster
#   source build/cluster/cluster.env   # TEMPORAL_ADDRESS, KILN_REGISTRY, KILN_ARTIFACTS, ...
#   deploy/local/down.sh [--purge]
#
# Environment: KILN_CLUSTER_DIR (default build/cluster), KILN_BIN (default
# bin/kiln: make build), GO (go), PG_BIN (the newest /usr/lib/postgresql/*/bin),
# KILN_WORKER_A_QUEUES, KILN_WORKER_B_QUEUES, KILN_WORKER_ARGS (more flags for
# both workers, e.g. --no-docker), KILN_TEMPORAL_SHARDS (4, fixed at creation).
#
# Running it again on a running cluster starts only what is not running; every
# process is started by a script in <cluster dir>/cmd/<name>.sh, which starts
# it again the same way (after kill -9, say) and waits until it is ready.
set -euo pipefail

# Which task queues each worker polls: the worker polling the default queue
# (kiln) runs the workflows; the others only the steps whose spec names their
# queue (queue: train).
WORKER_A_QUEUES=${KILN_WORKER_A_QUEUES:-kiln,score}
WORKER_B_QUEUES=${KILN_WORKER_B_QUEUES:-train}
NUM_HISTORY_SHARDS=${KILN_TEMPORAL_SHARDS:-4}
NAMESPACE=default
TEMPORAL_LOG_LEVEL=${KILN_TEMPORAL_LOG_LEVEL:-info}
PG_USER=kiln
S3_BUCKET=kiln
S3_REGION=us-east-1

say() { printf '[up] %s\n' "$*"; }
die() {
	printf '[up] ERROR: %s\n' "$*" >&2
	exit 1
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/deploy/local
CLUSTER=${KILN_CLUSTER_DIR:-$REPO/build/cluster}
mkdir -p "$CLUSTER"
CLUSTER=$(cd "$CLUSTER" && pwd)
KILN_BIN=${KILN_BIN:-$REPO/bin/kiln}
[ -x "$KILN_BIN" ] || die "no kiln binary at $KILN_BIN: run make build (or set KILN_BIN)"
KILN_BIN=$(cd "$(dirname "$KILN_BIN")" && pwd)/$(basename "$KILN_BIN")
GO=${GO:-go}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
if [ -z "${PG_BIN:-}" ]; then
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -1)
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
	die "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql, or set PG_BIN"
command -v curl >/dev/null || die "curl is needed"
command -v python3 >/dev/null || die "python3 is needed (to pick free ports)"

say "cluster directory $CLUSTER"
mkdir -p "$CLUSTER"/{bin,cmd,config,logs,pids}
chmod 700 "$CLUSTER/cmd" # the scripts hold the admin token
touch "$CLUSTER/.kiln-cluster" # down.sh --purge removes only directories marked so

# ---------------------------------------------------------------- binaries --
# The Temporal server and temporal-sql-tool are built from go.temporal.io/server
# at the version Kiln's go.mod pins, with Kiln's other pins: go.mod lists both
# main packages as tools (`tool` block), so their extra dependencies
# (urfave/cli) are pinned and summed there too, and the build reuses the
# packages `go test` compiled for the embedded dev server.
build_temporal() {
	local ver dir start
	ver=$(cd "$REPO" && "$GO" list -m -f '{{.Version}}' go.temporal.io/server)
	say "building the Temporal server $ver and temporal-sql-tool into $CLUSTER/bin (a cold build takes minutes)"
	start=$SECONDS
	(cd "$REPO" && "$GO" build -o "$CLUSTER/bin/temporal-server" go.temporal.io/server/cmd/server)
	(cd "$REPO" && "$GO" build -o "$CLUSTER/bin/temporal-sql-tool" go.temporal.io/server/cmd/tools/sql)
	dir=$(cd "$REPO" && "$GO" list -m -f '{{.Dir}}' go.temporal.io/server)
	rm -rf "$CLUSTER/bin/schema"
	mkdir -p "$CLUSTER/bin/schema"
	cp -r "$dir/schema/postgresql/v12" "$CLUSTER/bin/schema/postgresql-v12"
	chmod -R u+w "$CLUSTER/bin/schema"
	say "built the Temporal binaries in $((SECONDS - start))s"
}
if [ ! -x "$CLUSTER/bin/temporal-server" ] || [ ! -x "$CLUSTER/bin/temporal-sql-tool" ] || [ ! -d "$CLUSTER/bin/schema/postgresql-v12" ]; then
	build_temporal
fi
for tool in kiln-objstore kiln-ui; do
	if [ ! -x "$CLUSTER/bin/$tool" ]; then
		say "building $tool into $CLUSTER/bin"
		(cd "$REPO" && "$GO" build -o "$CLUSTER/bin/$tool" "./cmd/$tool")
	fi
done

# ------------------------------------------------------------------- ports --
# Picked once (free 127.0.0.1 ports from the kernel) and kept in ports.env, so
# that a second up.sh and the restart scripts use the same ones.
PORT_NAMES=(PG_PORT FRONTEND_GRPC_PORT FRONTEND_MEMBERSHIP_PORT FRONTEND_HTTP_PORT
	HISTORY_GRPC_PORT HISTORY_MEMBERSHIP_PORT MATCHING_GRPC_PORT MATCHING_MEMBERSHIP_PORT
	WORKER_GRPC_PORT WORKER_MEMBERSHIP_PORT FRONTEND_METRICS_PORT HISTORY_METRICS_PORT
	MATCHING_METRICS_PORT WORKER_METRICS_PORT S3_PORT UI_PORT SERVE_A_PORT SERVE_B_PORT
	WORKER_A_METRICS_PORT WORKER_B_METRICS_PORT)
if [ ! -f "$CLUSTER/ports.env" ]; then
	say "picking ${#PORT_NAMES[@]} free ports on 127.0.0.1"
	read -r -a ports < <(python3 - "${#PORT_NAMES[@]}" <<'EOF'
import random, socket, sys
# Below 32768: Temporal's PostgreSQL schema keeps membership ports in a
# smallint (cluster_membership.rpc_port), and the kernel's ephemeral ports
# (what binding port 0 gives) start at 32768.
n, held, out = int(sys.argv[1]), [], []
for p in random.sample(range(20000, 32768), 2000):
    if len(out) == n:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    held.append(s)
    out.append(p)
if len(out) < n:
    sys.exit("no free ports in 20000-32767")
print(" ".join(map(str, out)))
EOF
	)
	for i in "${!PORT_NAMES[@]}"; do
		echo "${PORT_NAMES[$i]}=${ports[$i]}"
	done >"$CLUSTER/ports.env.tmp"
	mv "$CLUSTER/ports.env.tmp" "$CLUSTER/ports.env"
fi
# shellcheck source=/dev/null
source "$CLUSTER/ports.env"

FRONTEND=127.0.0.1:$FRONTEND_GRPC_PORT
DSN="postgres://$PG_USER@127.0.0.1:$PG_PORT/kiln?sslmode=disable"
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
ARTIFACTS="s3://$S3_BUCKET/artifacts?endpoint=$S3_ENDPOINT&use_path_style=true&disable_https=true&region=$S3_REGION"
UI_URL=http://127.0.0.1:$UI_PORT
SERVE_URLS=http://127.0.0.1:$SERVE_A_PORT,http://127.0.0.1:$SERVE_B_PORT
AWS_KEY=kiln
AWS_SECRET=kiln-local-secret # gofakes3 does not check credentials; the SDK needs some
if [ ! -s "$CLUSTER/admin-token" ]; then
	(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$CLUSTER/admin-token")
fi
ADMIN_TOKEN=$(cat "$CLUSTER/admin-token")

# ------------------------------------------------------- restart scripts --
# write_cmd NAME TIMEOUT PROBE -- ENV=VALUE... PROGRAM ARGS...
# writes cmd/NAME.sh: start the process in the background (log logs/NAME.log,
# pid pids/NAME.pid, PID_NAME in cluster.env), then wait up to TIMEOUT
# seconds for PROBE (a shell condition; $LOG_FROM is the byte offset where
# this start's log begins) while the process lives.
write_cmd() {
	local name=$1 timeout=$2 probe=$3
	shift 4
	local f=$CLUSTER/cmd/$name.sh
	{
		echo '#!/usr/bin/env bash'
		echo "# Starts $name of the Kiln local cluster in the background as deploy/local/up.sh did, and waits"
		echo "# until it is ready. Log: logs/$name.log, pid: pids/$name.pid (and PID_* in cluster.env)."
		echo 'set -euo pipefail'
		printf 'cd %q\n' "$CLUSTER"
		printf 'name=%q\n' "$name"
		printf 'timeout=%q\n' "$timeout"
		cat <<'EOS'
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# alive PID: the process exists and is not a zombie (a process killed -9 stays
# one until its new parent reaps it).
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $s != Z* ]]
}
# logged TEXT: this start's part of the log holds TEXT.
logged() { tail -c +$((LOG_FROM + 1)) "$log" | grep -F -- "$1" >/dev/null; }
log=logs/$name.log
pidfile=pids/$name.pid
if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
	echo "$name is already running (pid $(cat "$pidfile"))"
	exit 0
fi
touch "$log"
LOG_FROM=$(stat -c %s "$log")
echo "=== $(date -Is) starting $name" >>"$log"
EOS
		printf 'nohup env %s>>"$log" 2>&1 </dev/null &\n' "$(printf '%q ' "$@")"
		cat <<'EOS'
pid=$!
echo "$pid" >"$pidfile"
var=PID_$(echo "$name" | tr 'a-z-' 'A-Z_')
if [ -f cluster.env ]; then sed -i "s/^export $var=.*/export $var='$pid'/" cluster.env; fi
ready() {
EOS
		printf '\t%s\n' "$probe"
		cat <<'EOS'
}
for ((i = 0; i < timeout * 5; i++)); do
	if ready; then
		echo "$name is ready (pid $pid, log $PWD/$log)"
		exit 0
	fi
	if ! alive "$pid"; then
		echo "ERROR: $name exited at start: see $PWD/$log" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	sleep 0.2
done
echo "ERROR: $name is not ready after ${timeout}s: see $PWD/$log" >&2
tail -n 20 "$log" >&2
exit 1
EOS
	} >"$f.tmp"
	chmod 755 "$f.tmp"
	mv "$f.tmp" "$f"
}

start() {
	say "starting $1 ($CLUSTER/cmd/$1.sh)"
	"$CLUSTER/cmd/$1.sh" | sed 's/^/[up]   /' || die "$1 did not come up: see $CLUSTER/logs/$1.log"
}

# -------------------------------------------------------------- postgres --
# initdb refuses to run as root: as root, PostgreSQL runs as the postgres
# user in a directory it owns.
PGDIR=$CLUSTER/postgres
mkdir -p "$PGDIR"
RUNAS=()
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run PostgreSQL as"
	chown postgres: "$PGDIR"
	RUNAS=(runuser -u postgres --)
fi
pg() { (cd "$PGDIR" && "${RUNAS[@]}" "$@"); }
if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
	say "initdb $PGDIR/data"
	pg "$PG_BIN/initdb" -D "$PGDIR/data" -U "$PG_USER" --auth=trust -E UTF8 --no-sync >"$CLUSTER/logs/initdb.log" 2>&1 ||
		die "initdb failed: see $CLUSTER/logs/initdb.log"
fi
ln -sf "$PGDIR/postgres.log" "$CLUSTER/logs/postgres.log"
PG_OPTS="-h 127.0.0.1 -p $PG_PORT -k '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
{
	echo '#!/usr/bin/env bash'
	echo '# Starts PostgreSQL of the Kiln local cluster as deploy/local/up.sh did (pg_ctl start -w).'
	echo 'set -euo pipefail'
	printf 'cd %q\n' "$PGDIR"
	printf 'cluster=%q\n' "$CLUSTER"
	printf 'pg_ctl=(%s %q)\n' "${RUNAS[*]}" "$PG_BIN/pg_ctl"
	printf 'opts=%q\n' "$PG_OPTS"
	cat <<'EOS'
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $s != Z* ]]
}
pid=$(head -1 data/postmaster.pid 2>/dev/null || true)
if [ -n "$pid" ] && alive "$pid"; then
	echo "postgres is already running (pid $pid)"
	exit 0
fi
# After kill -9 the old server's backends exit within moments, and until
# they have, PostgreSQL refuses to start on its data: try again meanwhile.
for ((i = 1; ; i++)); do
	if "${pg_ctl[@]}" -D data -l postgres.log -w -t 120 -o "$opts" start >/dev/null 2>&1; then
		break
	fi
	if [ "$i" -ge 30 ]; then
		echo "ERROR: postgres did not start: see $cluster/logs/postgres.log" >&2
		tail -n 20 postgres.log >&2
		exit 1
	fi
	sleep 1
done
pid=$(head -1 data/postmaster.pid)
echo "$pid" >"$cluster/pids/postgres.pid"
if [ -f "$cluster/cluster.env" ]; then sed -i "s/^export PID_POSTGRES=.*/export PID_POSTGRES='$pid'/" "$cluster/cluster.env"; fi
echo "postgres is ready (pid $pid, log $cluster/logs/postgres.log)"
EOS
} >"$CLUSTER/cmd/postgres.sh"
chmod 755 "$CLUSTER/cmd/postgres.sh"
start postgres

# ------------------------------------------------------ temporal schema --
# temporal-sql-tool (Temporal's own schema tool): create the two databases,
# set up version 0.0 once, then apply every versioned migration (a no-op when
# the schema is current, so a newer Temporal binary migrates it here).
SQL_TOOL=("$CLUSTER/bin/temporal-sql-tool" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u "$PG_USER")
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "${2:-postgres}" -XtAq -c "$1"; }
for db in temporal temporal_visibility; do
	case $db in temporal) schema=temporal ;; *) schema=visibility ;; esac
	if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
		say "temporal-sql-tool: create-database $db, setup-schema -v 0.0"
		"${SQL_TOOL[@]}" --db "$db" create-database >>"$CLUSTER/logs/schema.log" 2>&1 &&
			"${SQL_TOOL[@]}" --db "$db" setup-schema -v 0.0 >>"$CLUSTER/logs/schema.log" 2>&1 ||
			die "temporal-sql-tool failed on $db: see $CLUSTER/logs/schema.log"
	fi
	say "temporal-sql-tool: update-schema $db"
	"${SQL_TOOL[@]}" --db "$db" update-schema -d "$CLUSTER/bin/schema/postgresql-v12/$schema/versioned" >>"$CLUSTER/logs/schema.log" 2>&1 ||
		die "temporal-sql-tool update-schema failed on $db: see $CLUSTER/logs/schema.log"
done
if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = 'kiln'")" != 1 ]; then
	say "creating database kiln (Kiln's registry)"
	psql_q "CREATE DATABASE kiln" || die "could not create database kiln: see $CLUSTER/logs/postgres.log"
fi

# ---------------------------------------------------------------- temporal --
# One configuration per service process (each its own metrics port), from
# temporal.yaml.tmpl.
render() { # render SERVICE_METRICS_PORT OUT
	local sedargs=(-e "s|@LOG_LEVEL@|$TEMPORAL_LOG_LEVEL|g" -e "s|@NUM_HISTORY_SHARDS@|$NUM_HISTORY_SHARDS|g"
		-e "s|@PG_USER@|$PG_USER|g" -e "s|@CLUSTER_DIR@|$CLUSTER|g" -e "s|@METRICS_PORT@|$1|g")
	local n
	for n in "${PORT_NAMES[@]}"; do
		sedargs+=(-e "s|@$n@|${!n}|g")
	done
	sed "${sedargs[@]}" "$HERE/temporal.yaml.tmpl" >"$2.tmp"
	! grep -n '@[A-Z_]*@' "$2.tmp" || die "unrendered placeholders in $2"
	mv "$2.tmp" "$2"
}
render "$FRONTEND_METRICS_PORT" "$CLUSTER/config/frontend.yaml"
render "$HISTORY_METRICS_PORT" "$CLUSTER/config/history.yaml"
render "$MATCHING_METRICS_PORT" "$CLUSTER/config/matching.yaml"
render "$WORKER_METRICS_PORT" "$CLUSTER/config/temporal-worker.yaml"
cp "$HERE/dynamicconfig.yaml" "$CLUSTER/config/dynamicconfig.yaml"

temporal_cmd() { # temporal_cmd NAME SERVICE PROBE
	write_cmd "$1" 120 "$3" -- "$CLUSTER/bin/temporal-server" --config-file "$CLUSTER/config/$1.yaml" --allow-no-auth start --service "$2"
}
# A service is ready once it serves its gRPC port and has joined the
# membership ring (history: and owns shards); the frontend once its HTTP API
# answers GetClusterInfo.
joined="logged 'Membership heartbeat upserted successfully'"
temporal_cmd history history "port_open 127.0.0.1 $HISTORY_GRPC_PORT && $joined && logged 'Acquired shard'"
temporal_cmd matching matching "port_open 127.0.0.1 $MATCHING_GRPC_PORT && $joined"
temporal_cmd frontend frontend "$joined && curl -fs -o /dev/null http://127.0.0.1:$FRONTEND_HTTP_PORT/api/v1/cluster-info"
temporal_cmd temporal-worker worker "port_open 127.0.0.1 $WORKER_GRPC_PORT && $joined"
# The services find each other through the cluster_membership table. Rows of
# a previous run (their hosts gone) would make the first service to start try
# to join them for maxJoinDuration (30 s) before it bootstraps alone: when no
# Temporal service of this cluster runs, clear them, as kiln dev does.
temporal_running=false
for name in history matching frontend temporal-worker; do
	if [ -f "$CLUSTER/pids/$name.pid" ] && s=$(ps -o stat= -p "$(cat "$CLUSTER/pids/$name.pid")" 2>/dev/null) && [[ $s != Z* ]]; then
		temporal_running=true
	fi
done
if ! $temporal_running; then
	say "no Temporal service running: clearing cluster_membership (hosts of an earlier run)"
	psql_q "DELETE FROM cluster_membership" temporal || die "could not clear cluster_membership: see $CLUSTER/logs/postgres.log"
fi
for name in history matching frontend temporal-worker; do
	start "$name"
done

# ---------------------------------------------------------- object store --
write_cmd objstore 30 "curl -fs -o /dev/null $S3_ENDPOINT/$S3_BUCKET" -- \
	"$CLUSTER/bin/kiln-objstore" --addr "127.0.0.1:$S3_PORT" --dir "$CLUSTER/s3" --bucket "$S3_BUCKET"
start objstore

# -------------------------------------------------------------------- UI --
# kiln-ui also registers the namespace (the Temporal server has no command
# for it) before it serves.
write_cmd ui 180 "curl -fs -o /dev/null $UI_URL/" -- \
	"$CLUSTER/bin/kiln-ui" --address "$FRONTEND" --ip 127.0.0.1 --port "$UI_PORT" --namespace "$NAMESPACE" --register-namespace
start ui

say "waiting for namespace $NAMESPACE to serve (kiln runs list)"
for ((i = 0; ; i++)); do
	if "$KILN_BIN" runs list --address "$FRONTEND" --namespace "$NAMESPACE" >"$CLUSTER/logs/runs-list.log" 2>&1; then
		break
	fi
	[ "$i" -lt 60 ] || die "kiln runs list against $FRONTEND fails: see $CLUSTER/logs/runs-list.log and $CLUSTER/logs/frontend.log"
	sleep 1
done

# ------------------------------------------------------------------ kiln --
KILN_ENV=(TEMPORAL_ADDRESS="$FRONTEND" TEMPORAL_NAMESPACE="$NAMESPACE" KILN_REGISTRY="$DSN" KILN_ARTIFACTS="$ARTIFACTS"
	AWS_ACCESS_KEY_ID="$AWS_KEY" AWS_SECRET_ACCESS_KEY="$AWS_SECRET" AWS_REGION="$S3_REGION" AWS_EC2_METADATA_DISABLED=true
	KILN_ADMIN_TOKEN="$ADMIN_TOKEN" KILN_UI_URL="$UI_URL")
for r in a b; do
	port_var=SERVE_${r^^}_PORT
	mkdir -p "$CLUSTER/serve-$r"
	write_cmd "serve-$r" 60 "curl -fs -o /dev/null http://127.0.0.1:${!port_var}/v2/health/ready" -- \
		KILN_HOME="$CLUSTER/serve-$r" "${KILN_ENV[@]}" \
		"$KILN_BIN" serve --addr "127.0.0.1:${!port_var}" --registry "$DSN"
	start "serve-$r"
done
read -r -a worker_args <<<"${KILN_WORKER_ARGS:-}"
for r in a b; do
	queues_var=WORKER_${r^^}_QUEUES
	metrics_var=WORKER_${r^^}_METRICS_PORT
	mkdir -p "$CLUSTER/worker-$r"
	write_cmd "worker-$r" 60 "logged 'Kiln worker polling'" -- \
		KILN_HOME="$CLUSTER/worker-$r" "${KILN_ENV[@]}" \
		"$KILN_BIN" worker --address "$FRONTEND" --namespace "$NAMESPACE" --registry "$DSN" \
		--queues "${!queues_var}" --model-server "$SERVE_URLS" --ui-url "$UI_URL" \
		--metrics-addr "127.0.0.1:${!metrics_var}" "${worker_args[@]}"
	start "worker-$r"
done

# ------------------------------------------------------------ cluster.env --
PROCS=(postgres history matching frontend temporal-worker objstore ui serve-a serve-b worker-a worker-b)
{
	echo "# The Kiln local cluster in $CLUSTER (deploy/local/up.sh, $(date -Is))."
	echo "# source this file; restart a process with cmd/<name>.sh, logs in logs/<name>.log."
	q() { # single-quoted: the values hold no quote
		case $2 in *"'"*) die "a quote in $1" ;; esac
		printf "export %s='%s'\n" "$1" "$2"
	}
	q KILN_CLUSTER_DIR "$CLUSTER"
	q TEMPORAL_ADDRESS "$FRONTEND"
	q TEMPORAL_NAMESPACE "$NAMESPACE"
	q TEMPORAL_UI_URL "$UI_URL"
	q KILN_UI_URL "$UI_URL"
	q KILN_REGISTRY "$DSN"
	q KILN_ARTIFACTS "$ARTIFACTS"
	q AWS_ACCESS_KEY_ID "$AWS_KEY"
	q AWS_SECRET_ACCESS_KEY "$AWS_SECRET"
	q AWS_REGION "$S3_REGION"
	q AWS_EC2_METADATA_DISABLED true
	q KILN_ADMIN_TOKEN "$ADMIN_TOKEN"
	q KILN_SERVE_URLS "$SERVE_URLS"
	q KILN_S3_ENDPOINT "$S3_ENDPOINT"
	q KILN_WORKER_A_QUEUES "$WORKER_A_QUEUES"
	q KILN_WORKER_B_QUEUES "$WORKER_B_QUEUES"
	q TEMPORAL_FRONTEND_HTTP "http://127.0.0.1:$FRONTEND_HTTP_PORT"
	q PG_DSN_TEMPORAL "postgres://$PG_USER@127.0.0.1:$PG_PORT/temporal?sslmode=disable"
	for name in "${PROCS[@]}"; do
		var=PID_$(echo "$name" | tr 'a-z-' 'A-Z_')
		q "$var" "$(cat "$CLUSTER/pids/$name.pid")"
	done
	for name in "${PROCS[@]}"; do
		var=CMD_$(echo "$name" | tr 'a-z-' 'A-Z_')
		q "$var" "$CLUSTER/cmd/$name.sh"
	done
} >"$CLUSTER/cluster.env.tmp"
mv "$CLUSTER/cluster.env.tmp" "$CLUSTER/cluster.env"

say "up: Temporal frontend $FRONTEND (history, matching, worker as their own processes, $NUM_HISTORY_SHARDS shards), UI $UI_URL"
say "    S3 $S3_ENDPOINT (bucket $S3_BUCKET), registry $DSN"
say "    kiln serve $SERVE_URLS; kiln worker A ($WORKER_A_QUEUES), B ($WORKER_B_QUEUES)"
say "    source $CLUSTER/cluster.env; $KILN_BIN run pipelines/churn.yaml --wait"
