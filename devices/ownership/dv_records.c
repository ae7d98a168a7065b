/*
 * dv_records.c - the registry's DNS records and their batched RFC 2136 publication
 * (dv_records.h).
 *
 * Record text is built from values that were validated on the way in (zones by
 * dv_zone_normalize, attribute values without quotes or backslashes, base64), so the
 * presentation lines given to ldns cannot be escaped out of. A message is TSIG-signed (RFC
 * 8945) and the answer's TSIG is verified by ldns_send(); only NOERROR counts as applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_records.h"

#define MAX_ZONES 8		/* zones with pending changes at once (a transfer touches 2) */
#define RR_TEXT_MAX (DV_CHAIN_WIRE_MAX * 2 + 1024)

struct pending {
	char zone[DV_ZONE_MAX];
	ldns_rr_list *upd;
	size_t bytes;		/* rough size of the update section */
};

struct dv_pub {
	const struct ca_server *srv;
	const struct ca_tsig *tsig;
	uint32_t ttl;
	unsigned messages;
	struct pending z[MAX_ZONES];
	char *text;		/* RR_TEXT_MAX bytes of scratch for presentation lines */
};

bool dv_attr_value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n > DV_ATTR_VALUE_MAX)
		return false;
	for (; *v != '\0'; v++)
		if (*v < 0x20 || *v >= 0x7f || *v == '"' || *v == '\\' || *v == ',' || *v == ';')
			return false;
	return true;
}

bool dv_date_ok(const char *d)
{
	int y, m, dd;
	char tail;

	if (strlen(d) != DV_DATE_LEN || d[4] != '-' || d[7] != '-')
		return false;
	for (int i = 0; i < DV_DATE_LEN; i++)
		if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9'))
			return false;
	if (sscanf(d, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3)
		return false;
	return y >= 1970 && m >= 1 && m <= 12 && dd >= 1 && dd <= 31;
}

int dv_attrs_format(const struct dv_attrs *a, char out[JS_OWNER_ATTRS_MAX])
{
	char hex[65];
	int n;

	if (!dv_attr_value_ok(a->model) || !dv_attr_value_ok(a->firmware) ||
	    !dv_attr_value_ok(a->manufacturer) || (a->date[0] != '\0' && !dv_date_ok(a->date)))
		return DJ_EINVAL;
	hex[0] = '\0';
	if (a->has_identity)
		dj_hex_format(a->identity, sizeof(a->identity), hex);
	n = snprintf(out, JS_OWNER_ATTRS_MAX, "%s\nmodel=%s\nfirmware=%s\nmanufacturer=%s\ndate=%s\n"
		     "identity=%s", DV_ATTRS_VERSION, a->model, a->firmware, a->manufacturer,
		     a->date, hex);
	return n > 0 && n < JS_OWNER_ATTRS_MAX ? DJ_EOK : DJ_EINVAL;
}

/* take_value - copy "key=value" into \p out when the line's key is \p key */
static bool take_value(const char *line, size_t len, const char *key, char *out, size_t cap)
{
	size_t k = strlen(key);

	if (len <= k || memcmp(line, key, k) != 0 || line[k] != '=')
		return false;
	if (len - k - 1 >= cap)
		return false;
	memcpy(out, line + k + 1, len - k - 1);
	out[len - k - 1] = '\0';
	return true;
}

int dv_attrs_parse(const char *text, struct dv_attrs *out)
{
	struct dv_attrs a;
	const char *p = text, *nl;
	char hex[72];
	size_t len;

	memset(&a, 0, sizeof(a));
	hex[0] = '\0';
	if (strncmp(text, DV_ATTRS_VERSION "\n", strlen(DV_ATTRS_VERSION) + 1) != 0)
		return DJ_EMALFORMED;
	p += strlen(DV_ATTRS_VERSION) + 1;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (!take_value(p, len, "model", a.model, sizeof(a.model)) &&
		    !take_value(p, len, "firmware", a.firmware, sizeof(a.firmware)) &&
		    !take_value(p, len, "manufacturer", a.manufacturer, sizeof(a.manufacturer)) &&
		    !take_value(p, len, "date", a.date, sizeof(a.date)) &&
		    !take_value(p, len, "identity", hex, sizeof(hex)) &&
		    !(len > 0 && p[len - 1] == '='))
			return DJ_EMALFORMED;
		p += len + (nl != NULL);
	}
	if (hex[0] != '\0') {
		if (dj_hex_parse(hex, a.identity, sizeof(a.identity)) != DJ_EOK)
			return DJ_EMALFORMED;
		a.has_identity = true;
	}
	if (!dv_attr_value_ok(a.model) || !dv_attr_value_ok(a.firmware) ||
	    !dv_attr_value_ok(a.manufacturer) || (a.date[0] != '\0' && !dv_date_ok(a.date)))
		return DJ_EMALFORMED;
	*out = a;
	return DJ_EOK;
}

