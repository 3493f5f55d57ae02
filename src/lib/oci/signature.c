/*
 * signature.c - cosign-style image signatures: checked for --require-signed, made for
 * bv push --sign-key (see bv/signature.h and signature-internal.h).
 */
#include <bv/error.h>
#include <bv/imageref.h>
#include <bv/manifest.h>
#include <bv/signature.h>
#include <bv/store.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/model/paths-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/registry/registry-internal.h"
#include "lib/oci/signature-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* the annotation of a DER signature of at most BV_ECDSA_SIG_MAX bytes, with room to spare */
#define ANNOTATION_MAX 512

/* ---- parsing ---------------------------------------------------------------------------- */

void bv_signature_layers_free(struct bv_signature_layer *layers, size_t n)
{
	for (size_t i = 0; layers && i < n; i++) {
		free(layers[i].desc.digest);
		free(layers[i].desc.media_type);
		free(layers[i].signature);
	}
	free(layers);
}

int bv_signature_parse_manifest(struct bv_signature_layer **out, size_t *n, const char *body,
				size_t len, struct bv_error **err)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *list = json_object_get(root, "layers"), *l;
	struct bv_signature_layer *layers = NULL;
	size_t i, count = 0;
	int r = 0;

	if (!json_is_object(root) || !json_is_array(list)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the signature manifest is not an image manifest");
	}
	if (json_array_size(list) > BV_SIGNATURE_LAYERS_MAX) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the signature manifest has %zu layers, more than %d",
				     json_array_size(list), BV_SIGNATURE_LAYERS_MAX);
	}
	layers = bv_xcalloc(json_array_size(list) + 1, sizeof(*layers));
	json_array_foreach(list, i, l)
	{
		struct bv_signature_layer *x = &layers[count];
		const json_t *a = json_object_get(l, "annotations");
		const json_t *sig = json_object_get(a, BV_SIGNATURE_ANNOTATION);
		if (bv_registry_parse_descriptor(l, &x->desc) < 0) {
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "layer %zu of the signature manifest is malformed", i);
			break;
		}
		if (strcmp(x->desc.media_type, BV_SIGNATURE_MEDIA_TYPE) != 0) {
			free(x->desc.digest);
			free(x->desc.media_type);
			memset(x, 0, sizeof(*x));
			continue;
		}
		if (sig && !json_is_string(sig)) {
			r = bv_error_setc(
				err, BV_EINVALID, 0,
				"layer %zu of the signature manifest has a signature that "
				"is not a string",
				i);
			count++;
			break;
		}
		x->signature = sig ? bv_xstrdup(json_string_value(sig)) : NULL;
		count++;
	}
	json_decref(root);
	if (r < 0) {
		bv_signature_layers_free(layers, count);
		return r;
	}
	*out = layers;
	*n = count;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int bv_signature_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t max)
{
	size_t len = strlen(text), pad = 0, n = 0;
	unsigned char *buf;

	if (!len || len % 4 || len / 4 * 3 > max + 2)
		return BV_EINVALID;
	if (text[len - 1] == '=')
		pad = text[len - 2] == '=' ? 2 : 1;
	buf = bv_xmalloc(len / 4 * 3);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;
		for (size_t k = 0; k < 4; k++) {
			bool padding = last && k >= 4 - pad;
			v[k] = padding ? (text[i + k] == '=' ? 0 : -1) : b64_value(text[i + k]);
			if (v[k] < 0) {
				free(buf);
				return BV_EINVALID;
			}
		}
		/* the bits a padded group does not use must be zero: one text per byte string */
		if (last && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))) {
			free(buf);
			return BV_EINVALID;
		}
		buf[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (!last || pad < 2)
			buf[n++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (!last || pad < 1)
			buf[n++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	if (n > max) {
		free(buf);
		return BV_EINVALID;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

char *bv_signature_base64_encode(const void *data, size_t len)
{
	unsigned char *out;
	if (len > (size_t)INT32_MAX / 2)
		bv_oom();
	out = bv_xmalloc(len / 3 * 4 + 8);
	(void)bv_base64_encode_block(out, data, (int)len);
	return (char *)out;
}

static int payload_fail(struct bv_error **err, const char *why)
{
	return bv_error_setc(err, BV_EINVALID, 0, "malformed signature payload: %s", why);
}

static bool only_keys(json_t *obj, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		(void)v;
		for (const char *const *p = keys; *p && !ok; p++)
			ok = !strcmp(*p, k);
		if (!ok)
			return false;
	}
	return true;
}

int bv_signature_parse_payload(char **digest_out, const char *payload, size_t len,
			       struct bv_error **err)
{
	static const char *const top_keys[] = {"critical", "optional", NULL};
	static const char *const critical_keys[] = {"identity", "image", "type", NULL};
	static const char *const identity_keys[] = {"docker-reference", NULL};
	static const char *const image_keys[] = {"docker-manifest-digest", NULL};
	json_t *root, *critical, *identity, *image, *optional;
	const char *digest, *type;
	int r = 0;

	if (len > BV_SIGNATURE_PAYLOAD_MAX)
		return payload_fail(err, "larger than 64 KiB");
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	critical = json_object_get(root, "critical");
	identity = json_object_get(critical, "identity");
	image = json_object_get(critical, "image");
	optional = json_object_get(root, "optional");
	digest = json_string_value(json_object_get(image, "docker-manifest-digest"));
	type = json_string_value(json_object_get(critical, "type"));
	if (!json_is_object(root) || !only_keys(root, top_keys))
		r = payload_fail(err, "not an object of critical and optional");
	else if (!json_is_object(critical) || !only_keys(critical, critical_keys))
		r = payload_fail(err, "'critical' is not an object of identity, image and type");
	else if (!json_is_object(identity) || !only_keys(identity, identity_keys) ||
		 !json_is_string(json_object_get(identity, "docker-reference")))
		r = payload_fail(err, "'critical.identity' has no docker-reference");
	else if (!json_is_object(image) || !only_keys(image, image_keys) ||
		 !bv_digest_valid(digest))
		r = payload_fail(err, "'critical.image' has no valid docker-manifest-digest");
	else if (!type || strcmp(type, BV_SIGNATURE_TYPE) != 0)
		r = payload_fail(err, "'critical.type' is not \"" BV_SIGNATURE_TYPE "\"");
	else if (optional && !json_is_object(optional) && !json_is_null(optional))
		r = payload_fail(err, "'optional' is neither an object nor null");
	if (r == 0)
		*digest_out = bv_xstrdup(digest);
	json_decref(root);
	return r;
}

char *bv_signature_payload_new(const char *docker_reference, const char *digest)
{
	json_t *root =
		json_pack("{s:{s:{s:s},s:{s:s},s:s},s:n}", "critical", "identity",
			  "docker-reference", docker_reference, "image", "docker-manifest-digest",
			  digest, "type", BV_SIGNATURE_TYPE, "optional");
	char *text;
	if (!root)
		bv_oom();
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		bv_oom();
	return text;
}

char *bv_signature_tag(const char *digest)
{
	return bv_xasprintf("sha256-%s.sig", digest + strlen(BV_DIGEST_PREFIX));
}

/* ---- the verdict ----------------------------------------------------------------------- */

enum layer_verdict {
	LAYER_OK,
	LAYER_MALFORMED,    /* no usable annotation or signature encoding */
	LAYER_UNTRUSTED,    /* well-formed, no trusted key verifies it (or the payload changed) */
	LAYER_BAD_PAYLOAD,  /* a trusted key signed a payload bv cannot accept */
	LAYER_OTHER_DIGEST, /* a trusted key signed another image */
};

static enum layer_verdict check_layer(const struct bv_signature_layer *l, const char *digest,
				      const char *const *keys, size_t n_keys, char **why)
{
	_cleanup_free_ unsigned char *der = NULL;
	_cleanup_free_ char *signed_digest = NULL;
	struct bv_error *e = NULL;
	size_t der_len = 0;
	bool verified = false;

	if (!l->signature) {
		*why = bv_xstrdup("a layer has no " BV_SIGNATURE_ANNOTATION " annotation");
		return LAYER_MALFORMED;
	}
	if (strlen(l->signature) > ANNOTATION_MAX ||
	    bv_signature_base64_decode(&der, &der_len, l->signature, BV_ECDSA_SIG_MAX) < 0) {
		*why = bv_xstrdup("a signature annotation is not base64 of at most 72 bytes");
		return LAYER_MALFORMED;
	}
	for (size_t k = 0; k < n_keys && !verified; k++) {
		int v = bv_ecdsa_p256_verify(keys[k], strlen(keys[k]), l->payload, l->payload_len,
					     der, der_len);
		if (v == -2) {
			*why = bv_xstrdup("a signature is not a DER-encoded ECDSA signature");
			return LAYER_MALFORMED;
		}
		verified = v == 1;
	}
	if (!verified)
		return LAYER_UNTRUSTED;
	if (bv_signature_parse_payload(&signed_digest, l->payload, l->payload_len, &e) < 0) {
		*why = bv_error_format(e);
		bv_error_free(e);
		return LAYER_BAD_PAYLOAD;
	}
	if (strcmp(signed_digest, digest) != 0) {
		*why = TAKE_PTR(signed_digest);
		return LAYER_OTHER_DIGEST;
	}
	return LAYER_OK;
}

int bv_signature_check(const struct bv_signature_layer *layers, size_t n, const char *digest,
		       const char *const *keys, size_t n_keys, const char *label,
		       struct bv_error **err)
{
	/* the most telling failure is reported: the later in the enum, the more it says */
	enum layer_verdict worst = LAYER_OK;
	_cleanup_free_ char *worst_why = NULL;
	size_t untrusted = 0;

	if (!n)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the signature manifest of %s has no simple-signing layer",
				     label);
	for (size_t i = 0; i < n; i++) {
		char *why = NULL;
		enum layer_verdict v = check_layer(&layers[i], digest, keys, n_keys, &why);
		if (v == LAYER_OK) {
			free(why);
			return 0;
		}
		untrusted += v == LAYER_UNTRUSTED;
		if (v > worst) {
			worst = v;
			free(worst_why);
			worst_why = why;
		} else {
			free(why);
		}
	}
	switch (worst) {
	case LAYER_OTHER_DIGEST:
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"the signature of %s by a trusted key is for %s, another image", label,
			worst_why);
	case LAYER_BAD_PAYLOAD:
		return bv_error_setc(err, BV_EINVALID, 0, "the signature of %s: %s", label,
				     worst_why);
	case LAYER_UNTRUSTED:
		return bv_error_setc(err, BV_EINVALID, 0,
				     "no signature of %s verifies with a trusted key (%zu "
				     "signature%s, %zu key%s): signed by another key, or its "
				     "payload was changed",
				     label, untrusted, untrusted == 1 ? "" : "s", n_keys,
				     n_keys == 1 ? "" : "s");
	case LAYER_MALFORMED:
	default:
		return bv_error_setc(err, BV_EINVALID, 0, "malformed signature of %s: %s", label,
				     worst_why ? worst_why : "no usable layer");
	}
}

/* ---- keys ------------------------------------------------------------------------------ */

char *bv_signature_keys_dir(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	_cleanup_free_ char *home = bv_home_dir();
	if (xdg && xdg[0] == '/')
		return bv_xasprintf("%s/bv/keys", xdg);
	if (home && *home)
		return bv_xasprintf("%s/.config/bv/keys", home);
	return NULL;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the text of every *.pub file of the keys directory, in name order. */
static int load_key_files(struct bv_strv *keys, struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_signature_keys_dir();
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	DIR *d;
	const struct dirent *e;

	if (!dir)
		return 0;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR
			       ? 0
			       : bv_error_set_errno(err, "could not read '%s'", dir);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && strlen(e->d_name) > 4 &&
		    !strcmp(e->d_name + strlen(e->d_name) - 4, ".pub"))
			bv_strv_push(&names, e->d_name);
	closedir(d);
	qsort(names.v, names.n, sizeof(*names.v), compare_names);
	bv_strv_foreach (name, &names) {
		_cleanup_free_ char *path = bv_path_join(dir, *name);
		_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
		int r = bv_buf_read_file(&text, path, BV_SIGNATURE_KEY_MAX, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not read key '%s'", path);
		if (memchr(text.buf, '\0', text.len) ||
		    !bv_ecdsa_p256_key_valid(text.buf, text.len, false))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "'%s' is not a PEM ECDSA P-256 public key", path);
		bv_strv_push(keys, text.buf);
	}
	return 0;
}

/* ---- verifying ------------------------------------------------------------------------- */

/* Fetches the .sig manifest and its payloads of one image, and judges them. */
static int verify_one(struct bv_registry_client *c, const struct bv_store *store,
		      const struct bv_signature_image *im, const struct bv_strv *keys,
		      struct bv_error **err)
{
	struct bv_imageref ref = {0};
	_cleanup_buf_ struct bv_buf body = BV_BUF_INIT;
	_cleanup_free_ char *label = NULL, *tag = NULL, *got = NULL, *mt = NULL;
	struct bv_signature_layer *layers = NULL;
	struct bv_descriptor *descs = NULL;
	struct bv_buf *payloads = NULL;
	size_t n = 0;
	int r;

	r = bv_imageref_parse(&ref, im->reference, err);
	if (r < 0)
		return r;
	label = bv_imageref_pinned(&ref, im->digest);
	tag = bv_signature_tag(im->digest);
	r = bv_registry_fetch_manifest(&body, &got, &mt, c, &ref, tag, NULL, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(*err);
		*err = NULL;
		r = bv_error_setc(err, BV_ENOTFOUND, 0, "no signature for %s (no tag %s)", label,
				  tag);
		goto out;
	}
	if (r < 0) {
		r = bv_error_wrap(err, r, "could not fetch the signature of %s", label);
		goto out;
	}
	r = bv_signature_parse_manifest(&layers, &n, body.buf, body.len, err);
	if (r < 0) {
		r = bv_error_wrap(err, r, "malformed signature of %s", label);
		goto out;
	}
	descs = bv_xcalloc(n + 1, sizeof(*descs));
	payloads = bv_xcalloc(n + 1, sizeof(*payloads));
	for (size_t i = 0; i < n; i++) {
		if (layers[i].desc.size > BV_SIGNATURE_PAYLOAD_MAX) {
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "malformed signature of %s: a payload of %llu bytes "
					  "(more than 64 KiB)",
					  label, (unsigned long long)layers[i].desc.size);
			goto out;
		}
		descs[i] = layers[i].desc;
	}
	/* into the store, each verified against its digest before it is read */
	r = bv_registry_fetch_blobs(c, &ref, descs, n, err);
	if (r < 0) {
		r = bv_error_wrap(err, r, "could not fetch the signature of %s", label);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = bv_store_blob_path(store, descs[i].digest);
		bv_buf_init(&payloads[i], 0);
		r = bv_buf_read_file(&payloads[i], path, BV_SIGNATURE_PAYLOAD_MAX, err);
		if (r < 0)
			goto out;
		layers[i].payload = payloads[i].buf;
		layers[i].payload_len = payloads[i].len;
	}
	r = bv_signature_check(layers, n, im->digest, (const char *const *)keys->v, keys->n, label,
			       err);
out:
	for (size_t i = 0; payloads && i < n; i++)
		bv_buf_release(&payloads[i]);
	free(payloads);
	free(descs);
	bv_signature_layers_free(layers, n);
	bv_imageref_release(&ref);
	return r;
}

