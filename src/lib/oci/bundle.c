/*
 * Air-gapped bundles: bv.lock's images, registry manifests and data in one tar (bv/bundle.h).
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/bundle.h>
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/store.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/registry/registry-internal.h"
#include "lib/oci/store/archive_calls.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* bv.lock, bv.toml and index.json of a bundle: far above any real one, bounded all the same */
#define BUNDLE_TEXT_MAX     (64u << 20)
#define BUNDLE_MANIFEST_MAX (1u << 20)
#define BUNDLE_MAX_ENTRIES  1000000u
#define COPY_CHUNK          (256u * 1024)
#define OCI_LAYOUT_TEXT     "{\"imageLayoutVersion\":\"1.0.0\"}"

#define _cleanup_json_ _cleanup_(json_decrefp)

/* ------------------------------------------------------------------------------------------ */
/* what the store holds for a pin                                                              */

static int read_doc(json_t **out, struct bv_buf *raw, const struct bv_store *s, const char *digest,
		    struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_t *doc;
	int r = bv_store_read_blob(&text, s, digest, BV_REGISTRY_MANIFEST_MAX, err);
	if (r < 0)
		return r;
	doc = json_loadb(text.buf, text.len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0, "blob %s is not a JSON document", digest);
	}
	if (raw)
		bv_buf_add(raw, text.buf, text.len);
	*out = doc;
	return 0;
}

static const char *desc_digest(const json_t *d)
{
	const char *s = json_string_value(json_object_get(d, "digest"));
	return s && bv_digest_valid(s) ? s : NULL;
}

/* Appends the config and layers of image manifest `doc`; a missing one is BV_ENOTFOUND. */
static int add_image_blobs(struct bv_strv *blobs, const struct bv_store *s, const json_t *doc,
			   const char *what, struct bv_error **err)
{
	const json_t *layers = json_object_get(doc, "layers"), *l;
	const char *config = desc_digest(json_object_get(doc, "config"));
	size_t i;
	if (!config || !json_is_array(layers))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s: the manifest has no config or layers", what);
	bv_strv_push(blobs, config);
	json_array_foreach(layers, i, l)
	{
		const char *d = desc_digest(l);
		if (!d)
			return bv_error_setc(err, BV_EINVALID, 0, "%s: layer %zu is malformed",
					     what, i + 1);
		bv_strv_push(blobs, d);
	}
	for (size_t k = 0; k < blobs->n; k++)
		if (!bv_store_has_blob(s, blobs->v[k]))
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "%s: blob %s is not in the store", what, blobs->v[k]);
	return 0;
}

/* The OCI view bv_store_add_image_as() recorded for a Docker schema 2 pin, if any. */
static const struct bv_store_image *oci_view(const struct bv_store_image *images, size_t n,
					     const char *pin)
{
	for (size_t i = 0; i < n; i++)
		if (images[i].pinned_digest && !strcmp(images[i].pinned_digest, pin) &&
		    strcmp(images[i].digest, pin) && images[i].media_type &&
		    !strcmp(images[i].media_type, BV_MEDIA_OCI_MANIFEST))
			return &images[i];
	return NULL;
}

/*
 * Every blob of one tool's image into `blobs`, and its index.json descriptor into `manifests`
 * (unless an image of the same name is there already).
 */
