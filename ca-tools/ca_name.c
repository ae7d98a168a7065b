/*
 * ca_name.c - DNS owner names: syntax checks and the DANE owner-name forms.
 *
 * A name goes into a certificate and into the DNS, so it is checked before either: a name the
 * DNS cannot hold (a label over 63 octets, a name over 253 characters) would give a certificate
 * whose identity can never be published, and an update the server rejects half-way.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ca-tools/ca_name.h"
#include "common/dj_err.h"

/* name_char_ok - letters, digits, hyphen and underscore (service labels, RFC 8552) */
static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int ca_name_check(const char *name, char *err, size_t errlen)
{
	size_t len, label = 0, i, nlabels = 0;

	if (name == NULL || name[0] == '\0') {
		dj_errbuf(err, errlen, "empty DNS name");
		return DJ_EMALFORMED;
	}
	len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len > CA_NAME_MAX) {
		dj_errbuf(err, errlen, "DNS name is %zu characters long (at most %d)", len,
			  CA_NAME_MAX);
		return DJ_EMALFORMED;
	}
	for (i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0) {
				dj_errbuf(err, errlen, "DNS name '%.80s' has an empty label", name);
				return DJ_EMALFORMED;
			}
			if (label > CA_LABEL_MAX) {
				dj_errbuf(err, errlen, "DNS name '%.80s': label %zu is %zu characters "
					  "(at most %d)", name, nlabels + 1, label, CA_LABEL_MAX);
				return DJ_EMALFORMED;
			}
			nlabels++;
			label = 0;
			continue;
		}
		if (!name_char_ok(name[i])) {
			dj_errbuf(err, errlen, "DNS name '%.80s': character 0x%02x not allowed", name,
				  (unsigned char)name[i]);
			return DJ_EMALFORMED;
		}
		label++;
	}
	return DJ_EOK;
}

int ca_name_absolute(const char *name, char *out, char *err, size_t errlen)
{
	size_t len;
	int rc;

	rc = ca_name_check(name, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	len = strlen(name);
	if (name[len - 1] == '.')
		len--;
	memcpy(out, name, len);
	out[len] = '.';
	out[len + 1] = '\0';
	return DJ_EOK;
}

/* join_prefix - "<prefix>.<base>." checked as a whole */
static int join_prefix(const char *prefix, const char *base, char *out, char *err, size_t errlen)
{
	char abs[CA_NAME_BUF], buf[2 * CA_NAME_BUF + 16];
	int rc;

	rc = ca_name_absolute(base, abs, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	snprintf(buf, sizeof(buf), "%s.%s", prefix, abs);
	return ca_name_absolute(buf, out, err, errlen);
}

int ca_name_server(const char *host, unsigned port, char *out, char *err, size_t errlen)
{
	char prefix[32];

	if (port == 0 || port > 65535) {
		dj_errbuf(err, errlen, "port %u is out of range 1..65535", port);
		return DJ_ERANGE;
	}
	snprintf(prefix, sizeof(prefix), "_%u._tcp", port);
	return join_prefix(prefix, host, out, err, errlen);
}

int ca_name_client(const char *role, const char *host, char *out, char *err, size_t errlen)
{
	if (strcmp(role, "ns") == 0)
		return join_prefix("_ns-client", host, out, err, errlen);
	if (strcmp(role, "as") == 0)
		return join_prefix("_as-client", host, out, err, errlen);
	dj_errbuf(err, errlen, "client role '%.20s' is not ns or as", role);
	return DJ_EINVAL;
}

int ca_name_rootcert(const char *zone, char *out, char *err, size_t errlen)
{
	return join_prefix("_rootcert", zone, out, err, errlen);
}

int ca_name_in_zone(const char *name, const char *zone)
{
	size_t nl = strlen(name), zl = strlen(zone);

	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (zl > 0 && zone[zl - 1] == '.')
		zl--;
	if (nl < zl)
		return 0;
	if (strncasecmp(name + nl - zl, zone, zl) != 0)
		return 0;
	return nl == zl || zl == 0 || name[nl - zl - 1] == '.';
}
