#include <bv/lockfile.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define D4 "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* tests/data/lock/<name>, found from this file's path (meson runs tests in the build dir). */
static char *fixture_path(const char *name)
{
	const char *slash = strrchr(__FILE__, '/');
	int dir_len = slash ? (int)(slash - __FILE__) : 0;
	char *rel = bv_xasprintf("%.*s%s../../../data/lock/%s", dir_len, __FILE__, slash ? "/" : "",
				 name);
	char exe[4096], *path;
	ssize_t n;
	if (rel[0] == '/' || access(rel, F_OK) == 0)
		return rel;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || !memchr(exe, '/', (size_t)n))
		return rel;
	exe[n] = '\0';
	path = bv_xasprintf("%.*s/../../../%s", (int)(strrchr(exe, '/') - exe), exe, rel);
	free(rel);
	return path;
}

static char *write_lock(const struct bv_lockfile *lock)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_lockfile_write(&b, lock);
	return bv_buf_detach(&b, NULL);
}

static struct bv_lockfile *parse_ok(const char *text)
{
	struct bv_lockfile *lock = NULL;
	struct bv_error *err = NULL;
	assert_ok(bv_lockfile_parse(&lock, text, strlen(text), "bv.lock", &err), &err);
	assert_non_null(lock);
	return lock;
}

