/*
 * bv_install() of pins whose blobs are all in the store (no registry): several root
 * filesystems are built at once, each in a child process (install.c's unpack_all()), and
 * what they build and how they fail must be what the same install does one image at a time
 * (jobs = 1): the same trees, and for a failing image the same error chain (codes, errno,
 * every message), the first failing item's.
 *
 * The images are written into the store here: a layer of one file (a hand-made ustar), and
 * for the failing image a layer that is no archive at all, sent as tar+gzip.
 */
#include <bv/error.h>
#include <bv/install.h>
#include <bv/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "lib/oci/store/unpack-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"

#define OCI_TAR  "application/vnd.oci.image.layer.v1.tar"
#define OCI_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

static char *work;

/* A ustar archive holding the one regular file `name` with `data`, and its end blocks. */
static void ustar_one(struct bv_buf *out, const char *name, const char *data)
{
	char h[512] = {0};
	size_t len = strlen(data), pad = (512 - len % 512) % 512;
	unsigned sum = 0;

	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011o", (unsigned)len);
	snprintf(h + 136, 12, "%011o", 0);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	bv_buf_add(out, h, sizeof(h));
	bv_buf_add(out, data, len);
	for (size_t i = 0; i < pad + 1024; i++)
		bv_buf_putc(out, '\0');
}

/* Stores an image of one layer (`layer`, `media_type`) and returns its manifest's digest. */
static char *put_image(struct bv_store *s, const char *name, const struct bv_buf *layer,
		       const char *media_type)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *layer_digest = NULL, *config_digest = NULL, *config = NULL;
	_cleanup_free_ char *manifest = NULL;
	char *digest = NULL;

	assert_ok(bv_store_put_blob(&layer_digest, s, layer->buf, layer->len, NULL, &err), &err);
	config = bv_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":"
			      "[\"NAME=%s\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
			      name);
	assert_ok(bv_store_put_blob(&config_digest, s, config, strlen(config), NULL, &err), &err);
	manifest = bv_xasprintf(
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		"\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":"
		"\"%s\",\"size\":%zu}]}",
		config_digest, strlen(config), media_type, layer_digest, layer->len);
	assert_ok(bv_store_put_blob(&digest, s, manifest, strlen(manifest), NULL, &err), &err);
	return digest;
}

struct fixture {
	char *pins[3];
	const char *refs[3];
	const char *ids[3];
};

static struct fixture fx;

static int setup(void **state)
{
	_cleanup_free_ char *dir = test_mkdtemp("install");
	_cleanup_buf_ struct bv_buf good = BV_BUF_INIT, other = BV_BUF_INIT, bad = BV_BUF_INIT;
	_cleanup_free_ char *cache = NULL;
	struct bv_store *s = NULL;
	struct bv_error *err = NULL;

	(void)state;
	if (!dir)
		return -1;
	work = realpath(dir, NULL);
	cache = bv_path_join(work, "cache");
	setenv("BV_CACHE_DIR", cache, 1);
	unsetenv("BV_IMAGE_MODE");
	unsetenv("BV_JOBS");
	if (bv_store_open(&s, NULL, &err) < 0)
		return -1;
	ustar_one(&good, "usr/bin/tool-a", "a\n");
	ustar_one(&other, "usr/bin/tool-c", "c\n");
	for (int i = 0; i < 712; i++)
		bv_buf_puts(&bad, "this is not an archive\n");
	fx.pins[0] = put_image(s, "a", &good, OCI_TAR);
	fx.pins[1] = put_image(s, "b", &bad, OCI_GZIP);
	fx.pins[2] = put_image(s, "c", &other, OCI_TAR);
	fx.refs[0] = "example.org/tools/a:1";
	fx.refs[1] = "example.org/tools/b:1";
	fx.refs[2] = "example.org/tools/c:1";
	fx.ids[0] = "a";
	fx.ids[1] = "b";
	fx.ids[2] = "c";
	bv_store_free(s);
	return 0;
}

