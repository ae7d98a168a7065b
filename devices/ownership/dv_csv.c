/*
 * dv_csv.c - parser for the CSV enrollment format (dv_csv.h).
 *
 * The file carries raw root keys, so every buffer that held a line, a field or the file is
 * wiped with OPENSSL_cleanse on every path (DESIGN.md trust rule 5), the rows are allocated
 * once (no realloc, which would leave stale copies in freed memory), and error messages name
 * the line and the field but never echo a value. Nothing is returned unless the whole file is
 * valid, so that an import is all or nothing (DESIGN.md trust rule 6).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_csv.h"
#include "ownership/dv_records.h"

#define FIELD_MAX 80		/* longer than any valid field ("0x" + 32 hex digits) */
#define UTF8_BOM "\xef\xbb\xbf"

enum field_idx { F_DEV_EUI = 0, F_JOIN_EUI, F_MAC_VERSION, F_APP_KEY, F_NWK_KEY, F_MODEL,
		 F_FIRMWARE, F_MANUFACTURER, F_DATE, F_IDENTITY };

/* field_names - the header's column names, in order */
static const char *const field_names[DV_CSV_FIELDS_ATTRS] = {
	"dev_eui", "join_eui", "mac_version", "app_key", "nwk_key",
	"model", "firmware", "manufacturer", "date", "identity_sha256",
};

/* fail - write "NAME:LINE: message" to \p err and return DJ_EMALFORMED */
static int DJ_PRINTF(5, 6) fail(char *err, size_t errlen, const char *name, unsigned line,
				const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return DJ_EMALFORMED;
	n = snprintf(err, errlen, "%s:%u: ", name, line);
	if (n < 0 || (size_t)n >= errlen)
		return DJ_EMALFORMED;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return DJ_EMALFORMED;
}

/* is_blank - whether a line holds only spaces and tabs */
static bool is_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* split - cut a line into \p want NUL-terminated fields; *count is the number found */
static int split(const char *s, size_t len, size_t want, char fields[DV_CSV_FIELDS_ATTRS][FIELD_MAX],
		 size_t *count, int *too_long)
{
	size_t i, f = 0, k = 0;

	*too_long = -1;
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == ',') {
			if (f < want)
				fields[f][k < FIELD_MAX ? k : FIELD_MAX - 1] = '\0';
			f++;
			k = 0;
			continue;
		}
		if (f < want) {
			if (k < FIELD_MAX - 1)
				fields[f][k] = s[i];
			else if (*too_long < 0)
				*too_long = (int)f;
			k++;
		}
	}
	*count = f;
	return f == want ? DJ_EOK : DJ_EMALFORMED;
}

/* parse_attrs - the attribute columns of a DV_CSV_HEADER_ATTRS row */
static int parse_attrs(const char *name, unsigned line, char fields[DV_CSV_FIELDS_ATTRS][FIELD_MAX],
		       int too_long, struct dv_csv_row *row, char *err, size_t errlen)
{
	static const int text_idx[] = { F_MODEL, F_FIRMWARE, F_MANUFACTURER };
	char *dst[] = { row->model, row->firmware, row->manufacturer };
	size_t i;

	for (i = 0; i < DJ_ARRAY_LEN(text_idx); i++) {
		const char *v = fields[text_idx[i]];

		if (too_long == text_idx[i] || strlen(v) > DV_CSV_ATTR_MAX || !dv_attr_value_ok(v))
			return fail(err, errlen, name, line, "field %s: at most %d printable "
				    "characters, without '\"', '\\' or ';'", field_names[text_idx[i]],
				    DV_CSV_ATTR_MAX);
		strcpy(dst[i], v);
	}
	if (fields[F_DATE][0] != '\0') {
		if (too_long == F_DATE || !dv_date_ok(fields[F_DATE]))
			return fail(err, errlen, name, line, "field date: expected YYYY-MM-DD");
		strcpy(row->date, fields[F_DATE]);
	}
	if (fields[F_IDENTITY][0] != '\0') {
		if (too_long == F_IDENTITY ||
		    dj_hex_parse(fields[F_IDENTITY], row->identity, sizeof(row->identity)) != DJ_EOK)
			return fail(err, errlen, name, line, "field identity_sha256: expected 64 "
				    "hex digits (SHA-256 of the device's public key)");
		row->has_identity = true;
	}
	return DJ_EOK;
}

/* parse_row - validate one device line (\p want fields) into \p row */
/* hex_field - field f of a row (FIELD_MAX bytes each) as exactly len bytes of hex in out */
static int hex_field(const char (*fields)[FIELD_MAX], int too_long, int f, uint8_t *out,
		     size_t len, const char *name, unsigned line, char *err, size_t errlen)
{
	if (too_long == f || dj_hex_parse(fields[f], out, len) != DJ_EOK)
		return fail(err, errlen, name, line, "field %s: expected %zu hex digits",
			    field_names[f], 2 * len);
	return DJ_EOK;
}

