/*
 * bench_toml: times the TOML reader and writer for `make bench`.
 *
 *   bench_toml manifests <iterations> <file>...   parse every file <iterations> times
 *   bench_toml genlock <tools> <out>               write a generated bv.lock with <tools> tools
 *   bench_toml lock <iterations> <file>            parse + write <file> <iterations> times
 *
 * Prints one line "seconds=<s> bytes=<n>" so scripts/bench.sh can put it beside python3's
 * tomllib on the same files.  Files are read once, before the clock starts, as the Python
 * side does, so only parsing and writing are timed.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/time.h"

#include "util/banned.h"

static int die(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	fprintf(stderr, "bench_toml: %s\n", msg);
	free(msg);
	bv_error_free(err);
	return 1;
}

static int bench_parse(unsigned iterations, int nfiles, char **files, bool write)
{
	struct bv_buf *texts = calloc((size_t)nfiles, sizeof(*texts));
	struct bv_error *err = NULL;
	struct bv_buf out = BV_BUF_INIT;
	size_t bytes = 0;
	uint64_t start;
	if (!texts)
		return 1;
	for (int i = 0; i < nfiles; i++) {
		bv_buf_init(&texts[i], 0);
		if (bv_buf_read_file(&texts[i], files[i], 64u << 20, &err) < 0)
			return die(err);
	}
	start = bv_time_monotonic_ns();
	for (unsigned it = 0; it < iterations; it++) {
		for (int i = 0; i < nfiles; i++) {
			struct bv_toml_doc *doc = NULL;
			if (bv_toml_parse(&doc, texts[i].buf, texts[i].len, files[i], &err) < 0)
				return die(err);
			bytes += texts[i].len;
			if (write) {
				bv_buf_reset(&out);
				bv_toml_write(&out, bv_toml_doc_root(doc));
			}
			bv_toml_doc_free(doc);
		}
	}
	printf("seconds=%.6f bytes=%zu\n", (double)(bv_time_monotonic_ns() - start) / 1e9, bytes);
	for (int i = 0; i < nfiles; i++)
		bv_buf_release(&texts[i]);
	free(texts);
	bv_buf_release(&out);
	return 0;
}

/* A lock shaped like upstream bv 0.1.29's: [tools.<id>] with layers, plus [binary_index]. */
static int generate_lock(unsigned tools, const char *path)
{
	struct bv_toml_doc *doc = bv_toml_doc_new();
	struct bv_toml_table *root = bv_toml_doc_root_mut(doc);
	struct bv_toml_table *meta, *all, *index;
	struct bv_buf text = BV_BUF_INIT;
	struct bv_error *err = NULL;
	char name[64], digest[80];

	bv_toml_table_add_integer(doc, root, "version", 1);
	meta = bv_toml_table_add_table(doc, root, "metadata");
	bv_toml_table_add_string(doc, meta, "bv_version", "0.1.29");
	bv_toml_table_add_string(doc, meta, "generated_at", "2026-11-23T10:00:00Z");
	all = bv_toml_table_add_table(doc, root, "tools");
	index = bv_toml_table_add_table(doc, root, "binary_index");
	for (unsigned i = 0; i < tools; i++) {
		struct bv_toml_table *t, *layer;
		struct bv_toml_array *layers, *bins;
		(void)snprintf(name, sizeof(name), "tool%04u", i);
		(void)snprintf(digest, sizeof(digest), "sha256:%064x", i * 2654435761u);
		t = bv_toml_table_add_table(doc, all, name);
		bv_toml_table_add_string(doc, t, "tool_id", name);
		bv_toml_table_add_string(doc, t, "declared_version_req", "^1.2");
		bv_toml_table_add_string(doc, t, "version", "1.2.3");
		bv_toml_table_add_string(doc, t, "spec_kind", "factored_oci");
		bv_toml_table_add_string(doc, t, "image_reference", "ghcr.io/bv/bv-pkg/tool:1.2.3");
		bv_toml_table_add_string(doc, t, "image_digest", digest);
		bv_toml_table_add_string(doc, t, "manifest_sha256", digest);
		bv_toml_table_add_integer(doc, t, "image_size_bytes", 61234567 + i);
		bv_toml_table_add_string(doc, t, "resolved_at", "2026-11-23T10:00:01Z");
		bv_toml_table_add_table(doc, t, "reference_data_pins");
		layers = bv_toml_table_add_array(doc, t, "layers");
		for (int l = 0; l < 2; l++) {
			struct bv_toml_table *pkg;
			layer = bv_toml_array_push_table(doc, layers);
			bv_toml_table_add_string(doc, layer, "digest", digest);
			bv_toml_table_add_integer(doc, layer, "size", 10485760);
			bv_toml_table_add_string(doc, layer, "media_type",
						 "application/vnd.oci.image.layer.v1.tar+zstd");
			pkg = bv_toml_table_add_table(doc, layer, "conda_package");
			bv_toml_table_add_string(doc, pkg, "name", l ? "htslib" : name);
			bv_toml_table_add_string(doc, pkg, "version", "1.21");
			bv_toml_table_add_string(doc, pkg, "build", "h566b1c6_0");
			bv_toml_table_add_string(doc, pkg, "channel",
						 "https://conda.anaconda.org/bioconda");
			bv_toml_table_add_string(doc, pkg, "sha256", digest + 7);
		}
		bins = bv_toml_table_add_array(doc, t, "binaries");
		for (int b = 0; b < 3; b++) {
			char bin[80];
			(void)snprintf(bin, sizeof(bin), "%s-bin%d", name, b);
			bv_toml_array_push_string(doc, bins, bin);
			bv_toml_table_add_string(doc, index, bin, name);
		}
	}
	bv_toml_write(&text, root);
	bv_toml_doc_free(doc);
	if (bv_write_file_atomic(path, text.buf, text.len, 0644, &err) < 0)
		return die(err);
	bv_buf_release(&text);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n;
	if (argc >= 4 && !strcmp(argv[1], "manifests") && bv_parse_uint(&n, argv[2]) == 0)
		return bench_parse(n, argc - 3, argv + 3, false);
	if (argc == 4 && !strcmp(argv[1], "lock") && bv_parse_uint(&n, argv[2]) == 0)
		return bench_parse(n, 1, argv + 3, true);
	if (argc == 4 && !strcmp(argv[1], "genlock") && bv_parse_uint(&n, argv[2]) == 0)
		return generate_lock(n, argv[3]);
	fprintf(stderr,
		"usage: bench_toml manifests|lock <iterations> <file>... | genlock <tools> <out>\n");
	return 2;
}
