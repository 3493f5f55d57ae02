/*
 * data-internal.h - the parts of reference data (bv/data.h) that only the library and its
 * tests use: URL rules, file names taken from URLs, and mirror rewriting.
 *
 * Calling sequence:
 *   char *name;  bv_data_url_name(&name, "https://h/db/pdbaa.tar.gz?x=1", &err); "pdbaa.tar.gz"
 *   if (!bv_data_url_allowed(url, &why)) ...             http only to loopback
 *   struct bv_data_mirrors *m = bv_data_mirrors_new();
 *   bv_data_mirrors_parse_env(m, "https://a/=http://127.0.0.1:8/a/", &err);
 *   char *u = bv_data_mirror_apply(m, url);              new string
 *
 * Ownership: strings returned are new; `why` points at a static string.
 * Errors: BV_EINVALID for a URL without a usable file name or a malformed mirror entry.
 */
#ifndef BV_LIB_DATA_INTERNAL_H
#define BV_LIB_DATA_INTERNAL_H

#include <bv/data.h>
#include <stdbool.h>

/* The file name a URL's data is stored under: its last path component, a plain name. */
int bv_data_url_name(char **out, const char *url, struct bv_error **err);

/*
 * Whether bv may download from `url`: https, ftp or ftps anywhere, http only to 127.0.0.0/8,
 * ::1 or localhost.  *why says which rule failed.
 */
bool bv_data_url_allowed(const char *url, const char **why);

struct bv_data_mirrors *bv_data_mirrors_new(void);
/* Adds the comma-separated prefix=replacement pairs of BV_DATA_MIRRORS. */
int bv_data_mirrors_parse_env(struct bv_data_mirrors *m, const char *env, struct bv_error **err);
/* `url` with the longest matching prefix replaced (a copy when none matches); m may be NULL. */
char *bv_data_mirror_apply(const struct bv_data_mirrors *m, const char *url);

#endif
