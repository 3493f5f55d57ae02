/*
 * push.c - bv push: reads an image from an OCI layout, the store or a registry, and sends it
 * with the registry client's push calls (see bv/push.h).
 */
#include <bv/error.h>
#include <bv/imageref.h>
#include <bv/push.h>
#include <bv/store.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/registry/registry-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define INDEX_MAX BV_REGISTRY_MANIFEST_MAX
/* an index of indexes of manifests is as deep as images get; this stops a loop of documents */
#define DEPTH_MAX 4

enum source_kind {
	SOURCE_LAYOUT, /* oci:DIR[:TAG] and store:NAME */
	SOURCE_REGISTRY,
};

struct doc {
	char *digest;
	char *media_type;
	struct bv_buf body;
};

struct source {
	enum source_kind kind;
	char *dir;   /* layout directory */
	char *label; /* for messages: the source as written */
	struct bv_imageref ref;
	bool have_ref;
	char *top_digest;
	char *top_media_type; /* from the descriptor that named it, or NULL */
	/* collected, documents in push order (children first) */
	struct doc *docs;
	size_t n_docs;
	struct bv_descriptor *blobs;
	size_t n_blobs;
	char **paths;
};

static void source_release(struct source *s)
{
	free(s->dir);
	free(s->label);
	if (s->have_ref)
		bv_imageref_release(&s->ref);
	free(s->top_digest);
	free(s->top_media_type);
	for (size_t i = 0; i < s->n_docs; i++) {
		free(s->docs[i].digest);
		free(s->docs[i].media_type);
		bv_buf_release(&s->docs[i].body);
	}
	free(s->docs);
	for (size_t i = 0; i < s->n_blobs; i++) {
		free(s->blobs[i].media_type);
		free(s->blobs[i].digest);
		free(s->paths[i]);
	}
	free(s->blobs);
	free(s->paths);
}

static char *layout_blob_path(const char *dir, const char *digest)
{
	return bv_xasprintf("%s/blobs/sha256/%s", dir, digest + strlen("sha256:"));
}

static const char *annotation(const json_t *desc, const char *key)
{
	return json_string_value(json_object_get(json_object_get(desc, "annotations"), key));
}

/* Picks the entry of DIR/index.json named `tag` (or the only one) into s->top_*. */
static int layout_pick(struct source *s, const char *tag, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(s->dir, "index.json");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_t *root, *list, *m, *found = NULL;
	size_t i;
	int r;

	if (!bv_path_exists(path))
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "'%s' is not an OCI image layout (it has no index.json)",
				     s->dir);
	r = bv_buf_read_file(&text, path, INDEX_MAX, err);
	if (r < 0)
		return r;
	root = json_loadb(text.buf, text.len, 0, NULL);
	list = json_object_get(root, "manifests");
	if (!json_is_array(list)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' has no manifest list", path);
	}
	json_array_foreach(list, i, m)
	{
		const char *name = annotation(m, BV_STORE_REF_NAME_ANNOTATION);
		if (tag ? (name && !strcmp(name, tag)) : json_array_size(list) == 1)
			found = m;
	}
	if (!found) {
		json_decref(root);
		if (tag)
			return bv_error_setc(err, BV_ENOTFOUND, 0, "no image named '%s' in '%s'",
					     tag, s->dir);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "'%s' holds %zu images; name one as oci:%s:NAME", s->dir,
				     json_array_size(list), s->dir);
	}
	{
		const char *digest = json_string_value(json_object_get(found, "digest"));
		const char *mt = json_string_value(json_object_get(found, "mediaType"));
		/* bv's store: the registry's own manifest, when bv kept an OCI view of it */
		const char *pinned = annotation(found, BV_STORE_DIGEST_ANNOTATION);
		if (!digest || !bv_digest_valid(digest)) {
			json_decref(root);
			return bv_error_setc(err, BV_EINVALID, 0, "'%s' has a malformed entry",
					     path);
		}
		if (pinned && bv_digest_valid(pinned) && strcmp(pinned, digest)) {
			_cleanup_free_ char *p = layout_blob_path(s->dir, pinned);
			if (bv_path_exists(p)) {
				digest = pinned;
				mt = NULL;
			}
		}
		s->top_digest = bv_xstrdup(digest);
		s->top_media_type = mt ? bv_xstrdup(mt) : NULL;
	}
	json_decref(root);
	return 0;
}

