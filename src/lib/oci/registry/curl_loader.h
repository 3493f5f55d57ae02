/*
 * curl_loader.h - libcurl, loaded with dlopen() the first time bv needs the network.
 *
 * Why not link it: libcurl pulls in about thirty shared libraries (TLS, HTTP/2, SSH, LDAP,
 * Kerberos, IDN, compression ...), and the dynamic loader resolving them costs about 8 ms at
 * every start of bv, measured with hyperfine.  Most commands (`bv list`, `bv lock --check`,
 * running a tool) never touch the network, so they must not pay for it.  bv therefore compiles
 * against curl's headers only (for the types and constants) and reaches every function through
 * the table below, filled from "libcurl.so.4" (the soname of every libcurl 7.x and 8.x; the
 * libcurl4 packages of Debian and Ubuntu, whatever their TLS flavour) on first use.
 *
 * Calling sequence:
 *   const struct bv_curl *curl = bv_curl_get(&err);
 *   if (!curl) ...                                 libcurl is not installed
 *   CURL *h = curl->easy_init();
 *   curl->easy_setopt(h, CURLOPT_URL, url);        options of type long need a (long) argument
 *   ...
 *
 * The library is loaded once per process and curl_global_init() is called right after; both
 * stay for the life of the process (bv has no threads, so no locking).  A failed load is not
 * remembered: a later call tries again.
 *
 * Ownership: the table is static and read-only for callers; never free it.
 *
 * Errors: bv_curl_get() returns NULL and fills `err` ("could not load libcurl (libcurl.so.4):
 * <dlerror>; install libcurl4") when the library or one of the functions is missing, or when
 * curl_global_init() fails.
 */
#ifndef BV_LIB_CURL_LOADER_H
#define BV_LIB_CURL_LOADER_H

#include <curl/curl.h>
#include <stdbool.h>

struct bv_error;

#define BV_CURL_SONAME "libcurl.so.4"

struct bv_curl {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_escape)(CURL *h, const char *s, int len);
	void (*free)(void *p); /* for easy_escape's result */
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
				int *numfds);
	CURLMsg *(*multi_info_read)(CURLM *m, int *queued);
	CURLMcode (*multi_cleanup)(CURLM *m);
	const char *(*multi_strerror)(CURLMcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	curl_version_info_data *(*version_info)(CURLversion age);
	void (*easy_reset)(CURL *h);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_send)(CURL *h, const void *buf, size_t len, size_t *sent);
	CURLcode (*easy_recv)(CURL *h, void *buf, size_t len, size_t *received);
};

/* The loaded library, or NULL with `err` set. */
const struct bv_curl *bv_curl_get(struct bv_error **err);

/*
 * Loads `soname` into `out` without touching the process-wide table; bv_curl_get() uses it
 * with BV_CURL_SONAME.  Exposed so tests can check the message for a missing library.  On
 * success the library stays loaded for the life of the process.
 */
int bv_curl_load(struct bv_curl *out, const char *soname, struct bv_error **err);

/* Whether a transfer that ended with `rc` is worth another attempt: the connection failed,
 * was cut or timed out (registry pulls and dataset downloads share the one list). */
bool bv_curl_retryable(CURLcode rc);

#endif