/* Parses `text`, which must fail with BV_EINVALID; returns the message (caller frees). */
static char *parse_fail(const char *text)
{
	struct bv_lockfile *lock = NULL;
	struct bv_error *err = NULL;
	char *msg;
	int r = bv_lockfile_parse(&lock, text, strlen(text), "bv.lock", &err);
	assert_int_equal(r, BV_EINVALID);
	assert_null(lock);
	assert_non_null(err);
	assert_int_equal(err->code, BV_EINVALID);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

static void assert_parse_error(const char *text, const char *expected)
{
	char *msg = parse_fail(text);
	assert_string_equal(msg, expected);
	free(msg);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Field-by-field equality of two locks (every field, including the ignored-by-diff ones). */
static void assert_lock_equal(const struct bv_lockfile *a, const struct bv_lockfile *b)
{
	assert_int_equal(a->version, b->version);
	assert_true(str_eq(a->bv_version, b->bv_version));
	assert_true(str_eq(a->generated_at, b->generated_at));
	assert_true(str_eq(a->hardware_summary, b->hardware_summary));
	assert_int_equal(a->n_tools, b->n_tools);
	for (size_t i = 0; i < a->n_tools; i++) {
		const struct bv_lock_tool *x = &a->tools[i], *y = &b->tools[i];
		assert_string_equal(x->tool_id, y->tool_id);
		assert_string_equal(x->declared_version_req, y->declared_version_req);
		assert_string_equal(x->version, y->version);
		assert_int_equal(x->factored, y->factored);
		assert_string_equal(x->image_reference, y->image_reference);
		assert_string_equal(x->image_digest, y->image_digest);
		assert_string_equal(x->manifest_sha256, y->manifest_sha256);
		assert_int_equal(x->image_size_bytes, y->image_size_bytes);
		assert_string_equal(x->resolved_at, y->resolved_at);
		assert_int_equal(x->binaries.n, y->binaries.n);
		for (size_t j = 0; j < x->binaries.n; j++)
			assert_string_equal(x->binaries.v[j], y->binaries.v[j]);
		assert_int_equal(x->n_layers, y->n_layers);
		for (size_t j = 0; j < x->n_layers; j++) {
			const struct bv_lock_layer *l = &x->layers[j], *m = &y->layers[j];
			assert_string_equal(l->digest, m->digest);
			assert_int_equal(l->size, m->size);
			assert_string_equal(l->media_type, m->media_type);
			assert_int_equal(!l->conda, !m->conda);
			if (l->conda && m->conda) {
				assert_string_equal(l->conda->name, m->conda->name);
				assert_string_equal(l->conda->version, m->conda->version);
				assert_string_equal(l->conda->build, m->conda->build);
				assert_string_equal(l->conda->channel, m->conda->channel);
				assert_string_equal(l->conda->sha256, m->conda->sha256);
			}
		}
		assert_int_equal(x->n_pins, y->n_pins);
		for (size_t j = 0; j < x->n_pins; j++) {
			assert_string_equal(x->pins[j].key, y->pins[j].key);
			assert_string_equal(x->pins[j].id, y->pins[j].id);
			assert_string_equal(x->pins[j].version, y->pins[j].version);
			assert_string_equal(x->pins[j].sha256, y->pins[j].sha256);
		}
	}
	assert_int_equal(a->n_binary_index, b->n_binary_index);
	for (size_t i = 0; i < a->n_binary_index; i++) {
		assert_string_equal(a->binary_index[i].binary, b->binary_index[i].binary);
		assert_string_equal(a->binary_index[i].tool, b->binary_index[i].tool);
	}
}

/* Writes, parses and writes again: the model and the bytes must survive unchanged. */
static void assert_round_trip(const struct bv_lockfile *lock)
{
	char *first = write_lock(lock), *second;
	struct bv_lockfile *back = parse_ok(first);
	assert_lock_equal(lock, back);
	second = write_lock(back);
	assert_string_equal(first, second);
	free(first);
	free(second);
	bv_lockfile_free(back);
}

static struct bv_lock_tool *add_tool(struct bv_lockfile *lock, const char *id, const char *version,
				     const char *digest, const char *const *binaries)
{
	struct bv_lock_tool *t = bv_lockfile_upsert(lock, id);
	bv_lock_set_string(&t->version, version);
	bv_lock_set_string(&t->image_reference, "quay.io/biocontainers/x:1");
	bv_lock_set_string(&t->image_digest, digest);
	bv_lock_set_string(&t->manifest_sha256, D3);
	bv_lock_set_string(&t->resolved_at, "2026-05-06T10:00:01Z");
	t->image_size_bytes = 1000;
	for (; binaries && *binaries; binaries++)
		bv_strv_push(&t->binaries, *binaries);
	return t;
}

static void test_lockfile__parses_upstream_example(void **state)
{
	(void)state;
	struct bv_lockfile *lock = NULL;
	struct bv_error *err = NULL;
	char *path = fixture_path("upstream-example.lock");
	const struct bv_lock_tool *t;

	assert_ok(bv_lockfile_load(&lock, path, &err), &err);
	assert_int_equal(lock->version, 1);
	assert_string_equal(lock->bv_version, "0.1.29");
	assert_string_equal(lock->generated_at, "2026-05-06T10:00:00Z");
	assert_null(lock->hardware_summary);
	assert_int_equal(lock->n_tools, 1);
	t = bv_lockfile_find(lock, "samtools");
	assert_ptr_equal(t, &lock->tools[0]);
	assert_string_equal(t->tool_id, "samtools");
	assert_string_equal(t->declared_version_req, "");
	assert_string_equal(t->version, "1.21.0");
	assert_true(t->factored);
	assert_string_equal(t->image_reference, "ghcr.io/tejasprabhune/bv-pkg/samtools:1.21.0");
	assert_string_equal(
		t->image_digest,
		"sha256:dfe7e8f3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c");
	assert_int_equal(t->image_size_bytes, 61234567);
	assert_string_equal(t->resolved_at, "2026-05-06T10:00:01Z");
	assert_int_equal(t->binaries.n, 1);
	assert_string_equal(t->binaries.v[0], "samtools");
	assert_int_equal(t->n_pins, 0);
	assert_int_equal(t->n_layers, 1);
	assert_int_equal(t->layers[0].size, 10485760);
	assert_string_equal(t->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
	assert_non_null(t->layers[0].conda);
	assert_string_equal(t->layers[0].conda->name, "htslib");
	assert_string_equal(t->layers[0].conda->version, "1.21");
	assert_string_equal(t->layers[0].conda->build, "h5efdd21_0");
	assert_string_equal(t->layers[0].conda->channel, "https://conda.anaconda.org/bioconda");
	assert_int_equal(lock->n_binary_index, 1);
	assert_string_equal(lock->binary_index[0].binary, "samtools");
	assert_string_equal(lock->binary_index[0].tool, "samtools");
	assert_round_trip(lock);
	bv_lockfile_free(lock);
	free(path);
}

static void test_lockfile__writes_exact_layout(void **state)
{
	(void)state;
	struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 1778061600);
	static const char *const bins[] = {"bwa", NULL};
	struct bv_lock_tool *t = add_tool(lock, "bwa", "0.7.18", D1, bins);
	char *text;

	t->image_size_bytes = -1;
	bv_lock_set_string(&t->manifest_sha256, "");
	text = write_lock(lock);
	/* Empty optional fields are omitted; binaries, layers, pins and manifest stay. */
	assert_string_equal(text, "version = 1\n"
				  "\n"
				  "[metadata]\n"
				  "bv_version = \"0.2.0\"\n"
				  "generated_at = \"2026-05-06T10:00:00Z\"\n"
				  "\n"
				  "[tools.bwa]\n"
				  "binaries = [\"bwa\"]\n"
				  "image_digest = \"" D1 "\"\n"
				  "image_reference = \"quay.io/biocontainers/x:1\"\n"
				  "layers = []\n"
				  "manifest_sha256 = \"\"\n"
				  "resolved_at = \"2026-05-06T10:00:01Z\"\n"
				  "tool_id = \"bwa\"\n"
				  "version = \"0.7.18\"\n"
				  "\n"
				  "[tools.bwa.reference_data_pins]\n");
	free(text);
	assert_round_trip(lock);

	/* Set optional fields appear, with upstream's names. */
	bv_lock_set_string(&t->declared_version_req, ">=0.7");
	t->factored = true;
	t->image_size_bytes = 0;
	lock->hardware_summary = bv_xstrdup("x86_64");
	text = write_lock(lock);
	assert_non_null(strstr(text, "declared_version_req = \">=0.7\"\n"));
	assert_non_null(strstr(text, "spec_kind = \"factored_oci\"\n"));
	assert_non_null(strstr(text, "image_size_bytes = 0\n"));
	assert_non_null(strstr(text, "hardware_summary = \"x86_64\"\n"));
	assert_null(strstr(text, "[binary_index]"));
	free(text);
	assert_round_trip(lock);
	bv_lockfile_free(lock);

	/* A lock without tools still has [tools], which upstream's map needs. */
	lock = bv_lockfile_new("0.2.0", 0);
	text = write_lock(lock);
	assert_string_equal(text, "version = 1\n\n[metadata]\nbv_version = \"0.2.0\"\n"
				  "generated_at = \"1970-01-01T00:00:00Z\"\n\n[tools]\n");
	free(text);
	assert_round_trip(lock);
	bv_lockfile_free(lock);
}

static void test_lockfile__hand_written_round_trip(void **state)
{
	(void)state;
	/*
	 * Keys, tools and index in an order the writer never uses, metadata as dotted keys
	 * before `version`; legacy spec_kind spelled out.
	 */
	static const char text[] =
		"metadata.generated_at = \"2026-05-06T10:00:00Z\"\n"
		"metadata.bv_version = \"0.1.29\"\n"
		"version = 1\n"
		"[binary_index]\n"
		"view = \"samtools\"\n"
		"bwa = \"bwa\"\n"
		"[tools.samtools]\n"
		"resolved_at = \"2026-05-06T10:00:01.5+02:00\"\n"
		"binaries = [\"view\", \"samtools\"]\n"
		"tool_id = \"samtools\"\n"
		"image_digest = \"" D2 "\"\n"
		"version = \"1.21.0\"\n"
		"image_reference = \"quay.io/biocontainers/samtools:1.21--h50ea8bc_0\"\n"
		"manifest_sha256 = \"" D3 "\"\n"
		"spec_kind = \"legacy_image\"\n"
		"declared_version_req = \"^1.20\"\n"
		"layers = [{ size = 5, media_type = \"m\", digest = \"" D4 "\" },\n"
		"          { digest = \"" D1 "\", media_type = \"m2\", size = 0 }]\n"
		"[tools.samtools.reference_data_pins.zeta]\n"
		"version = \"2\"\n"
		"id = \"hg38\"\n"
		"sha256 = \"abc\"\n"
		"[tools.samtools.reference_data_pins.alpha]\n"
		"sha256 = \"\"\n"
		"id = \"grch37\"\n"
		"version = \"1\"\n"
		"[tools.bwa]\n"
		"tool_id = \"bwa\"\n"
		"version = \"0.7.18\"\n"
		"image_reference = \"r\"\n"
		"image_digest = \"\"\n"
		"resolved_at = \"2026-05-06T10:00:01Z\"\n"
		"binaries = [\"bwa\"]\n";
	struct bv_lockfile *lock = parse_ok(text), *back;
	char *written;

	assert_int_equal(lock->n_tools, 2);
	assert_string_equal(lock->tools[0].tool_id, "bwa");
	assert_string_equal(lock->tools[1].tool_id, "samtools");
	assert_false(lock->tools[1].factored);
	assert_int_equal(lock->tools[0].image_size_bytes, -1);
	assert_string_equal(lock->tools[0].manifest_sha256, "");
	assert_string_equal(lock->tools[1].resolved_at, "2026-05-06T10:00:01.5+02:00");
	assert_int_equal(lock->tools[1].n_layers, 2);
	assert_string_equal(lock->tools[1].layers[0].digest, D4);
	assert_null(lock->tools[1].layers[0].conda);
	assert_int_equal(lock->tools[1].n_pins, 2);
	assert_string_equal(lock->tools[1].pins[0].key, "alpha");
	assert_string_equal(lock->tools[1].pins[1].id, "hg38");
	assert_string_equal(lock->binary_index[0].binary, "bwa");
	assert_string_equal(lock->binary_index[1].binary, "view");

	written = write_lock(lock);
	assert_null(strstr(written, "spec_kind"));
	assert_non_null(strstr(written, "[[tools.samtools.layers]]\ndigest = \"" D4 "\"\n"));
	assert_non_null(strstr(written, "[tools.samtools.reference_data_pins.alpha]\n"));
	back = parse_ok(written);
	assert_lock_equal(lock, back);
	assert_round_trip(back);
	free(written);
	bv_lockfile_free(back);
	bv_lockfile_free(lock);
}

static void test_lockfile__deterministic(void **state)
{
	(void)state;
	static const char *const ids[] = {"samtools", "bwa", "minimap2", "bcftools"};
	static const int orders[][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}};
	char *first = NULL;

	for (size_t o = 0; o < BV_ARRAY_SIZE(orders); o++) {
		struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 1778061600);
		struct bv_error *err = NULL;
		char *text;
		for (size_t i = 0; i < 4; i++) {
			const char *id = ids[orders[o][i]];
			const char *bins[] = {id, NULL};
			struct bv_lock_tool *t = add_tool(lock, id, "1.0", D1, bins);
			/* Pins added in a different order as well. */
			bv_lock_tool_set_pin(t, i % 2 ? "b" : "a");
			bv_lock_tool_set_pin(t, i % 2 ? "a" : "b");
		}
		for (size_t i = 1; i < lock->n_tools; i++)
			assert_true(strcmp(lock->tools[i - 1].tool_id, lock->tools[i].tool_id) < 0);
		assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
		text = write_lock(lock);
		if (!first)
			first = text;
		else {
			assert_string_equal(first, text);
			free(text);
		}
		bv_lockfile_free(lock);
	}
	assert_true(strstr(first, "[tools.bcftools]") < strstr(first, "[tools.bwa]"));
	assert_true(strstr(first, "[tools.minimap2]") < strstr(first, "[tools.samtools]"));
	free(first);
}

