/*
 * js_config.h - the INI configuration shared by danejoind and every danejoin CLI.
 *
 * SYNOPSIS
 *	struct js_config cfg;
 *	char err[JS_CONFIG_ERR_MAX];
 *	if (js_config_load("/etc/danejoin/danejoin.conf", &cfg, err, sizeof(err)) != DJ_EOK)
 *		fprintf(stderr, "%s\n", err);	// "FILE:LINE: [section] key: what is wrong"
 *	...
 *	js_config_free(&cfg);
 *
 * DESCRIPTION
 *	The file is INI (libinih): [section] headers, "key = value" lines, comments starting with
 *	';' or '#'. Every key is validated when it is read. Unknown sections, unknown keys, a key
 *	set twice and a key outside any section are errors, so that a typo is never silently
 *	ignored (DESIGN.md trust rule 6: bad input gets a clear error and changes nothing).
 *
 *	Relative paths are taken relative to the directory of the configuration file, so that a
 *	configuration and its files can be moved together. The file itself must not be writable by
 *	group or others (whoever may write it chooses the keys and the peers); a NUL byte, a line
 *	longer than the parser's buffer, an address that is not HOST:PORT and peer identities that
 *	differ only in case (they are DNS names) are refused when the file is read.
 *
 *	js_config_check_files() then checks what the configuration names, as danejoind uses it:
 *	--check-config and every start run that one function, so the two cannot disagree.
 *
 *	config/danejoin.conf.example documents every key.
 */
#ifndef DJ_JOINSERVER_JS_CONFIG_H
#define DJ_JOINSERVER_JS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_frame.h"

#define JS_CONFIG_ERR_MAX 512		/* room for any message js_config_load() writes */
#define JS_CONFIG_BATCH_MIN 1
#define JS_CONFIG_BATCH_MAX 4096
#define JS_CONFIG_SESSION_MIN 60		/* seconds */
#define JS_CONFIG_SESSION_MAX 31536000	/* seconds: 365 days */
#define JS_CONFIG_SESSION_DEFAULT 86400	/* seconds: one day */
#define JS_CONFIG_LIST_MAX 32		/* entries of a list value (sender_ids, join_euis, …) */
#define JS_CONFIG_PEERS_MAX 256		/* [peer.NAME] sections */
#define JS_CONFIG_NAME_MAX 64		/* NAME of [peer.NAME] */
#define JS_CONFIG_SNI_MAX 64		/* [listen.sni.NAME] sections */
#define JS_CONFIG_MAX_BODY_DEFAULT 65536
#define JS_CONFIG_HEADER_TIMEOUT_DEFAULT 10
#define JS_CONFIG_IDLE_TIMEOUT_DEFAULT 60
#define JS_CONFIG_MAX_CONN_DEFAULT 1024
#define JS_CONFIG_MIN_RATE_DEFAULT 256	/* bytes/s a request must average after 1 s */
#define JS_CONFIG_THREADS_MAX 64	/* [listen] threads: event loops */
#define JS_CONFIG_METRICS_DEFAULT "127.0.0.1:9110"
#define JS_CONFIG_MQTT_PORT_DEFAULT 8883	/* MQTT over TLS (IANA "secure-mqtt") */
#define JS_CONFIG_MQTT_CLIENT_ID_DEFAULT "danejoind"
#define JS_CONFIG_MQTT_TOPIC_ROOT "danejoin"	/* default prefix: danejoin/<client_id> */
#define JS_CONFIG_MQTT_KEEPALIVE_DEFAULT 30	/* seconds */
#define JS_CONFIG_MQTT_BACKOFF_MIN_DEFAULT 200	/* ms: first reconnect delay, doubled per failure */
#define JS_CONFIG_MQTT_BACKOFF_MAX_DEFAULT 30000	/* ms: the bound */
#define JS_CONFIG_MQTT_PREFIX_MAX 200
#define JS_CONFIG_KEK_LABEL_MAX 63	/* characters of a kek_label: BI_KEK_LABEL_MAX - 1 */
#define JS_CONFIG_HOST_MAX 256		/* host part of an address, with its NUL */
#define JS_CONFIG_KEK_MAX 32		/* bytes of a KEK: AES-256 (RFC 3394) */

