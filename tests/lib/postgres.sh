# tests/lib/postgres.sh - private PostgreSQL clusters for tests (issue 13), after
# /work/shared/recipes/postgresql-test-cluster.md: the tests run as root and PostgreSQL refuses
# root, so the server tools run as the `postgres` user (runuser); each cluster listens on a Unix
# socket in its own directory and on no TCP port, so parallel tests cannot collide. harness.sh
# sources it (and its cleanup stops every cluster); it can also be sourced alone.
#
#   pg_start DIR                 initdb + start a cluster in DIR, create the database dj. Sets
#                                PG_CONNINFO ("host=DIR dbname=dj user=postgres") and PG_DIR.
#   pg_stop DIR [MODE]           pg_ctl stop (MODE fast, the default, or immediate = the crash stop)
#   pg_start_again DIR           pg_ctl start on a stopped cluster (same data, same socket)
#   pg_restart_immediate DIR     pg_ctl restart -m immediate
#   pg_add_standby PRIMARY DIR   a streaming standby of PRIMARY in DIR (pg_basebackup -R), made
#                                synchronous: on PRIMARY synchronous_standby_names = the standby
#                                and synchronous_commit = on. Sets PG_STANDBY_CONNINFO.
#   pg_promote DIR               pg_ctl promote, waits until DIR accepts writes
#   pg_psql DIR SQL...           psql -At on DIR's database dj (as postgres)
#   pg_is_up DIR                 the cluster accepts connections
#   pg_stop_all                  stop (immediate) every cluster started here; the cleanup's part
#   pg_cleanup_trap              a standalone user's EXIT trap: pg_stop_all (harness.sh has its own)
#
# `trust` authentication is for these private clusters only; deployments use scram-sha-256, a
# 0600 passfile and sslmode=verify-full (docs/deployment.md, config/danejoin.conf.example).

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_CLUSTERS=()

# _pg_as_postgres CMD... - run CMD as the postgres user (or as ourselves when not root)
_pg_as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# _pg_prepare DIR - DIR exists, is absolute, and postgres can enter and own it
_pg_prepare() {
	mkdir -p "$1" || return 1
	chmod 755 "$1" || return 1
	# every parent must be enterable by postgres (mktemp -d makes 0700 directories)
	local p=$1
	while p=$(dirname "$p") && [ "$p" != / ]; do
		[ -O "$p" ] && chmod o+x "$p" 2>/dev/null
	done
	[ "$(id -u)" -eq 0 ] && chown postgres: "$1"
	return 0
}

# _pg_ctl DIR ARGS... - pg_ctl on DIR's data directory, socket in DIR, no TCP
_pg_ctl() {
	local d=$1
	shift
	_pg_as_postgres "$PG_BIN/pg_ctl" -D "$d/data" -o "-k $d -c listen_addresses=''" \
		-l "$d/log" "$@"
}

pg_is_up() {
	"$PG_BIN/pg_isready" -q -h "$1" -U postgres -d postgres
}

pg_psql() {
	local d=$1
	shift
	psql -X -q -At -v ON_ERROR_STOP=1 -h "$d" -U postgres dj -c "$*"
}

pg_start() {
	local d
	d=$(mkdir -p "$1" && cd "$1" && pwd) || return 1
	[ -x "$PG_BIN/initdb" ] || { echo "postgres.sh: no PostgreSQL server (install postgresql)" >&2; return 1; }
	_pg_prepare "$d" || return 1
	_pg_as_postgres "$PG_BIN/initdb" -N -A trust -U postgres -D "$d/data" >"$d/initdb.log" 2>&1 \
		|| { echo "postgres.sh: initdb failed:" >&2; tail -5 "$d/initdb.log" >&2; return 1; }
	cat >>"$d/data/postgresql.conf" <<EOF
fsync = on
max_connections = 100
wal_level = replica
max_wal_senders = 5
hot_standby = on
EOF
	echo "local replication all trust" >>"$d/data/pg_hba.conf"
	_pg_ctl "$d" -w start >/dev/null || { echo "postgres.sh: start failed:" >&2; tail -5 "$d/log" >&2; return 1; }
	PG_CLUSTERS+=("$d")
	"$PG_BIN/createdb" -h "$d" -U postgres dj || return 1
	PG_DIR=$d
	PG_CONNINFO="host=$d dbname=dj user=postgres"
	export PG_CONNINFO
}

pg_stop() {
	_pg_ctl "$1" -m "${2:-fast}" -w stop >/dev/null 2>&1
}

pg_start_again() {
	_pg_ctl "$1" -w start >/dev/null || { tail -5 "$1/log" >&2; return 1; }
}

pg_restart_immediate() {
	_pg_ctl "$1" -m immediate -w restart >/dev/null || { tail -5 "$1/log" >&2; return 1; }
}

pg_add_standby() {
	local p=$1 d name
	d=$(mkdir -p "$2" && cd "$2" && pwd) || return 1
	_pg_prepare "$d" || return 1
	name=standby_$(basename "$d" | tr -c 'a-zA-Z0-9_\n' _)
	_pg_as_postgres "$PG_BIN/pg_basebackup" -h "$p" -U postgres -D "$d/data" -R -X stream -c fast \
		>"$d/basebackup.log" 2>&1 || { tail -5 "$d/basebackup.log" >&2; return 1; }
	echo "primary_conninfo = 'host=$p user=postgres application_name=$name'" \
		>>"$d/data/postgresql.auto.conf"
	_pg_ctl "$d" -w start >/dev/null || { tail -5 "$d/log" >&2; return 1; }
	PG_CLUSTERS+=("$d")
	psql -X -q -h "$p" -U postgres -d postgres \
		-c "ALTER SYSTEM SET synchronous_standby_names = '$name'" \
		-c "ALTER SYSTEM SET synchronous_commit = 'on'" \
		-c "SELECT pg_reload_conf()" >/dev/null || return 1
	# wait until the standby streams synchronously
	local n=200
	while [ $n -gt 0 ]; do
		[ "$(psql -X -At -h "$p" -U postgres -d postgres -c \
			"SELECT sync_state FROM pg_stat_replication WHERE application_name = '$name'")" = sync ] \
			&& break
		sleep 0.05
		n=$((n - 1))
	done
	[ $n -gt 0 ] || { echo "postgres.sh: standby $d never became synchronous" >&2; return 1; }
	PG_STANDBY_CONNINFO="host=$d dbname=dj user=postgres"
	export PG_STANDBY_CONNINFO
}

pg_promote() {
	_pg_ctl "$1" -w promote >/dev/null || return 1
	local n=200
	while [ $n -gt 0 ]; do
		[ "$(psql -X -At -h "$1" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] \
			&& return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

pg_stop_all() {
	local d
	for d in "${PG_CLUSTERS[@]}"; do
		[ -f "$d/data/postmaster.pid" ] && pg_stop "$d" immediate
	done
	PG_CLUSTERS=()
}

pg_cleanup_trap() {
	pg_stop_all
}