#define MINIMAL_HEAD                \
	"version = 1\n"             \
	"[metadata]\n"              \
	"bv_version = \"0.1.29\"\n" \
	"generated_at = \"2026-05-06T10:00:00Z\"\n"
#define TOOL_BODY                     \
	"version = \"1.21.0\"\n"      \
	"image_reference = \"r\"\n"   \
	"image_digest = \"" D1 "\"\n" \
	"resolved_at = \"2026-05-06T10:00:01Z\"\n"

static void test_lockfile__newer_version_refused(void **state)
{
	(void)state;
	/* The upgrade hint wins over the unknown keys a newer format would carry. */
	assert_parse_error("version = 2\n[metadata]\nbv_version = \"9\"\nfuture = true\n",
			   "bv.lock:1:1: lock file format version 2 is newer than this bv "
			   "understands (1); upgrade bv");
	assert_parse_error("# comment\n  version = 7\n",
			   "bv.lock:2:3: lock file format version 7 is newer than this bv "
			   "understands (1); upgrade bv");
	assert_parse_error("version = 0\n",
			   "bv.lock:1:1: invalid lock file format version 0; expected 1");
	assert_parse_error("version = -1\n",
			   "bv.lock:1:1: invalid lock file format version -1; expected 1");
	assert_parse_error("version = \"1\"\n",
			   "bv.lock:1:11: 'version' in the top level must be an integer, not a "
			   "string");
	assert_parse_error("[metadata]\n", "bv.lock:1:1: missing key 'version' in the top level");
}

static void test_lockfile__unknown_keys_rejected(void **state)
{
	(void)state;
	assert_parse_error("version = 1\nextra = 1\n[metadata]\nbv_version = \"1\"\n"
			   "generated_at = \"2026-05-06T10:00:00Z\"\n",
			   "bv.lock:2:1: unknown key 'extra' in the top level");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"image_tag = \"x\"\n",
			   "bv.lock:11:1: unknown key 'image_tag' in [tools.bwa]");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"[tools.bwa.reference_data_pins.hg]\nid = \"hg38\"\n"
					"version = \"1\"\nsha256 = \"\"\nurl = \"u\"\n",
			   "bv.lock:15:1: unknown key 'url' in "
			   "[tools.bwa.reference_data_pins.hg]");
}

/*
 * What upstream's serde reads without complaint: no [metadata] (#[serde(default)]), and keys
 * it does not know in [metadata], in a layer and in a layer's conda package (only the top
 * level and [tools.<id>] deny unknown fields).
 */
static void test_lockfile__upstream_leniency(void **state)
{
	static const char *const texts[] = {
		"version = 1\n",
		"version = 1\n[metadata]\nbv_version = \"1\"\n",
		MINIMAL_HEAD "extra = 1\n",
		MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
			     "[[tools.bwa.layers]]\ndigest = \"" D2 "\"\n"
			     "size = 1\nmedia_type = \"m\"\nannotations = {}\n"
			     "[tools.bwa.layers.conda_package]\nname = \"n\"\n"
			     "version = \"v\"\nbuild = \"b\"\nchannel = \"c\"\n"
			     "sha256 = \"s\"\nsubdir = \"linux-64\"\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct bv_lockfile *lock = NULL;
		struct bv_error *err = NULL;
		assert_ok(bv_lockfile_parse(&lock, texts[i], strlen(texts[i]), "bv.lock", &err),
			  &err);
		assert_non_null(lock->bv_version);
		assert_non_null(lock->generated_at);
		bv_lockfile_free(lock);
	}
}