static int collect_tool(struct bv_strv *blobs, json_t *manifests, const struct bv_store *s,
			const struct bv_store_image *images, size_t n_images,
			const struct bv_lock_tool *t, struct bv_error **err)
{
	_cleanup_free_ char *what =
		bv_xasprintf("image '%s' of %s", t->image_reference, t->tool_id);
	_cleanup_free_ char *ref_name = bv_store_ref_name(t->image_reference);
	_cleanup_json_ json_t *doc = NULL;
	_cleanup_buf_ struct bv_buf raw = BV_BUF_INIT;
	const char *mt, *name_digest = t->image_digest;
	int64_t name_size;
	json_t *desc;
	int r;

	if (!bv_digest_valid(t->image_digest))
		return bv_error_setc(err, BV_EINVALID, 0, "bv.lock pins no image digest for '%s'",
				     t->tool_id);
	if (!bv_store_has_blob(s, t->image_digest))
		return bv_error_setc(err, BV_ENOTFOUND, 0, "%s: %s is not in the store", what,
				     t->image_digest);
	r = read_doc(&doc, &raw, s, t->image_digest, err);
	if (r < 0)
		return bv_error_wrap(err, r, "%s", what);
	bv_strv_push(blobs, t->image_digest);
	name_size = (int64_t)raw.len;
	mt = json_string_value(json_object_get(doc, "mediaType"));
	if (json_is_array(json_object_get(doc, "manifests"))) {
		const json_t *c;
		size_t i, present = 0;
		if (!mt)
			mt = BV_MEDIA_OCI_INDEX;
		/* a pull fetches this machine's platform; the others a node would need are
		 * there only when someone synced with --platform */
		json_array_foreach(json_object_get(doc, "manifests"), i, c)
		{
			const char *child = desc_digest(c);
			_cleanup_json_ json_t *cdoc = NULL;
			_cleanup_free_ char *cwhat = NULL;
			if (!child || !bv_store_has_blob(s, child))
				continue;
			cwhat = bv_xasprintf("%s (%s)", what, child);
			r = read_doc(&cdoc, NULL, s, child, err);
			if (r >= 0 && json_is_array(json_object_get(cdoc, "manifests")))
				continue; /* nested indexes are not images */
			if (r >= 0)
				r = add_image_blobs(blobs, s, cdoc, cwhat, err);
			if (r < 0)
				return r;
			bv_strv_push(blobs, child);
			present++;
		}
		if (!present)
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "%s: no platform of the index is in the store", what);
	} else {
		const struct bv_store_image *view;
		r = add_image_blobs(blobs, s, doc, what, err);
		if (r < 0)
			return r;
		if (!mt)
			mt = BV_MEDIA_OCI_MANIFEST;
		/* OCI tools read OCI media types only: name the image by the store's view */
		view = !strcmp(mt, BV_MEDIA_DOCKER_V2) ? oci_view(images, n_images, t->image_digest)
						       : NULL;
		if (view && bv_store_has_blob(s, view->digest)) {
			name_digest = view->digest;
			name_size = view->size;
			mt = BV_MEDIA_OCI_MANIFEST;
			bv_strv_push(blobs, view->digest);
		}
	}
	for (size_t i = 0; i < json_array_size(manifests); i++) {
		const json_t *a = json_object_get(json_array_get(manifests, i), "annotations");
		if (!strcmp(json_string_value(json_object_get(a, BV_STORE_REF_NAME_ANNOTATION)),
			    ref_name))
			return 0;
	}
	desc = json_pack("{s:s,s:s,s:I,s:{s:s,s:s}}", "mediaType", mt, "digest", name_digest,
			 "size", (json_int_t)name_size, "annotations", BV_STORE_REF_NAME_ANNOTATION,
			 ref_name, BV_STORE_DIGEST_ANNOTATION, t->image_digest);
	if (!desc)
		bv_oom();
	json_array_append_new(manifests, desc);
	return 0;
}

