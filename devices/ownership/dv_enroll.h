/*
 * dv_enroll.h - enrollment input: a CSV of devices, or the same CSV in a CMS envelope
 *		 addressed to the JS, turned into the store's device and owner rows.
 *
 * SYNOPSIS
 *	dv_enroll_recipient_read("js.crt", "js.key", &cert, &key, why, sizeof(why));
 *	dv_enroll_cms_file("devices.cms", cert, key, &csv, why, sizeof(why));
 *	dv_enroll_build(ks, csv, &(struct dv_enroll_props){ ... }, devs, owners, why, ...);
 *	js_store_owner_enroll(store, devs, owners, csv->n, actor, &failed);
 *
 * DESCRIPTION
 *	A manufacturer sends the root keys of the devices it built encrypted to the JS: a CMS
 *	EnvelopedData or AuthEnvelopedData (RFC 5652 §6, RFC 5083), DER, made with
 *	"openssl cms -encrypt -binary -outform DER -recip js.crt". The plaintext is the
 *	enrollment CSV (dv_csv.h).
 *
 *	SECURITY: the envelope must name the JS certificate among its recipients (so a file
 *	meant for someone else is refused with a clear reason instead of a decryption error),
 *	the key must be the certificate's, and the key file must not be readable by group or
 *	others. A key agreement (EC) recipient must use AES key wrap (RFC 3394); any other wrap is
 *	refused before decryption. The plaintext never leaves OpenSSL's secure heap (a BIO_s_secmem, wiped when
 *	freed) except as the parsed rows, which dv_csv_free() wipes; the root keys are sealed
 *	under the master key (js_keystore) before any row is built.
 *
 *	Each device's first link is built here too: serial 1, from the manufacturer zone to the
 *	owner zone, with the rights given, signed by the manufacturer's key (dv_chain.h).
 */
#ifndef DJ_DEVICES_OWNERSHIP_DV_ENROLL_H
#define DJ_DEVICES_OWNERSHIP_DV_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/dj_compiler.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_csv.h"
#include "store/js_keystore.h"
#include "store/js_store_owner.h"

#define DV_ENROLL_WHY_MAX 600	/* a reason, with a path and a CSV error in it */
#define DV_DER_SEQUENCE 0x30	/* the first octet of a DER SEQUENCE (X.690 §8.9) */

/*!
 * \brief Whether the file \p path starts like DER (a SEQUENCE); an enrollment CSV starts with
 *        text. A file that cannot be read is not DER.
 */
bool dv_enroll_is_der(const char *path);

/*!
 * \brief The JS certificate (PEM) and its private key (PEM, a file of mode 0600 or 0400).
 * \param cert, key  set on DJ_EOK only; the caller frees them.
 * \retval DJ_EOK, DJ_ECONFIG (\p why says which file is wrong and how)
 */
int dv_enroll_recipient_read(const char *cert_path, const char *key_path, X509 **cert,
			     EVP_PKEY **key, char *why, size_t whylen) DJ_MUSTCHECK;

/*!
 * \brief Decrypt the CMS enrollment file \p path for \p cert / \p key (borrowed) and parse
 *        the plaintext as an enrollment CSV.
 * \param csv  set on DJ_EOK only; free with dv_csv_free().
 * \retval DJ_EOK
 * \retval DJ_EMALFORMED  not a DER CMS EnvelopedData or AuthEnvelopedData, or the plaintext is
 *                        not a valid enrollment CSV (\p why)
 * \retval DJ_EACCES      encrypted to other recipients, or it does not decrypt (\p why)
 * \retval DJ_ENOMEM
 */
int dv_enroll_cms_file(const char *path, X509 *cert, EVP_PKEY *key, struct dv_csv **csv,
		       char *why, size_t whylen) DJ_MUSTCHECK;

/*! \brief As dv_enroll_cms_file, on \p len DER bytes in memory; \p name names them in \p why. */
int dv_enroll_cms_mem(const uint8_t *der, size_t len, const char *name, X509 *cert,
		      EVP_PKEY *key, struct dv_csv **csv, char *why, size_t whylen) DJ_MUSTCHECK;

/* How the devices of one enrollment are owned. Everything is borrowed. */
/*!
 * \brief Device \p row of a parsed CSV as a store row: its EUIs, MAC version and created_at
 *        \p now, its root keys sealed under \p ks into d->root_token. Shared by every import
 *        (the CLI, the admin API, CMS enrollment). \retval DJ_EOK or js_keystore_seal_root's error
 */
int dv_enroll_seal_row(struct js_keystore *ks, const struct dv_csv_row *row, int64_t now,
		       struct js_device *d) DJ_MUSTCHECK;

struct dv_enroll_props {
	const char *from_zone;		/* the manufacturer (signer of link 1), normalized */
	const char *zone;		/* the first owner, normalized */
	const struct dv_link *rights;	/* NetIDs and AS-IDs of link 1; NULL: none */
	EVP_PKEY *key;			/* the manufacturer's _owner key (private) */
	int64_t now;			/* not_before of link 1, created_at of the rows */
};

/*!
 * \brief The store rows of every device of \p csv: the device (root keys sealed under \p ks)
 *        and the owner row (zone, serial 1, the encoded one-link chain, TXT attributes).
 * \param devs, owners  csv->n rows each, the caller's (zeroed); owners[i].chain is malloc'd
 *                      (free it also on failure); wipe devs after use.
 * \retval DJ_EOK
 * \retval DJ_EMALFORMED  a row's attributes cannot be published (\p why names the line)
 * \retval DJ_ECRYPTO, DJ_ENOMEM, or a js_keystore_seal_root() error (\p why)
 */
int dv_enroll_build(struct js_keystore *ks, const struct dv_csv *csv,
		    const struct dv_enroll_props *p, struct js_device *devs,
		    struct js_owner *owners, char *why, size_t whylen) DJ_MUSTCHECK;

struct dv_pub;

/*!
 * \brief Publish the records of every owner row not published yet through \p pub
 *        (dv_records.h: many devices per UPDATE message), then mark them published. A row is
 *        marked only after every message was acknowledged, so a failure leaves it to a
 *        re-run (each change is a replace).
 * \param count  the rows published, on DJ_EOK.
 * \retval DJ_EOK, a dv_pub_flush() error (\p err says why), DJ_ENOMEM, DJ_ESQL
 */
int dv_enroll_publish(struct js_store *s, struct dv_pub *pub, size_t *count, char *err,
		      size_t errlen) DJ_MUSTCHECK;

#endif /* DJ_DEVICES_OWNERSHIP_DV_ENROLL_H */