/* Hashes the file at `path`; BV_EINVALID when its size or sha256 are not the descriptor's. */
static int verify_file(const char *path, const struct bv_descriptor *d, const char *label,
		       struct bv_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char hex[BV_SHA256_HEX_LEN + 1];
	uint64_t total = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return bv_error_setc(err, BV_ENOTFOUND, 0, "blob %s is missing from '%s'",
					     d->digest, label);
		return bv_error_set_errno(err, "could not open '%s'", path);
	}
	if (bv_sha256_fd_hex(fd, hex, &total) < 0)
		return bv_error_set_errno(err, "could not read '%s'", path);
	if (total != d->size || strcmp(hex, d->digest + strlen("sha256:")) != 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "blob %s in '%s' does not match its digest (%llu bytes, "
				     "sha256:%s); nothing was pushed",
				     d->digest, label, (unsigned long long)total, hex);
	return 0;
}

/* Reads document `digest` into `body`, verified. */
static int read_doc(struct source *s, struct bv_registry_client *c, const char *digest,
		    struct bv_buf *body, char **mt_out, struct bv_error **err)
{
	if (s->kind == SOURCE_REGISTRY) {
		char *got = NULL;
		int r = bv_registry_fetch_manifest(body, &got, mt_out, c, &s->ref, digest, digest,
						   err);
		free(got);
		return r;
	}
	_cleanup_free_ char *path = layout_blob_path(s->dir, digest);
	char hex[BV_SHA256_HEX_LEN + 1];
	int r = bv_buf_read_file(body, path, BV_REGISTRY_MANIFEST_MAX, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not read manifest %s of '%s'", digest,
				     s->label);
	bv_sha256_hex(hex, body->buf, body->len);
	if (strcmp(hex, digest + strlen("sha256:")) != 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "manifest %s in '%s' does not match its digest; nothing was "
				     "pushed",
				     digest, s->label);
	*mt_out = NULL;
	return 0;
}

static void add_blob(struct source *s, const json_t *obj, int *bad)
{
	struct bv_descriptor d = {0};

	if (bv_registry_parse_descriptor(obj, &d) < 0) {
		*bad = 1;
		return;
	}
	for (size_t i = 0; i < s->n_blobs; i++)
		if (!strcmp(s->blobs[i].digest, d.digest)) {
			free(d.digest);
			free(d.media_type);
			return;
		}
	s->blobs = bv_xrealloc(s->blobs, (s->n_blobs + 1) * sizeof(*s->blobs));
	s->paths = bv_xrealloc(s->paths, (s->n_blobs + 1) * sizeof(*s->paths));
	s->blobs[s->n_blobs] = d;
	s->paths[s->n_blobs++] = NULL;
}

/* Reads a document and everything it names; appends it after its children. */
static int collect(struct source *s, struct bv_registry_client *c, const char *digest,
		   const char *media_type, unsigned depth, struct bv_error **err)
{
	struct doc d = {.body = BV_BUF_INIT};
	const char *mt;
	json_t *root, *list, *m;
	size_t i;
	int bad = 0, r;

	for (i = 0; i < s->n_docs; i++)
		if (!strcmp(s->docs[i].digest, digest))
			return 0;
	if (depth > DEPTH_MAX)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' nests indexes deeper than %d",
				     s->label, DEPTH_MAX);
	r = read_doc(s, c, digest, &d.body, &d.media_type, err);
	if (r < 0) {
		bv_buf_release(&d.body);
		free(d.media_type);
		return r;
	}
	root = json_loadb(d.body.buf, d.body.len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		bv_buf_release(&d.body);
		free(d.media_type);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "manifest %s of '%s' is not a JSON object", digest, s->label);
	}
	/* umoci leaves mediaType out: the descriptor that named it, else the fields say */
	mt = json_string_value(json_object_get(root, "mediaType"));
	if (!mt && d.media_type)
		mt = d.media_type;
	if (!mt && media_type && *media_type)
		mt = media_type;
	list = json_object_get(root, "manifests");
	if (!mt)
		mt = json_is_array(list) ? BV_MEDIA_OCI_INDEX : BV_MEDIA_OCI_MANIFEST;
	{
		char *keep = bv_xstrdup(mt);
		free(d.media_type);
		d.media_type = keep;
	}
	if (json_is_array(list)) {
		json_array_foreach(list, i, m)
		{
			struct bv_descriptor child = {0};
			if (bv_registry_parse_descriptor(m, &child) < 0) {
				bad = 1;
				break;
			}
			r = collect(s, c, child.digest, child.media_type, depth + 1, err);
			free(child.digest);
			free(child.media_type);
			if (r < 0)
				break;
		}
	} else {
		const json_t *layers = json_object_get(root, "layers");
		add_blob(s, json_object_get(root, "config"), &bad);
		if (!json_is_array(layers))
			bad = 1;
		json_array_foreach(layers, i, m) add_blob(s, m, &bad);
	}
	json_decref(root);
	if (r == 0 && bad)
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "manifest %s of '%s' has a malformed descriptor", digest,
				  s->label);
	if (r < 0) {
		bv_buf_release(&d.body);
		free(d.media_type);
		return r;
	}
	d.digest = bv_xstrdup(digest);
	s->docs = bv_xrealloc(s->docs, (s->n_docs + 1) * sizeof(*s->docs));
	s->docs[s->n_docs++] = d;
	return 0;
}

