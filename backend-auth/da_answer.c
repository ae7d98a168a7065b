/*
 * da_answer.c - turn what libunbound returns into a verdict (struct da_answer): status, TTL and
 *		 strictly parsed records.
 *
 * SECURITY
 *	DESIGN.md rule 1: only an answer that libunbound itself validated as secure counts. The
 *	"sec" value comes from libunbound's validator, never from the AD bit of the packet (an
 *	upstream may set AD on anything; we do not even look at it). Bogus is checked first, so a
 *	bogus answer can never be read as data. Any resolver error (non-zero rcode from
 *	libunbound, SERVFAIL, REFUSED, an unparseable packet) is DA_TEMPFAIL: "try again", never
 *	"accept" and never a cacheable denial.
 *
 *	TLSA rdata (RFC 6698 §2.1) is parsed by hand, with explicit lengths (STYLE.md rule 9):
 *	usage 0..3, selector 0..1, matching type 0..2, SHA2-256 data exactly 32 bytes, SHA2-512
 *	exactly 64, Full data non-empty. A malformed record is skipped and counted in the reason;
 *	a well-formed PKIX-TA(0)/PKIX-EE(1) record is skipped too (DESIGN.md: only DANE-TA(2) and
 *	DANE-EE(3) are usable, as there is no public CA here). A secure RRset with nothing usable
 *	is DA_UNUSABLE.
 *
 *	The packet itself, and the NAPTR, SRV, A and AAAA rdata, are parsed by ldns (libldns):
 *	no DNS wire parsing by hand beyond the TLSA fields.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

#define RCODE_NOERROR 0		/* RFC 1035 §4.1.1 */
#define RCODE_NXDOMAIN 3
#define SEC_INSECURE 0		/* ub_resolve_event "sec" values (unbound-event.h) */
#define SEC_BOGUS 1
#define SEC_SECURE 2
#define SOA_MINIMUM_RDF 6	/* RFC 2308 §5: the negative TTL is min(SOA TTL, MINIMUM) */
#define IPV6_TEXT_MAX 46	/* INET6_ADDRSTRLEN */

int da__name_canon(const char *in, char *out, size_t outlen)
{
	size_t len, label = 0, i;

	if (in == NULL)
		return DJ_EINVAL;
	len = strlen(in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DA_QNAME_MAX || len + 1 > outlen)
		return DJ_EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '.') {
			if (label == 0)
				return DJ_EINVAL;	/* empty label */
			label = 0;
			continue;
		}
		/* letters, digits, hyphen (RFC 952/1123) and underscore (RFC 6698 owner names) */
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return DJ_EINVAL;
		if (++label > DA_LABEL_MAX)
			return DJ_EINVAL;
	}
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[len] = '\0';
	return DJ_EOK;
}

int da_tlsa_parse(const uint8_t *rd, size_t len, struct da_tlsa *out)
{
	struct da_tlsa t;
	size_t dlen;

	if (rd == NULL || len <= DJ_TLSA_FIXED_LEN)
		return DJ_EMALFORMED;
	t.usage = rd[0];
	t.selector = rd[1];
	t.mtype = rd[2];
	t.data = rd + DJ_TLSA_FIXED_LEN;
	t.len = dlen = len - DJ_TLSA_FIXED_LEN;
	if (t.usage > DJ_TLSA_USAGE_MAX || t.selector > DJ_TLSA_SEL_MAX ||
	    t.mtype > DJ_TLSA_MT_MAX)
		return DJ_EMALFORMED;
	if ((t.mtype == DJ_TLSA_MT_SHA256 && dlen != DJ_TLSA_SHA256_LEN) ||
	    (t.mtype == DJ_TLSA_MT_SHA512 && dlen != DJ_TLSA_SHA512_LEN))
		return DJ_EMALFORMED;
	*out = t;
	return DJ_EOK;
}

int da__txt_join(const uint8_t *rd, size_t len, char **out, size_t *outlen)
{
	size_t off = 0, n = 0;
	char *s;

	/* one or more <character-string>s: a length octet, then that many octets */
	if (rd == NULL || len == 0)
		return DJ_EMALFORMED;
	s = malloc(len);	/* the text is shorter than the rdata by one octet per string */
	if (s == NULL)
		return DJ_ENOMEM;
	while (off < len) {
		size_t sl = rd[off++];

		if (sl > len - off || memchr(rd + off, '\0', sl) != NULL) {
			free(s);
			return DJ_EMALFORMED;
		}
		memcpy(s + n, rd + off, sl);
		n += sl;
		off += sl;
	}
	s[n] = '\0';	/* n < len: at least one length octet was not copied */
	*out = s;
	*outlen = n;
	return DJ_EOK;
}