static int cmp_ref_name(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const char *nx = json_string_value(
		json_object_get(json_object_get(x, "annotations"), BV_STORE_REF_NAME_ANNOTATION));
	const char *ny = json_string_value(
		json_object_get(json_object_get(y, "annotations"), BV_STORE_REF_NAME_ANNOTATION));
	return strcmp(nx, ny);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                     */

struct writer {
	struct archive *a;
	struct archive_entry *e;
	const char *out;
};

static int arch_error(struct bv_error **err, struct archive *a, const char *what, const char *path)
{
	return bv_error_set(err, "could not %s '%s': %s", what, path,
			    archive_error_string(a) ? archive_error_string(a)
						    : "libarchive failed");
}

/* One header with the fixed metadata that makes the bytes depend on the content alone. */
static int put_header(struct writer *w, const char *name, bool dir, int64_t size,
		      struct bv_error **err)
{
	archive_entry_clear(w->e);
	archive_entry_set_pathname(w->e, name);
	archive_entry_set_filetype(w->e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(w->e, dir ? 0755 : 0644);
	archive_entry_set_size(w->e, dir ? 0 : size);
	archive_entry_set_mtime(w->e, 0, 0);
	archive_entry_set_uid(w->e, 0);
	archive_entry_set_gid(w->e, 0);
	if (archive_write_header(w->a, w->e) < ARCHIVE_OK)
		return arch_error(err, w->a, "write", w->out);
	return 0;
}

static int put_bytes(struct writer *w, const char *name, const void *data, size_t len,
		     struct bv_error **err)
{
	int r = put_header(w, name, false, (int64_t)len, err);
	if (r >= 0 && len && archive_write_data(w->a, data, len) != (la_ssize_t)len)
		return arch_error(err, w->a, "write", w->out);
	return r;
}

/*
 * Streams a file of this machine; it must still have the size its header announced.  A blob
 * (`expect_hex`) is hashed on the way: a store damaged since its pull would otherwise only be
 * found out on the air-gapped side.
 */
static int put_file(struct writer *w, const char *name, const char *path, const char *expect_hex,
		    struct bv_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *chunk = NULL;
	struct bv_sha256 *h;
	char hex[BV_SHA256_HEX_LEN + 1];
	struct stat st;
	int64_t left;
	ssize_t n = 0;
	int r;
	if (fd < 0 || fstat(fd, &st) < 0)
		return bv_error_set_errno(err, "could not open '%s'", path);
	if (!S_ISREG(st.st_mode))
		return bv_error_set(err, "'%s' is not a regular file", path);
	r = put_header(w, name, false, st.st_size, err);
	if (r < 0)
		return r;
	chunk = bv_xmalloc(COPY_CHUNK);
	h = expect_hex ? bv_sha256_new() : NULL;
	for (left = st.st_size; left > 0 && r >= 0; left -= n) {
		n = bv_read_all(fd, chunk, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
		if (n <= 0)
			r = n < 0 ? bv_error_set_errno(err, "could not read '%s'", path)
				  : bv_error_set(err, "'%s' shrank while it was read", path);
		else if (archive_write_data(w->a, chunk, (size_t)n) != n)
			r = arch_error(err, w->a, "write", w->out);
		else if (h)
			bv_sha256_update(h, chunk, (size_t)n);
	}
	if (h) {
		bv_sha256_final_hex(hex, h); /* frees it */
		if (r >= 0 && strcmp(hex, expect_hex))
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "blob sha256:%s in the store is corrupt; run 'bv cache "
					  "verify' and 'bv sync'",
					  expect_hex);
	}
	return r;
}

/* A tree of this machine under `name`, entries sorted, regular files and directories only. */
static int put_tree(struct writer *w, const char *name, const char *path, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	_cleanup_free_ char *dname = NULL;
	DIR *d;
	struct dirent *de;
	struct stat st;
	int r = 0;
	if (lstat(path, &st) < 0)
		return bv_error_set_errno(err, "could not read '%s'", path);
	if (S_ISREG(st.st_mode))
		return put_file(w, name, path, NULL, err);
	if (!S_ISDIR(st.st_mode))
		return bv_error_set(err, "'%s' is neither a file nor a directory", path);
	dname = bv_xasprintf("%s/", name);
	r = put_header(w, dname, true, 0, err);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return bv_error_set_errno(err, "could not open '%s'", path);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(&names, de->d_name);
	closedir(d);
	bv_strv_sort(&names);
	bv_strv_foreach (n, &names) {
		_cleanup_free_ char *sub = bv_xasprintf("%s/%s", name, *n);
		_cleanup_free_ char *subpath = bv_path_join(path, *n);
		r = put_tree(w, sub, subpath, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int write_all(struct writer *w, const struct bv_store *s, const struct bv_strv *blobs,
		     const char *index, const char *project_root, const struct bv_strv *copies,
		     const char *cache, const struct bv_bundle_extra *extras, size_t n_extras,
		     struct bv_error **err)
{
	_cleanup_free_ char *lock = bv_path_join(project_root, "bv.lock");
	_cleanup_free_ char *toml = bv_path_join(project_root, "bv.toml");
	int r = put_bytes(w, "oci-layout", OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT), err);
	if (r >= 0)
		r = put_bytes(w, "index.json", index, strlen(index), err);
	if (r >= 0)
		r = put_header(w, "blobs/", true, 0, err);
	if (r >= 0)
		r = put_header(w, "blobs/sha256/", true, 0, err);
	for (size_t i = 0; i < blobs->n && r >= 0; i++) {
		_cleanup_free_ char *name = bv_xasprintf("blobs/sha256/%s", blobs->v[i] + 7);
		_cleanup_free_ char *path = bv_store_blob_path(s, blobs->v[i]);
		r = put_file(w, name, path, blobs->v[i] + 7, err);
	}
	if (r >= 0)
		r = put_header(w, "bv/", true, 0, err);
	if (r >= 0)
		r = put_file(w, "bv/bv.lock", lock, NULL, err);
	if (r >= 0)
		r = put_file(w, "bv/bv.toml", toml, NULL, err);
	if (r >= 0)
		r = put_header(w, "bv/manifests/", true, 0, err);
	for (size_t i = 0; i < copies->n && r >= 0; i++) {
		_cleanup_free_ char *name = bv_xasprintf("bv/manifests/%s.toml", copies->v[i] + 7);
		_cleanup_free_ char *path =
			bv_xasprintf("%s/manifests/%s.toml", cache, copies->v[i] + 7);
		r = put_file(w, name, path, NULL, err);
	}
	if (r >= 0 && n_extras)
		r = put_header(w, "bv/data/", true, 0, err);
	for (size_t i = 0; i < n_extras && r >= 0; i++)
		r = put_tree(w, extras[i].name, extras[i].path, err);
	return r;
}

/* The manifest copy of every tool, checked against bv.lock: a run needs it, offline. */
static int collect_copies(struct bv_strv *copies, const struct bv_lockfile *lock, const char *cache,
			  struct bv_error **err)
{
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		_cleanup_free_ char *path = NULL;
		_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
		char hex[BV_SHA256_HEX_LEN + 1];
		int r;
		if (!bv_digest_valid(t->manifest_sha256) ||
		    bv_strv_contains(copies, t->manifest_sha256))
			continue;
		path = bv_xasprintf("%s/manifests/%s.toml", cache, t->manifest_sha256 + 7);
		r = bv_buf_read_file(&text, path, BUNDLE_MANIFEST_MAX, err);
		if (r < 0)
			return bv_error_wrap(err, r, "the manifest copy of %s %s is missing",
					     t->tool_id, t->version);
		bv_sha256_hex(hex, text.buf, text.len);
		if (strcmp(hex, t->manifest_sha256 + 7))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "the manifest copy of %s %s does not match bv.lock",
					     t->tool_id, t->version);
		bv_strv_push(copies, t->manifest_sha256);
	}
	bv_strv_sort(copies);
	return 0;
}

static void dedup_sorted(struct bv_strv *v)
{
	size_t k = 0;
	qsort(v->v, v->n, sizeof(*v->v), cmp_str);
	for (size_t i = 0; i < v->n; i++) {
		if (k && !strcmp(v->v[k - 1], v->v[i])) {
			free(v->v[i]);
			continue;
		}
		v->v[k++] = v->v[i];
	}
	v->n = k;
	v->v[k] = NULL;
}

int bv_bundle_write(const char *out_path, const struct bv_lockfile *lock, const char *project_root,
		    const struct bv_bundle_extra *extras, size_t n_extras, struct bv_error **err)
{
	struct bv_store *s = NULL;
	struct bv_store_image *images = NULL;
	size_t n_images = 0;
	_cleanup_strv_ struct bv_strv blobs = BV_STRV_INIT, copies = BV_STRV_INIT;
	_cleanup_json_ json_t *manifests = json_array(), *index = NULL;
	_cleanup_free_ char *cache = NULL, *index_text = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct writer w = {.out = out_path};
	int r;

	if (!bv_archive_get(err))
		return BV_ERR;
	r = bv_cache_dir(&cache, err);
	if (r >= 0)
		r = bv_store_open(&s, NULL, err);
	if (r >= 0)
		r = bv_store_list_images(&images, &n_images, s, err);
	for (size_t i = 0; i < lock->n_tools && r >= 0; i++)
		r = collect_tool(&blobs, manifests, s, images, n_images, &lock->tools[i], err);
	if (r >= 0)
		r = collect_copies(&copies, lock, cache, err);
	if (r < 0)
		goto out;
	dedup_sorted(&blobs);
	{
		/* jansson has no sort: rebuild the array in ref.name order */
		size_t n = json_array_size(manifests);
		json_t **v = bv_xcalloc(n + 1, sizeof(*v));
		json_t *sorted = json_array();
		for (size_t i = 0; i < n; i++)
			v[i] = json_array_get(manifests, i);
		qsort(v, n, sizeof(*v), cmp_ref_name);
		for (size_t i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
		free(v);
		index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType",
				  BV_MEDIA_OCI_INDEX, "manifests", sorted);
	}
	index_text = json_dumps(index, JSON_COMPACT | JSON_SORT_KEYS);
	if (!index || !index_text)
		bv_oom();

	tmp = bv_xasprintf("%s.XXXXXX", out_path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = bv_error_set_errno(err, "could not create '%s'", tmp);
		free(TAKE_PTR(tmp));
		goto out;
	}
	w.a = archive_write_new();
	w.e = archive_entry_new();
	if (!w.a || !w.e)
		bv_oom();
	/* pax only where ustar cannot say it (long names): no times, no user names */
	if (archive_write_set_format_pax_restricted(w.a) < ARCHIVE_OK ||
	    archive_write_open_fd(w.a, fd) < ARCHIVE_OK)
		r = arch_error(err, w.a, "write", out_path);
	if (r >= 0)
		r = write_all(&w, s, &blobs, index_text, project_root, &copies, cache, extras,
			      n_extras, err);
	if (r >= 0 && archive_write_close(w.a) < ARCHIVE_OK)
		r = arch_error(err, w.a, "write", out_path);
	archive_entry_free(w.e);
	archive_write_free(w.a);
	if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		r = bv_error_set_errno(err, "could not write '%s'", tmp);
	if (r >= 0 && rename(tmp, out_path) < 0)
		r = bv_error_set_errno(err, "could not rename '%s' to '%s'", tmp, out_path);
	if (r < 0)
		(void)unlink(tmp);
out:
	bv_store_images_free(images, n_images);
	bv_store_free(s);
	return r < 0 ? bv_error_wrap(err, r, "could not write bundle '%s'", out_path) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* reading                                                                                     */

enum kind { K_DIR, K_LAYOUT, K_INDEX, K_LOCK, K_TOML, K_BLOB, K_MANIFEST, K_DATA };

struct bv_bundle {
	char *path;
	struct bv_buf lock, toml, index;
	struct bv_strv copy_names; /* "sha256:<hex>" of bv/manifests/<hex>.toml */
	struct bv_buf *copies;     /* their texts, parallel */
	size_t n_data;
};

struct staged {
	char *digest;
	struct bv_buf doc; /* small JSON blobs, kept to check the images */
	bool published;    /* pass 2 has copied it */
};

static int open_archive(struct archive **out, int *fd_out, const char *path, struct bv_error **err)
{
	struct archive *a;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not open bundle '%s'", path);
	a = archive_read_new();
	if (!a)
		bv_oom();
	archive_read_support_format_tar(a);
	archive_read_support_filter_none(a);
	archive_read_support_filter_gzip(a);
	if (archive_read_open_fd(a, fd, 64 * 1024) < ARCHIVE_OK) {
		int r = bv_error_setc(err, BV_EINVALID, 0, "'%s' is not a bv bundle: %s", path,
				      archive_error_string(a));
		archive_read_free(a);
		close(fd);
		return r;
	}
	*out = a;
	*fd_out = fd;
	return 0;
}

/* What an entry is, or an error for a name that escapes the root or is not part of a bundle. */
static int classify(enum kind *out, const char *bundle, const char *name, bool is_dir,
		    struct bv_error **err)
{
	size_t len = strlen(name);
	const char *p = name;
	/* "../x", "/x" and "a/../../x" would land outside wherever the tar is unpacked */
	if (!len || name[0] == '/')
		goto escapes;
	while (*p) {
		size_t c = strcspn(p, "/");
		if ((c == 2 && !strncmp(p, "..", 2)) || (c == 1 && *p == '.') ||
		    (c == 0 && p[0] == '/'))
			goto escapes;
		p += c;
		if (*p == '/')
			p++;
	}
	if (is_dir) {
		if (!strcmp(name, "blobs/") || !strcmp(name, "blobs/sha256/") ||
		    !strcmp(name, "bv/") || !strcmp(name, "bv/manifests/") ||
		    !strncmp(name, "bv/data/", 8)) {
			*out = !strncmp(name, "bv/data/", 8) && len > 8 ? K_DATA : K_DIR;
			return 0;
		}
	} else if (!strcmp(name, "oci-layout")) {
		*out = K_LAYOUT;
		return 0;
	} else if (!strcmp(name, "index.json")) {
		*out = K_INDEX;
		return 0;
	} else if (!strcmp(name, "bv/bv.lock")) {
		*out = K_LOCK;
		return 0;
	} else if (!strcmp(name, "bv/bv.toml")) {
		*out = K_TOML;
		return 0;
	} else if (!strncmp(name, "blobs/sha256/", 13) && bv_sha256_hex_valid(name + 13)) {
		*out = K_BLOB;
		return 0;
	} else if (!strncmp(name, "bv/manifests/", 13) && len == 13 + 64 + 5 &&
		   !memcmp(name + len - 5, ".toml", 5)) {
		char hex[BV_SHA256_HEX_LEN + 1];
		memcpy(hex, name + 13, BV_SHA256_HEX_LEN);
		hex[BV_SHA256_HEX_LEN] = '\0';
		if (bv_sha256_hex_valid(hex)) {
			*out = K_MANIFEST;
			return 0;
		}
	} else if (!strncmp(name, "bv/data/", 8) && len > 8) {
		*out = K_DATA;
		return 0;
	}
	return bv_error_setc(err, BV_EINVALID, 0, "bundle '%s': unexpected entry '%s'", bundle,
			     name);
escapes:
	return bv_error_setc(err, BV_EINVALID, 0,
			     "bundle '%s': entry '%s' escapes the archive root", bundle, name);
}

/* The next entry, checked: *done at the end.  Links, devices and the like are refused. */
static int next_entry(enum kind *kind, const char **name, int64_t *size, bool *done,
		      struct archive *a, struct archive_entry **e, const char *bundle,
		      struct bv_error **err)
{
	int r = archive_read_next_header(a, e);
	bool is_dir;
	if (r == ARCHIVE_EOF) {
		*done = true;
		return 0;
	}
	if (r < ARCHIVE_WARN)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' is not a bv bundle: %s", bundle,
				     archive_error_string(a));
	*name = archive_entry_pathname(*e);
	if (!*name)
		return bv_error_setc(err, BV_EINVALID, 0, "bundle '%s': an entry has no name",
				     bundle);
	if (archive_entry_hardlink(*e) ||
	    (archive_entry_filetype(*e) != AE_IFREG && archive_entry_filetype(*e) != AE_IFDIR))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "bundle '%s': entry '%s' is not a regular file or directory",
				     bundle, *name);
	is_dir = archive_entry_filetype(*e) == AE_IFDIR;
	*size = archive_entry_size(*e);
	*done = false;
	return classify(kind, bundle, *name, is_dir, err);
}

/* Reads the current entry's data, block by block, into `fn`. */
typedef int (*block_fn)(void *payload, const void *data, size_t len, struct bv_error **err);

static int read_data(struct archive *a, const char *bundle, const char *name, block_fn fn,
		     void *payload, struct bv_error **err)
{
	int64_t at = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "bundle '%s': could not read '%s': %s", bundle, name,
					     archive_error_string(a));
		if (off != at) /* sparse entries have holes: no bundle writes them */
			return bv_error_setc(err, BV_EINVALID, 0, "bundle '%s': '%s' is sparse",
					     bundle, name);
		if (len && (r = fn(payload, buf, len, err)) < 0)
			return r;
		at += (int64_t)len;
	}
}