static void test_lockfile__tool_id_must_match_key(void **state)
{
	(void)state;
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa-mem2\"\n" TOOL_BODY,
			   "bv.lock:6:11: 'tool_id' is 'bwa-mem2' but the table is [tools.bwa]");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\n" TOOL_BODY,
			   "bv.lock:5:1: missing key 'tool_id' in [tools.bwa]");
}

static void test_lockfile__bad_digests_rejected(void **state)
{
	(void)state;
	char *msg;
	/* Upper-case hex. */
	msg = parse_fail(MINIMAL_HEAD
			 "[tools.bwa]\ntool_id = \"bwa\"\nversion = \"1\"\n"
			 "image_reference = \"r\"\nimage_digest = \"sha256:"
			 "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"\n"
			 "resolved_at = \"2026-05-06T10:00:01Z\"\n");
	assert_non_null(strstr(msg, "bv.lock:9:16: 'image_digest' in [tools.bwa] must be 'sha256:' "
				    "and 64 lowercase hex digits, not 'sha256:ABCDEF"));
	free(msg);
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"manifest_sha256 = \"9a1c\"\n",
			   "bv.lock:11:19: 'manifest_sha256' in [tools.bwa] must be 'sha256:' and "
			   "64 lowercase hex digits, not '9a1c'");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"[[tools.bwa.layers]]\ndigest = \"md5:abc\"\n"
					"size = 1\nmedia_type = \"m\"\n",
			   "bv.lock:12:10: 'digest' in [[tools.bwa.layers]] must be 'sha256:' and "
			   "64 lowercase hex digits, not 'md5:abc'");

	assert_int_equal(bv_lockfile_validate_digest(D1), 0);
	assert_int_equal(bv_lockfile_validate_digest(D3), 0);
	assert_int_equal(bv_lockfile_validate_digest(""), BV_EINVALID);
	assert_int_equal(bv_lockfile_validate_digest(NULL), BV_EINVALID);
	assert_int_equal(bv_lockfile_validate_digest(D1 "1"), BV_EINVALID);
	assert_int_equal(
		bv_lockfile_validate_digest("sha512:1111111111111111111111111111111111111111"
					    "111111111111111111111111"),
		BV_EINVALID);
	assert_int_equal(
		bv_lockfile_validate_digest("sha256:111111111111111111111111111111111111111"
					    "111111111111111111111g"),
		BV_EINVALID);
}

static void test_lockfile__numbers_and_timestamps(void **state)
{
	(void)state;
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"image_size_bytes = 1.5\n",
			   "bv.lock:11:20: 'image_size_bytes' in [tools.bwa] must be an integer, "
			   "not a float");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"[[tools.bwa.layers]]\ndigest = \"" D2 "\"\n"
					"size = 1e3\nmedia_type = \"m\"\n",
			   "bv.lock:13:8: 'size' in [[tools.bwa.layers]] must be an integer, not "
			   "a float");
	assert_parse_error("version = 1.0\n",
			   "bv.lock:1:11: 'version' in the top level must be an integer, not a "
			   "float");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"image_size_bytes = -5\n",
			   "bv.lock:11:20: 'image_size_bytes' in [tools.bwa] must not be negative");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\nversion = \"1\"\n"
					"image_reference = \"r\"\nimage_digest = \"\"\n"
					"resolved_at = \"yesterday\"\n",
			   "bv.lock:10:15: 'resolved_at' in [tools.bwa] must be an RFC 3339 "
			   "timestamp, not 'yesterday'");
	assert_parse_error("version = 1\n[metadata]\nbv_version = \"1\"\n"
			   "generated_at = \"2026-05-06 10:00\"\n",
			   "bv.lock:4:16: 'generated_at' in [metadata] must be an RFC 3339 "
			   "timestamp, not '2026-05-06 10:00'");
	/* A TOML datetime is not the string upstream writes. */
	assert_parse_error("version = 1\n[metadata]\nbv_version = \"1\"\n"
			   "generated_at = 2026-05-06T10:00:00Z\n",
			   "bv.lock:4:16: 'generated_at' in [metadata] must be a string, not an "
			   "offset datetime");
}

static void test_lockfile__missing_and_mistyped_fields(void **state)
{
	(void)state;
	assert_parse_error(MINIMAL_HEAD
			   "[tools.bwa]\ntool_id = \"bwa\"\nversion = \"1\"\n"
			   "image_digest = \"\"\nresolved_at = \"2026-05-06T10:00:01Z\"\n",
			   "bv.lock:5:1: missing key 'image_reference' in [tools.bwa]");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"[[tools.bwa.layers]]\ndigest = \"" D2 "\"\n"
					"media_type = \"m\"\n",
			   "bv.lock:11:1: missing key 'size' in [[tools.bwa.layers]]");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"binaries = [\"bwa\", 3]\n",
			   "bv.lock:11:20: 'binaries' in [tools.bwa] must be an array of strings");
	assert_parse_error(MINIMAL_HEAD "[tools.bwa]\ntool_id = \"bwa\"\n" TOOL_BODY
					"spec_kind = \"conda\"\n",
			   "bv.lock:11:13: unknown 'spec_kind' 'conda' in [tools.bwa]; expected "
			   "legacy_image or factored_oci");
	assert_parse_error(MINIMAL_HEAD "[tools]\nbwa = 1\n",
			   "bv.lock:6:7: 'bwa' in [tools] must be a table, not an integer");
	assert_parse_error(MINIMAL_HEAD "[binary_index]\nbwa = \"bwa\"\n",
			   "bv.lock:6:7: binary 'bwa' in [binary_index] names tool 'bwa', which is "
			   "not locked");
	/* TOML syntax errors keep their own position. */
	{
		char *msg = parse_fail("version = = 1\n");
		assert_ptr_equal(strstr(msg, "bv.lock:1:11: "), msg);
		free(msg);
	}
}