int bv_signature_verify(const struct bv_signature_image *images, size_t n, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv own = BV_STRV_INIT;
	struct bv_store *store = NULL;
	struct bv_mirrors *mirrors = NULL;
	struct bv_registry_client *c = NULL;
	struct bv_registry_options ro = {0};
	int r;

	if (!n)
		return 0;
	r = load_key_files(&own, err);
	for (size_t i = 0; i < n && r >= 0; i++) {
		const struct bv_manifest *m = images[i].manifest;
		const char *scheme = m ? m->signature_image : NULL;
		if (!scheme || strcmp(scheme, "sigstore") != 0)
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "%s declares no signed image ([tool.signatures] image = "
					  "\"sigstore\" in its manifest)",
					  images[i].tool_id);
		else if (!bv_digest_valid(images[i].digest))
			r = bv_error_setc(err, BV_EINVALID, 0, "%s has no image digest to check",
					  images[i].tool_id);
		else if (!own.n && !m->signature_keys.n) {
			_cleanup_free_ char *dir = bv_signature_keys_dir();
			r = bv_error_setc(
				err, BV_EINVALID, 0,
				"no trusted key for %s: its manifest lists no "
				"[tool.signatures] public_keys and '%s' has no *.pub file",
				images[i].tool_id, dir ? dir : "~/.config/bv/keys");
		}
		for (size_t k = 0; r >= 0 && m && k < m->signature_keys.n; k++)
			if (!bv_ecdsa_p256_key_valid(m->signature_keys.v[k],
						     strlen(m->signature_keys.v[k]), false))
				r = bv_error_setc(err, BV_EINVALID, 0,
						  "public_keys[%zu] in [tool.signatures] of %s is "
						  "not a PEM ECDSA P-256 public key",
						  k, images[i].tool_id);
	}
	if (r >= 0)
		r = bv_store_open(&store, NULL, err);
	if (r >= 0)
		r = bv_mirrors_load(&mirrors, err);
	if (r >= 0) {
		ro.store = store;
		ro.mirrors = mirrors;
		r = bv_registry_client_new(&c, &ro, err);
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_strv_ struct bv_strv keys = BV_STRV_INIT;
		const struct bv_manifest *m = images[i].manifest;
		bv_strv_foreach (k, &m->signature_keys)
			bv_strv_push(&keys, *k);
		bv_strv_foreach (k, &own)
			bv_strv_push(&keys, *k);
		r = verify_one(c, store, &images[i], &keys, err);
		if (r < 0)
			r = bv_error_wrap(err, r, "%s is not signed as required",
					  images[i].tool_id);
	}
	bv_registry_client_free(c);
	bv_mirrors_free(mirrors);
	bv_store_free(store);
	return r < 0 ? r : 0;
}