struct text_sink {
	struct bv_buf *b;
	size_t max;
	const char *name;
};

static int to_text(void *payload, const void *data, size_t len, struct bv_error **err)
{
	struct text_sink *t = payload;
	if (t->b->len + len > t->max)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' in the bundle is too large",
				     t->name);
	bv_buf_add(t->b, data, len);
	return 0;
}

static int read_text(struct bv_buf *b, struct archive *a, const char *bundle, const char *name,
		     size_t max, struct bv_error **err)
{
	struct text_sink t = {.b = b, .max = max, .name = name};
	if (b->len)
		return bv_error_setc(err, BV_EINVALID, 0, "bundle '%s': '%s' appears twice", bundle,
				     name);
	bv_buf_add(b, "", 0); /* NUL-terminated even when empty */
	return read_data(a, bundle, name, to_text, &t, err);
}

void bv_bundle_free(struct bv_bundle *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->copy_names.n; i++)
		bv_buf_release(&b->copies[i]);
	free(b->copies);
	bv_strv_clear(&b->copy_names);
	bv_buf_release(&b->lock);
	bv_buf_release(&b->toml);
	bv_buf_release(&b->index);
	free(b->path);
	free(b);
}

int bv_bundle_open(struct bv_bundle **out, const char *path, struct bv_error **err)
{
	struct bv_bundle *b;
	struct archive *a = NULL;
	struct archive_entry *e;
	_cleanup_close_ int fd = -1;
	size_t entries = 0;
	bool done = false;
	int r;

	if (!bv_archive_get(err))
		return BV_ERR;
	r = open_archive(&a, &fd, path, err);
	if (r < 0)
		return r;
	b = bv_xcalloc(1, sizeof(*b));
	b->path = bv_xstrdup(path);
	bv_strv_init(&b->copy_names);
	while (r >= 0) {
		enum kind k;
		const char *name;
		int64_t size;
		r = next_entry(&k, &name, &size, &done, a, &e, path, err);
		if (r < 0 || done)
			break;
		if (++entries > BUNDLE_MAX_ENTRIES) {
			r = bv_error_setc(err, BV_EINVALID, 0, "bundle '%s' has too many entries",
					  path);
			break;
		}
		if (k == K_LOCK)
			r = read_text(&b->lock, a, path, name, BUNDLE_TEXT_MAX, err);
		else if (k == K_TOML)
			r = read_text(&b->toml, a, path, name, BUNDLE_TEXT_MAX, err);
		else if (k == K_INDEX)
			r = read_text(&b->index, a, path, name, BUNDLE_TEXT_MAX, err);
		else if (k == K_DATA)
			b->n_data++;
		else if (k == K_MANIFEST) {
			_cleanup_free_ char *d = bv_xasprintf("sha256:%.64s", name + 13);
			if (bv_strv_contains(&b->copy_names, d))
				continue;
			b->copies =
				bv_xrealloc(b->copies, (b->copy_names.n + 1) * sizeof(*b->copies));
			bv_buf_init(&b->copies[b->copy_names.n], 0);
			r = read_text(&b->copies[b->copy_names.n], a, path, name,
				      BUNDLE_MANIFEST_MAX, err);
			bv_strv_push(&b->copy_names, d);
		}
	}
	archive_read_free(a);
	if (r >= 0 && (!b->lock.len || !b->toml.len || !b->index.len))
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "'%s' is not a bv bundle: it has no bv/bv.lock, bv/bv.toml or "
				  "index.json",
				  path);
	if (r < 0) {
		bv_bundle_free(b);
		return r;
	}
	*out = b;
	return 0;
}

