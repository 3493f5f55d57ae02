/*
 * engine_build.c - building a directory on the engine (the one tar-the-context-and-build path,
 * shared by project services and bv publish) and exporting an image as an OCI image layout
 * (bv publish, which pushes that layout with bv's own registry client).
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/services.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "lib/oci/store/archive_calls.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

BV_DEFINE_CLEANUP(json_t *, build_json_decrefp, json_decref, NULL)
#define _cleanup_json_ _cleanup_(build_json_decrefp)

int bv_engine_temp_fd(struct bv_error **err)
{
	const char *dir = getenv("TMPDIR");
	_cleanup_free_ char *tmpl = NULL;
	int fd;
	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	tmpl = bv_xasprintf("%s/bv-context-XXXXXX", dir);
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not create a temporary file in '%s'", dir);
	(void)unlink(tmpl);
	return fd;
}

int bv_engine_build_dir(struct bv_engine *e, const struct bv_engine_build *o, const char *context,
			int (*on_event)(json_t *event, void *payload), void *payload,
			const char *what, struct bv_error **err)
{
	_cleanup_close_ int fd = bv_engine_temp_fd(err);
	int r;
	if (fd < 0)
		return fd;
	r = bv_build_context_write(fd, context, o->dockerfile, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not send the build context of %s", what);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return bv_error_set_errno(err, "could not rewind the build context");
	return bv_engine_image_build(e, o, fd, on_event, payload, what, err);
}

/* ---- export as an OCI image layout ---------------------------------------------------- */

static int write_fd(const char *data, size_t len, void *payload)
{
	const int *fd = payload;
	return bv_write_all(*fd, data, len) < 0 ? -errno : 0;
}

/* A layer of the docker-archive: its tar name and the blob it became. */
struct layer {
	char *name;
	char *target; /* a symlink's resolved name (docker dedupes equal layers), or NULL */
	char digest[72];
	uint64_t size;
};

struct export
{
	const char *layout;
	const char *ref;
	struct bv_buf manifest;
	struct bv_strv json_names; /* "<hex>.json" entries at the top: the image configs */
	struct bv_buf *json_texts;
	struct layer *layers;
	size_t n_layers;
};

static void export_release(struct export *x)
{
	bv_buf_release(&x->manifest);
	for (size_t i = 0; i < x->json_names.n; i++)
		bv_buf_release(&x->json_texts[i]);
	free(x->json_texts);
	bv_strv_clear(&x->json_names);
	for (size_t i = 0; i < x->n_layers; i++) {
		free(x->layers[i].name);
		free(x->layers[i].target);
	}
	free(x->layers);
}

static int read_small(struct bv_buf *b, struct archive *a, const char *name, struct bv_error **err)
{
	const void *block;
	size_t len;
	int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &block, &len, &off)) == ARCHIVE_OK) {
		if (b->len + len > (4u << 20))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "the engine's export has an oversized '%s'", name);
		bv_buf_add(b, block, len);
	}
	if (r != ARCHIVE_EOF)
		return bv_error_setc(err, BV_ERR, 0, "could not read the engine's export: %s",
				     archive_error_string(a));
	return 0;
}

/* Copies a layer tar into blobs/sha256/, hashed on the way: its digest names it. */
static int copy_layer(struct layer *l, struct archive *a, const char *blobs, struct bv_error **err)
{
	_cleanup_free_ char *tmp = bv_xasprintf("%s/.layer-XXXXXX", blobs);
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	struct bv_sha256 *h;
	char hex[BV_SHA256_HEX_LEN + 1];
	const void *block;
	size_t len;
	int64_t off;
	int r;
	if (fd < 0)
		return bv_error_set_errno(err, "could not create a file in '%s'", blobs);
	h = bv_sha256_new();
	while ((r = archive_read_data_block(a, &block, &len, &off)) == ARCHIVE_OK) {
		bv_sha256_update(h, block, len);
		l->size += len;
		if (bv_write_all(fd, block, len) < 0) {
			bv_sha256_free(h);
			(void)unlink(tmp);
			return bv_error_set_errno(err, "could not write '%s'", tmp);
		}
	}
	bv_sha256_final_hex(hex, h); /* frees h */
	if (r != ARCHIVE_EOF) {
		(void)unlink(tmp);
		return bv_error_setc(err, BV_ERR, 0, "could not read the engine's export: %s",
				     archive_error_string(a));
	}
	(void)snprintf(l->digest, sizeof(l->digest), "sha256:%s", hex);
	{
		_cleanup_free_ char *dest = bv_xasprintf("%s/%s", blobs, hex);
		if (rename(tmp, dest) < 0) {
			(void)unlink(tmp);
			return bv_error_set_errno(err, "could not rename '%s'", tmp);
		}
	}
	return 0;
}