static void test_lockfile__load_and_save(void **state)
{
	(void)state;
	char *dir = test_mkdtemp("lockfile");
	char *path, *text;
	struct bv_lockfile *lock = NULL, *back = NULL, *refused = NULL;
	struct bv_error *err = NULL;
	struct bv_buf on_disk = BV_BUF_INIT;
	static const char *const bins[] = {"samtools", NULL};
	DIR *d;
	struct dirent *e;
	size_t entries = 0;

	assert_non_null(dir);
	path = bv_path_join(dir, "bv.lock");
	assert_int_equal(bv_lockfile_load(&lock, path, &err), BV_ENOTFOUND);
	assert_null(lock);
	bv_error_free(err);
	err = NULL;

	assert_ok(bv_write_file_atomic(path, "old contents\n", 13, 0600, &err), &err);
	lock = bv_lockfile_new("0.2.0", 1778061600);
	add_tool(lock, "samtools", "1.21.0", D1, bins);
	assert_ok(bv_lockfile_save(lock, path, &err), &err);

	assert_ok(bv_buf_read_file(&on_disk, path, 1 << 20, &err), &err);
	text = write_lock(lock);
	assert_string_equal(on_disk.buf, text);
	free(text);
	assert_ok(bv_lockfile_load(&back, path, &err), &err);
	assert_lock_equal(lock, back);

	/* Only bv.lock is left: no temporary file next to it. */
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			assert_string_equal(e->d_name, "bv.lock");
			entries++;
		}
	closedir(d);
	assert_int_equal(entries, 1);

	/* Errors from a file name the file. */
	assert_ok(bv_write_file_atomic(path, "version = 3\n", 12, 0644, &err), &err);
	assert_int_equal(bv_lockfile_load(&refused, path, &err), BV_EINVALID);
	assert_null(refused);
	text = bv_error_format(err);
	assert_non_null(strstr(text, "/bv.lock:1:1: lock file format version 3 is newer"));
	assert_ptr_equal(strstr(text, dir), text);
	free(text);
	bv_error_free(err);

	bv_lockfile_free(lock);
	bv_lockfile_free(back);
	bv_buf_release(&on_disk);
	assert_ok(bv_rm_rf(dir, &err), &err);
	free(path);
	free(dir);
}

/* Whether this process maps a file whose path ends in `suffix` (/proc/self/maps). */
static bool maps_file(const char *suffix)
{
	struct bv_buf maps = BV_BUF_INIT;
	bool found = false;
	size_t n = strlen(suffix);
	assert_int_equal(bv_buf_read_file(&maps, "/proc/self/maps", 1 << 24, NULL), 0);
	for (char *line = maps.buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strlen(line) >= n && strcmp(line + strlen(line) - n, suffix) == 0)
			found = true;
	}
	bv_buf_release(&maps);
	return found;
}

/*
 * A lock read through .bv/lock.idx keeps its strings in the index's mapping (lockindex.c): it
 * is edited and freed like any other (a wrong free() is a sanitizer error), gives what the
 * parser gives, and its mapping goes with it.
 */
static void test_lockfile__lent_from_index(void **state)
{
	(void)state;
	char *dir = test_mkdtemp("lockfile");
	char *path, *bv_dir;
	struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 1778061600), *back = NULL,
			   *parsed = NULL;
	struct bv_lockfile *copy;
	struct bv_lock_tool *t;
	struct bv_error *err = NULL;
	struct bv_buf text = BV_BUF_INIT;
	static const char *const bins[] = {"samtools", "bgzip", NULL};
	static const char *const bwa_bins[] = {"bwa", NULL};

	assert_non_null(dir);
	bv_dir = bv_path_join(dir, ".bv");
	assert_int_equal(mkdir(bv_dir, 0755), 0);
	path = bv_path_join(dir, "bv.lock");
	t = add_tool(lock, "samtools", "1.21.0", D1, bins);
	{
		struct bv_lock_data_pin *pin = bv_lock_tool_set_pin(t, "ref");
		struct bv_lock_layer *l = bv_lock_tool_add_layer(t);
		bv_lock_set_string(&pin->id, "grch38");
		bv_lock_set_string(&pin->version, "1");
		bv_lock_set_string(&pin->sha256, D1 + 7);
		bv_lock_set_string(&l->digest, D2);
		bv_lock_set_string(&l->media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
		l->size = 10;
	}
	add_tool(lock, "bwa", "0.7.18", D2, bwa_bins);
	assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
	/* the writer indexes what it wrote once bv.lock's ctime has settled (a few ms) */
	assert_ok(bv_lockfile_save(lock, path, &err), &err);
	assert_false(maps_file("/.bv/lock.idx"));
	assert_ok(bv_lockfile_load(&back, path, &err), &err);
	assert_true(maps_file("/.bv/lock.idx"));
	assert_ok(bv_buf_read_file(&text, path, 1 << 20, &err), &err);
	assert_ok(bv_lockfile_parse(&parsed, text.buf, text.len, path, &err), &err);
	assert_lock_equal(parsed, back);

	/* every way of replacing or dropping a string of the lent lock */
	copy = bv_lockfile_clone(back);
	t = bv_lockfile_find(back, "samtools");
	bv_lock_set_string(&t->version, "1.22.0");
	bv_lock_set_string(&t->pins[0].id, "hg38");
	bv_lock_tool_clear_layers(t);
	bv_strv_clear(&t->binaries);
	bv_strv_push(&t->binaries, "samtools");
	assert_ok(bv_lockfile_rebuild_binary_index(back, NULL, NULL, 0, &err), &err);
	assert_int_equal(bv_lockfile_remove(back, "bwa"), 0);
	assert_int_equal(back->n_binary_index, 2); /* not rebuilt since: bwa's entry stays */
	assert_string_equal(bv_lockfile_find(back, "samtools")->version, "1.22.0");
	assert_lock_equal(parsed, copy);
	bv_lockfile_free(back);
	back = NULL;
	/* the mapping went with the lock; the clone owns copies */
	assert_false(maps_file("/.bv/lock.idx"));
	assert_string_equal(bv_lockfile_find(copy, "bwa")->image_digest, D2);
	bv_lockfile_free(copy);
	bv_lockfile_free(lock);
	bv_lockfile_free(parsed);
	bv_buf_release(&text);
	assert_ok(bv_rm_rf(dir, &err), &err);
	free(bv_dir);
	free(path);
	free(dir);
}