const char *bv_bundle_lock_text(const struct bv_bundle *b, size_t *len)
{
	*len = b->lock.len;
	return b->lock.buf;
}

const char *bv_bundle_toml_text(const struct bv_bundle *b, size_t *len)
{
	*len = b->toml.len;
	return b->toml.buf;
}

int bv_bundle_has_data(const struct bv_bundle *b)
{
	return b->n_data > 0;
}

struct blob_sink {
	struct bv_sha256 *h;
	struct bv_store_ingest *in;
	struct bv_buf *doc;
	int64_t len;
};

static int to_blob(void *payload, const void *data, size_t len, struct bv_error **err)
{
	struct blob_sink *s = payload;
	bv_sha256_update(s->h, data, len);
	/* small JSON documents are kept: the images are checked before anything is published */
	if (s->doc && (s->len ? s->doc->len > 0 : ((const char *)data)[0] == '{') &&
	    s->len + (int64_t)len <= (int64_t)BV_REGISTRY_MANIFEST_MAX)
		bv_buf_add(s->doc, data, len);
	else if (s->doc)
		bv_buf_reset(s->doc);
	s->len += (int64_t)len;
	return s->in ? bv_store_ingest_write(s->in, data, len, err) : 0;
}

struct file_sink {
	int fd;
	const char *path;
};

