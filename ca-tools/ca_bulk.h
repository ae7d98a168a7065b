/*
 * ca_bulk.h - device identity certificates in bulk, from a CSV list, on several threads.
 *
 * DESCRIPTION
 *	The CSV file has a header line naming its columns; "dev_eui" is required, "name" is
 *	optional (other columns are ignored, so a danejoin-devices enrollment file can be reused).
 *	A row without a name gets "<dev_eui>._device.<zone>" (DESIGN.md), so --zone is then needed.
 *	Every row is checked, every output file is checked to be absent (unless force), and only
 *	then is anything written: bad input changes nothing (DESIGN.md trust rule 6).
 *
 *	For each device: DIR/<dev_eui>.key (0600, O_EXCL) and DIR/<dev_eui>.crt (role "device",
 *	CN = DevEUI, SAN = its name, signed by the CA). DIR/tlsa.zone gets one line per device,
 *	"<name>. TTL IN TLSA 3 1 1 <hash>", in CSV order, ready for `danejoin-ca publish` or a zone.
 */
#ifndef DJ_CA_TOOLS_CA_BULK_H
#define DJ_CA_TOOLS_CA_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca_key.h"
#include "ca_name.h"
#include "dj_compiler.h"

#define CA_BULK_THREADS_MAX 64
#define CA_DEVEUI_HEX 16	/* 8 bytes, TS001 §6.2.4 */

struct ca_bulk_item {
	char dev_eui[CA_DEVEUI_HEX + 1];	/* lowercase hex */
	char name[CA_NAME_BUF];			/* without the final dot */
};

/* How to issue. Everything is borrowed. */
struct ca_bulk_props {
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	enum ca_key_type key_type;
	int days;
	uint32_t ttl;			/* for tlsa.zone */
	const char *out_dir;
	unsigned threads;		/* 0: one per online CPU */
	bool force;
	/* Called about ten times a second from the calling thread; may be NULL. */
	void (*progress)(size_t done, size_t total, void *arg);
	void *progress_arg;
};

/*!
 * \brief Read and check the CSV list. *\p items is the caller's (free()).
 * \param zone  for rows without a name (may be NULL: then every row needs one).
 * \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED (with "FILE:LINE: reason" in \p err; also a DevEUI
 *         that appears twice), DJ_ENOMEM
 */
int ca_bulk_read_csv(const char *path, const char *zone, struct ca_bulk_item **items, size_t *n,
		     char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Issue a certificate for every item. \p issued receives how many were written.
 * \retval DJ_EOK, DJ_EEXIST (an output file exists; nothing written), DJ_EIO, DJ_ECRYPTO
 */
int ca_bulk_issue(const struct ca_bulk_props *p, const struct ca_bulk_item *items, size_t n,
		  size_t *issued, char *err, size_t errlen) DJ_MUSTCHECK;

#endif /* DJ_CA_TOOLS_CA_BULK_H */
