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
 *	Each device gets a new key (PKCS#8) and a certificate (role "device", CN = DevEUI, SAN = its
 *	name, signed by the CA), written in one of three layouts:
 *
 *	| layout | files                                               | creates per device |
 *	| files  | DIR/<dev_eui>.key (0600) and DIR/<dev_eui>.crt (0644) | 2                |
 *	| pem    | DIR/<dev_eui>.pem (0600): the key, then the certificate | 1              |
 *	| bundle | DIR/devices.pem (0600): every device, in CSV order  | 0 (one file in all) |
 *
 *	In "pem" and "bundle" each device starts with a comment line "# <dev_eui> <name>" (text
 *	outside the encapsulation boundaries is allowed by RFC 7468 §2). Every file is created with
 *	O_EXCL, so a file is never overwritten unless force. DIR/tlsa.zone gets one line per device,
 *	"<name>. TTL IN TLSA 3 1 1 <hash>", in CSV order, ready for `danejoin-ca publish` or a zone.
 *	If the run fails half-way, "bundle" removes its file; "files" and "pem" leave what was written.
 */
#ifndef DJ_CA_TOOLS_CA_BULK_H
#define DJ_CA_TOOLS_CA_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca-tools/ca_key.h"
#include "ca-tools/ca_name.h"
#include "common/dj_compiler.h"

#define CA_BULK_THREADS_MAX 64
#define CA_DEVEUI_HEX 16	/* 8 bytes, TS001 §6.2.4 */

/* Where the keys and certificates go (the table above). */
enum ca_bulk_layout {
	CA_BULK_FILES = 0,	/* the default */
	CA_BULK_PEM,
	CA_BULK_BUNDLE,
};

#define CA_BULK_BUNDLE_FILE "devices.pem"

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
	enum ca_bulk_layout layout;
	unsigned threads;		/* 0: one per online CPU */
	bool force;
	/* Called about ten times a second from the calling thread; may be NULL. */
	void (*progress)(size_t done, size_t total, void *arg);
	void *progress_arg;
};

/*! \brief Parse "files", "pem", "bundle". \retval DJ_EOK, DJ_EINVAL */
int ca_bulk_layout_parse(const char *text, enum ca_bulk_layout *out) DJ_MUSTCHECK;

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