static int to_file(void *payload, const void *data, size_t len, struct bv_error **err)
{
	struct file_sink *f = payload;
	if (bv_write_all(f->fd, data, len) < 0)
		return bv_error_set_errno(err, "could not write '%s'", f->path);
	return 0;
}

static struct staged *find_staged(struct staged *st, size_t n, const char *digest)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(st[i].digest, digest))
			return &st[i];
	return NULL;
}

/*
 * One blob entry: hashed, and its JSON kept when small (pass 1), or copied into the store's
 * partial file and published, which hashes it again (pass 2, `publish`).
 */
static int stage_blob(struct staged *st, struct archive *a, struct bv_store *s, const char *bundle,
		      const char *name, int64_t size, bool publish, struct bv_error **err)
{
	struct blob_sink sink = {.doc = publish ? NULL : &st->doc};
	char hex[BV_SHA256_HEX_LEN + 1];
	int r = 0;
	if (publish) {
		if (bv_store_has_blob(s, st->digest))
			return 0;
		r = bv_store_ingest_begin(&sink.in, s, st->digest, size, err);
		/* a partial of an interrupted pull: the bundle brings the whole blob */
		if (r >= 0 && bv_store_ingest_offset(sink.in) > 0)
			r = bv_store_ingest_reset(sink.in, err);
		if (r < 0) {
			bv_store_ingest_abort(sink.in, true);
			return r;
		}
	}
	sink.h = bv_sha256_new();
	r = read_data(a, bundle, name, to_blob, &sink, err);
	bv_sha256_final_hex(hex, sink.h); /* frees it */
	if (r >= 0 && (strcmp(hex, st->digest + 7) || sink.len != size))
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "bundle '%s': blob %s is corrupt: its bytes hash to sha256:%s",
				  bundle, st->digest, hex);
	if (sink.in && r >= 0)
		return bv_store_ingest_commit(sink.in, err);
	bv_store_ingest_abort(sink.in, false);
	return r;
}