/* "a/../b/layer.tar" relative to the directory of `name`, cleaned. */
static char *resolve_link(const char *name, const char *target)
{
	const char *slash = strrchr(name, '/');
	_cleanup_free_ char *joined =
		slash ? bv_xasprintf("%.*s/%s", (int)(slash - name), name, target)
		      : bv_xstrdup(target);
	return bv_services_clean_path(joined);
}

static int read_export(struct export *x, int fd, struct bv_error **err)
{
	_cleanup_free_ char *blobs = bv_xasprintf("%s/blobs/sha256", x->layout);
	struct archive_entry *ent;
	struct archive *a;
	int r = 0, ar;
	if (!bv_archive_get(err))
		return BV_ERR;
	if (bv_mkdir_p(blobs, 0755, err) < 0)
		return BV_ERR;
	a = archive_read_new();
	if (!a)
		bv_oom();
	archive_read_support_format_tar(a);
	archive_read_support_filter_none(a);
	if (archive_read_open_fd(a, fd, 64 * 1024) < ARCHIVE_OK) {
		r = bv_error_setc(err, BV_ERR, 0, "the engine's export of '%s' is not a tar: %s",
				  x->ref, archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	while (r >= 0 && (ar = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ent);
		size_t len = name ? strlen(name) : 0;
		bool layer = len >= 10 && !strcmp(name + len - 10, "/layer.tar");
		if (!name)
			continue;
		if (layer && (archive_entry_filetype(ent) == AE_IFREG ||
			      archive_entry_filetype(ent) == AE_IFLNK)) {
			struct layer *l;
			x->layers =
				bv_xreallocarray(x->layers, x->n_layers + 1, sizeof(*x->layers));
			l = &x->layers[x->n_layers++];
			memset(l, 0, sizeof(*l));
			l->name = bv_xstrdup(name);
			if (archive_entry_filetype(ent) == AE_IFLNK)
				l->target = resolve_link(name, archive_entry_symlink(ent)
								       ? archive_entry_symlink(ent)
								       : "");
			else
				r = copy_layer(l, a, blobs, err);
		} else if (archive_entry_filetype(ent) == AE_IFREG &&
			   !strcmp(name, "manifest.json")) {
			r = read_small(&x->manifest, a, name, err);
		} else if (archive_entry_filetype(ent) == AE_IFREG && len > 5 &&
			   !strchr(name, '/') && !strcmp(name + len - 5, ".json")) {
			x->json_texts = bv_xreallocarray(x->json_texts, x->json_names.n + 1,
							 sizeof(*x->json_texts));
			bv_buf_init(&x->json_texts[x->json_names.n], 0);
			bv_strv_push(&x->json_names, name);
			r = read_small(&x->json_texts[x->json_names.n - 1], a, name, err);
		}
	}
	if (r >= 0 && ar != ARCHIVE_EOF)
		r = bv_error_setc(err, BV_ERR, 0, "could not read the engine's export of '%s': %s",
				  x->ref, archive_error_string(a));
	archive_read_free(a);
	return r;
}

static const struct layer *find_layer(const struct export *x, const char *name, unsigned depth)
{
	for (size_t i = 0; i < x->n_layers; i++) {
		if (strcmp(x->layers[i].name, name))
			continue;
		if (!x->layers[i].target)
			return &x->layers[i];
		return depth < 8 ? find_layer(x, x->layers[i].target, depth + 1) : NULL;
	}
	return NULL;
}

static int write_blob(char digest[72], const char *layout, const char *data, size_t len,
		      struct bv_error **err)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *path = NULL;
	bv_sha256_hex(hex, data, len);
	(void)snprintf(digest, 72, "sha256:%s", hex);
	path = bv_xasprintf("%s/blobs/sha256/%s", layout, hex);
	return bv_write_file_atomic(path, data, len, 0644, err);
}

/* The OCI documents for the image the docker-archive's manifest.json describes. */
static int write_layout(const struct export *x, const char *name, struct bv_error **err)
{
	_cleanup_json_ json_t *m = NULL, *layers = NULL, *doc = NULL, *index = NULL;
	_cleanup_free_ char *mtext = NULL, *itext = NULL, *lpath = NULL, *ipath = NULL;
	json_t *first, *v;
	const char *config;
	char cdigest[72], mdigest[72];
	size_t i;
	ssize_t ci = -1;
	m = json_loadb(x->manifest.buf ? x->manifest.buf : "", x->manifest.len, 0, NULL);
	first = json_array_get(m, 0);
	config = json_string_value(json_object_get(first, "Config"));
	if (!config || !json_is_array(json_object_get(first, "Layers")))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the engine's export of '%s' has no usable manifest.json",
				     x->ref);
	for (i = 0; i < x->json_names.n; i++)
		if (!strcmp(x->json_names.v[i], config))
			ci = (ssize_t)i;
	if (ci < 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the engine's export of '%s' lacks its config '%s'", x->ref,
				     config);
	if (write_blob(cdigest, x->layout, x->json_texts[ci].buf, x->json_texts[ci].len, err) < 0)
		return BV_ERR;
	layers = json_array();
	json_array_foreach(json_object_get(first, "Layers"), i, v)
	{
		const char *lname = json_string_value(v);
		const struct layer *l = lname ? find_layer(x, lname, 0) : NULL;
		if (!l)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "the engine's export of '%s' lacks layer '%s'", x->ref,
					     lname ? lname : "?");
		/* docker-archive layers are plain tars: their digests are the config's diff_ids */
		json_array_append_new(layers,
				      json_pack("{s:s, s:s, s:I}", "mediaType",
						"application/vnd.oci.image.layer.v1.tar", "digest",
						l->digest, "size", (json_int_t)l->size));
	}
	doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
			"application/vnd.oci.image.manifest.v1+json", "config", "mediaType",
			"application/vnd.oci.image.config.v1+json", "digest", cdigest, "size",
			(json_int_t)x->json_texts[ci].len, "layers", layers);
	if (!doc)
		bv_oom();
	mtext = json_dumps(doc, JSON_COMPACT);
	if (!mtext)
		bv_oom();
	if (write_blob(mdigest, x->layout, mtext, strlen(mtext), err) < 0)
		return BV_ERR;
	index = json_pack("{s:i, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2, "manifests",
			  "mediaType", "application/vnd.oci.image.manifest.v1+json", "digest",
			  mdigest, "size", (json_int_t)strlen(mtext), "annotations",
			  "org.opencontainers.image.ref.name", name);
	if (!index)
		bv_oom();
	itext = json_dumps(index, JSON_COMPACT);
	if (!itext)
		bv_oom();
	ipath = bv_path_join(x->layout, "index.json");
	lpath = bv_path_join(x->layout, "oci-layout");
	if (bv_write_file_atomic(lpath, "{\"imageLayoutVersion\":\"1.0.0\"}",
				 strlen("{\"imageLayoutVersion\":\"1.0.0\"}"), 0644, err) < 0 ||
	    bv_write_file_atomic(ipath, itext, strlen(itext), 0644, err) < 0)
		return BV_ERR;
	return 0;
}