/* name_fmt - "<prefix><deveui>._device.<zone>" */
static int name_fmt(const char *prefix, const uint8_t dev_eui[LW_EUI_LEN], const char *zone,
		    char out[DV_NAME_MAX])
{
	char eui[2 * LW_EUI_LEN + 1];
	int n;

	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	n = snprintf(out, DV_NAME_MAX, "%s%s._device.%s", prefix, eui, zone);
	return n > 0 && n < DV_NAME_MAX && n - 1 <= 254 ? DJ_EOK : DJ_ERANGE;
}

int dv_device_name(const uint8_t dev_eui[LW_EUI_LEN], const char *zone, char out[DV_NAME_MAX])
{
	return name_fmt("", dev_eui, zone, out);
}

int dv_chain_name(const uint8_t dev_eui[LW_EUI_LEN], const char *zone, char out[DV_NAME_MAX])
{
	return name_fmt("_ownership.", dev_eui, zone, out);
}

int dv_owner_name(const char *zone, char out[DV_NAME_MAX])
{
	int n = snprintf(out, DV_NAME_MAX, "_owner.%s", zone);

	return n > 0 && n < DV_NAME_MAX && n - 1 <= 254 ? DJ_EOK : DJ_ERANGE;
}

int dv_pub_new(const struct ca_server *srv, const struct ca_tsig *tsig, uint32_t ttl,
	       struct dv_pub **out)
{
	struct dv_pub *p;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return DJ_ENOMEM;
	p->text = malloc(RR_TEXT_MAX);
	if (p->text == NULL) {
		free(p);
		return DJ_ENOMEM;
	}
	p->srv = srv;
	p->tsig = tsig;
	p->ttl = ttl;
	*out = p;
	return DJ_EOK;
}

void dv_pub_free(struct dv_pub *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < MAX_ZONES; i++)
		ldns_rr_list_deep_free(p->z[i].upd);
	free(p->text);
	free(p);
}

unsigned dv_pub_messages(const struct dv_pub *p)
{
	return p->messages;
}

/* send_zone - one TSIG-signed UPDATE with the pending changes of one zone */
static int send_zone(struct dv_pub *p, struct pending *z, char *err, size_t errlen)
{
	ldns_resolver *r = NULL;
	ldns_rdf *zone = NULL;
	ldns_pkt *q = NULL, *a = NULL;
	ldns_status st;
	int rc;

	if (z->upd == NULL || ldns_rr_list_rr_count(z->upd) == 0)
		return DJ_EOK;
	rc = ca_resolver_new(p->srv, p->tsig, &r);
	if (rc != DJ_EOK)
		goto out;
	rc = DJ_ENOMEM;
	zone = ldns_dname_new_frm_str(z->zone);
	if (zone == NULL)
		goto out;
	q = ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, NULL, z->upd, NULL);
	zone = NULL;	/* taken by the packet */
	if (q == NULL)
		goto out;
	ldns_rr_list_deep_free(z->upd);	/* the packet holds a copy */
	z->upd = NULL;
	z->bytes = 0;
	rc = ca_update_sign_send(r, q, &a, &st, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	p->messages++;
	if (a == NULL) {
		dj_errbuf(err, errlen, "no answer from %s port %u (server down or unreachable: "
			  "%s)", p->srv->addr, p->srv->port, ldns_get_errorstr_by_id(st));
		rc = DJ_EAGAIN;
		goto out;
	}
	if (st == LDNS_STATUS_CRYPTO_TSIG_BOGUS) {
		dj_errbuf(err, errlen, "the server refused our TSIG key %s, or its answer's TSIG "
			  "does not verify (rcode %d)", p->tsig->name, ldns_pkt_get_rcode(a));
		rc = DJ_EACCES;
		goto out;
	}
	if (st != LDNS_STATUS_OK) {
		dj_errbuf(err, errlen, "no answer from %s port %u: %s", p->srv->addr, p->srv->port,
			  ldns_get_errorstr_by_id(st));
		rc = DJ_EAGAIN;
		goto out;
	}
	if (ldns_pkt_get_rcode(a) != LDNS_RCODE_NOERROR) {
		rc = ca_update_rcode_error(ldns_pkt_get_rcode(a), z->zone, err, errlen);
		goto out;
	}
	rc = DJ_EOK;
out:
	ldns_rdf_deep_free(zone);
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	ca_resolver_free(r);
	return rc;
}