static int parse_row(const char *name, unsigned line, const char *s, size_t len, size_t want,
		     struct dv_csv_row *row, char *err, size_t errlen)
{
	char fields[DV_CSV_FIELDS_ATTRS][FIELD_MAX];
	size_t count, i;
	int too_long, rc;

	rc = split(s, len, want, fields, &count, &too_long);
	if (rc != DJ_EOK) {
		rc = fail(err, errlen, name, line, "expected %zu fields (%s), found %zu", want,
			  want == DV_CSV_FIELDS ? DV_CSV_HEADER : DV_CSV_HEADER_ATTRS, count);
		goto out;
	}
	for (i = 0; i < want; i++)
		if (strchr(fields[i], '"') != NULL || strchr(fields[i], '\'') != NULL) {
			rc = fail(err, errlen, name, line,
				  "field %s: quotes are not supported", field_names[i]);
			goto out;
		}
	memset(row, 0, sizeof(*row));
	row->line = line;
	rc = hex_field(fields, too_long, F_DEV_EUI, row->dev_eui, LW_EUI_LEN, name, line, err,
		       errlen);
	if (rc == DJ_EOK)
		rc = hex_field(fields, too_long, F_JOIN_EUI, row->join_eui, LW_EUI_LEN, name, line,
			       err, errlen);
	if (rc != DJ_EOK)
		goto out;
	if (too_long == F_MAC_VERSION ||
	    lw_version_parse(fields[F_MAC_VERSION], &row->mac_version) != DJ_EOK) {
		rc = fail(err, errlen, name, line,
			  "field mac_version: expected 1.0, 1.0.0 to 1.0.4, 1.1 or 1.1.0");
		goto out;
	}
	rc = hex_field(fields, too_long, F_APP_KEY, row->app_key, LW_KEY_LEN, name, line, err,
		       errlen);
	if (rc != DJ_EOK)
		goto out;
	if (row->mac_version >= LW_V1_1) {
		/* LoRaWAN 1.1 has two root keys, TS001-1.1 §6.1.1.3 */
		if (fields[F_NWK_KEY][0] == '\0') {
			rc = fail(err, errlen, name, line,
				  "field nwk_key: required for LoRaWAN 1.1 (%d hex digits)",
				  2 * LW_KEY_LEN);
			goto out;
		}
		rc = hex_field(fields, too_long, F_NWK_KEY, row->nwk_key, LW_KEY_LEN, name, line,
			       err, errlen);
		if (rc != DJ_EOK)
			goto out;
		row->has_nwk_key = true;
	} else if (fields[F_NWK_KEY][0] != '\0') {
		/* LoRaWAN 1.0.x has the AppKey only, TS001-1.0.4 §6.2.2 */
		rc = fail(err, errlen, name, line,
			  "field nwk_key: must be empty for LoRaWAN 1.0.x "
			  "(AppKey is the only root key)");
		goto out;
	}
	rc = want == DV_CSV_FIELDS_ATTRS ?
	     parse_attrs(name, line, fields, too_long, row, err, errlen) : DJ_EOK;
out:
	OPENSSL_cleanse(fields, sizeof(fields));
	if (rc != DJ_EOK)
		OPENSSL_cleanse(row, sizeof(*row));
	return rc;
}