static int source_open(struct source *s, struct bv_store **store, const char *text,
		       struct bv_error **err)
{
	int r;

	s->label = bv_xstrdup(text);
	if (bv_str_has_prefix(text, "oci:")) {
		const char *rest = text + 4;
		const char *colon = strchr(rest, ':');
		s->kind = SOURCE_LAYOUT;
		s->dir = colon ? bv_xstrndup(rest, (size_t)(colon - rest)) : bv_xstrdup(rest);
		if (!*s->dir)
			return bv_error_setc(err, BV_EINVALID, 0, "'%s' names no directory", text);
		return layout_pick(s, colon && colon[1] ? colon + 1 : NULL, err);
	}
	if (bv_str_has_prefix(text, "store:")) {
		s->kind = SOURCE_LAYOUT;
		r = bv_store_open(store, NULL, err);
		if (r < 0)
			return r;
		s->dir = bv_xstrdup(bv_store_dir(*store));
		if (!text[6])
			return bv_error_setc(err, BV_EINVALID, 0,
					     "'%s' names no image (see bv cache list)", text);
		return layout_pick(s, text + 6, err);
	}
	s->kind = SOURCE_REGISTRY;
	r = bv_imageref_parse(&s->ref, text, err);
	if (r < 0)
		return r;
	s->have_ref = true;
	if (!s->ref.tag && !s->ref.digest)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' has neither tag nor digest", text);
	return bv_store_open(store, NULL, err);
}

static uint64_t chunk_size(const struct bv_push_options *o, struct bv_error **err, int *r)
{
	const char *env = getenv("BV_PUSH_CHUNK_SIZE");
	uint64_t v;

	*r = 0;
	if (env && *env) {
		if (bv_parse_u64(&v, env) < 0 || v == 0) {
			*r = bv_error_setc(err, BV_EINVALID, 0,
					   "invalid BV_PUSH_CHUNK_SIZE '%s': expected a number of "
					   "bytes",
					   env);
			return 0;
		}
		return v;
	}
	return o->chunk_size;
}

