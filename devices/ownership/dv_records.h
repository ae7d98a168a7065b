/*
 * dv_records.h - the DNS records of the device registry (docs/dns-records.md), and their
 * publication by RFC 2136 UPDATE with TSIG, many devices per message.
 *
 * SYNOPSIS
 *	struct dv_pub *p;
 *	dv_pub_new(&server, &tsig, DV_TTL_DEFAULT, &p);
 *	dv_pub_device(p, "op-b.example.", dev_eui, attrs, chain, chain_len);	// new owner
 *	dv_pub_moved(p, "op-a.example.", dev_eui, "op-b.example.");		// old owner: CNAME
 *	dv_pub_flush(p, err, sizeof(err));	// every pending message sent and acknowledged
 *	dv_pub_free(p);
 *
 * DESCRIPTION
 *	<deveui>._device.<zone>			TXT "v=dj1" "model=..." ... (RFC 1464 key=value)
 *						TLSA 3 1 1 <sha256 of the device SPKI>, optional
 *	_ownership.<deveui>._device.<zone>	TXT: base64 of the encoded chain, cut into strings
 *						of DV_TXT_CHUNK characters
 *	after a move, in the old zone:		<deveui>._device.<old zone> CNAME
 *						<deveui>._device.<new zone>, and no _ownership
 *
 *	Every change is written as "delete the RRset, then add": applying it twice gives the same
 *	zone, so a transfer step repeated after a crash is harmless. One UPDATE message carries
 *	the changes of many devices of one zone (up to DV_PUB_MSG_BUDGET bytes): the server applies
 *	each message entirely or not at all, and 1,000 devices take a few dozen messages instead of
 *	thousands. The sender mirrors ca_update.c's (TCP, one server, TSIG-signed, the answer's
 *	TSIG verified by ldns).
 */
#ifndef DJ_DEVICES_DV_RECORDS_H
#define DJ_DEVICES_DV_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca-tools/ca_update.h"
#include "common/dj_compiler.h"
#include "store/js_store_owner.h"
#include "lorawan/lw_frame.h"

#define DV_NAME_MAX 320			/* "_ownership." + 16 + "._device." + zone */
#define DV_TXT_CHUNK 255		/* octets per TXT character-string (RFC 1035 §3.3.14) */
#define DV_TTL_DEFAULT 300
#define DV_PUB_MSG_BUDGET 32768		/* bytes of update section per message (TCP: < 64 KiB) */
#define DV_ATTR_VALUE_MAX 64		/* characters per attribute value */
#define DV_ATTRS_VERSION "v=dj1"	/* first TXT string: the format of the others */
#define DV_DATE_LEN 10			/* YYYY-MM-DD */

/* The attributes of a device (TXT), all optional. */
struct dv_attrs {
	char model[DV_ATTR_VALUE_MAX + 1];
	char firmware[DV_ATTR_VALUE_MAX + 1];
	char manufacturer[DV_ATTR_VALUE_MAX + 1];
	char date[DV_DATE_LEN + 1];
	bool has_identity;
	uint8_t identity[32];		/* SHA-256 of the device's SPKI: TLSA 3 1 1 */
};

/*! \brief Whether \p v may be an attribute value: 0..64 printable ASCII, no '"', '\\', ','. */
bool dv_attr_value_ok(const char *v);

/*! \brief Whether \p d is a date YYYY-MM-DD. */
bool dv_date_ok(const char *d);

/*!
 * \brief The stored form of \p a ("key=value" lines, DV_ATTRS_VERSION first).
 * \retval DJ_EOK, DJ_EINVAL (a value that is not allowed)
 */
int dv_attrs_format(const struct dv_attrs *a, char out[JS_OWNER_ATTRS_MAX]) DJ_MUSTCHECK;

/*! \brief Parse the stored form back. \retval DJ_EOK, DJ_EMALFORMED */
int dv_attrs_parse(const char *text, struct dv_attrs *out) DJ_MUSTCHECK;

/*! \brief "<deveui>._device.<zone>" (lower-case hex; \p zone absolute). \retval DJ_EOK, DJ_ERANGE */
int dv_device_name(const uint8_t dev_eui[LW_EUI_LEN], const char *zone, char out[DV_NAME_MAX])
	DJ_MUSTCHECK;

/*! \brief "_ownership.<deveui>._device.<zone>". \retval DJ_EOK, DJ_ERANGE */
int dv_chain_name(const uint8_t dev_eui[LW_EUI_LEN], const char *zone, char out[DV_NAME_MAX])
	DJ_MUSTCHECK;

/*! \brief "_owner.<zone>". \retval DJ_EOK, DJ_ERANGE */
int dv_owner_name(const char *zone, char out[DV_NAME_MAX]) DJ_MUSTCHECK;

struct dv_pub;

/*! \brief A publisher for one server (both borrowed, must outlive it). \retval DJ_EOK, DJ_ENOMEM */
int dv_pub_new(const struct ca_server *srv, const struct ca_tsig *tsig, uint32_t ttl,
	       struct dv_pub **out) DJ_MUSTCHECK;

/*! \brief Free (NULL is accepted); pending changes are dropped. */
void dv_pub_free(struct dv_pub *p);

/*!
 * \brief Queue a device's records in \p zone (its owner): attributes, identity TLSA, chain.
 *        May send a full message of that zone (then errors as dv_pub_flush).
 * \retval DJ_EOK, DJ_EINVAL (bad attributes or names), DJ_ENOMEM, or a dv_pub_flush error
 */
int dv_pub_device(struct dv_pub *p, const char *zone, const uint8_t dev_eui[LW_EUI_LEN],
		  const char *attrs, const uint8_t *chain, size_t chain_len, char *err,
		  size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Queue the old owner's side of a move: every record at the device name and the chain
 *        name of \p old_zone goes, and the device name becomes a CNAME to the one in
 *        \p new_zone. \retval as dv_pub_device
 */
int dv_pub_moved(struct dv_pub *p, const char *old_zone, const uint8_t dev_eui[LW_EUI_LEN],
		 const char *new_zone, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Send every queued message and wait for each answer.
 * \retval DJ_EOK        every message was applied (NOERROR, answer TSIG verified)
 * \retval DJ_EACCES     refused (NOTAUTH, REFUSED, TSIG)
 * \retval DJ_EAGAIN     no answer
 * \retval DJ_EINVAL     NOTZONE (a record outside its zone)
 * \retval DJ_EIO        another rcode
 */
int dv_pub_flush(struct dv_pub *p, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Messages sent so far (for reports). */
unsigned dv_pub_messages(const struct dv_pub *p);

#endif /* DJ_DEVICES_DV_RECORDS_H */