int bv_engine_image_export_oci(struct bv_engine *e, const char *ref, const char *layout,
			       const char *name, struct bv_error **err)
{
	_cleanup_free_ char *eref = bv_url_escape(ref, BV_URL_KEEP_REF);
	_cleanup_free_ char *path = bv_xasprintf("/images/%s/get", eref);
	_cleanup_close_ int fd = bv_engine_temp_fd(err);
	struct export x = {
		.layout = layout, .ref = ref, .manifest = BV_BUF_INIT, .json_names = BV_STRV_INIT};
	json_t *body = NULL;
	long status = 0;
	int r;
	if (fd < 0)
		return fd;
	r = bv_engine_stream_within(&status, &body, e, "GET", path, NULL, -1, write_fd, &fd,
				    BV_ENGINE_WAIT_LONG, err);
	if (r < 0)
		r = bv_error_wrap(err, r, "could not export image '%s'", ref);
	else if (status >= 400)
		r = bv_engine_fail(err, status, body, "could not export image '%s'", ref);
	json_decref(body);
	if (r >= 0 && lseek(fd, 0, SEEK_SET) < 0)
		r = bv_error_set_errno(err, "could not rewind the export of '%s'", ref);
	if (r >= 0)
		r = read_export(&x, fd, err);
	if (r >= 0)
		r = write_layout(&x, name, err);
	export_release(&x);
	return r;
}