/* A list value: words separated by spaces or commas. */
struct js_config_list {
	unsigned n;
	char *v[JS_CONFIG_LIST_MAX];
};

/* One [listen.sni.NAME] section: a certificate served to clients whose TLS SNI is one of
 * names (RFC 6066 §3), e.g. the JoinEUI names ChirpStack connects to. */
struct js_sni_config {
	char name[JS_CONFIG_NAME_MAX];	/* NAME of [listen.sni.NAME] */
	struct js_config_list names;	/* required: host names, or "*.SUFFIX" wildcards */
	char *cert_file;		/* required: the chain served to them (PEM) */
	char *key_file;			/* required: its key (PEM) */
};

/* What the join server knows of one peer (a network server or an application server). */
struct js_peer_config {
	char name[JS_CONFIG_NAME_MAX];	/* NAME of [peer.NAME] */
	char *identity;			/* required: its authenticated identity (certificate SAN
					 * dNSName today, DANE name later) */
	char *role;			/* required: "ns" or "as" */
	struct js_config_list sender_ids;	/* NetIDs (ns, 6 hex digits) or AS-IDs (as) it may
						 * use as SenderID */
	struct js_config_list ns_ids;	/* NSIDs it may use as SenderNSID (1.1) */
	struct js_config_list join_euis;	/* as: JoinEUI prefixes of the devices whose
						 * AppSKeys it may fetch */
	char *kek_label;		/* KEKLabel of its KEK */
	char *kek_file;			/* its KEK: 32 or 64 hex digits, mode 0600 */
	unsigned plain_keys;		/* 1: session keys may go to it unwrapped (explicit) */
	unsigned appskey_in_joinans;	/* ns only, KEK required: 1: JoinAns carries the AppSKey,
					 * wrapped under its KEK (ChirpStack without an AS) */
	unsigned rate;			/* requests per second; 0: unlimited */
	char *async_url;		/* "https://HOST:PORT/PATH": answers are POSTed there
					 * (TS002 §8 asynchronous mode); NULL: in the response */
	char *async_server_name;	/* the name async_url's server is verified as (DANE:
					 * TLSA at _PORT._tcp.NAME); NULL: the URL host */
	unsigned async_discover;	/* 1: asynchronous, the URL found from the answer's
					 * NetID (TS002 §19 NAPTR -> SRV, DNSSEC-secure) */
};

#define JS_CONFIG_PG_STORE_NAME "(PostgreSQL [store] conninfo)"