struct da_answer *da__answer_ref(struct da_answer *a)
{
	if (a != NULL)
		atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
	return a;
}

void da__answer_unref(struct da_answer *a)
{
	size_t i;

	if (a == NULL || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) > 1)
		return;
	if (a->naptr != NULL)
		for (i = 0; i < a->n; i++) {
			free(a->naptr[i].flags);
			free(a->naptr[i].service);
			free(a->naptr[i].replacement);
		}
	if (a->srv != NULL)
		for (i = 0; i < a->n; i++)
			free(a->srv[i].target);
	if (a->addr != NULL)
		for (i = 0; i < a->n; i++)
			free(a->addr[i]);
	if (a->txt != NULL)
		for (i = 0; i < a->n; i++)
			free(a->txt[i]);
	free(a->txt);
	free(a->txt_len);
	free(a->naptr);
	free(a->srv);
	free(a->addr);
	free(a->tlsa);
	free(a->blob);
	free(a->why);
	free(a);
}

int da__answer_new(uint16_t type, enum da_status st, uint32_t ttl, const char *why,
		   struct da_answer **out)
{
	struct da_answer *a;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return DJ_ENOMEM;
	a->refs = 1;
	a->type = type;
	a->status = st;
	a->ttl = ttl;
	if (why != NULL && (a->why = strdup(why)) == NULL) {
		free(a);
		return DJ_ENOMEM;
	}
	*out = a;
	return DJ_EOK;
}

/* set_why - replace the reason of \p a */
static int set_why(struct da_answer *a, const char *why)
{
	char *w = strdup(why);

	if (w == NULL)
		return DJ_ENOMEM;
	free(a->why);
	a->why = w;
	return DJ_EOK;
}

int da__answer_tlsa(enum da_status st, uint32_t ttl, const uint8_t *const *rd,
		    const size_t *rdlen, size_t n, struct da_answer **out)
{
	struct da_answer *a = NULL;
	struct da_tlsa t;
	size_t i, total = 0, off = 0, malformed = 0, pkix = 0;
	char why[DA_REASON_MAX];
	int ret;

	ret = da__answer_new(DA_T_TLSA, st, ttl, NULL, &a);
	if (ret != DJ_EOK)
		goto out;
	if (st == DA_SECURE) {
		for (i = 0; i < n; i++)
			total += rdlen[i];
		ret = DJ_ENOMEM;
		if (n > 0 && ((a->tlsa = calloc(n, sizeof(*a->tlsa))) == NULL ||
			      (a->blob = malloc(total ? total : 1)) == NULL))
			goto out;
		for (i = 0; i < n; i++) {
			if (da_tlsa_parse(rd[i], rdlen[i], &t) != DJ_EOK) {
				malformed++;
				continue;
			}
			if (t.usage != DJ_TLSA_USAGE_DANE_TA && t.usage != DJ_TLSA_USAGE_DANE_EE) {
				pkix++;
				continue;
			}
			memcpy(a->blob + off, t.data, t.len);
			t.data = a->blob + off;
			off += t.len;
			a->tlsa[a->n++] = t;
		}
		if (a->n == 0)
			a->status = DA_UNUSABLE;
		if (malformed > 0 || pkix > 0 || a->n == 0) {
			snprintf(why, sizeof(why),
				 "%s%zu usable of %zu TLSA (%zu malformed, %zu PKIX-TA/EE usage 0/1)",
				 a->n == 0 ? "unusable: " : "", a->n, n, malformed, pkix);
			ret = set_why(a, why);
			if (ret != DJ_EOK)
				goto out;
		}
	}
	*out = a;
	a = NULL;
	ret = DJ_EOK;
out:
	da__answer_unref(a);
	return ret;
}

/* rdf_str - the <character-string> of a STR rdf (RFC 1035 §3.3), NUL-terminated; NULL on error */
static char *rdf_str(const ldns_rdf *f)
{
	const uint8_t *d;
	size_t sz;
	char *s;

	if (f == NULL || ldns_rdf_get_type(f) != LDNS_RDF_TYPE_STR)
		return NULL;
	d = ldns_rdf_data(f);
	sz = ldns_rdf_size(f);
	if (sz < 1 || (size_t)d[0] + 1 != sz || memchr(d + 1, '\0', d[0]) != NULL)
		return NULL;
	s = malloc(sz);
	if (s == NULL)
		return NULL;
	memcpy(s, d + 1, d[0]);
	s[d[0]] = '\0';
	return s;
}

