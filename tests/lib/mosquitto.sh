# tests/lib/mosquitto.sh - a real mosquitto broker on a TLS loopback listener for tests.
# harness.sh sources it; it defines functions only.
#
#   dj_mosq_start DIR PORT CA CERT KEY  - write DIR/mosquitto.conf (TLS listener on
#       127.0.0.1:PORT, client certificates required and checked against CA.crt, persistence in
#       DIR so that a restart keeps sessions and queued messages), start mosquitto in the
#       foreground, wait for the port; sets DJ_MOSQ_PID. Log: DIR/mosquitto.log
#   dj_mosq_stop [SIGNAL]               - stop it (default TERM: it saves its persistence file)

dj_mosq_start() {
	local dir=$1 port=$2 ca=$3 cert=$4 key=$5
	mkdir -p "$dir"
	case $ca in /*) ;; *) ca=$PWD/$ca ;; esac
	case $cert in /*) ;; *) cert=$PWD/$cert ;; esac
	case $key in /*) ;; *) key=$PWD/$key ;; esac
	# user: run as ourselves (as root, mosquitto would switch to a user that cannot read the
	# test's private directory)
	cat >"$dir/mosquitto.conf" <<CONF
user $(id -un)
per_listener_settings false
allow_anonymous true
persistence true
persistence_location $dir/
autosave_interval 1
log_dest stderr
log_type error
log_type warning
log_type notice
max_queued_messages 1000000
listener $port 127.0.0.1
cafile $ca.crt
certfile $cert.crt
keyfile $key.key
require_certificate true
use_identity_as_username true
CONF
	mosquitto -c "$dir/mosquitto.conf" 2>>"$dir/mosquitto.log" &
	DJ_MOSQ_PID=$!
	dj_wait_port "$port" "$DJ_MOSQ_PID"
}

dj_mosq_stop() {
	[ -n "${DJ_MOSQ_PID:-}" ] || return 0
	kill -"${1:-TERM}" "$DJ_MOSQ_PID" 2>/dev/null
	wait "$DJ_MOSQ_PID" 2>/dev/null
	DJ_MOSQ_PID=""
}