struct js_config {
	/* [store] */
	char *store_backend;		/* "sqlite" (NULL: the default) or "postgresql" */
	char *store_path;		/* sqlite: the file (absolute once loaded), required;
					 * postgresql: JS_CONFIG_PG_STORE_NAME, a name to print */
	char *store_conninfo;		/* postgresql: the libpq connection string, with
					 * passfile='...' appended when [store] passfile is set;
					 * never a password (refused at load). NULL: sqlite */
	char *store_passfile;		/* postgresql: a 0600 password file (absolute), or NULL */
	unsigned devnonce_history;	/* JS_DEVNONCE_HIST_MIN..MAX, default 1024 */
	unsigned batch_max;		/* JS_CONFIG_BATCH_MIN..MAX, default JS_BATCH_DEFAULT */
	/* [keys] */
	char *master_key_file;		/* required (absolute once loaded) */
	/* [listen] (danejoind) */
	char *listen_address;		/* "HOST:PORT" */
	char *cert_file;
	char *key_file;
	char *client_ca_file;		/* private roots for client certificates (PKIX mode) */
	char *auth;			/* "dane" (default) or "pkix": how peers are verified */
	unsigned max_body;
	unsigned header_timeout;
	unsigned idle_timeout;
	unsigned max_connections;
	unsigned max_connections_per_peer; /* 0 (unset): max(1, max_connections / 4) */
	unsigned min_rate;		/* bytes/s; 0: no minimum */
	unsigned threads;		/* event loops, 1..JS_CONFIG_THREADS_MAX; 0 (unset): one per
					 * online core, at most JS_CONFIG_THREADS_MAX */
	char *metrics_address;		/* "HOST:PORT", or "off" */
	unsigned n_sni;			/* [listen.sni.NAME]: certificates chosen by SNI */
	struct js_sni_config *sni;
	/* [dane] (danejoind): the resolver behind DANE in both directions */
	char *dane_trust_anchor_file;	/* DS/DNSKEY lines for private zones (tests, intranets) */
	char *dane_auto_trust_anchor_file; /* RFC 5011 managed root anchor */
	unsigned dane_root_anchor;	/* 1: /usr/share/dns/root.key */
	char *dane_stubs;		/* "zone@addr[@port] ..." */
	char *dane_forwarders;		/* "addr[@port] ..." */
	unsigned dane_cache_max, dane_ttl_cap, dane_neg_ttl, dane_timeout_ms;
	unsigned dane_clientid_ext;	/* dane_clientid codepoint (0: the default) */
	char *dane_client_identity;	/* our DANE name when we are the client (async answers) */
	unsigned dane_netid_binding;	/* 1: an NS's identity host must be a target of its
					 * NetID's NAPTR/SRV (TS002 §19), DNSSEC-secure */
	char *dane_discovery_suffix;	/* NULL: "lora-alliance.org" */
	/* [js] (danejoind) */
	struct js_config_list join_euis;	/* JoinEUIs served: HEX16 or HEX16/BITS prefixes */
	uint8_t home_net_id[LW_NETID_LEN];	/* HomeNSAns HNetID */
	char *home_ns_id;		/* HomeNSAns HNSID (1.1); NULL: not sent */
	unsigned js_ownership;		/* 1: requests for a device with an owner row need its
					 * ownership chain (js_owner.h); needs auth = dane */
	/* [peer.NAME] */
	unsigned n_peers;
	struct js_peer_config *peers;
	/* [join] */
	uint8_t net_id[LW_NETID_LEN];	/* default 000000 */
	int64_t session_lifetime;	/* seconds an AppSKey is kept for AppSKeyReq */
	/* [mqtt] (danejoind): events; the section is optional, and when present host and
	 * cafile are required. Defaults are filled in once loaded. */
	unsigned mqtt;			/* 1: the section is present, events are on */
	char *mqtt_host;
	unsigned mqtt_port;
	char *mqtt_address;		/* where to connect (NULL: host); host stays the name */
	char *mqtt_verify;		/* "cafile", or "dane": TLSA _<port>._tcp.<host> ([dane]) */
	char *mqtt_cafile;		/* verify = cafile: the roots the broker's certificate
					 * must chain to */
	char *mqtt_cert, *mqtt_key;	/* our client certificate and key (both or neither) */
	char *mqtt_client_id;
	char *mqtt_topic_prefix;
	unsigned mqtt_qos;		/* 1 */
	char *mqtt_payload_format;	/* "protobuf" or "json" */
	unsigned mqtt_outbox_max;	/* rows; then events are dropped, joins go on */
	unsigned mqtt_keepalive;	/* seconds */
	unsigned mqtt_backoff_min_ms, mqtt_backoff_max_ms;	/* reconnect delay bounds */
	/* [admin] (danejoind): the management API and console (docs/admin-api.md); off unless
	 * address is set */
	char *admin_address;		/* "HOST:PORT" (loopback recommended) */
	char *admin_cert_file, *admin_key_file;	/* NULL: [listen]'s */
	char *admin_client_ca_file;	/* mTLS (PKIX): roots of admin client certificates */
	char *admin_auth;		/* mTLS: "pkix" (client_ca_file) or "dane" (client_identities) */
	struct js_config_list admin_client_identities;	/* auth = dane: "_admin-client.HOST" */
	char *admin_mtls_scope;		/* scope of an mTLS client: read, operate or admin */
	char *admin_console_dir;	/* the console's static files; NULL: no console */
	unsigned admin_auth_fail_max;	/* failed logins per address per minute; default 10 */
	/* [registry] (danejoind): transfers by auth code through the management API
	 * (docs/admin-api.md); off unless key_file is set, then ns and tsig_file are required */
	char *registry_key_file;	/* the registry's signing key (0600): the _owner key of
					 * the chains' first signer */
	char *registry_ns;		/* "IP[@PORT]": the DNS server taking the updates */
	char *registry_tsig_file;	/* its TSIG key, ALG:NAME:SECRET (0600) */
	char *registry_lookup_via;	/* "IP[@PORT]": where _owner keys are looked up; NULL: ns */
	unsigned registry_ttl;		/* of the published records; 0: the default */
};