static int stage_data(const char *staging, const char *name, bool is_dir, struct archive *a,
		      const char *bundle, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_xasprintf("%s/%s", staging, name + 8);
	_cleanup_free_ char *parent = NULL;
	struct file_sink f = {.path = path};
	int r;
	if (path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	if (is_dir)
		return bv_mkdir_p(path, 0755, err);
	parent = bv_xstrndup(path, (size_t)(strrchr(path, '/') - path));
	r = bv_mkdir_p(parent, 0755, err);
	if (r < 0)
		return r;
	/* names were checked (no "..", no links in the bundle), O_EXCL|O_NOFOLLOW all the same */
	f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (f.fd < 0)
		return bv_error_set_errno(err, "could not create '%s'", path);
	r = read_data(a, bundle, name, to_file, &f, err);
	close(f.fd);
	return r;
}

/* A blob for the checks: the bundle's copy, else the store's (verified as read). */
static int get_doc(json_t **out, struct staged *st, size_t n, const struct bv_store *s,
		   const char *digest, struct bv_buf *raw, const char *bundle,
		   struct bv_error **err)
{
	struct staged *x = find_staged(st, n, digest);
	json_t *doc;
	if (!x || !x->doc.len) {
		if (bv_store_has_blob(s, digest))
			return read_doc(out, raw, s, digest, err);
		if (x)
			return bv_error_setc(err, BV_EINVALID, 0, "blob %s is not a JSON document",
					     digest);
		return bv_error_setc(err, BV_ENOTFOUND, 0, "bundle '%s' has no blob %s", bundle,
				     digest);
	}
	doc = json_loadb(x->doc.buf, x->doc.len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0, "blob %s is not a JSON document", digest);
	}
	if (raw)
		bv_buf_add(raw, x->doc.buf, x->doc.len);
	*out = doc;
	return 0;
}

static bool have(struct staged *st, size_t n, const struct bv_store *s, const char *digest)
{
	return find_staged(st, n, digest) || bv_store_has_blob(s, digest);
}

/* Each image bv.lock pins is complete, in the bundle or the store, and matches the lock. */
static int check_tool(struct staged *st, size_t n, const struct bv_store *s,
		      const struct bv_lock_tool *t, const char *bundle, struct bv_error **err)
{
	_cleanup_json_ json_t *top = NULL, *img = NULL;
	_cleanup_buf_ struct bv_buf raw = BV_BUF_INIT;
	const json_t *layers;
	const char *config;
	size_t i;
	int r = get_doc(&top, st, n, s, t->image_digest, &raw, bundle, err);
	if (r < 0)
		return r;
	if (json_is_array(json_object_get(top, "manifests"))) {
		struct bv_resolved res = {0};
		r = bv_registry_parse_document(&res, raw.buf, raw.len, NULL, err);
		if (r >= 0)
			r = get_doc(&img, st, n, s, res.manifest_digest, NULL, bundle, err);
		bv_resolved_release(&res);
		if (r < 0)
			return r;
	} else {
		img = json_incref(top);
	}
	layers = json_object_get(img, "layers");
	config = desc_digest(json_object_get(img, "config"));
	if (!config || !json_is_array(layers))
		return bv_error_setc(err, BV_EINVALID, 0, "the manifest has no config or layers");
	if (!have(st, n, s, config))
		return bv_error_setc(err, BV_ENOTFOUND, 0, "bundle '%s' has no blob %s", bundle,
				     config);
	if (t->n_layers && t->n_layers != json_array_size(layers))
		return bv_error_setc(err, BV_EINVALID, 0, "its layers do not match bv.lock's");
	for (i = 0; i < json_array_size(layers); i++) {
		const char *d = desc_digest(json_array_get(layers, i));
		if (!d)
			return bv_error_setc(err, BV_EINVALID, 0, "layer %zu is malformed", i + 1);
		if (t->n_layers && strcmp(d, t->layers[i].digest))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "layer %zu is %s, but bv.lock pins %s", i + 1, d,
					     t->layers[i].digest);
		if (!have(st, n, s, d))
			return bv_error_setc(err, BV_ENOTFOUND, 0, "bundle '%s' has no blob %s",
					     bundle, d);
	}
	return 0;
}

