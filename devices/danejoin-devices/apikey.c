/*
 * apikey.c - danejoin-devices apikey create|list|revoke: the API keys of danejoind's
 *	      management API ([admin], docs/admin-api.md). The token is printed once, on stdout,
 *	      and the store keeps only its salted hash (js_apikey.h).
 *
 *	apikey create --name NAME --scope read|operate|admin
 *	apikey list
 *	apikey revoke NAME
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "apikey.h"
#include "common/dj_err.h"
#include "exec.h"
#include "params.h"
#include "store/js_apikey.h"
#include "store/js_keystore.h"
#include "store/js_store.h"

#define AK_ACTOR_MAX 96

static int ak_usage(const char *msg)
{
	fprintf(stderr, "%s: apikey: %s\n"
		"usage: %s --config FILE apikey create --name NAME --scope read|operate|admin\n"
		"       %s --config FILE apikey list\n"
		"       %s --config FILE apikey revoke NAME\n",
		DV_PROGRAM, msg, DV_PROGRAM, DV_PROGRAM, DV_PROGRAM);
	return DV_EXIT_USAGE;
}

static int print_key(const struct js_apikey *k, void *arg)
{
	(void)arg;
	printf("%-24s %-8s created=%lld %s\n", k->name, js_apikey_scope_name(k->scope),
	       (long long)k->created_at, k->revoked_at != 0 ? "revoked" : "active");
	return DJ_EOK;
}

int apikey_main(const struct js_config *cfg, const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "scope", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *scope_text = NULL, *sub;
	enum js_apikey_scope scope = JS_SCOPE_NONE;
	struct js_keystore *ks = NULL;
	struct js_store *store = NULL;
	char actor[AK_ACTOR_MAX], token[JS_APIKEY_TOKEN_MAX];
	int ch, ex, rc;

	if (argc < 2)
		return ak_usage("give create, list or revoke");
	sub = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'n')
			name = optarg;
		else if (ch == 's')
			scope_text = optarg;
		else
			return ak_usage("unknown flag");
	}
	if (strcmp(sub, "create") == 0) {
		if (optind != argc)
			return ak_usage("create takes no argument besides --name and --scope");
		if (name == NULL || !js_apikey_name_ok(name))
			return ak_usage("--name must be 1 to 63 of A-Z a-z 0-9 . _ -");
		if (js_apikey_scope_parse(scope_text, &scope) != DJ_EOK)
			return ak_usage("--scope must be read, operate or admin");
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc || name != NULL || scope_text != NULL)
			return ak_usage("list takes no argument");
	} else if (strcmp(sub, "revoke") == 0) {
		if (optind + 1 != argc || scope_text != NULL)
			return ak_usage("revoke takes one NAME");
		name = argv[optind];
		if (!js_apikey_name_ok(name))
			return ak_usage("NAME must be 1 to 63 of A-Z a-z 0-9 . _ -");
	} else {
		return ak_usage("unknown subcommand (create, list, revoke)");
	}
	if (config_path == NULL)
		return ak_usage("--config FILE is required");
	ex = exec__open(cfg, config_path, &ks, &store);
	if (ex != DV_EXIT_OK)
		return ex;
	exec__actor(actor, sizeof(actor));
	if (strcmp(sub, "create") == 0) {
		rc = js_apikey_create(store, name, scope, actor, token);
		if (rc == DJ_EOK) {
			printf("%s\n", token);
			fprintf(stderr, "%s: API key '%s' (scope %s) created; it is shown only "
				"this once\n", DV_PROGRAM, name, js_apikey_scope_name(scope));
			OPENSSL_cleanse(token, sizeof(token));
		}
	} else if (strcmp(sub, "list") == 0) {
		rc = js_apikey_foreach(store, print_key, NULL);
	} else {
		rc = js_apikey_revoke(store, name, actor);
	}
	if (rc == DJ_EEXIST) {
		fprintf(stderr, "%s: apikey: the name '%s' is taken\n", DV_PROGRAM, name);
		ex = DV_EXIT_DATA;
	} else if (rc == DJ_ENOENT) {
		fprintf(stderr, "%s: apikey: no key in force named '%s'\n", DV_PROGRAM, name);
		ex = DV_EXIT_DATA;
	} else if (rc != DJ_EOK) {
		fprintf(stderr, "%s: apikey: %s\n", DV_PROGRAM, dj_strerror(rc));
		ex = exec__fault_exit(rc);
	}
	js_store_close(store);
	js_keystore_free(ks);
	return ex;
}