/* Loads `path` and says whether the lock came from the index (it then maps it). */
static bool loads_from_index(const char *path)
{
	struct bv_lockfile *lock = NULL;
	struct bv_error *err = NULL;
	bool mapped;
	assert_ok(bv_lockfile_load(&lock, path, &err), &err);
	mapped = maps_file("/.bv/lock.idx");
	assert_non_null(bv_lockfile_find(lock, "bwa"));
	bv_lockfile_free(lock);
	return mapped;
}

/*
 * An index of another format, or with damage to its payload that the checksum must see (one
 * byte; the same high bit of two words, which a plain multiply-and-xor misses), is not
 * used: bv.lock is parsed, and the index written again, as it was.
 */
static void test_lockfile__index_format_and_damage(void **state)
{
	(void)state;
	char *dir = test_mkdtemp("lockfile");
	char *path, *bv_dir, *idx;
	struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 1778061600);
	struct bv_error *err = NULL;
	struct bv_buf good = BV_BUF_INIT;
	static const char *const bins[] = {"samtools", "bgzip", NULL};
	static const char *const bwa_bins[] = {"bwa", NULL};
	const size_t header = 8 + 8 + 8 + 64 + 8 * BV_STAT_KEY_LEN + 8 + 8;
	struct {
		size_t at;
		unsigned char xor ;
	} damage[][2] = {
		{{8, 0x01}, {0, 0}},                       /* the format */
		{{header + 3, 0x20}, {0, 0}},              /* a byte of the payload */
		{{header + 7, 0x80}, {header + 15, 0x80}}, /* bit 63 of two words */
		{{header + 7, 0x80}, {header + 39, 0x80}}, /* of two words of one lane */
	};

	assert_non_null(dir);
	bv_dir = bv_path_join(dir, ".bv");
	assert_int_equal(mkdir(bv_dir, 0755), 0);
	path = bv_path_join(dir, "bv.lock");
	idx = bv_path_join(bv_dir, "lock.idx");
	add_tool(lock, "samtools", "1.21.0", D1, bins);
	add_tool(lock, "bwa", "0.7.18", D2, bwa_bins);
	assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
	assert_ok(bv_lockfile_save(lock, path, &err), &err);
	assert_true(loads_from_index(path));
	assert_ok(bv_buf_read_file(&good, idx, 1 << 20, &err), &err);
	assert_true(good.len > header + 40);
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		struct bv_buf again = BV_BUF_INIT;
		char *bad = bv_xmalloc(good.len);
		memcpy(bad, good.buf, good.len);
		for (size_t j = 0; j < 2; j++)
			bad[damage[i][j].at] = (char)(bad[damage[i][j].at] ^ damage[i][j].xor);
		assert_ok(bv_write_file_atomic(idx, bad, good.len, 0644, &err), &err);
		if (loads_from_index(path))
			fail_msg("damage %zu: the index was used", i);
		/* parsed, and indexed again as before */
		assert_ok(bv_buf_read_file(&again, idx, 1 << 20, &err), &err);
		assert_int_equal(again.len, good.len);
		assert_memory_equal(again.buf, good.buf, good.len);
		assert_true(loads_from_index(path));
		bv_buf_release(&again);
		free(bad);
	}
	bv_lockfile_free(lock);
	bv_buf_release(&good);
	assert_ok(bv_rm_rf(dir, &err), &err);
	free(idx);
	free(bv_dir);
	free(path);
	free(dir);
}

static void test_lockfile__find_upsert_remove(void **state)
{
	(void)state;
	struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 0);
	struct bv_lock_tool *t;

	assert_null(bv_lockfile_find(lock, "bwa"));
	t = bv_lockfile_upsert(lock, "samtools");
	assert_string_equal(t->tool_id, "samtools");
	assert_string_equal(t->version, "");
	assert_int_equal(t->image_size_bytes, -1);
	assert_int_equal(t->binaries.n, 0);
	bv_lock_set_string(&t->version, "1.21");
	bv_lockfile_upsert(lock, "bwa");
	bv_lockfile_upsert(lock, "zstd");
	t = bv_lockfile_upsert(lock, "samtools");
	assert_string_equal(t->version, "1.21");
	assert_int_equal(lock->n_tools, 3);
	assert_string_equal(lock->tools[0].tool_id, "bwa");
	assert_string_equal(lock->tools[1].tool_id, "samtools");
	assert_string_equal(lock->tools[2].tool_id, "zstd");
	assert_ptr_equal(bv_lockfile_find(lock, "zstd"), &lock->tools[2]);

	assert_int_equal(bv_lockfile_remove(lock, "nope"), BV_ENOTFOUND);
	assert_int_equal(bv_lockfile_remove(lock, "samtools"), 0);
	assert_int_equal(lock->n_tools, 2);
	assert_null(bv_lockfile_find(lock, "samtools"));
	assert_string_equal(bv_lockfile_find(lock, "zstd")->tool_id, "zstd");
	assert_int_equal(bv_lockfile_remove(lock, "bwa"), 0);
	assert_int_equal(bv_lockfile_remove(lock, "zstd"), 0);
	assert_int_equal(lock->n_tools, 0);
	bv_lockfile_free(lock);
}