static int teardown(void **state)
{
	_cleanup_free_ char *cmd = bv_xasprintf("chmod -R u+w '%s' && rm -rf '%s'", work, work);
	(void)state;
	for (int i = 0; i < 3; i++)
		free(fx.pins[i]);
	if (system(cmd) != 0)
		return -1;
	free(work);
	return 0;
}

/* Removes every tree, keeping the store, so the next install builds them again. */
static void drop_trees(void)
{
	_cleanup_free_ char *cmd =
		bv_xasprintf("chmod -R u+w '%s/cache/rootfs' '%s/cache/layers' 2>/dev/null;"
			     " rm -rf '%s/cache/rootfs' '%s/cache/layers' '%s/cache/locks'",
			     work, work, work, work, work);
	assert_int_equal(system(cmd), 0);
}

/* Installs items `idx` (n of them) with `jobs`; returns bv_install()'s result. */
static int install(const size_t *idx, size_t n, unsigned jobs, struct bv_install_item *items,
		   struct bv_error **err)
{
	struct bv_install_options o = {.mode = BV_INSTALL_FULL, .jobs = jobs};
	for (size_t i = 0; i < n; i++)
		items[i] = (struct bv_install_item){.tool_id = fx.ids[idx[i]],
						    .reference = fx.refs[idx[i]],
						    .pinned = fx.pins[idx[i]]};
	return bv_install(items, n, &o, err);
}

static bool sealed_rootfs(const char *pin)
{
	_cleanup_free_ char *rootfs = NULL;
	struct bv_error *err = NULL;
	assert_ok(bv_install_rootfs_path(&rootfs, pin, &err), &err);
	return bv_unpack_is_sealed(rootfs);
}

static void test_install__several_at_once(void **state)
{
	const size_t idx[] = {0, 2};
	struct bv_install_item items[2];
	struct bv_error *err = NULL;
	(void)state;

	drop_trees();
	assert_ok(install(idx, 2, 0, items, &err), &err);
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *want = NULL, *file = NULL;
		assert_false(items[i].present);
		assert_ok(bv_install_rootfs_path(&want, fx.pins[idx[i]], &err), &err);
		assert_string_equal(items[i].rootfs, want);
		assert_true(bv_unpack_is_sealed(items[i].rootfs));
		file = bv_xasprintf("%s/usr/bin/tool-%s", items[i].rootfs, fx.ids[idx[i]]);
		assert_true(bv_path_exists(file));
		bv_install_item_release(&items[i]);
	}
	/* the second time nothing is built: both are present */
	assert_ok(install(idx, 2, 0, items, &err), &err);
	for (size_t i = 0; i < 2; i++) {
		assert_true(items[i].present);
		bv_install_item_release(&items[i]);
	}
}

static void test_install__failure_as_one_at_a_time(void **state)
{
	const size_t idx[] = {0, 1, 2};
	struct bv_install_item items[3];
	struct bv_error *one = NULL, *many = NULL;
	_cleanup_free_ char *one_text = NULL, *many_text = NULL;
	int r_one, r_many;
	(void)state;

	drop_trees();
	r_one = install(idx, 3, 1, items, &one);
	for (size_t i = 0; i < 3; i++)
		bv_install_item_release(&items[i]);
	/* one at a time stops at b: c was never built */
	assert_true(sealed_rootfs(fx.pins[0]));
	assert_false(sealed_rootfs(fx.pins[1]));
	assert_false(sealed_rootfs(fx.pins[2]));

	drop_trees();
	r_many = install(idx, 3, 2, items, &many);
	for (size_t i = 0; i < 3; i++)
		bv_install_item_release(&items[i]);
	assert_true(sealed_rootfs(fx.pins[0]));
	assert_false(sealed_rootfs(fx.pins[1]));

	assert_true(r_one < 0);
	assert_int_equal(r_many, r_one);
	assert_non_null(one);
	assert_non_null(many);
	one_text = bv_error_format(one);
	many_text = bv_error_format(many);
	assert_non_null(strstr(one_text, "could not unpack 'example.org/tools/b:1' for b"));
	assert_string_equal(many_text, one_text);
	/* the chain itself, level by level */
	for (const struct bv_error *a = one, *b = many; a || b; a = a->cause, b = b->cause) {
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(a->code, b->code);
		assert_int_equal(a->sys_errno, b->sys_errno);
		assert_string_equal(a->message, b->message);
	}
	bv_error_free(one);
	bv_error_free(many);
}