/* The bundle's index.json names, recorded in the store's (blobs are all published now). */
static int add_images(struct bv_store *s, const struct bv_bundle *b, struct bv_error **err)
{
	_cleanup_json_ json_t *index = json_loadb(b->index.buf, b->index.len, 0, NULL);
	const json_t *d;
	size_t i;
	int r = 0;
	json_array_foreach(json_object_get(index, "manifests"), i, d)
	{
		const json_t *ann = json_object_get(d, "annotations");
		const char *name =
			json_string_value(json_object_get(ann, BV_STORE_REF_NAME_ANNOTATION));
		const char *src =
			json_string_value(json_object_get(ann, BV_STORE_DIGEST_ANNOTATION));
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		const char *digest = desc_digest(d);
		json_int_t size = json_integer_value(json_object_get(d, "size"));
		if (!name || !mt || !digest || !bv_store_has_blob(s, digest) ||
		    !bv_store_ref_name_valid(name))
			continue; /* not one of bv's: other tools' names stay theirs */
		if (src && bv_digest_valid(src) && strcmp(src, digest))
			r = bv_store_add_image_as(s, name, digest, mt, size, src, err);
		else
			r = bv_store_add_image(s, name, digest, mt, size, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int keep_copies(const struct bv_bundle *b, const struct bv_lockfile *lock,
		       struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL, *dir = NULL;
	int r = bv_cache_dir(&cache, err);
	if (r < 0)
		return r;
	dir = bv_path_join(cache, "manifests");
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		_cleanup_free_ char *path = NULL;
		for (size_t k = 0; k < b->copy_names.n; k++) {
			if (strcmp(b->copy_names.v[k], t->manifest_sha256))
				continue;
			path = bv_xasprintf("%s/%s.toml", dir, t->manifest_sha256 + 7);
			r = bv_mkdir_p(dir, 0755, err);
			if (r >= 0 && !bv_path_exists(path))
				r = bv_write_file_atomic(path, b->copies[k].buf, b->copies[k].len,
							 0644, err);
			if (r < 0)
				return r;
			break;
		}
	}
	return 0;
}

/* Before anything is written: the manifest copies the lock names must hash to their names. */
static int check_copies(const struct bv_bundle *b, struct bv_error **err)
{
	for (size_t k = 0; k < b->copy_names.n; k++) {
		char hex[BV_SHA256_HEX_LEN + 1];
		bv_sha256_hex(hex, b->copies[k].buf, b->copies[k].len);
		if (strcmp(hex, b->copy_names.v[k] + 7))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "bundle '%s': manifest copy %s is corrupt", b->path,
					     b->copy_names.v[k]);
	}
	return 0;
}

/*
 * Pass 1 (`publish` false) hashes every blob and keeps the small JSON ones in `st`; pass 2
 * copies the blobs the store lacks into it and the data into `staging`.  Reading the bundle
 * twice is what lets a bundle of any number of blobs be refused whole with no more open
 * files than one blob needs.
 */
static int read_pass(struct staged **st, size_t *n, const struct bv_bundle *b, struct bv_store *s,
		     const char *staging, bool publish, struct bv_error **err)
{
	struct archive *a = NULL;
	struct archive_entry *e;
	_cleanup_close_ int fd = -1;
	bool done = false;
	int r = open_archive(&a, &fd, b->path, err);
	while (r >= 0) {
		enum kind k;
		const char *name;
		int64_t size;
		r = next_entry(&k, &name, &size, &done, a, &e, b->path, err);
		if (r < 0 || done)
			break;
		if (k == K_BLOB) {
			_cleanup_free_ char *digest = bv_xasprintf("sha256:%s", name + 13);
			struct staged *x = find_staged(*st, *n, digest), one = {0};
			if (x && !publish)
				continue; /* a second copy: never read, pass 2 takes the first */
			if (!x) {
				*st = bv_xrealloc(*st, (*n + 1) * sizeof(**st));
				x = &(*st)[(*n)++];
				*x = one;
				x->digest = TAKE_PTR(digest);
				bv_buf_init(&x->doc, 0);
			} else if (x->published) {
				continue;
			}
			r = stage_blob(x, a, s, b->path, name, size, publish, err);
			x->published = publish;
		} else if (k == K_DATA && staging && publish) {
			r = stage_data(staging, name, archive_entry_filetype(e) == AE_IFDIR, a,
				       b->path, err);
		}
	}
	if (a)
		archive_read_free(a);
	return r;
}

int bv_bundle_install(struct bv_bundle *b, const struct bv_lockfile *lock, const char *staging,
		      struct bv_error **err)
{
	struct bv_store *s = NULL;
	struct staged *st = NULL;
	size_t n = 0;
	int r;

	r = check_copies(b, err);
	if (r >= 0)
		r = bv_store_open(&s, NULL, err);
	if (r >= 0)
		r = read_pass(&st, &n, b, s, staging, false, err);
	for (size_t i = 0; i < lock->n_tools && r >= 0; i++) {
		r = check_tool(st, n, s, &lock->tools[i], b->path, err);
		if (r < 0)
			r = bv_error_wrap(err, r, "image '%s' of %s",
					  lock->tools[i].image_reference, lock->tools[i].tool_id);
	}
	/* publish only now: a bad blob anywhere has left the store as it was */
	if (r >= 0)
		r = read_pass(&st, &n, b, s, staging, true, err);
	if (r >= 0)
		r = add_images(s, b, err);
	if (r >= 0)
		r = keep_copies(b, lock, err);
	for (size_t i = 0; i < n; i++) {
		free(st[i].digest);
		bv_buf_release(&st[i].doc);
	}
	free(st);
	bv_store_free(s);
	return r;
}
