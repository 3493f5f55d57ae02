#include "lib/oci/store/archive_loader.h"

#include <bv/error.h>
#include <dlfcn.h>
#include <stdbool.h>

#include "util/banned.h"

#define ARCHIVE_SONAME "libarchive.so.13"

const struct bv_archive_api *bv_archive_api;

static bool load(void *handle, const char *name, void **slot, struct bv_error **err)
{
	*slot = dlsym(handle, name);
	if (!*slot)
		bv_error_setc(err, BV_ERR, 0,
			      "could not load libarchive (" ARCHIVE_SONAME
			      "): %s is missing; install libarchive13",
			      name);
	return *slot != NULL;
}

const struct bv_archive_api *bv_archive_get(struct bv_error **err)
{
	static struct bv_archive_api api;
	void *handle;
	if (bv_archive_api)
		return bv_archive_api;
	handle = dlopen(ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		const char *why = dlerror();
		bv_error_setc(err, BV_ERR, 0,
			      "could not load libarchive (" ARCHIVE_SONAME
			      "): %s; install libarchive13",
			      why ? why : "unknown error");
		return NULL;
	}
	{
		bool ok = true;
#define LOAD(f)                                            \
	if (ok && !load(handle, #f, (void **)&api.f, err)) \
		ok = false;
		BV_ARCHIVE_FUNCTIONS(LOAD)
#undef LOAD
		if (!ok) {
			dlclose(handle);
			return NULL;
		}
	}
	bv_archive_api = &api;
	return bv_archive_api;
}