int bv_push(struct bv_push_result *out, const char *source, const char *dest,
	    const struct bv_push_options *o, struct bv_error **err)
{
	static const struct bv_push_options none;
	struct source s = {0};
	struct bv_imageref to = {0};
	struct bv_store *store = NULL;
	struct bv_mirrors *mirrors = NULL;
	struct bv_registry_client *c = NULL;
	struct bv_registry_options ro = {0};
	struct bv_push_stats st = {0};
	struct bv_push_blob *blobs = NULL;
	bool *needed = NULL;
	bool have_to = false;
	const char *mount_from = NULL;
	uint64_t chunk;
	int r;

	if (!o)
		o = &none;
	chunk = chunk_size(o, err, &r);
	if (r < 0)
		return r;
	r = bv_imageref_parse(&to, dest, err);
	if (r < 0)
		return r;
	have_to = true;
	r = source_open(&s, &store, source, err);
	if (r < 0)
		goto out;
	if (s.kind == SOURCE_REGISTRY) {
		r = bv_mirrors_load(&mirrors, err);
		if (r < 0)
			goto out;
	}
	ro.store = store;
	ro.mirrors = mirrors;
	ro.jobs = o->jobs;
	r = bv_registry_client_new(&c, &ro, err);
	if (r < 0)
		goto out;

	if (s.kind == SOURCE_REGISTRY) {
		char *mt = NULL;
		struct bv_buf top = BV_BUF_INIT;
		const char *reference = s.ref.digest ? s.ref.digest : s.ref.tag;
		r = bv_registry_fetch_manifest(&top, &s.top_digest, &mt, c, &s.ref, reference,
					       s.ref.digest, err);
		bv_buf_release(&top);
		s.top_media_type = mt;
		if (r < 0)
			goto out;
	}
	r = collect(&s, c, s.top_digest, s.top_media_type, 0, err);
	if (r < 0)
		goto out;
	if (to.digest && strcmp(to.digest, s.top_digest) != 0) {
		r = bv_error_setc(err, BV_EINVALID, 0, "'%s' is %s, not the digest '%s' names",
				  source, s.top_digest, dest);
		goto out;
	}
	/* a damaged local blob is found before anything is sent */
	for (size_t i = 0; i < s.n_blobs && s.kind == SOURCE_LAYOUT; i++) {
		s.paths[i] = layout_blob_path(s.dir, s.blobs[i].digest);
		r = verify_file(s.paths[i], &s.blobs[i], s.label, err);
		if (r < 0)
			goto out;
	}

	blobs = bv_xcalloc(s.n_blobs + 1, sizeof(*blobs));
	needed = bv_xcalloc(s.n_blobs + 1, sizeof(*needed));
	for (size_t i = 0; i < s.n_blobs; i++) {
		blobs[i].digest = s.blobs[i].digest;
		blobs[i].size = s.blobs[i].size;
	}
	if (s.kind == SOURCE_REGISTRY && bv_imageref_same_registry(s.ref.registry, to.registry))
		mount_from = s.ref.repository;
	r = bv_registry_push_prepare(needed, &st, c, &to, blobs, s.n_blobs, mount_from, err);
	if (r < 0)
		goto out;
	if (s.kind == SOURCE_REGISTRY) {
		struct bv_descriptor *want = bv_xcalloc(s.n_blobs + 1, sizeof(*want));
		size_t n_want = 0;
		for (size_t i = 0; i < s.n_blobs; i++)
			if (needed[i])
				want[n_want++] = s.blobs[i];
		r = bv_registry_fetch_blobs(c, &s.ref, want, n_want, err);
		free(want);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < s.n_blobs; i++)
			if (needed[i])
				s.paths[i] = bv_store_blob_path(store, s.blobs[i].digest);
	}
	for (size_t i = 0; i < s.n_blobs; i++)
		blobs[i].path = s.paths[i];
	r = bv_registry_push_blobs(&st, c, &to, blobs, needed, s.n_blobs, chunk, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < s.n_docs && r >= 0; i++) {
		const struct doc *d = &s.docs[i];
		struct bv_push_document pd = {.digest = d->digest,
					      .media_type = d->media_type,
					      .data = d->body.buf,
					      .len = d->body.len};
		bool top = i + 1 == s.n_docs;
		r = bv_registry_push_manifest(c, &to, top && to.tag ? to.tag : d->digest, &pd, err);
	}
	if (r < 0)
		goto out;

	memset(out, 0, sizeof(*out));
	{
		char *digest_keep = to.digest;
		to.digest = NULL;
		free(digest_keep);
		out->reference = bv_imageref_pinned(&to, s.top_digest);
		if (to.tag) {
			/* pinned() drops the tag; the result names both */
			char *name = bv_imageref_format(&to);
			char *both = bv_xasprintf("%s@%s", name, s.top_digest);
			free(name);
			free(out->reference);
			out->reference = both;
		}
	}
	out->digest = bv_xstrdup(s.top_digest);
	out->manifests = s.n_docs;
	out->blobs_present = st.blobs_present;
	out->blobs_mounted = st.blobs_mounted;
	out->blobs_uploaded = st.blobs_uploaded;
	out->bytes_uploaded = st.bytes_uploaded;
out:
	free(blobs);
	free(needed);
	source_release(&s);
	if (have_to)
		bv_imageref_release(&to);
	bv_registry_client_free(c);
	bv_mirrors_free(mirrors);
	bv_store_free(store);
	return r;
}

void bv_push_result_release(struct bv_push_result *r)
{
	if (!r)
		return;
	free(r->reference);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}