/*
 * The namer (is_available's per-image path) names every image as bv_install_rootfs_path()
 * does and refuses exactly the digests bv_digest_valid() refuses: each hex position and the
 * prefix set to every byte, the length one short and one long, and no digest at all.
 */
static void test_install__namer_as_rootfs_path(void **state)
{
	struct bv_install_rootfs_namer n;
	struct bv_error *err = NULL;
	char digest[80];
	(void)state;
	assert_ok(bv_install_rootfs_namer_init(&n, &err), &err);
	for (unsigned pos = 0; pos < 71; pos++)
		for (unsigned c = 1; c < 256; c++) {
			char *want = NULL;
			bool valid;
			(void)snprintf(digest, sizeof(digest), "sha256:%016x%016x%016x%016x", pos,
				       c, pos * 2654435761u, c * 40503u);
			digest[pos] = (char)c;
			valid = bv_digest_valid(digest);
			if ((bv_install_rootfs_namer_path(&n, digest, NULL) == 0) != valid)
				fail_msg("'%s': valid %d, the namer says otherwise", digest, valid);
			if (!valid)
				continue;
			assert_ok(bv_install_rootfs_path(&want, digest, &err), &err);
			assert_string_equal(n.path, want);
			assert_int_equal(strlen(want), n.dir_len + 1 + n.name_len);
			assert_int_equal(want[n.dir_len], '/');
			free(want);
		}
	/* the error as bv_install_rootfs_path() gives it */
	(void)snprintf(digest, sizeof(digest), "sha256:%064x", 7);
	digest[70] = 0;
	assert_int_equal(bv_install_rootfs_namer_path(&n, digest, &err), BV_EINVALID);
	assert_non_null(strstr(err->message, digest));
	bv_error_free(err);
	err = NULL;
	digest[70] = '7';
	digest[71] = '7';
	digest[72] = 0;
	assert_int_equal(bv_install_rootfs_namer_path(&n, digest, NULL), BV_EINVALID);
	assert_int_equal(bv_install_rootfs_namer_path(&n, NULL, NULL), BV_EINVALID);
	bv_install_rootfs_namer_release(&n);

	/* local_dir: the node-local directory, as for bv_install_rootfs_path() */
	setenv("BV_IMAGE_MODE", "local_dir", 1);
	setenv("BV_LOCAL_DIR", work, 1);
	{
		char *want = NULL;
		(void)snprintf(digest, sizeof(digest), "sha256:%064x", 9);
		assert_ok(bv_install_rootfs_namer_init(&n, &err), &err);
		assert_ok(bv_install_rootfs_namer_path(&n, digest, &err), &err);
		assert_ok(bv_install_rootfs_path(&want, digest, &err), &err);
		assert_string_equal(n.path, want);
		assert_int_equal(strncmp(want, work, strlen(work)), 0);
		free(want);
		bv_install_rootfs_namer_release(&n);
	}
	setenv("BV_IMAGE_MODE", "nonsense", 1);
	assert_int_equal(bv_install_rootfs_namer_init(&n, &err), BV_EINVALID);
	bv_error_free(err);
	unsetenv("BV_IMAGE_MODE");
	unsetenv("BV_LOCAL_DIR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install__namer_as_rootfs_path),
		cmocka_unit_test(test_install__several_at_once),
		cmocka_unit_test(test_install__failure_as_one_at_a_time),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