/* ---- signing --------------------------------------------------------------------------- */

/* Writes `len` bytes into a new file of `dir` named by their digest; *path_out, *digest_out. */
static int stage_blob(char **path_out, char **digest_out, const char *dir, const char *data,
		      size_t len, struct bv_error **err)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	char *path;
	int r;
	bv_sha256_hex(hex, data, len);
	path = bv_xasprintf("%s/%s", dir, hex);
	r = bv_write_file_atomic(path, data, len, 0600, err);
	if (r < 0) {
		free(path);
		return r;
	}
	*path_out = path;
	*digest_out = bv_xasprintf("sha256:%s", hex);
	return 0;
}

/* The layers of the .sig manifest there is already, as JSON (a new reference), or NULL. */
static int existing_layers(json_t **out, struct bv_registry_client *c,
			   const struct bv_imageref *ref, const char *tag, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf body = BV_BUF_INIT;
	_cleanup_free_ char *got = NULL, *mt = NULL;
	struct bv_signature_layer *layers = NULL;
	size_t n = 0;
	json_t *root, *list;
	int r = bv_registry_fetch_manifest(&body, &got, &mt, c, ref, tag, NULL, err);

	*out = NULL;
	if (r == BV_ENOTFOUND) {
		bv_error_free(*err);
		*err = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	/* a signature manifest bv cannot read is replaced rather than extended */
	if (bv_signature_parse_manifest(&layers, &n, body.buf, body.len, NULL) < 0)
		return 0;
	bv_signature_layers_free(layers, n);
	root = json_loadb(body.buf, body.len, 0, NULL);
	list = json_object_get(root, "layers");
	if (json_is_array(list) && json_array_size(list) < BV_SIGNATURE_LAYERS_MAX)
		*out = json_incref(list);
	json_decref(root);
	return 0;
}

static json_t *descriptor(const char *media_type, const char *digest, size_t size)
{
	json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", media_type, "digest", digest, "size",
			      (json_int_t)size);
	if (!d)
		bv_oom();
	return d;
}