/*!
 * \brief Set every field to its default (no paths). js_config_load() starts from these.
 */
void js_config_defaults(struct js_config *cfg);

/*!
 * \brief Read and validate a configuration file.
 * \param path    the file (borrowed).
 * \param out     filled on success only; release with js_config_free().
 * \param err     receives one line, "FILE:LINE: [section] key: what is wrong" (or "FILE: ..."
 *                when no line applies), on failure; may be NULL.
 * \retval DJ_EOK
 * \retval DJ_ECONFIG  the file was read but is not a valid configuration, or group or others
 *                    may write it
 * \retval DJ_ENOENT, DJ_EACCES, DJ_EIO  the file could not be read
 * \retval DJ_ENOMEM
 */
int js_config_load(const char *path, struct js_config *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Free what js_config_load() allocated and reset to defaults (NULL is accepted). */
void js_config_free(struct js_config *cfg);

/*!
 * \brief Parse an address "HOST:PORT" or "[IPv6]:PORT", PORT from 1 to 65535.
 * \param host     receives the host (without brackets) on success; may be NULL.
 * \param hostlen  its size (JS_CONFIG_HOST_MAX holds any accepted host).
 * \param port     receives the port on success; may be NULL.
 * \retval DJ_EOK
 * \retval DJ_EMALFORMED  no port, a port outside 1..65535, an empty or too long host, or a
 *                       bare IPv6 address (it needs brackets)
 */
int js_config_hostport(const char *s, char *host, size_t hostlen, unsigned *port) DJ_MUSTCHECK;

/*!
 * \brief Check the files a loaded configuration names, as danejoind will use them, without
 *        opening the store or binding: the master key file; [listen] cert_file and key_file
 *        (both present, readable, parsed, and the key matching the certificate) and
 *        client_ca_file; with [mqtt], its cafile and its cert and key (likewise); every
 *        [peer.NAME] kek_file. Secret files (the master key, private keys, KEKs) are opened with
 *        O_NOFOLLOW and must be regular files that group and others cannot read.
 * \param path  the configuration file (borrowed), the prefix of the message.
 * \param cfg   loaded by js_config_load() (borrowed).
 * \param err   receives one line naming the file and what is wrong, on failure.
 * \retval DJ_EOK
 * \retval DJ_EFILEMODE  a secret file is a symbolic link, not a regular file, or readable by
 *                      group or others
 * \retval DJ_ENOENT, DJ_EACCES  a file is missing or cannot be read
 * \retval DJ_ECONFIG    a file does not hold what it should, or a key does not match its
 *                      certificate
 * \retval DJ_ENOMEM
 */
int js_config_check_files(const char *path, const struct js_config *cfg, char *err,
			  size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Read a peer's KEK file: 32 or 64 hex digits (and a newline), a regular file that group
 *        and others cannot read, opened with O_NOFOLLOW. The one reader of KEK files.
 * \param pc   the peer (borrowed); pc->kek_file must be set.
 * \param key  receives the KEK on success only; the caller wipes it with OPENSSL_cleanse.
 * \param len  receives 16 or 32.
 * \param err  receives "[peer.NAME] kek_file PATH: what is wrong" on failure.
 * \retval DJ_EOK, DJ_EFILEMODE, DJ_ENOENT, DJ_EACCES, DJ_ECONFIG (not 32 or 64 hex digits)
 */
int js_config_read_kek(const struct js_peer_config *pc, uint8_t key[JS_CONFIG_KEK_MAX],
		       size_t *len, char *err, size_t errlen) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_JS_CONFIG_H */