/* rdf_name - a DNAME rdf as a canonical name ("" for the root); NULL if malformed or no memory */
static char *rdf_name(const ldns_rdf *f)
{
	char *txt, *out = NULL;

	if (f == NULL || ldns_rdf_get_type(f) != LDNS_RDF_TYPE_DNAME)
		return NULL;
	txt = ldns_rdf2str(f);
	if (txt == NULL)
		return NULL;
	if (strcmp(txt, ".") == 0) {
		out = strdup("");
	} else {
		out = malloc(DA_QNAME_MAX + 1);
		if (out != NULL && da__name_canon(txt, out, DA_QNAME_MAX + 1) != DJ_EOK) {
			free(out);
			out = NULL;
		}
	}
	free(txt);
	return out;
}

/* rdf_u16 - an INT16 rdf; 0 and -1 if it is not one */
static int rdf_u16(const ldns_rdf *f, uint16_t *v)
{
	if (f == NULL || ldns_rdf_get_type(f) != LDNS_RDF_TYPE_INT16 || ldns_rdf_size(f) != 2)
		return -1;
	*v = ldns_rdf2native_int16(f);
	return 0;
}

/* parse_rr - append the record \p rr (of the answer's type) to \p a; 1 added, 0 skipped
 * (malformed), negative on out-of-memory */
static int parse_rr(struct da_answer *a, const ldns_rr *rr, ldns_buffer *wire, uint8_t **rd,
		    size_t *rdlen)
{
	char txt[IPV6_TEXT_MAX];
	size_t i = a->n;

	switch (a->type) {
	case DA_T_TLSA:
		ldns_buffer_clear(wire);
		if (ldns_rr_rdata2buffer_wire(wire, rr) != LDNS_STATUS_OK)
			return 0;
		rd[i] = malloc(ldns_buffer_position(wire) + 1);
		if (rd[i] == NULL)
			return DJ_ENOMEM;
		memcpy(rd[i], ldns_buffer_begin(wire), ldns_buffer_position(wire));
		rdlen[i] = ldns_buffer_position(wire);
		break;
	case DA_T_NAPTR: {
		struct da_naptr *n = &a->naptr[i];

		if (ldns_rr_rd_count(rr) != 6 || rdf_u16(ldns_rr_rdf(rr, 0), &n->order) != 0 ||
		    rdf_u16(ldns_rr_rdf(rr, 1), &n->pref) != 0)
			return 0;
		n->flags = rdf_str(ldns_rr_rdf(rr, 2));
		n->service = rdf_str(ldns_rr_rdf(rr, 3));
		n->replacement = rdf_name(ldns_rr_rdf(rr, 5));
		if (n->flags == NULL || n->service == NULL || n->replacement == NULL) {
			free(n->flags);
			free(n->service);
			free(n->replacement);
			memset(n, 0, sizeof(*n));
			return 0;
		}
		break;
	}
	case DA_T_SRV: {
		struct da_srv *s = &a->srv[i];

		if (ldns_rr_rd_count(rr) != 4 || rdf_u16(ldns_rr_rdf(rr, 0), &s->prio) != 0 ||
		    rdf_u16(ldns_rr_rdf(rr, 1), &s->weight) != 0 ||
		    rdf_u16(ldns_rr_rdf(rr, 2), &s->port) != 0)
			return 0;
		s->target = rdf_name(ldns_rr_rdf(rr, 3));
		if (s->target == NULL)
			return 0;
		break;
	}
	case DA_T_TXT: {
		int rc;

		ldns_buffer_clear(wire);
		if (ldns_rr_rdata2buffer_wire(wire, rr) != LDNS_STATUS_OK)
			return 0;
		rc = da__txt_join(ldns_buffer_begin(wire), ldns_buffer_position(wire), &a->txt[i],
				  &a->txt_len[i]);
		if (rc == DJ_ENOMEM)
			return DJ_ENOMEM;
		if (rc != DJ_EOK)
			return 0;
		break;
	}
	case DA_T_A:
	case DA_T_AAAA: {
		const ldns_rdf *f = ldns_rr_rdf(rr, 0);
		int af = a->type == DA_T_A ? AF_INET : AF_INET6;
		size_t want = a->type == DA_T_A ? 4 : 16;

		if (ldns_rr_rd_count(rr) != 1 || f == NULL || ldns_rdf_size(f) != want ||
		    inet_ntop(af, ldns_rdf_data(f), txt, sizeof(txt)) == NULL)
			return 0;
		a->addr[i] = strdup(txt);
		if (a->addr[i] == NULL)
			return DJ_ENOMEM;
		break;
	}
	default:
		return 0;
	}
	a->n++;
	return 1;
}