/* zone_slot - the pending list of \p zone, flushing every other zone when all slots are used */
static int zone_slot(struct dv_pub *p, const char *zone, struct pending **out, char *err,
		     size_t errlen)
{
	size_t i, free_i = MAX_ZONES;
	int rc;

	for (i = 0; i < MAX_ZONES; i++) {
		if (p->z[i].upd != NULL && strcmp(p->z[i].zone, zone) == 0) {
			*out = &p->z[i];
			return DJ_EOK;
		}
		if (p->z[i].upd == NULL && free_i == MAX_ZONES)
			free_i = i;
	}
	if (free_i == MAX_ZONES) {
		rc = dv_pub_flush(p, err, errlen);
		if (rc != DJ_EOK)
			return rc;
		free_i = 0;
	}
	if (strlen(zone) >= DV_ZONE_MAX)
		return DJ_EINVAL;
	p->z[free_i].upd = ldns_rr_list_new();
	if (p->z[free_i].upd == NULL)
		return DJ_ENOMEM;
	strcpy(p->z[free_i].zone, zone);
	p->z[free_i].bytes = 0;
	*out = &p->z[free_i];
	return DJ_EOK;
}

/* push_text - parse one presentation line into the zone's update section */
static int push_text(struct pending *z, const char *line, uint32_t ttl)
{
	ldns_rr *rr = NULL;

	if (ldns_rr_new_frm_str(&rr, line, ttl, NULL, NULL) != LDNS_STATUS_OK)
		return DJ_EINVAL;
	if (!ldns_rr_list_push_rr(z->upd, rr)) {
		ldns_rr_free(rr);
		return DJ_ENOMEM;
	}
	z->bytes += strlen(line) + 16;
	return DJ_EOK;
}

/* push_delete - "delete the RRset" (class ANY, TTL 0, no rdata; RFC 2136 §2.5.2); type 0:
 * "delete all RRsets from a name" (type ANY, §2.5.3) */
static int push_delete(struct pending *z, const char *owner, ldns_rr_type type)
{
	ldns_rr *rr;
	ldns_rdf *name;

	name = ldns_dname_new_frm_str(owner);
	rr = ldns_rr_new();
	if (name == NULL || rr == NULL) {
		ldns_rdf_deep_free(name);
		ldns_rr_free(rr);
		return DJ_ENOMEM;
	}
	ldns_rr_set_owner(rr, name);
	ldns_rr_set_type(rr, type != 0 ? type : LDNS_RR_TYPE_ANY);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(rr, 0);
	ldns_rr_set_question(rr, false);
	if (!ldns_rr_list_push_rr(z->upd, rr)) {
		ldns_rr_free(rr);
		return DJ_ENOMEM;
	}
	z->bytes += strlen(owner) + 16;
	return DJ_EOK;
}

/* attrs_txt - the TXT rdata text of the stored attributes: "v=dj1" "model=..." (set ones) */
static int attrs_txt(const char *attrs, char *out, size_t cap, struct dv_attrs *a)
{
	size_t n;
	int k;

	if (dv_attrs_parse(attrs, a) != DJ_EOK)
		return DJ_EINVAL;
	k = snprintf(out, cap, "\"%s\"", DV_ATTRS_VERSION);
	n = (size_t)k;
#define ATTR(key, v)                                                                   \
	if ((v)[0] != '\0') {                                                          \
		k = snprintf(out + n, cap - n, " \"%s=%s\"", key, v);                  \
		if (k < 0 || (size_t)k >= cap - n)                                      \
			return DJ_EINVAL;                                               \
		n += (size_t)k;                                                        \
	}
	ATTR("model", a->model)
	ATTR("firmware", a->firmware)
	ATTR("manufacturer", a->manufacturer)
	ATTR("date", a->date)
#undef ATTR
	return DJ_EOK;
}