/* row_cmp - order rows by DevEUI, then by line, for duplicate detection */
static int row_cmp(const void *a, const void *b)
{
	const struct dv_csv_row *x = *(const struct dv_csv_row *const *)a;
	const struct dv_csv_row *y = *(const struct dv_csv_row *const *)b;
	int c = memcmp(x->dev_eui, y->dev_eui, LW_EUI_LEN);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* find_duplicate - the row that repeats an earlier DevEUI, earliest in the file; NULL if none */
static int find_duplicate(const struct dv_csv *csv, const struct dv_csv_row **dup,
			  const struct dv_csv_row **first)
{
	const struct dv_csv_row **idx;
	size_t i, start = 0;

	*dup = NULL;
	*first = NULL;
	if (csv->n < 2)
		return DJ_EOK;
	idx = malloc(csv->n * sizeof(*idx));
	if (idx == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < csv->n; i++)
		idx[i] = &csv->rows[i];
	qsort(idx, csv->n, sizeof(*idx), row_cmp);
	for (i = 1; i <= csv->n; i++) {
		if (i < csv->n && memcmp(idx[i]->dev_eui, idx[start]->dev_eui, LW_EUI_LEN) == 0)
			continue;
		/* idx[start..i) share one DevEUI; idx[start+1] is its first repeat */
		if (i - start > 1 && (*dup == NULL || idx[start + 1]->line < (*dup)->line)) {
			*dup = idx[start + 1];
			*first = idx[start];
		}
		start = i;
	}
	free(idx);
	return DJ_EOK;
}

void dv_csv_free(struct dv_csv *csv)
{
	if (csv == NULL)
		return;
	if (csv->rows != NULL) {
		OPENSSL_cleanse(csv->rows, csv->n * sizeof(*csv->rows));
		free(csv->rows);
	}
	free(csv);
}

int dv_csv_parse(const char *name, const char *buf, size_t len, struct dv_csv **out, char *err,
		 size_t errlen)
{
	struct dv_csv *csv = NULL;
	const struct dv_csv_row *dup, *first;
	const char *p, *end, *nl;
	size_t cap = 1, i, llen, want = DV_CSV_FIELDS;
	unsigned line = 0, blank_line = 0;
	int rc = DJ_EMALFORMED;
	char eui[2 * LW_EUI_LEN + 1];

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* an empty plaintext (a CMS file that decrypts to nothing) may come as NULL: no pointer
	 * arithmetic on NULL (found by fuzz_cms under UBSan) */
	if (buf == NULL) {
		buf = "";
		len = 0;
	}
	p = buf;
	end = buf + len;
	if (memchr(buf, '\0', len) != NULL) {
		for (i = 0, line = 1; buf[i] != '\0'; i++)
			line += buf[i] == '\n';
		rc = fail(err, errlen, name, line, "NUL byte: not a text file");
		goto out;
	}
	for (i = 0; i < len; i++)
		cap += buf[i] == '\n';

	csv = calloc(1, sizeof(*csv));
	if (csv == NULL || (csv->rows = calloc(cap, sizeof(*csv->rows))) == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	if (len >= 3 && memcmp(p, UTF8_BOM, 3) == 0)
		p += 3;
	rc = DJ_EOK;	/* parse_row() sets it on a bad row */
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		llen = (size_t)((nl != NULL ? nl : end) - p);
		line++;
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (line == 1) {
			if (llen == strlen(DV_CSV_HEADER_ATTRS) &&
			    memcmp(p, DV_CSV_HEADER_ATTRS, llen) == 0) {
				want = DV_CSV_FIELDS_ATTRS;
				csv->has_attrs = true;
			} else if (llen != strlen(DV_CSV_HEADER) ||
				   memcmp(p, DV_CSV_HEADER, llen) != 0) {
				rc = fail(err, errlen, name, line,
					  "the header must be exactly \"%s\"", DV_CSV_HEADER);
				goto out;
			}
		} else if (is_blank(p, llen)) {
			if (blank_line == 0)
				blank_line = line;
		} else {
			if (blank_line != 0) {
				rc = fail(err, errlen, name, blank_line,
					  "blank line between rows (only allowed at the end)");
				goto out;
			}
			rc = parse_row(name, line, p, llen, want, &csv->rows[csv->n], err, errlen);
			if (rc != DJ_EOK)
				break;
			csv->n++;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (line == 0) {
		rc = fail(err, errlen, name, 1, "empty file: expected the header \"%s\"",
			  DV_CSV_HEADER);
		goto out;
	}
	/* A duplicate before the first bad row is the first error in file order. */
	if (find_duplicate(csv, &dup, &first) != DJ_EOK) {
		rc = DJ_ENOMEM;
		goto out;
	}
	if (dup != NULL) {
		dj_hex_format(dup->dev_eui, LW_EUI_LEN, eui);
		rc = fail(err, errlen, name, dup->line, "field dev_eui: %s is already on line %u",
			  eui, first->line);
		goto out;
	}
	if (rc != DJ_EOK)
		goto out;	/* parse_row's message stands */
	if (csv->n == 0) {
		rc = fail(err, errlen, name, line, "no devices after the header");
		goto out;
	}
	*out = csv;
	csv = NULL;
	rc = DJ_EOK;
out:
	dv_csv_free(csv);
	return rc;
}

int dv_csv_parse_file(const char *path, struct dv_csv **out, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t size = 0, got = 0;
	ssize_t r;
	int fd, rc, e;

	*out = NULL;
	/* open/read, not stdio: a FILE buffer would keep a copy of the keys we cannot wipe */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		rc = e == ENOENT ? DJ_ENOENT : e == EACCES ? DJ_EACCES : DJ_EIO;
		if (err != NULL)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = DJ_EIO;
		if (err != NULL)
			snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((uintmax_t)st.st_size > DV_CSV_MAX_BYTES) {
		rc = DJ_ERANGE;
		if (err != NULL)
			snprintf(err, errlen, "%s: larger than %u bytes", path, DV_CSV_MAX_BYTES);
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (buf == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	while (got < size) {
		r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != size) {
		rc = DJ_EIO;
		if (err != NULL)
			snprintf(err, errlen, "%s: read error (file changed while read?)", path);
		goto out;
	}
	rc = dv_csv_parse(path, buf, size, out, err, errlen);
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, size);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