/* neg_ttl_of - the negative-caching TTL from the SOA in the authority section (RFC 2308 §5) */
static uint32_t neg_ttl_of(const ldns_pkt *p, uint32_t dflt)
{
	const ldns_rr_list *auth = ldns_pkt_authority(p);
	size_t i;

	for (i = 0; auth != NULL && i < ldns_rr_list_rr_count(auth); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);
		const ldns_rdf *min;
		uint32_t ttl = ldns_rr_ttl(rr);

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA)
			continue;
		min = ldns_rr_rdf(rr, SOA_MINIMUM_RDF);
		if (min != NULL && ldns_rdf_size(min) == 4 && ldns_rdf2native_int32(min) < ttl)
			ttl = ldns_rdf2native_int32(min);
		return ttl;
	}
	return dflt;
}

/* records_of - fill \p a with the answer-section records of its type; DJ_EOK or DJ_ENOMEM.
 * \p skipped counts records that did not parse. */
static int records_of(struct da_answer *a, const ldns_pkt *p, size_t *skipped, uint32_t *minttl)
{
	const ldns_rr_list *ans = ldns_pkt_answer(p);
	size_t cnt = ans != NULL ? ldns_rr_list_rr_count(ans) : 0, i, m = 0;
	uint8_t **rd = NULL;
	size_t *rdlen = NULL;
	ldns_buffer *wire = NULL;
	struct da_answer *t = NULL;
	int ret = DJ_ENOMEM, r;

	*skipped = 0;
	*minttl = UINT32_MAX;
	for (i = 0; i < cnt; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ans, i);

		/* CNAMEs on the way count for the TTL: the whole chain was validated */
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_rr_ttl(rr) < *minttl)
			*minttl = ldns_rr_ttl(rr);
		if (ldns_rr_get_type(rr) == a->type)
			m++;
	}
	if (m == 0)
		return DJ_EOK;
	switch (a->type) {
	case DA_T_TLSA:
		rd = calloc(m, sizeof(*rd));
		rdlen = calloc(m, sizeof(*rdlen));
		wire = ldns_buffer_new(512);
		if (rd == NULL || rdlen == NULL || wire == NULL)
			goto out;
		break;
	case DA_T_NAPTR:
		if ((a->naptr = calloc(m, sizeof(*a->naptr))) == NULL)
			goto out;
		break;
	case DA_T_SRV:
		if ((a->srv = calloc(m, sizeof(*a->srv))) == NULL)
			goto out;
		break;
	case DA_T_TXT:
		a->txt = calloc(m, sizeof(*a->txt));
		a->txt_len = calloc(m, sizeof(*a->txt_len));
		wire = ldns_buffer_new(512);
		if (a->txt == NULL || a->txt_len == NULL || wire == NULL)
			goto out;
		break;
	default:
		if ((a->addr = calloc(m, sizeof(*a->addr))) == NULL)
			goto out;
		break;
	}
	for (i = 0; i < cnt; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ans, i);

		if (ldns_rr_get_type(rr) != a->type || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
			continue;
		r = parse_rr(a, rr, wire, rd, rdlen);
		if (r < 0)
			goto out;
		if (r == 0)
			(*skipped)++;
		if (ldns_rr_ttl(rr) < *minttl)
			*minttl = ldns_rr_ttl(rr);
	}
	if (a->type == DA_T_TLSA) {
		/* the TLSA records go through the strict parser into a fresh answer */
		ret = da__answer_tlsa(a->status, a->ttl, (const uint8_t *const *)rd, rdlen, a->n,
				      &t);
		if (ret != DJ_EOK)
			goto out;
		free(a->why);
		a->why = t->why;
		t->why = NULL;
		a->tlsa = t->tlsa;
		t->tlsa = NULL;
		a->blob = t->blob;
		t->blob = NULL;
		a->status = t->status;
		a->n = t->n;
		*skipped = 0;	/* already counted in why */
		if (m > 0 && a->n == 0 && a->status == DA_SECURE)
			a->status = DA_UNUSABLE;
	}
	ret = DJ_EOK;
