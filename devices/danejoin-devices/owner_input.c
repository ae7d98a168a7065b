/*
 * owner_input.c - danejoin-devices: the input of the ownership commands: messages, numbers,
 * zone and rights flags, signing keys, and small text files read whole (device lists,
 * request files, auth-code files), each with a message that names the flag or the line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_csv.h"
#include "owner_input.h"

/* errmsg - print "danejoin-devices: message" on stderr */
/* oom - the message and exit code of an allocation failure */
int oi_oom(void)
{
	errmsg("out of memory");
	return DV_EXIT_INTERNAL;
}

/* zone_arg - normalize a zone flag, with a message naming it */
int oi_zone_arg(const char *flag, const char *in, char out[DV_ZONE_MAX])
{
	if (dv_zone_normalize(in, out) == DJ_EOK)
		return DV_EXIT_OK;
	errmsg("%s %.80s: not a DNS zone name", flag, in);
	return DV_EXIT_DATA;
}

/* read_key - the signing key of --key, with a clear message */
int oi_read_key(const char *path, EVP_PKEY **out)
{
	int rc = dv_key_read(path, out);

	switch (rc) {
	case DJ_EOK:
		return DV_EXIT_OK;
	case DJ_ENOENT:
		errmsg("--key %s: no such file", path);
		return DV_EXIT_DATA;
	case DJ_EFILEMODE:
		errmsg("--key %s: not a regular file of mode 0600 or 0400 (group or others may "
		       "read it); refusing to use it", path);
		return DV_EXIT_DATA;
	default:
		errmsg("--key %s: not a PEM private key of type EC P-256 or Ed25519", path);
		return DV_EXIT_DATA;
	}
}

/* list_ok - a comma list without empty items */
static bool list_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[0] != ',' && s[n - 1] != ',' && strstr(s, ",,") == NULL;
}

/* parse_rights - "--netids 000013,00001a" and "--as-ids a.example,b.example" into \p l */
int oi_parse_rights(const char *netids, const char *as_ids, struct dv_link *l)
{
	char buf[DV_RIGHTS_MAX * DV_ASID_MAX], *tok, *save = NULL;

	l->n_net_ids = 0;
	l->n_as_ids = 0;
	if (netids != NULL) {
		if (strlen(netids) >= sizeof(buf) || !list_ok(netids))
			goto bad_net;
		strcpy(buf, netids);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			if (l->n_net_ids >= DV_RIGHTS_MAX ||
			    dj_hex_parse(tok, l->net_ids[l->n_net_ids], DV_NETID_LEN) != DJ_EOK)
				goto bad_net;
			l->n_net_ids++;
		}
	}
	if (as_ids != NULL) {
		if (strlen(as_ids) >= sizeof(buf) || !list_ok(as_ids))
			goto bad_as;
		strcpy(buf, as_ids);
		save = NULL;
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			if (l->n_as_ids >= DV_RIGHTS_MAX || !dv_asid_valid(tok))
				goto bad_as;
			strcpy(l->as_ids[l->n_as_ids++], tok);
		}
	}
	return DV_EXIT_OK;
bad_net:
	errmsg("--netids: expected up to %d NetIDs of 6 hex digits, separated by commas",
	       DV_RIGHTS_MAX);
	return DV_EXIT_DATA;
bad_as:
	errmsg("--as-ids: expected up to %d AS-IDs (printable, no space, comma or quote), "
	       "separated by commas", DV_RIGHTS_MAX);
	return DV_EXIT_DATA;
}

/* read_small_file - a whole text file (at most \p max bytes) into a NUL-terminated buffer */
static int read_small_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	FILE *f;
	char *buf;

	*out = NULL;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		errmsg("%s: cannot read (no such regular file)", path);
		return DV_EXIT_DATA;
	}
	if ((uintmax_t)st.st_size > max) {
		errmsg("%s: larger than %zu bytes", path, max);
		return DV_EXIT_DATA;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		errmsg("%s: cannot open: %s", path, strerror(errno));
		return DV_EXIT_DATA;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		fclose(f);
		return oi_oom();
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[*len] = '\0';
	*out = buf;
	return DV_EXIT_OK;
}

void oi_lines_free(struct oi_lines *l)
{
	if (l->buf != NULL) {
		OPENSSL_cleanse(l->buf, strlen(l->buf));	/* auth codes */
		free(l->buf);
	}
	free(l->line);
	free(l->lineno);
	memset(l, 0, sizeof(*l));
}

/* lines_read - the non-blank lines of \p path (CR stripped); \p header: skip an exact first line */
int oi_lines_read(const char *path, const char *header, struct oi_lines *l)
{
	size_t len = 0, cap = 1, i;
	char *p, *nl;
	unsigned no = 0;
	int ex;

	memset(l, 0, sizeof(*l));
	ex = read_small_file(path, DV_CSV_MAX_BYTES, &l->buf, &len);
	if (ex != DV_EXIT_OK)
		return ex;
	if (memchr(l->buf, '\0', len) != NULL) {
		errmsg("%s: NUL byte: not a text file", path);
		return DV_EXIT_DATA;
	}
	for (i = 0; i < len; i++)
		cap += l->buf[i] == '\n';
	l->line = calloc(cap, sizeof(*l->line));
	l->lineno = calloc(cap, sizeof(*l->lineno));
	if (l->line == NULL || l->lineno == NULL)
		return oi_oom();
	for (p = l->buf; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		no++;
		if (*p != '\0' && p[strlen(p) - 1] == '\r')
			p[strlen(p) - 1] = '\0';
		if (no == 1 && header != NULL) {
			if (strcmp(p, header) != 0) {
				errmsg("%s:1: the header must be exactly \"%s\"", path, header);
				return DV_EXIT_DATA;
			}
		} else if (*p != '\0') {
			l->line[l->n] = p;
			l->lineno[l->n++] = no;
		}
		if (nl == NULL)
			break;
	}
	if (l->n == 0) {
		errmsg("%s: no entries", path);
		return DV_EXIT_DATA;
	}
	return DV_EXIT_OK;
}

/* device_list - one DEVEUI argument, or the dev_eui column of a "dev_eui" CSV file */
int oi_device_list(const struct dv_params *p, uint8_t (**out)[LW_EUI_LEN], size_t *n)
{
	struct oi_lines l;
	uint8_t (*euis)[LW_EUI_LEN];
	size_t i;
	int ex;

	*out = NULL;
	if (p->input != NULL) {
		euis = calloc(1, sizeof(*euis));
		if (euis == NULL)
			return oi_oom();
		if (dj_hex_parse(p->input, euis[0], LW_EUI_LEN) != DJ_EOK) {
			free(euis);
			errmsg("%s: DevEUI argument: expected 16 hex digits", "device");
			return DV_EXIT_DATA;
		}
		*out = euis;
		*n = 1;
		return DV_EXIT_OK;
	}
	ex = oi_lines_read(p->own.csv, "dev_eui", &l);
	if (ex != DV_EXIT_OK)
		goto out;
	euis = calloc(l.n, sizeof(*euis));
	if (euis == NULL) {
		ex = oi_oom();
		goto out;
	}
	for (i = 0; i < l.n; i++)
		if (dj_hex_parse(l.line[i], euis[i], LW_EUI_LEN) != DJ_EOK) {
			errmsg("%s:%u: field dev_eui: expected 16 hex digits", p->own.csv,
			       l.lineno[i]);
			free(euis);
			ex = DV_EXIT_DATA;
			goto out;
		}
	*out = euis;
	*n = l.n;
out:
	oi_lines_free(&l);
	return ex;
}
