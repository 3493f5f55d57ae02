/*
 * bench_project: fixtures and timings for the project-model benchmarks of `make bench`.
 *
 *   bench_project gen <dir> <tools>          a registry of <tools> tools at <dir>/registry,
 *                                            a project locking all of them at <dir>/project
 *                                            and a warm cache at <dir>/cache: the manifest
 *                                            copies lock and add keep, and a sealed (empty)
 *                                            root filesystem per image, so that `bv sync`
 *                                            there has nothing to do
 *   bench_project registry <dir> <iterations>
 *                                            loads the type vocabulary and every tool and
 *                                            dataset manifest under <dir>; prints
 *                                            "seconds=<s> loads=<n> manifests=<m>"
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/index-internal.h"
#include "lib/oci/install-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

static int die(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	fprintf(stderr, "bench_project: %s\n", msg);
	free(msg);
	bv_error_free(err);
	return 1;
}

/*
 * What a project that ran `bv lock` and `bv sync` leaves in the cache (BV_CACHE_DIR, set by
 * generate): the kept manifest copy (bv/runplan.h) and a sealed root filesystem of the image.
 * The root filesystems are empty: the benchmarks never run a tool.
 */
static int warm_cache(const char *dir, const char *manifest_digest, const char *image_digest,
		      const struct bv_buf *text, struct bv_error **err)
{
	_cleanup_free_ char *copy = NULL, *rootfs = NULL, *seal = NULL;
	copy = bv_xasprintf("%s/cache/manifests/%s.toml", dir, manifest_digest + 7);
	if (bv_write_file_atomic(copy, text->buf, text->len, 0644, err) < 0 ||
	    bv_install_rootfs_path(&rootfs, image_digest, err) < 0 ||
	    bv_mkdir_p(rootfs, 0755, err) < 0)
		return BV_ERR;
	seal = bv_xasprintf("%s.seal", rootfs);
	return bv_write_file_atomic(seal, "", 0, 0644, err);
}

static int generate(const char *dir, unsigned n)
{
	struct bv_error *err = NULL;
	struct bv_buf path = BV_BUF_INIT, text = BV_BUF_INIT, project = BV_BUF_INIT;
	struct bv_lockfile *lock = bv_lockfile_new("0.1.29", 1790000000);
	int r = 1;

	bv_buf_printf(&path, "%s/cache", dir);
	if (setenv("BV_CACHE_DIR", path.buf, 1) < 0) {
		r = bv_error_set_errno(&err, "could not set BV_CACHE_DIR");
		goto out;
	}
	bv_buf_puts(&path, "/manifests");
	if (bv_mkdir_p(path.buf, 0755, &err) < 0)
		goto out;
	bv_buf_puts(&project, "[project]\nname = \"bench\"\n");
	for (unsigned i = 0; i < n; i++) {
		char id[32], digest[80], manifest_digest[72];
		struct bv_lock_tool *t;
		(void)snprintf(id, sizeof(id), "tool%04u", i);
		(void)snprintf(digest, sizeof(digest), "sha256:%064x", i + 1);
		bv_buf_reset(&path);
		bv_buf_printf(&path, "%s/registry/tools/%s", dir, id);
		if (bv_mkdir_p(path.buf, 0755, &err) < 0)
			goto out;
		bv_buf_puts(&path, "/1.0.0.toml");
		bv_buf_reset(&text);
		bv_buf_printf(
			&text,
			"[tool]\nid = \"%s\"\nversion = \"1.0.0\"\ntier = \"core\"\n"
			"description = \"generated tool %u\"\n\n"
			"[[tool.inputs]]\nname = \"reads\"\ntype = \"fastq\"\n\n"
			"[[tool.outputs]]\nname = \"aln\"\ntype = \"bam\"\n\n"
			"[tool.image]\nbackend = \"docker\"\nreference = \"quay.io/biocontainers/%s:1.0--0\"\n\n"
			"[tool.hardware]\ncpu_cores = 2\n\n"
			"[tool.entrypoint]\ncommand = \"%s\"\n\n"
			"[tool.binaries]\nexposed = [\"%s\", \"%s-extra\"]\n\n"
			"[tool.factored]\nimage_reference = \"ghcr.io/bench/%s:1.0.0\"\nimage_digest = \"%s\"\n",
			id, i, id, id, id, id, id, digest);
		if (bv_write_file_atomic(path.buf, text.buf, text.len, 0644, &err) < 0)
			goto out;
		bv_manifest_text_digest(manifest_digest, text.buf, text.len);
		if (warm_cache(dir, manifest_digest, digest, &text, &err) < 0)
			goto out;
		bv_buf_printf(&project, "\n[[tools]]\nid = \"%s\"\nversion = \"^1.0\"\n", id);
		t = bv_lockfile_upsert(lock, id);
		bv_lock_set_string(&t->declared_version_req, "^1.0");
		bv_lock_set_string(&t->version, "1.0.0");
		t->factored = true;
		bv_buf_reset(&text);
		bv_buf_printf(&text, "ghcr.io/bench/%s:1.0.0", id);
		bv_lock_set_string(&t->image_reference, text.buf);
		bv_lock_set_string(&t->image_digest, digest);
		bv_lock_set_string(&t->manifest_sha256, manifest_digest);
		bv_lock_set_string(&t->resolved_at, "2026-11-23T10:00:00Z");
		t->image_size_bytes = 1000000 + i;
		bv_strv_push(&t->binaries, id);
		bv_strv_pushf(&t->binaries, "%s-extra", id);
	}
	if (bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err) < 0)
		goto out;
	bv_buf_reset(&path);
	bv_buf_printf(&path, "%s/project", dir);
	if (bv_mkdir_p(path.buf, 0755, &err) < 0)
		goto out;
	bv_buf_puts(&path, "/bv.toml");
	if (bv_write_file_atomic(path.buf, project.buf, project.len, 0644, &err) < 0)
		goto out;
	bv_buf_reset(&path);
	bv_buf_printf(&path, "%s/project/bv.lock", dir);
	if (bv_lockfile_save(lock, path.buf, &err) < 0)
		goto out;
	r = 0;
