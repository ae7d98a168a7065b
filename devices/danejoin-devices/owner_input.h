/*
 * owner_input.h - danejoin-devices: input of the ownership commands (owner_input.c), shared
 * by exec_owner.c. Every function prints its own message on stderr and returns an enum
 * dv_exit code, unless it says otherwise.
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_OWNER_INPUT_H
#define DJ_DEVICES_DANEJOIN_DEVICES_OWNER_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_frame.h"
#include "ownership/dv_chain.h"
#include "params.h"

/* Lines of a small text file, split in place. */
struct oi_lines {
	char *buf;
	size_t n;
	char **line;
	unsigned *lineno;
};

/*! \brief The message and exit code of an allocation failure. */
int oi_oom(void);

/*! \brief Normalize the zone of flag \p flag into \p out. */
int oi_zone_arg(const char *flag, const char *in, char out[DV_ZONE_MAX]);

/*! \brief The signing key of --key (a 0600/0400 PEM file, EC P-256 or Ed25519). */
int oi_read_key(const char *path, EVP_PKEY **out);

/*! \brief --netids 000013,00001a and --as-ids a.example,b.example into \p l's rights. */
int oi_parse_rights(const char *netids, const char *as_ids, struct dv_link *l);

/*! \brief Wipe (auth codes) and free what \p l holds. */
void oi_lines_free(struct oi_lines *l);

/*! \brief The non-blank lines of \p path (CR stripped); \p header: an exact first line. */
int oi_lines_read(const char *path, const char *header, struct oi_lines *l);

/*! \brief One DEVEUI argument, or the dev_eui column of a "dev_eui" CSV file (--csv). */
int oi_device_list(const struct dv_params *p, uint8_t (**out)[LW_EUI_LEN], size_t *n);

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_OWNER_INPUT_H */