/* Dumps `root` (consumed) compactly; the caller frees the text. */
static char *dump(json_t *root, size_t *len)
{
	char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		bv_oom();
	*len = strlen(text);
	return text;
}

/* Reads the private key file into `key`; BV_EINVALID when it holds no usable key. */
static int read_private_key(struct bv_buf *key, const char *key_path, struct bv_error **err)
{
	int r = bv_buf_read_file(key, key_path, BV_SIGNATURE_KEY_MAX, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not read the signing key");
	if (!bv_ecdsa_p256_key_valid(key->buf, key->len, true)) {
		explicit_bzero(key->buf, key->len);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "'%s' is not an unencrypted PEM ECDSA P-256 private key",
				     key_path);
	}
	return 0;
}

int bv_signature_check_key(const char *key_path, char **public_pem, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf key = BV_BUF_INIT;
	int r = read_private_key(&key, key_path, err);
	if (r < 0)
		return r;
	if (public_pem && !(*public_pem = bv_ecdsa_p256_public_pem(key.buf, key.len)))
		r = bv_error_setc(err, BV_ERR, 0, "could not derive the public key of '%s'",
				  key_path);
	explicit_bzero(key.buf, key.len);
	return r;
}

int bv_signature_sign(char **out, const char *image, const char *key_path, struct bv_error **err)
{
	struct bv_imageref ref = {0};
	_cleanup_buf_ struct bv_buf key = BV_BUF_INIT;
	_cleanup_free_ char *repo = NULL, *payload = NULL, *b64 = NULL, *tag = NULL;
	_cleanup_free_ char *config = NULL, *manifest = NULL, *dir = NULL;
	/* freed by hand at out: gcc's analyzer misreads cleanup attributes across these gotos */
	char *payload_path = NULL, *payload_digest = NULL;
	char *config_path = NULL, *config_digest = NULL;
	unsigned char *sig = NULL;
	char manifest_hex[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *manifest_digest = NULL;
	struct bv_registry_client *c = NULL;
	struct bv_registry_options ro = {0};
	json_t *layers = NULL, *layer, *diff_ids, *l;
	struct bv_push_blob blobs[2] = {{0}};
	bool needed[2] = {false, false};
	struct bv_push_stats st = {0};
	size_t sig_len = 0, config_len = 0, manifest_len = 0, i;
	const char *tmp = getenv("TMPDIR");
	int r;

	r = bv_imageref_parse(&ref, image, err);
	if (r < 0)
		return r;
	if (!ref.digest) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "'%s' has no digest: a signature names the image by digest",
				  image);
		goto out;
	}
	r = read_private_key(&key, key_path, err);
	if (r < 0)
		goto out;
	{
		char *tag_keep = ref.tag, *digest_keep = ref.digest;
		ref.tag = ref.digest = NULL;
		repo = bv_imageref_format(&ref);
		ref.tag = tag_keep;
		ref.digest = digest_keep;
	}
	payload = bv_signature_payload_new(repo, ref.digest);
	r = bv_ecdsa_p256_sign(&sig, &sig_len, key.buf, key.len, payload, strlen(payload));
	explicit_bzero(key.buf, key.len);
	if (r == -1) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "'%s' is not an unencrypted PEM ECDSA P-256 private key",
				  key_path);
		goto out;
	}
	if (r < 0) {
		r = bv_error_set(err, "could not sign %s", image);
		goto out;
	}
	b64 = bv_signature_base64_encode(sig, sig_len);
	tag = bv_signature_tag(ref.digest);

	r = bv_registry_client_new(&c, &ro, err);
	if (r < 0)
		goto out;
	r = existing_layers(&layers, c, &ref, tag, err);
	if (r < 0) {
		r = bv_error_wrap(err, r, "could not read the signatures of %s", image);
		goto out;
	}
	if (!layers)
		layers = json_array();

	dir = bv_xasprintf("%s/bv-sign.XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		r = bv_error_set_errno(err, "could not create '%s'", dir);
		free(TAKE_PTR(dir));
		goto out;
	}
	r = stage_blob(&payload_path, &payload_digest, dir, payload, strlen(payload), err);
	if (r < 0)
		goto out;
	layer = descriptor(BV_SIGNATURE_MEDIA_TYPE, payload_digest, strlen(payload));
	json_object_set_new(layer, "annotations", json_pack("{s:s}", BV_SIGNATURE_ANNOTATION, b64));
	json_array_append_new(layers, layer);

	/* the config lists every layer as a diff id: they are stored uncompressed */
	diff_ids = json_array();
	json_array_foreach(layers, i, l) json_array_append(diff_ids, json_object_get(l, "digest"));
	config = dump(json_pack("{s:s,s:s,s:{},s:{s:s,s:o}}", "architecture", "", "os", "",
				"config", "rootfs", "type", "layers", "diff_ids", diff_ids),
		      &config_len);
	r = stage_blob(&config_path, &config_digest, dir, config, config_len, err);
	if (r < 0)
		goto out;
	manifest = dump(json_pack("{s:i,s:s,s:o,s:O}", "schemaVersion", 2, "mediaType",
				  BV_MEDIA_OCI_MANIFEST, "config",
				  descriptor("application/vnd.oci.image.config.v1+json",
					     config_digest, config_len),
				  "layers", layers),
			&manifest_len);
	bv_sha256_hex(manifest_hex, manifest, manifest_len);
	manifest_digest = bv_xasprintf("sha256:%s", manifest_hex);

	blobs[0] = (struct bv_push_blob){
		.digest = payload_digest, .size = strlen(payload), .path = payload_path};
	blobs[1] = (struct bv_push_blob){
		.digest = config_digest, .size = config_len, .path = config_path};
	r = bv_registry_push_prepare(needed, &st, c, &ref, blobs, 2, NULL, err);
	if (r >= 0)
		r = bv_registry_push_blobs(&st, c, &ref, blobs, needed, 2, 0, err);
	if (r >= 0) {
		struct bv_push_document doc = {.digest = manifest_digest,
					       .media_type = BV_MEDIA_OCI_MANIFEST,
					       .data = manifest,
					       .len = manifest_len};
		r = bv_registry_push_manifest(c, &ref, tag, &doc, err);
	}
	if (r < 0) {
		r = bv_error_wrap(err, r, "could not push the signature of %s", image);
		goto out;
	}
	*out = bv_xasprintf("%s:%s", repo, tag);
out:
	if (dir) {
		struct bv_error *e = NULL;
		if (bv_rm_rf(dir, &e) < 0)
			bv_error_free(e);
	}
	json_decref(layers);
	bv_registry_client_free(c);
	bv_imageref_release(&ref);
	free(payload_path);
	free(payload_digest);
	free(config_path);
	free(config_digest);
	free(sig);
	return r < 0 ? r : 0;
}