out:
	bv_lockfile_free(lock);
	bv_buf_release(&path);
	bv_buf_release(&text);
	bv_buf_release(&project);
	return r ? die(err) : 0;
}

/* One full load: the vocabulary, then every tool and dataset manifest, validated. */
static int load_registry(const struct bv_index *idx, size_t *count, struct bv_error **err)
{
	struct bv_types *types = NULL;
	struct bv_strv ids = BV_STRV_INIT, data = BV_STRV_INIT;
	int r = bv_types_load_default(&types, err);
	if (r >= 0)
		r = bv_index_list_tools(&ids, idx, err);
	if (r >= 0)
		r = bv_index_list_data(&data, idx, err);
	*count = 0;
	for (size_t i = 0; r >= 0 && i < ids.n; i++) {
		struct bv_strv versions = BV_STRV_INIT;
		r = bv_index_tool_versions(&versions, idx, ids.v[i], err);
		for (size_t j = 0; r >= 0 && j < versions.n; j++) {
			_cleanup_free_ char *path =
				bv_index_tool_path(idx, ids.v[i], versions.v[j]);
			struct bv_manifest *m = NULL;
			r = bv_manifest_load(&m, path, types, err);
			bv_manifest_free(m);
			(*count)++;
		}
		bv_strv_clear(&versions);
	}
	for (size_t i = 0; r >= 0 && i < data.n; i++) {
		struct bv_strv versions = BV_STRV_INIT;
		r = bv_index_data_versions(&versions, idx, data.v[i], err);
		for (size_t j = 0; r >= 0 && j < versions.n; j++) {
			_cleanup_free_ char *path =
				bv_index_data_path(idx, data.v[i], versions.v[j]);
			struct bv_dataset *d = NULL;
			r = bv_dataset_load(&d, path, err);
			bv_dataset_free(d);
			(*count)++;
		}
		bv_strv_clear(&versions);
	}
	bv_strv_clear(&ids);
	bv_strv_clear(&data);
	bv_types_free(types);
	return r;
}

static int bench_registry(const char *dir, unsigned iterations)
{
	struct bv_error *err = NULL;
	struct bv_index *idx = NULL;
	size_t count = 0;
	uint64_t start;
	if (bv_index_open(&idx, dir, BV_INDEX_OFFLINE, &err) < 0)
		return die(err);
	start = bv_time_monotonic_ns();
	for (unsigned i = 0; i < iterations; i++) {
		if (load_registry(idx, &count, &err) < 0) {
			bv_index_free(idx);
			return die(err);
		}
	}
	printf("seconds=%.6f loads=%u manifests=%zu\n",
	       (double)(bv_time_monotonic_ns() - start) / 1e9, iterations, count);
	bv_index_free(idx);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n;
	if (argc == 4 && !strcmp(argv[1], "gen") && bv_parse_uint(&n, argv[3]) == 0)
		return generate(argv[2], n);
	if (argc == 4 && !strcmp(argv[1], "registry") && bv_parse_uint(&n, argv[3]) == 0 && n)
		return bench_registry(argv[2], n);
	fprintf(stderr, "usage: bench_project gen <dir> <tools> | registry <dir> <iterations>\n");
	return 2;
}