out:
	if (rd != NULL)
		for (i = 0; i < m; i++)
			free(rd[i]);
	free(rd);
	free(rdlen);
	if (wire != NULL)
		ldns_buffer_free(wire);
	da__answer_unref(t);
	return ret;
}

int da__answer_from_packet(uint16_t type, int rcode, const uint8_t *pkt, size_t len, int sec,
			   const char *why_bogus, uint32_t neg_ttl, struct da_answer **out)
{
	struct da_answer *a = NULL;
	ldns_pkt *p = NULL;
	char why[DA_REASON_MAX];
	size_t skipped = 0;
	uint32_t minttl;
	int prc, ret;

	/* a resolver failure: libunbound hands sec "unchecked" (0) with it, so test it first */
	if (rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN) {
		snprintf(why, sizeof(why), "resolver failure (rcode %d)", rcode);
		ret = da__answer_new(type, DA_TEMPFAIL, 0, why, &a);
		goto done;
	}
	if (sec == SEC_BOGUS) {
		snprintf(why, sizeof(why), "bogus: %s", why_bogus ? why_bogus : "validation failed");
		ret = da__answer_new(type, DA_BOGUS, neg_ttl, why, &a);
		goto done;
	}
	if (pkt == NULL || len == 0 || ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK) {
		ret = da__answer_new(type, DA_TEMPFAIL, 0, "unparseable answer from libunbound", &a);
		goto done;
	}
	prc = ldns_pkt_get_rcode(p);
	if (prc != RCODE_NOERROR && prc != RCODE_NXDOMAIN) {
		snprintf(why, sizeof(why), "resolver failure (rcode %d)", prc);
		ret = da__answer_new(type, DA_TEMPFAIL, 0, why, &a);
		goto done;
	}
	if (sec != SEC_SECURE) {
		ret = da__answer_new(type, DA_INSECURE, neg_ttl,
				     "insecure: no DNSSEC chain of trust to the answer", &a);
		if (ret == DJ_EOK && records_of(a, p, &skipped, &minttl) == DJ_EOK &&
		    minttl < a->ttl)
			a->ttl = minttl;
		goto done;
	}
	if (prc == RCODE_NXDOMAIN) {
		ret = da__answer_new(type, DA_NXDOMAIN, neg_ttl_of(p, neg_ttl),
				     "nxdomain: the name does not exist (secure denial)", &a);
		goto done;
	}
	ret = da__answer_new(type, DA_SECURE, 0, NULL, &a);
	if (ret != DJ_EOK)
		goto done;
	ret = records_of(a, p, &skipped, &minttl);
	if (ret != DJ_EOK)
		goto done;
	if (a->n == 0 && a->status == DA_SECURE) {
		if (skipped > 0) {
			snprintf(why, sizeof(why), "unusable: %zu malformed record(s)", skipped);
			a->status = DA_UNUSABLE;
		} else {
			snprintf(why, sizeof(why), "nodata: no record of this type (secure denial)");
			a->status = DA_NODATA;
			minttl = neg_ttl_of(p, neg_ttl);
		}
		ret = set_why(a, why);
	} else if (skipped > 0) {
		snprintf(why, sizeof(why), "%zu malformed record(s) skipped", skipped);
		ret = set_why(a, why);
	}
	a->ttl = minttl == UINT32_MAX ? 0 : minttl;
done:
	if (p != NULL)
		ldns_pkt_free(p);
	if (ret != DJ_EOK) {
		da__answer_unref(a);
		return ret;
	}
	*out = a;
	return DJ_EOK;
}

uint32_t da__lifetime(const struct da_answer *a, uint32_t ttl_cap, uint32_t neg_ttl)
{
	uint32_t cap = a->status == DA_SECURE ? ttl_cap : neg_ttl;

	if (a->status == DA_TEMPFAIL)
		return 0;	/* never cached */
	return a->ttl < cap ? a->ttl : cap;
}

int da__status_rank(enum da_status st)
{
	/* how bad a step is for a chain (discovery): security failures dominate, then a
	 * temporary failure (retry may help), then the denials */
	switch (st) {
	case DA_SECURE:
		return 0;
	case DA_UNUSABLE:
		return 1;
	case DA_NODATA:
		return 2;
	case DA_NXDOMAIN:
		return 3;
	case DA_TEMPFAIL:
		return 4;
	case DA_INSECURE:
		return 5;
	case DA_BOGUS:
		return 6;
	}
	return 6;
}
