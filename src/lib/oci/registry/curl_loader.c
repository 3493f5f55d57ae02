/*
 * curl_loader.c - dlopen() of libcurl on first use (see curl_loader.h for why).
 */
#include "lib/oci/registry/curl_loader.h"

#include <bv/error.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "util/banned.h"

static struct bv_curl loaded;
static bool loaded_ok;

/*
 * dlsym() returns void *, and ISO C has no conversion from it to a function pointer; POSIX
 * guarantees the representation, so copy the bits.
 */
static bool sym(void *lib, const char *name, void *slot, size_t size, const char **missing)
{
	void *p = dlsym(lib, name);
	if (!p) {
		if (!*missing)
			*missing = name;
		return false;
	}
	memcpy(slot, &p, size);
	return true;
}

#define SYM(field, name) sym(lib, name, &tmp.field, sizeof(tmp.field), &missing)

int bv_curl_load(struct bv_curl *out, const char *soname, struct bv_error **err)
{
	struct bv_curl tmp;
	const char *missing = NULL;
	void *lib;

	memset(&tmp, 0, sizeof(tmp));
	lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		return bv_error_set(err, "could not load libcurl (%s): %s; install libcurl4",
				    soname, why ? why : "unknown error");
	}
	SYM(global_init, "curl_global_init");
	SYM(easy_init, "curl_easy_init");
	SYM(easy_setopt, "curl_easy_setopt");
	SYM(easy_getinfo, "curl_easy_getinfo");
	SYM(easy_cleanup, "curl_easy_cleanup");
	SYM(easy_strerror, "curl_easy_strerror");
	SYM(easy_escape, "curl_easy_escape");
	SYM(free, "curl_free");
	SYM(multi_init, "curl_multi_init");
	SYM(multi_setopt, "curl_multi_setopt");
	SYM(multi_add_handle, "curl_multi_add_handle");
	SYM(multi_remove_handle, "curl_multi_remove_handle");
	SYM(multi_perform, "curl_multi_perform");
	SYM(multi_poll, "curl_multi_poll");
	SYM(multi_info_read, "curl_multi_info_read");
	SYM(multi_cleanup, "curl_multi_cleanup");
	SYM(multi_strerror, "curl_multi_strerror");
	SYM(slist_append, "curl_slist_append");
	SYM(slist_free_all, "curl_slist_free_all");
	SYM(version_info, "curl_version_info");
	SYM(easy_reset, "curl_easy_reset");
	SYM(easy_perform, "curl_easy_perform");
	SYM(easy_send, "curl_easy_send");
	SYM(easy_recv, "curl_easy_recv");
	if (missing) {
		dlclose(lib);
		return bv_error_set(err,
				    "could not load libcurl (%s): it lacks '%s' (libcurl 7.66 or "
				    "newer is needed); install libcurl4",
				    soname, missing);
	}
	*out = tmp;
	return 0;
}

const struct bv_curl *bv_curl_get(struct bv_error **err)
{
	struct bv_curl tmp;
	CURLcode rc;

	if (loaded_ok)
		return &loaded;
	if (bv_curl_load(&tmp, BV_CURL_SONAME, err) < 0)
		return NULL;
	rc = tmp.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		bv_error_set(err, "could not initialise libcurl (%s): %s", BV_CURL_SONAME,
			     tmp.easy_strerror(rc));
		return NULL;
	}
	loaded = tmp;
	loaded_ok = true;
	return &loaded;
}

bool bv_curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_FTP_ACCEPT_TIMEOUT:
	case CURLE_FTP_CANT_GET_HOST:
	case CURLE_FTP_WEIRD_PASV_REPLY:
	case CURLE_FTP_WEIRD_227_FORMAT:
		return true;
	default:
		return false;
	}
}