int dv_pub_device(struct dv_pub *p, const char *zone, const uint8_t dev_eui[LW_EUI_LEN],
		  const char *attrs, const uint8_t *chain, size_t chain_len, char *err,
		  size_t errlen)
{
	struct pending *z = NULL;
	struct dv_attrs a;
	char dname[DV_NAME_MAX], cname[DV_NAME_MAX], txt[JS_OWNER_ATTRS_MAX + 64], hex[65];
	char *b64 = NULL;
	size_t i, n, off;
	int rc;

	if (dv_device_name(dev_eui, zone, dname) != DJ_EOK ||
	    dv_chain_name(dev_eui, zone, cname) != DJ_EOK ||
	    attrs_txt(attrs, txt, sizeof(txt), &a) != DJ_EOK || chain_len == 0 ||
	    chain_len > DV_CHAIN_WIRE_MAX)
		return DJ_EINVAL;
	rc = zone_slot(p, zone, &z, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	/* a device that comes back to a former owner finds a CNAME at its name */
	rc = push_delete(z, dname, LDNS_RR_TYPE_CNAME);
	if (rc == DJ_EOK)
		rc = push_delete(z, dname, LDNS_RR_TYPE_TXT);
	if (rc == DJ_EOK) {
		snprintf(p->text, RR_TEXT_MAX, "%s %u IN TXT %s", dname, p->ttl, txt);
		rc = push_text(z, p->text, p->ttl);
	}
	if (rc == DJ_EOK)
		rc = push_delete(z, dname, LDNS_RR_TYPE_TLSA);
	if (rc == DJ_EOK && a.has_identity) {
		dj_hex_format(a.identity, sizeof(a.identity), hex);
		snprintf(p->text, RR_TEXT_MAX, "%s %u IN TLSA 3 1 1 %s", dname, p->ttl, hex);
		rc = push_text(z, p->text, p->ttl);
	}
	if (rc == DJ_EOK)
		rc = push_delete(z, cname, LDNS_RR_TYPE_TXT);
	if (rc == DJ_EOK)
		rc = dv_b64_encode(chain, chain_len, &b64);
	if (rc == DJ_EOK) {
		n = strlen(b64);
		off = (size_t)snprintf(p->text, RR_TEXT_MAX, "%s %u IN TXT", cname, p->ttl);
		for (i = 0; i < n; i += DV_TXT_CHUNK)
			off += (size_t)snprintf(p->text + off, RR_TEXT_MAX - off, " \"%.*s\"",
						(int)(n - i < DV_TXT_CHUNK ? n - i : DV_TXT_CHUNK),
						b64 + i);
		rc = push_text(z, p->text, p->ttl);
	}
	free(b64);
	if (rc == DJ_EOK && z->bytes >= DV_PUB_MSG_BUDGET)
		rc = send_zone(p, z, err, errlen);
	return rc;
}

int dv_pub_moved(struct dv_pub *p, const char *old_zone, const uint8_t dev_eui[LW_EUI_LEN],
		 const char *new_zone, char *err, size_t errlen)
{
	struct pending *z = NULL;
	char dname[DV_NAME_MAX], cname[DV_NAME_MAX], target[DV_NAME_MAX];
	int rc;

	if (dv_device_name(dev_eui, old_zone, dname) != DJ_EOK ||
	    dv_chain_name(dev_eui, old_zone, cname) != DJ_EOK ||
	    dv_device_name(dev_eui, new_zone, target) != DJ_EOK)
		return DJ_EINVAL;
	rc = zone_slot(p, old_zone, &z, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	/* a CNAME must stand alone at its name (RFC 1034 §3.6.2): delete everything first */
	rc = push_delete(z, dname, 0);
	if (rc == DJ_EOK)
		rc = push_delete(z, cname, 0);
	if (rc == DJ_EOK) {
		snprintf(p->text, RR_TEXT_MAX, "%s %u IN CNAME %s", dname, p->ttl, target);
		rc = push_text(z, p->text, p->ttl);
	}
	if (rc == DJ_EOK && z->bytes >= DV_PUB_MSG_BUDGET)
		rc = send_zone(p, z, err, errlen);
	return rc;
}

int dv_pub_flush(struct dv_pub *p, char *err, size_t errlen)
{
	int rc = DJ_EOK;

	for (size_t i = 0; i < MAX_ZONES && rc == DJ_EOK; i++) {
		rc = send_zone(p, &p->z[i], err, errlen);
		if (p->z[i].upd != NULL && ldns_rr_list_rr_count(p->z[i].upd) == 0) {
			ldns_rr_list_free(p->z[i].upd);
			p->z[i].upd = NULL;
		}
	}
	return rc;
}