static char *rebuild_fail(struct bv_lockfile *lock, const char *const *bins,
			  const char *const *tools, size_t n)
{
	struct bv_error *err = NULL;
	char *msg;
	assert_int_equal(bv_lockfile_rebuild_binary_index(lock, bins, tools, n, &err), BV_EINVALID);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

static void test_lockfile__binary_index(void **state)
{
	(void)state;
	struct bv_lockfile *lock = bv_lockfile_new("0.2.0", 0);
	struct bv_error *err = NULL;
	static const char *const sam_bins[] = {"samtools", "htsfile", "bgzip", NULL};
	static const char *const bcf_bins[] = {"bcftools", "bgzip", "htsfile", NULL};
	static const char *const bwa_bins[] = {"bwa", NULL};
	static const char *const ob[] = {"bgzip", "htsfile"};
	static const char *const ot[] = {"samtools", "bcftools"};
	char *msg;

	add_tool(lock, "samtools", "1.21", D1, sam_bins);
	add_tool(lock, "bwa", "0.7.18", D2, bwa_bins);
	assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
	assert_int_equal(lock->n_binary_index, 4);
	assert_string_equal(lock->binary_index[0].binary, "bgzip");
	assert_string_equal(lock->binary_index[1].binary, "bwa");
	assert_string_equal(lock->binary_index[1].tool, "bwa");
	assert_string_equal(lock->binary_index[3].binary, "samtools");

	add_tool(lock, "bcftools", "1.21", D3, bcf_bins);
	msg = rebuild_fail(lock, NULL, NULL, 0);
	assert_string_equal(msg, "binary 'bgzip' is provided by both 'bcftools' and 'samtools'; "
				 "choose one in bv.toml:\n"
				 "  [binary_overrides]\n"
				 "  bgzip = \"bcftools\"");
	free(msg);
	/* Unchanged on error: still the four entries from before bcftools. */
	assert_int_equal(lock->n_binary_index, 4);
	assert_string_equal(lock->binary_index[0].tool, "samtools");

	/* One override is not enough: htsfile collides too. */
	msg = rebuild_fail(lock, ob, ot, 1);
	assert_non_null(strstr(msg, "binary 'htsfile' is provided by both 'bcftools' and "
				    "'samtools'"));
	free(msg);

	assert_ok(bv_lockfile_rebuild_binary_index(lock, ob, ot, 2, &err), &err);
	assert_int_equal(lock->n_binary_index, 5);
	assert_string_equal(lock->binary_index[0].binary, "bcftools");
	assert_string_equal(lock->binary_index[1].binary, "bgzip");
	assert_string_equal(lock->binary_index[1].tool, "samtools");
	assert_string_equal(lock->binary_index[3].binary, "htsfile");
	assert_string_equal(lock->binary_index[3].tool, "bcftools");
	assert_round_trip(lock);

	{
		static const char *const b1[] = {"bgzip"}, *const t1[] = {"htslib"};
		static const char *const b2[] = {"tabix"}, *const t2[] = {"samtools"};
		static const char *const b3[] = {"bwa"}, *const t3[] = {"samtools"};
		msg = rebuild_fail(lock, b1, t1, 1);
		assert_string_equal(msg,
				    "binary override 'bgzip' names tool 'htslib', which is not "
				    "locked");
		free(msg);
		msg = rebuild_fail(lock, b2, t2, 1);
		assert_string_equal(msg, "binary override 'tabix' names a binary no locked tool "
					 "provides");
		free(msg);
		msg = rebuild_fail(lock, b3, t3, 1);
		assert_string_equal(msg,
				    "binary override 'bwa' names tool 'samtools', which does not "
				    "provide it");
		free(msg);
	}
	assert_int_equal(lock->n_binary_index, 5);
	assert_string_equal(lock->binary_index[1].tool, "samtools");

	/* A tool listing a binary twice does not collide with itself; removal shrinks the index. */
	bv_strv_push(&bv_lockfile_find(lock, "bwa")->binaries, "bwa");
	assert_int_equal(bv_lockfile_remove(lock, "bcftools"), 0);
	assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
	assert_int_equal(lock->n_binary_index, 4);
	bv_lockfile_free(lock);
}

static struct bv_lockfile *diff_base(void)
{
	struct bv_lockfile *lock = bv_lockfile_new("0.1.29", 1778061600);
	static const char *const sam_bins[] = {"samtools", "view", NULL};
	static const char *const bwa_bins[] = {"bwa", NULL};
	struct bv_error *err = NULL;
	struct bv_lock_tool *t = add_tool(lock, "samtools", "1.20.0", D1, sam_bins);
	struct bv_lock_layer *l;

	t->factored = true;
	l = bv_lock_tool_add_layer(t);
	bv_lock_set_string(&l->digest, D2);
	l->size = 10;
	l = bv_lock_tool_add_layer(t);
	bv_lock_set_string(&l->digest, D3);
	l->conda = bv_xcalloc(1, sizeof(*l->conda));
	l->conda->name = bv_xstrdup("htslib");
	l->conda->version = bv_xstrdup("1.21");
	l->conda->build = bv_xstrdup("h_0");
	l->conda->channel = bv_xstrdup("bioconda");
	l->conda->sha256 = bv_xstrdup("");
	add_tool(lock, "bwa", "0.7.18", D2, bwa_bins);
	assert_ok(bv_lockfile_rebuild_binary_index(lock, NULL, NULL, 0, &err), &err);
	return lock;
}

/* The diff of `a` against `b` as one string, lines joined by '\n'. */
static char *diff_text(const struct bv_lockfile *a, const struct bv_lockfile *b)
{
	struct bv_strv lines = BV_STRV_INIT;
	struct bv_buf out = BV_BUF_INIT;
	bv_lockfile_diff(a, b, &lines);
	for (size_t i = 0; i < lines.n; i++)
		bv_buf_printf(&out, "%s%s", i ? "\n" : "", lines.v[i]);
	assert_int_equal(bv_lockfile_equivalent(a, b), lines.n == 0);
	bv_strv_clear(&lines);
	return bv_buf_detach(&out, NULL);
}

static void assert_diff(const struct bv_lockfile *a, const struct bv_lockfile *b,
			const char *expected)
{
	char *text = diff_text(a, b);
	assert_string_equal(text, expected);
	free(text);
}

static void test_lockfile__diff_lines(void **state)
{
	(void)state;
	struct bv_lockfile *old = diff_base(), *new = diff_base();
	struct bv_lock_tool *t = bv_lockfile_find(new, "samtools");
	struct bv_error *err = NULL;
	static const char *const mm_bins[] = {"minimap2", NULL};

	assert_diff(old, new, "");
	bv_lock_set_string(&t->version, "1.21.0");
	assert_diff(old, new, "~ samtools: version 1.20.0 -> 1.21.0");
	bv_lock_set_string(&t->image_digest, D4);
	assert_diff(old, new,
		    "~ samtools: version 1.20.0 -> 1.21.0\n"
		    "~ samtools: image digest sha256:111111111111… -> sha256:fedcba987654…");
	bv_lock_set_string(&t->version, "1.20.0");
	bv_lock_set_string(&t->image_digest, D1);

	bv_lock_set_string(&t->manifest_sha256, D4);
	assert_diff(old, new, "~ samtools: manifest changed");
	/* Empty on one side: not recorded, not a change. */
	bv_lock_set_string(&t->manifest_sha256, "");
	assert_diff(old, new, "");
	bv_lock_set_string(&t->manifest_sha256, D3);

	bv_lock_set_string(&t->layers[1].digest, D1);
	assert_diff(old, new,
		    "~ samtools: layer[1] (htslib@1.21) digest sha256:abcdef012345… -> "
		    "sha256:111111111111…");
	bv_lock_set_string(&t->layers[0].digest, D4);
	bv_lock_set_string(&t->layers[1].digest, D3);
	assert_diff(old, new,
		    "~ samtools: layer[0] digest sha256:222222222222… -> sha256:fedcba987654…");
	bv_lock_set_string(&t->layers[0].digest, D2);
	bv_lock_set_string(&bv_lock_tool_add_layer(t)->digest, D4);
	assert_diff(old, new, "~ samtools: layer count 2 -> 3");
	assert_diff(new, old, "~ samtools: layer count 3 -> 2");
	bv_lockfile_free(new);

	new = diff_base();
	t = bv_lockfile_find(new, "samtools");
	bv_strv_pop(&t->binaries);
	assert_ok(bv_lockfile_rebuild_binary_index(new, NULL, NULL, 0, &err), &err);
	assert_diff(old, new,
		    "~ samtools: binaries [samtools, view] -> [samtools]\n"
		    "~ binary index: view: samtools -> (none)");
	/* Order of binaries does not matter. */
	bv_strv_clear(&t->binaries);
	bv_strv_push(&t->binaries, "view");
	bv_strv_push(&t->binaries, "samtools");
	assert_ok(bv_lockfile_rebuild_binary_index(new, NULL, NULL, 0, &err), &err);
	assert_diff(old, new, "");

	t->factored = false;
	bv_lock_set_string(&t->image_reference, "quay.io/other:1");
	bv_lock_set_string(&bv_lock_tool_set_pin(t, "genome")->id, "hg38");
	assert_diff(old, new,
		    "~ samtools: spec kind factored_oci -> legacy_image\n"
		    "~ samtools: image reference quay.io/biocontainers/x:1 -> quay.io/other:1\n"
		    "~ samtools: data pin 'genome' added");
	bv_lockfile_free(new);

	new = diff_base();
	assert_int_equal(bv_lockfile_remove(new, "bwa"), 0);
	add_tool(new, "minimap2", "2.28", D3, mm_bins);
	assert_ok(bv_lockfile_rebuild_binary_index(new, NULL, NULL, 0, &err), &err);
	assert_diff(old, new,
		    "- bwa 0.7.18 (removed)\n"
		    "+ minimap2 2.28 (new)\n"
		    "~ binary index: bwa: bwa -> (none)\n"
		    "~ binary index: minimap2: (none) -> minimap2");
	bv_lockfile_free(new);

	/* A binary routed to another tool. */
	new = diff_base();
	bv_strv_push(&bv_lockfile_find(new, "bwa")->binaries, "view");
	{
		static const char *const ob[] = {"view"}, *const ot[] = {"bwa"};
		assert_ok(bv_lockfile_rebuild_binary_index(new, ob, ot, 1, &err), &err);
	}
	assert_diff(old, new,
		    "~ bwa: binaries [bwa] -> [bwa, view]\n"
		    "~ binary index: view: samtools -> bwa");
	bv_lockfile_free(new);
	bv_lockfile_free(old);
}

static void test_lockfile__equivalence_ignores_volatile_fields(void **state)
{
	(void)state;
	struct bv_lockfile *old = diff_base(), *new = diff_base();
	struct bv_lock_tool *t = bv_lockfile_find(new, "samtools");

	bv_lock_set_string(&new->generated_at, "2030-01-01T00:00:00Z");
	bv_lock_set_string(&new->bv_version, "9.9.9");
	bv_lock_set_string(&t->resolved_at, "2030-01-01T00:00:01Z");
	bv_lock_set_string(&t->declared_version_req, ">=1.20");
	t->image_size_bytes = 424242;
	t->layers[0].size = 99;
	assert_true(bv_lockfile_equivalent(old, new));
	assert_true(bv_lockfile_equivalent(new, old));
	{
		char *a = write_lock(old), *b = write_lock(new);
		assert_string_not_equal(a, b);
		free(a);
		free(b);
	}
	bv_lock_set_string(&t->version, "1.20.1");
	assert_false(bv_lockfile_equivalent(old, new));
	bv_lockfile_free(new);
	bv_lockfile_free(old);
}

/* found by fuzz_model (UBSan): a lock without tools has no arrays to walk */
static void test_lockfile__diff_without_tools(void **state)
{
	static const char text[] = "version = 1\n\n[metadata]\nbv_version = \"0\"\n"
				   "generated_at = \"2026-02-06T10:00:00Z\"\n";
	struct bv_lockfile *a = NULL, *b = NULL;
	struct bv_error *err = NULL;
	(void)state;
	assert_ok(bv_lockfile_parse(&a, text, strlen(text), "bv.lock", &err), &err);
	b = bv_lockfile_new("0.1.0", 0);
	assert_true(bv_lockfile_equivalent(a, a));
	assert_true(bv_lockfile_equivalent(a, b));
	assert_true(bv_lockfile_equivalent(b, a));
	bv_lockfile_free(a);
	bv_lockfile_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lockfile__parses_upstream_example),
		cmocka_unit_test(test_lockfile__writes_exact_layout),
		cmocka_unit_test(test_lockfile__hand_written_round_trip),
		cmocka_unit_test(test_lockfile__deterministic),
		cmocka_unit_test(test_lockfile__newer_version_refused),
		cmocka_unit_test(test_lockfile__unknown_keys_rejected),
		cmocka_unit_test(test_lockfile__upstream_leniency),
		cmocka_unit_test(test_lockfile__tool_id_must_match_key),
		cmocka_unit_test(test_lockfile__bad_digests_rejected),
		cmocka_unit_test(test_lockfile__numbers_and_timestamps),
		cmocka_unit_test(test_lockfile__missing_and_mistyped_fields),
		cmocka_unit_test(test_lockfile__load_and_save),
		cmocka_unit_test(test_lockfile__lent_from_index),
		cmocka_unit_test(test_lockfile__index_format_and_damage),
		cmocka_unit_test(test_lockfile__find_upsert_remove),
		cmocka_unit_test(test_lockfile__binary_index),
		cmocka_unit_test(test_lockfile__diff_lines),
		cmocka_unit_test(test_lockfile__equivalence_ignores_volatile_fields),
		cmocka_unit_test(test_lockfile__diff_without_tools),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
