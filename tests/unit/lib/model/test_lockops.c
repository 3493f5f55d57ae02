/*
 * Lock operations against a private copy of the sample registry (opened as a local path:
 * no git, no network) and a project in a temporary directory.  The registry's image
 * digests come from fake_images(), a stand-in for the OCI registry that records what it
 * was asked, so each test can tell which tools a relock resolved again.
 *
 * argv[1] is the sample registry (../shared/bv-registry-sample).
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <bv/shims.h>
#include <bv/types.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/fs.h"

static const char *sample;

#define NOW "2026-01-02T03:04:05Z"
#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fixture {
	char *dir;      /* the temporary directory, removed afterwards */
	char *registry; /* <dir>/registry, a copy of the sample */
	char *root;     /* <dir>/proj, the project */
	struct bv_index *idx;
	struct bv_types *types;
};

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *quiet;
	va_start(ap, fmt);
	cmd = bv_xvasprintf(fmt, ap);
	va_end(ap);
	/* stdout is cmocka's TAP stream. */
	quiet = bv_xasprintf("( %s ) >&2", cmd);
	if (system(quiet) != 0) {
		print_error("command failed: %s\n", cmd);
		free(cmd);
		free(quiet);
		fail();
	}
	free(cmd);
	free(quiet);
}

static void write_file(const char *path, const char *text)
{
	struct bv_error *err = NULL;
	assert_ok(bv_write_file_atomic(path, text, strlen(text), 0644, &err), &err);
}

static char *read_file(const char *path)
{
	struct bv_error *err = NULL;
	struct bv_buf b = BV_BUF_INIT;
	assert_ok(bv_buf_read_file(&b, path, 1 << 20, &err), &err);
	return bv_buf_detach(&b, NULL);
}

static int setup(void **state)
{
	struct bv_error *err = NULL;
	struct fixture *f;
	char *tmp, *p;
	if (!sample)
		return 0;
	f = bv_xcalloc(1, sizeof(*f));
	tmp = test_mkdtemp("lockops");
	if (!tmp)
		return -1;
	f->dir = realpath(tmp, NULL);
	free(tmp);
	if (!f->dir)
		return -1;
	p = bv_path_join(f->dir, "home");
	mkdir(p, 0700);
	setenv("HOME", p, 1);
	free(p);
	p = bv_path_join(f->dir, "cache");
	setenv("BV_CACHE_DIR", p, 1);
	setenv("XDG_CACHE_HOME", p, 1);
	free(p);
	unsetenv("BV_REGISTRY");
	f->registry = bv_path_join(f->dir, "registry");
	f->root = bv_path_join(f->dir, "proj");
	mkdir(f->root, 0755);
	{
		char *cmd = bv_xasprintf("cp -R '%s' '%s' && chmod -R u+w '%s'", sample,
					 f->registry, f->registry);
		int rc = system(cmd);
		free(cmd);
		if (rc != 0)
			return -1;
	}
	if (bv_index_open(&f->idx, f->registry, BV_INDEX_OFFLINE, &err) < 0 ||
	    bv_types_load_default(&f->types, &err) < 0) {
		char *msg = bv_error_format(err);
		print_error("setup: %s\n", msg);
		free(msg);
		bv_error_free(err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f)
		return 0;
	bv_index_free(f->idx);
	bv_types_free(f->types);
	bv_rm_rf(f->dir, NULL);
	free(f->registry);
	free(f->root);
	free(f->dir);
	free(f);
	*state = NULL;
	return 0;
}

static struct fixture *fixture(void **state)
{
	if (!sample) {
		print_message("# sample registry missing: skipped\n");
		skip();
	}
	assert_non_null(*state);
	return *state;
}

/* Writes bv.toml with `body` after a [project] table, and loads it. */
static struct bv_project *project(struct fixture *f, const char *body)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	char *path = bv_path_join(f->root, "bv.toml");
	char *text = bv_xasprintf("[project]\nname = \"demo\"\n\n%s", body);
	write_file(path, text);
	assert_ok(bv_project_load(&p, f->root, &err), &err);
	free(text);
	free(path);
	return p;
}

static struct bv_manifest *resolve(struct fixture *f, const char *id, const char *req)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	assert_ok(bv_resolve_tool(&m, f->idx, id, req, f->types, &err), &err);
	return m;
}

/* A tool `id` 1.0.0 in the registry, copied from bwa, whose binary is `binary`. */
static void add_tool_exposing(struct fixture *f, const char *id, const char *binary)
{
	sh("mkdir -p '%s/tools/%s' && sed -e 's/^id = \"bwa\"/id = \"%s\"/' "
	   "-e 's/^version = .*/version = \"1.0.0\"/' -e 's/^command = .*/command = \"%s\"/' "
	   "-e 's/^exposed = .*/exposed = [\"%s\"]/' '%s/tools/bwa/0.7.18.toml' "
	   "> '%s/tools/%s/1.0.0.toml'",
	   f->registry, id, id, binary, binary, f->registry, f->registry, id);
}

/* The stand-in for the OCI registry: a digest made of the tool id, one layer. */
struct fake_registry {
	int calls;
	struct bv_strv asked; /* tool ids, in request order */
	char digests[8][72];
	struct bv_lockops_layer layers[8][1];
	bool fail;
};

static int fake_images(struct bv_lockops_image *out,
		       const struct bv_lockops_image_request *requests, size_t n, void *payload,
		       struct bv_error **err)
{
	struct fake_registry *fr = payload;
	fr->calls++;
	if (fr->fail)
		return bv_error_set(err, "registry unreachable");
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		bv_strv_push(&fr->asked, requests[i].tool_id);
		/* the same tool always gets the same digest, as an unchanged tag would */
		const char *id = requests[i].tool_id;
		memcpy(fr->digests[i], "sha256:", 7);
		for (size_t k = 0; k < 64; k++)
			fr->digests[i][7 + k] = HEX[(unsigned char)id[k % strlen(id)] % 16];
		fr->digests[i][71] = '\0';
		fr->layers[i][0] = (struct bv_lockops_layer){
			.digest = "sha256:" HEX, .size = 10, .media_type = "application/x-test"};
		out[i] = (struct bv_lockops_image){.digest = fr->digests[i],
						   .size = 1234,
						   .layers = fr->layers[i],
						   .n_layers = 1};
	}
	return 0;
}

static struct bv_lockfile *relock_ok(struct fixture *f, const struct bv_project *p,
				     const struct bv_lockfile *old, struct fake_registry *fr,
				     struct bv_lockops_result *res)
{
	struct bv_error *err = NULL;
	struct bv_lockops_relock_options o = {.images = fake_images, .payload = fr};
	assert_ok(bv_lockops_relock(res, p, old, f->idx, f->types, &o, &err), &err);
	return res->lock;
}

/* ---- mapping ---- */

static void test_lockops__fill_entry_from_factored_manifest(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_lockfile *lock = bv_lockfile_new("0.0.0", 0);
	struct bv_manifest *m;
	struct bv_lock_tool *t;
	struct bv_lockops_layer layers[2] = {
		{.digest = "sha256:" HEX, .size = 42, .media_type = "application/x-a"},
		{.digest = "sha256:ffff" HEX, .size = 7, .media_type = "application/x-b"},
	};
	struct bv_lockops_image image = {
		.digest = "sha256:dfe7e8f31d6814b4f76e21af0bc5be7b0c6bcaa774694b188a76c01fb86fa24d",
		.size = 49,
		.layers = layers,
		.n_layers = 2};

	/* the sample's samtools, with a conda package for the first layer */
	sh("printf '\\n[[tool.factored.layers]]\\ndigest = \"sha256:%s\"\\nsize = 42\\n"
	   "media_type = \"application/x-a\"\\n[tool.factored.layers.conda_package]\\n"
	   "name = \"htslib\"\\nversion = \"1.21\"\\nbuild = \"h0\"\\nchannel = \"bioconda\"\\n'"
	   " >> '%s/tools/samtools/1.21.0.toml'",
	   HEX, f->registry);
	m = resolve(f, "samtools", "^1.21");
	t = bv_lockfile_upsert(lock, "samtools");
	bv_lockops_fill_entry(t, m, "^1.21", &image, NOW);

	assert_string_equal(t->tool_id, "samtools");
	assert_string_equal(t->declared_version_req, "^1.21");
	assert_string_equal(t->version, "1.21.0");
	assert_true(t->factored);
	/* a factored image is pulled from the factored reference, not [tool.image] */
	assert_string_equal(t->image_reference, "ghcr.io/tejasprabhune/bv-pkg/samtools:1.21.0");
	assert_string_equal(bv_lockops_image_reference(m), t->image_reference);
	assert_string_equal(bv_lockops_image_pin(m), m->factored_image_digest);
	assert_string_equal(t->image_digest, image.digest);
	assert_string_equal(t->manifest_sha256, m->digest);
	assert_int_equal(strncmp(t->manifest_sha256, "sha256:", 7), 0);
	assert_int_equal(t->image_size_bytes, 49);
	assert_string_equal(t->resolved_at, NOW);
	assert_int_equal(t->binaries.n, 1);
	assert_string_equal(t->binaries.v[0], "samtools");
	assert_int_equal(t->n_layers, 2);
	assert_string_equal(t->layers[0].digest, layers[0].digest);
	assert_int_equal(t->layers[0].size, 42);
	assert_string_equal(t->layers[0].media_type, "application/x-a");
	assert_non_null(t->layers[0].conda);
	assert_string_equal(t->layers[0].conda->name, "htslib");
	assert_string_equal(t->layers[0].conda->version, "1.21");
	assert_string_equal(t->layers[0].conda->channel, "bioconda");
	/* the second layer has no package in the manifest */
	assert_null(t->layers[1].conda);

	/* mapped again (a relock of a new version): layers are replaced, not appended */
	image.n_layers = 1;
	bv_lockops_fill_entry(t, m, "", &image, NOW);
	assert_int_equal(t->n_layers, 1);
	assert_string_equal(t->declared_version_req, "");
	bv_manifest_free(m);
	bv_lockfile_free(lock);
}

static void test_lockops__fill_entry_without_registry(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_lockfile *lock = bv_lockfile_new("0.0.0", 0);
	struct bv_manifest *old = resolve(f, "blast", "=2.14.0");
	struct bv_manifest *new = resolve(f, "blast", "");
	struct bv_lockops_image image = {.digest = "sha256:" HEX, .size = 5};
	struct bv_lock_tool *t = bv_lockfile_upsert(lock, "blast");

	assert_false(old->factored);
	bv_lockops_fill_entry(t, old, "=2.14.0", &image, NOW);
	assert_string_equal(t->image_reference, "ncbi/blast:2.14.0");
	/* same version, no registry asked: the digest recorded for it stays */
	bv_lockops_fill_entry(t, old, "=2.14.0", NULL, NULL);
	assert_string_equal(t->image_digest, "sha256:" HEX);
	assert_int_equal(t->image_size_bytes, 5);
	assert_int_not_equal(strcmp(t->resolved_at, NOW), 0); /* now, not the given time */
	/* another version: only a registry could say what its tag points to */
	bv_lockops_fill_entry(t, new, "", NULL, NOW);
	assert_string_equal(t->version, "2.15.0");
	assert_string_equal(t->image_reference, "ncbi/blast:2.15.0");
	assert_string_equal(t->image_digest, "");
	assert_null(bv_lockops_image_pin(new));
	bv_manifest_free(old);
	bv_manifest_free(new);
	bv_lockfile_free(lock);
}

/* reference_data_pins: id and version from the tool, sha256 from the registry's dataset */
static void test_lockops__data_pins(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_lockfile *lock = bv_lockfile_new("0.0.0", 0);
	struct bv_lockops_image image = {.digest = "sha256:" HEX, .size = 5};
	struct bv_strv warnings = BV_STRV_INIT;
	struct bv_manifest *m;
	struct bv_lock_tool *t;
	char *path = bv_xasprintf("%s/tools/blast/2.14.0.toml", f->registry);
	char *text = read_file(path), *more;

	more = bv_xasprintf("%s\n[tool.reference_data.pdb]\nid = \"pdbaa\"\nversion = "
			    "\"2024_01\"\nrequired = true\n",
			    text);
	write_file(path, more);
	m = resolve(f, "blast", "=2.14.0");
	t = bv_lockfile_upsert(lock, "blast");
	bv_lockops_fill_entry(t, m, "=2.14.0", &image, NOW);
	assert_int_equal(t->n_pins, 1);
	assert_string_equal(t->pins[0].key, "pdb");
	assert_string_equal(t->pins[0].id, "pdbaa");
	assert_string_equal(t->pins[0].version, "2024_01");
	assert_string_equal(t->pins[0].sha256, "");
	assert_int_equal(bv_lockops_fill_data_pins(lock, f->idx, &warnings), 0);
	assert_string_equal(t->pins[0].sha256, "sha256:aef9656e065df952e438ecad52920acc51a3e6e9"
					       "dcb27b157fe167eba4f93d91");
	/* the same pin again keeps its digest; no registry needed */
	bv_lockops_fill_entry(t, m, "=2.14.0", &image, NOW);
	assert_string_equal(t->pins[0].sha256, "sha256:aef9656e065df952e438ecad52920acc51a3e6e9"
					       "dcb27b157fe167eba4f93d91");
	bv_manifest_free(m);
	/* a dataset the registry lacks is a warning, and its pin has no digest */
	free(more);
	more = bv_xasprintf("%s\n[tool.reference_data.pdb]\nid = \"nosuch\"\nversion = "
			    "\"1\"\nrequired = true\n",
			    text);
	write_file(path, more);
	m = resolve(f, "blast", "=2.14.0");
	bv_lockops_fill_entry(t, m, "=2.14.0", &image, NOW);
	assert_string_equal(t->pins[0].id, "nosuch");
	assert_string_equal(t->pins[0].sha256, "");
	assert_int_equal(bv_lockops_fill_data_pins(lock, f->idx, &warnings), 0);
	assert_int_equal(warnings.n, 1);
	assert_non_null(strstr(warnings.v[0], "blast: "));
	bv_manifest_free(m);
	bv_strv_clear(&warnings);
	free(more);
	free(text);
	free(path);
	bv_lockfile_free(lock);
}

/* ---- relock ---- */

static void test_lockops__relock_new_project_resolves_all(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\nversion = \"=2.14.0\"\n\n"
					  "[[tools]]\nid = \"samtools\"\n");
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct bv_lockfile *lock = relock_ok(f, p, NULL, &fr, &res);

	assert_non_null(lock);
	assert_int_equal(fr.calls, 1);
	assert_int_equal(fr.asked.n, 2);
	assert_int_equal(lock->n_tools, 2);
	assert_string_equal(bv_lockfile_find(lock, "blast")->version, "2.14.0");
	assert_string_equal(bv_lockfile_find(lock, "blast")->declared_version_req, "=2.14.0");
	assert_string_equal(bv_lockfile_find(lock, "samtools")->image_digest, fr.digests[1]);
	assert_non_null(bv_lockfile_find(lock, "samtools")->layers);
	/* the binary index is built: blastp from blast */
	assert_true(lock->n_binary_index > 1);
	assert_int_equal(res.n_manifests, 2);
	/* both tools are new, each one change with its readable line */
	assert_int_equal(res.diff.n_changes, 3); /* two tools and the binary index */
	assert_int_equal(res.diff.changes[0].kind, BV_LOCKOPS_ADDED);
	assert_string_equal(res.diff.changes[0].tool_id, "blast");
	assert_string_equal(res.diff.changes[0].new_version, "2.14.0");
	assert_string_equal(res.diff.changes[0].lines.v[0], "+ blast 2.14.0 (new)");
	assert_int_equal(res.diff.changes[2].kind, BV_LOCKOPS_BINARY_INDEX);
	bv_lockops_result_release(&res);
	bv_strv_clear(&fr.asked);
	bv_project_free(p);
}

static void test_lockops__relock_keeps_matching_pinned_entry(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\nversion = \"^2.14\"\n\n"
					  "[[tools]]\nid = \"samtools\"\n");
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_lockops_result first = BV_LOCKOPS_RESULT_INIT, second = BV_LOCKOPS_RESULT_INIT;
	struct bv_lockfile *lock = relock_ok(f, p, NULL, &fr, &first);
	struct bv_lock_tool *t;

	/* a pin the fake registry would never hand out: it must survive the relock */
	t = bv_lockfile_find(lock, "blast");
	bv_lock_set_string(&t->image_digest, "sha256:" HEX);
	bv_lock_set_string(&t->resolved_at, NOW);
	bv_strv_clear(&fr.asked);
	fr.calls = 0;

	relock_ok(f, p, lock, &fr, &second);
	assert_null(second.lock);      /* nothing to write */
	assert_int_equal(fr.calls, 0); /* no registry asked */
	assert_int_equal(second.diff.n_changes, 0);
	assert_int_equal(second.n_manifests, 0);

	/* bv update samtools: only samtools is asked for, blast keeps its pin */
	{
		struct bv_error *err = NULL;
		const char *only[] = {"samtools"};
		struct bv_lockops_relock_options o = {
			.images = fake_images, .payload = &fr, .only = only, .n_only = 1};
		struct bv_lockops_result third = BV_LOCKOPS_RESULT_INIT;
		assert_ok(bv_lockops_relock(&third, p, lock, f->idx, f->types, &o, &err), &err);
		assert_int_equal(fr.calls, 1);
		assert_int_equal(fr.asked.n, 1);
		assert_string_equal(fr.asked.v[0], "samtools");
		/* the registry says what it said before: nothing to write */
		assert_null(third.lock);
		bv_lockops_result_release(&third);

		/* with force_all (bv update, --platform) every tool is asked for */
		o.only = NULL;
		o.n_only = 0;
		o.force_all = true;
		assert_ok(bv_lockops_relock(&third, p, lock, f->idx, f->types, &o, &err), &err);
		assert_int_equal(fr.asked.n, 3);
		assert_non_null(third.lock);
		t = bv_lockfile_find(third.lock, "blast");
		assert_string_not_equal(t->image_digest, "sha256:" HEX);
		assert_int_equal(third.diff.n_changes, 1);
		assert_int_equal(third.diff.changes[0].kind, BV_LOCKOPS_CHANGED);
		assert_string_equal(third.diff.changes[0].tool_id, "blast");
		bv_lockops_result_release(&third);
	}
	bv_lockops_result_release(&first);
	bv_lockops_result_release(&second);
	bv_strv_clear(&fr.asked);
	bv_project_free(p);
}

static void test_lockops__relock_requirement_change_resolves_again(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\nversion = \"=2.14.0\"\n");
	struct bv_project *q;
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_lockops_result first = BV_LOCKOPS_RESULT_INIT, second = BV_LOCKOPS_RESULT_INIT,
				 check = BV_LOCKOPS_RESULT_INIT;
	struct bv_lockops_relock_options no_registry = {0};
	struct bv_error *err = NULL;
	struct bv_lockfile *lock = relock_ok(f, p, NULL, &fr, &first);
	struct bv_lock_tool *t;

	fr.calls = 0;
	bv_strv_clear(&fr.asked);
	q = project(f, "[[tools]]\nid = \"blast\"\nversion = \"^2.14\"\n");

	/* --check: no registry, nothing to write, the change reported */
	assert_ok(bv_lockops_relock(&check, q, lock, f->idx, f->types, &no_registry, &err), &err);
	assert_null(check.lock);
	assert_int_equal(fr.calls, 0);
	assert_int_equal(check.diff.n_changes, 1);
	assert_int_equal(check.diff.changes[0].kind, BV_LOCKOPS_CHANGED);
	assert_string_equal(check.diff.changes[0].old_version, "2.14.0");
	assert_string_equal(check.diff.changes[0].new_version, "2.15.0");
	assert_string_equal(check.diff.changes[0].lines.v[0], "~ blast: version 2.14.0 -> 2.15.0");

	relock_ok(f, q, lock, &fr, &second);
	assert_int_equal(fr.calls, 1);
	assert_string_equal(fr.asked.v[0], "blast");
	assert_non_null(second.lock);
	t = bv_lockfile_find(second.lock, "blast");
	assert_string_equal(t->version, "2.15.0");
	assert_string_equal(t->declared_version_req, "^2.14");
	assert_string_equal(t->image_digest, fr.digests[0]);
	/* a new lock is stamped now; the old one is the caller's and unchanged */
	assert_string_equal(bv_lockfile_find(lock, "blast")->version, "2.14.0");
	assert_int_equal(second.n_manifests, 1);
	assert_string_equal(second.manifests[0]->version, "2.15.0");

	/* the same version under a reworded requirement is resolved again too, but what it
	 * resolves to is what bv.lock holds: nothing to write (bv lock --check ignores
	 * declared_version_req, as upstream does) */
	bv_project_free(q);
	q = project(f, "[[tools]]\nid = \"blast\"\nversion = \">=2.14.0, <2.15\"\n");
	bv_lockops_result_release(&second);
	fr.calls = 0;
	relock_ok(f, q, lock, &fr, &second);
	assert_int_equal(fr.calls, 1);
	assert_null(second.lock);
	assert_int_equal(second.diff.n_changes, 0);

	bv_lockops_result_release(&first);
	bv_lockops_result_release(&second);
	bv_lockops_result_release(&check);
	bv_strv_clear(&fr.asked);
	bv_project_free(p);
	bv_project_free(q);
}

static void test_lockops__relock_errors(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\n");
	struct fake_registry fr = {.asked = BV_STRV_INIT, .fail = true};
	const char *only[] = {"bwa"};
	struct bv_lockops_relock_options o = {
		.images = fake_images, .payload = &fr, .only = only, .n_only = 1};
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct bv_error *err = NULL;
	char *msg;

	assert_int_equal(bv_lockops_relock(&res, p, NULL, f->idx, f->types, &o, &err),
			 BV_ENOTFOUND);
	msg = bv_error_format(err);
	assert_string_equal(msg, "tool 'bwa' is not declared in bv.toml");
	free(msg);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(fr.calls, 0);

	/* the registry's failure is the relock's, and nothing is returned */
	o.n_only = 0;
	assert_int_equal(bv_lockops_relock(&res, p, NULL, f->idx, f->types, &o, &err), BV_ERR);
	assert_int_equal(fr.calls, 1);
	assert_null(res.lock);
	msg = bv_error_format(err);
	assert_string_equal(msg, "registry unreachable");
	free(msg);
	bv_error_free(err);
	bv_project_free(p);
}

/* bv update's checks: keep one tool as locked, refuse another before any registry is asked */
struct admit_state {
	const char *keep, *refuse;
	struct bv_strv seen;
};

static int admit_some(const struct bv_manifest *m, bool locked, void *payload,
		      struct bv_error **err)
{
	struct admit_state *a = payload;
	bv_strv_pushf(&a->seen, "%s%s", m->id, locked ? " locked" : "");
	if (a->refuse && !strcmp(m->id, a->refuse))
		return bv_error_setc(err, BV_EINVALID, 0, "%s needs a GPU", m->id);
	return a->keep && !strcmp(m->id, a->keep) ? 1 : 0;
}

static void test_lockops__relock_admit(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\nversion = \"^2.14\"\n\n"
					  "[[tools]]\nid = \"samtools\"\n");
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct admit_state a = {.keep = "blast", .seen = BV_STRV_INIT};
	struct bv_lockops_result first = BV_LOCKOPS_RESULT_INIT, res = BV_LOCKOPS_RESULT_INIT;
	struct bv_lockops_relock_options o = {.images = fake_images,
					      .payload = &fr,
					      .force_all = true,
					      .admit = admit_some,
					      .admit_payload = &a};
	struct bv_error *err = NULL;
	struct bv_lockfile *lock = relock_ok(f, p, NULL, &fr, &first);
	struct bv_lock_tool *t = bv_lockfile_find(lock, "blast");
	char *msg;

	/* kept: blast's entry stays as locked (its pin is not the registry's) */
	bv_lock_set_string(&t->image_digest, "sha256:" HEX);
	bv_strv_clear(&fr.asked);
	assert_ok(bv_lockops_relock(&res, p, lock, f->idx, f->types, &o, &err), &err);
	assert_int_equal(a.seen.n, 2);
	assert_string_equal(a.seen.v[0], "blast locked");
	assert_int_equal(fr.asked.n, 1);
	assert_string_equal(fr.asked.v[0], "samtools");
	/* without the keep, blast would change (the previous test); samtools is as it was */
	assert_null(res.lock);
	assert_int_equal(res.diff.n_changes, 0);
	bv_lockops_result_release(&res);

	/* refused: the relock stops before any image is asked for */
	a.refuse = "samtools";
	fr.calls = 0;
	assert_int_equal(bv_lockops_relock(&res, p, lock, f->idx, f->types, &o, &err), BV_EINVALID);
	assert_int_equal(fr.calls, 0);
	assert_null(res.lock);
	msg = bv_error_format(err);
	assert_string_equal(msg, "samtools needs a GPU");
	free(msg);
	bv_error_free(err);

	/* a tool not locked yet cannot be kept: it is resolved */
	a.refuse = NULL;
	bv_strv_clear(&fr.asked);
	assert_ok(bv_lockops_relock(&res, p, NULL, f->idx, f->types, &o, &err), &err);
	assert_int_equal(fr.asked.n, 2);
	bv_lockops_result_release(&res);

	bv_lockops_result_release(&first);
	bv_strv_clear(&fr.asked);
	bv_strv_clear(&a.seen);
	bv_project_free(p);
}

/* ---- removal ---- */

static void test_lockops__remove(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\n\n"
					  "[[tools]]\nid = \"samtools\"\n# keep me\n");
	struct bv_project *q;
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_lockops_result first = BV_LOCKOPS_RESULT_INIT, res = BV_LOCKOPS_RESULT_INIT,
				 relocked = BV_LOCKOPS_RESULT_INIT;
	struct bv_error *err = NULL;
	struct bv_lockfile *lock = relock_ok(f, p, NULL, &fr, &first);
	const char *ids[] = {"blast"};
	const char *missing[] = {"bwa"};

	assert_non_null(bv_lockfile_find(lock, "blast"));
	assert_ok(bv_lockops_remove(&res, p, lock, ids, 1, &err), &err);
	assert_non_null(res.toml_text);
	assert_null(strstr(res.toml_text, "blast"));
	assert_non_null(strstr(res.toml_text, "# keep me"));
	assert_non_null(res.project);
	assert_int_equal(res.project->n_tools, 1);
	assert_non_null(res.lock);
	assert_null(bv_lockfile_find(res.lock, "blast"));
	assert_non_null(bv_lockfile_find(res.lock, "samtools"));
	/* the index no longer routes blast's binaries */
	for (size_t i = 0; i < res.lock->n_binary_index; i++)
		assert_string_equal(res.lock->binary_index[i].tool, "samtools");
	/* the caller's lock is untouched */
	assert_non_null(bv_lockfile_find(lock, "blast"));
	bv_lockops_result_release(&res);

	/* without a bv.lock only bv.toml changes */
	assert_ok(bv_lockops_remove(&res, p, NULL, ids, 1, &err), &err);
	assert_null(res.lock);
	assert_non_null(res.toml_text);
	bv_lockops_result_release(&res);

	/* a tool not declared: nothing */
	assert_int_equal(bv_lockops_remove(&res, p, lock, missing, 1, &err), BV_ENOTFOUND);
	assert_null(res.toml_text);
	bv_error_free(err);
	err = NULL;

	/* a relock drops the entry of a tool bv.toml no longer declares, asking no registry */
	q = project(f, "[[tools]]\nid = \"samtools\"\n");
	fr.calls = 0;
	relock_ok(f, q, lock, &fr, &relocked);
	assert_int_equal(fr.calls, 0);
	assert_non_null(relocked.lock);
	assert_null(bv_lockfile_find(relocked.lock, "blast"));
	assert_int_equal(relocked.diff.changes[0].kind, BV_LOCKOPS_REMOVED);
	assert_string_equal(relocked.diff.changes[0].old_version, "2.15.0");
	assert_null(relocked.diff.changes[0].new_version);
	assert_string_equal(relocked.diff.changes[0].lines.v[0], "- blast 2.15.0 (removed)");

	bv_lockops_result_release(&first);
	bv_lockops_result_release(&relocked);
	bv_strv_clear(&fr.asked);
	bv_project_free(p);
	bv_project_free(q);
}

/* ---- diff ---- */

static void test_lockops__diff_groups_lockfile_lines(void **state)
{
	struct bv_lockfile *a = bv_lockfile_new("0.0.0", 0);
	struct bv_lockfile *b;
	struct bv_lockops_diff d;
	struct bv_strv flat = BV_STRV_INIT;
	struct bv_error *err = NULL;
	size_t k = 0;
	(void)state;

	bv_lock_set_string(&bv_lockfile_upsert(a, "bwa")->version, "0.7.17");
	bv_lock_set_string(&bv_lockfile_upsert(a, "samtools")->version, "1.20.0");
	bv_strv_push(&bv_lockfile_upsert(a, "samtools")->binaries, "samtools");
	bv_lock_set_string(&bv_lockfile_upsert(a, "zz")->version, "1.0.0");
	assert_ok(bv_lockfile_rebuild_binary_index(a, NULL, NULL, 0, &err), &err);
	b = bv_lockfile_clone(a);

	/* identical locks: no change at all */
	bv_lockops_diff(&d, a, b);
	assert_int_equal(d.n_changes, 0);
	assert_null(d.changes);
	bv_lockops_diff_release(&d);

	bv_lockfile_remove(b, "bwa");
	bv_lock_set_string(&bv_lockfile_upsert(b, "samtools")->version, "1.21.0");
	bv_lock_set_string(&bv_lockfile_upsert(b, "samtools")->image_digest, "sha256:" HEX);
	bv_lock_set_string(&bv_lockfile_upsert(b, "fastp")->version, "0.23.4");
	/* resolved_at alone is no difference */
	bv_lock_set_string(&bv_lockfile_upsert(b, "zz")->resolved_at, NOW);
	bv_strv_clear(&bv_lockfile_upsert(b, "samtools")->binaries);
	assert_ok(bv_lockfile_rebuild_binary_index(b, NULL, NULL, 0, &err), &err);

	bv_lockops_diff(&d, a, b);
	assert_int_equal(d.n_changes, 4);
	assert_int_equal(d.changes[0].kind, BV_LOCKOPS_REMOVED);
	assert_string_equal(d.changes[0].tool_id, "bwa");
	assert_int_equal(d.changes[1].kind, BV_LOCKOPS_ADDED);
	assert_string_equal(d.changes[1].tool_id, "fastp");
	assert_null(d.changes[1].old_version);
	assert_int_equal(d.changes[2].kind, BV_LOCKOPS_CHANGED);
	assert_string_equal(d.changes[2].tool_id, "samtools");
	assert_string_equal(d.changes[2].old_version, "1.20.0");
	assert_string_equal(d.changes[2].new_version, "1.21.0");
	assert_int_equal(d.changes[2].lines.n, 3); /* version, digest, binaries */
	assert_int_equal(d.changes[3].kind, BV_LOCKOPS_BINARY_INDEX);
	assert_null(d.changes[3].tool_id);
	assert_string_equal(d.changes[3].lines.v[0],
			    "~ binary index: samtools: samtools -> (none)");

	/* the same lines, in the same order, as the lock's own diff */
	bv_lockfile_diff(a, b, &flat);
	for (size_t i = 0; i < d.n_changes; i++)
		bv_strv_foreach (line, &d.changes[i].lines)
			assert_string_equal(*line, flat.v[k++]);
	assert_int_equal(k, flat.n);

	bv_strv_clear(&flat);
	bv_lockops_diff_release(&d);
	bv_lockfile_free(a);
	bv_lockfile_free(b);
}

/* ---- the binary index ---- */

static void test_lockops__binary_index_shadow_rule(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *bare, *allowed, *other, *ahead;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_lockops_relock_options o = {.images = fake_images, .payload = &fr};
	struct bv_error *err = NULL;
	const struct bv_lock_binary *b;
	char *msg;

	add_tool_exposing(f, "lstool", "ls");
	bare = project(f, "[[tools]]\nid = \"lstool\"\n");
	/* a tool exposing ls replaces the system command: refused without an override */
	assert_int_equal(bv_lockops_relock(&res, bare, NULL, f->idx, f->types, &o, &err),
			 BV_EINVALID);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "tool 'lstool' exposes 'ls', which would replace the system "
				    "command"));
	free(msg);
	bv_error_free(err);
	err = NULL;

	allowed = project(f, "[[tools]]\nid = \"lstool\"\n\n[binary_overrides]\nls = \"lstool\"\n");
	assert_ok(bv_lockops_relock(&res, allowed, NULL, f->idx, f->types, &o, &err), &err);
	assert_int_equal(res.lock->n_binary_index, 1);
	assert_string_equal(res.lock->binary_index[0].binary, "ls");
	assert_null(bv_lockops_unallowed_shadow(res.lock, allowed));
	/* the same lock in a project whose bv.toml does not consent gets no shim */
	b = bv_lockops_unallowed_shadow(res.lock, bare);
	assert_non_null(b);
	assert_string_equal(b->binary, "ls");
	assert_string_equal(b->tool, "lstool");
	/* nor does consent for another tool count */
	add_tool_exposing(f, "other", "other");
	other = project(f, "[[tools]]\nid = \"lstool\"\n\n[binary_overrides]\nls = \"other\"\n");
	assert_non_null(bv_lockops_unallowed_shadow(res.lock, other));

	/* an override naming a tool that is not locked is a warning, not an error */
	ahead = project(f, "[[tools]]\nid = \"lstool\"\n\n[binary_overrides]\nls = \"lstool\"\n"
			   "samtools = \"samtools\"\n");
	bv_strv_clear(&res.warnings);
	assert_ok(bv_lockops_rebuild_binary_index(res.lock, &res.warnings, ahead, &err), &err);
	assert_int_equal(res.warnings.n, 1);
	assert_string_equal(res.warnings.v[0],
			    "[binary_overrides] in bv.toml names 'samtools', which is not locked");

	bv_lockops_result_release(&res);
	bv_strv_clear(&fr.asked);
	bv_project_free(bare);
	bv_project_free(allowed);
	bv_project_free(other);
	bv_project_free(ahead);
}

/* ---- add, frozen ---- */

static void test_lockops__add_and_frozen(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\nversion = \"=2.14.0\"\n");
	struct bv_manifest *m = NULL;
	struct bv_strv warnings = BV_STRV_INIT, problems = BV_STRV_INIT;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct bv_error *err = NULL;
	struct bv_lockops_addition add = {.id = "seqtk", .requirement = "^1"};

	/* a community tool resolves without a warning; an experimental one warns */
	assert_ok(bv_lockops_resolve(&m, &warnings, f->idx, "seqtk", "^1", f->types, &err), &err);
	assert_int_equal(warnings.n, 0);
	add.manifest = m;
	add.image = (struct bv_lockops_image){.digest = "sha256:" HEX, .size = -1};
	assert_ok(bv_lockops_add(&res, p, NULL, &add, 1, &err), &err);
	assert_non_null(strstr(res.toml_text, "id = \"seqtk\""));
	assert_non_null(strstr(res.toml_text, "version = \"^1\""));
	assert_int_equal(res.project->n_tools, 2);
	assert_int_equal(res.lock->n_tools, 1); /* there was no bv.lock: only what was added */
	assert_string_equal(bv_lockfile_find(res.lock, "seqtk")->image_digest, "sha256:" HEX);
	assert_string_equal(bv_lockfile_find(res.lock, "seqtk")->declared_version_req, "^1");

	/* bv.toml now declares blast, which the lock lacks: sync --frozen refuses */
	assert_int_equal(bv_lockops_check_frozen(&problems, res.project, res.lock), 1);
	assert_string_equal(problems.v[0], "'blast' is declared in bv.toml but not locked");
	bv_strv_clear(&problems);
	assert_int_equal(bv_lockops_check_frozen(&problems, p, res.lock), 2);
	assert_string_equal(problems.v[1], "'seqtk' is locked but no longer declared in bv.toml");
	bv_strv_clear(&problems);

	sh("sed -i 's/^tier = .*/tier = \"experimental\"/' '%s/tools/seqtk/1.4.0.toml'",
	   f->registry);
	bv_manifest_free(m);
	m = NULL;
	assert_ok(bv_lockops_resolve(&m, &warnings, f->idx, "seqtk", "", f->types, &err), &err);
	assert_int_equal(warnings.n, 1);
	assert_string_equal(warnings.v[0], "seqtk is experimental");

	bv_strv_clear(&warnings);
	bv_lockops_result_release(&res);
	bv_manifest_free(m);
	bv_project_free(p);
}

/* ---- the transaction ---- */

static int try_lock(const char *root)
{
	struct bv_project_lock_options o = {.no_wait = true};
	struct bv_project_lock *pl = NULL;
	struct bv_error *err = NULL;
	int r = bv_project_lock(&pl, root, &o, &err);
	bv_error_free(err);
	bv_project_unlock(pl);
	return r;
}

static void test_lockops__commit_under_project_lock(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p = project(f, "[[tools]]\nid = \"blast\"\n");
	struct bv_lockops_txn txn, reader;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT, removed = BV_LOCKOPS_RESULT_INIT;
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_error *err = NULL;
	struct bv_lockfile *on_disk = NULL;
	char *lock_path = bv_path_join(f->root, "bv.lock");
	char *toml_path = bv_path_join(f->root, "bv.toml");
	char *shim = bv_path_join(f->root, ".bv/bin/blastn");
	char *text;
	const char *ids[] = {"blast"};
	struct stat st;

	bv_project_free(p);
	/* without the lock: readable, not writable */
	assert_ok(bv_lockops_open(&reader, f->root, false, NULL, &err), &err);
	assert_null(reader.project_lock);
	assert_null(reader.lock);
	assert_int_equal(try_lock(f->root), 0);
	relock_ok(f, reader.project, reader.lock, &fr, &res);
	assert_int_equal(bv_lockops_commit(&reader, &res, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(access(lock_path, F_OK), -1);

	/* with it: nobody else gets the project until the transaction ends */
	assert_ok(bv_lockops_open(&txn, f->root, true, NULL, &err), &err);
	assert_non_null(txn.project_lock);
	assert_int_equal(try_lock(f->root), BV_EEXISTS);
	assert_ok(bv_lockops_commit(&txn, &res, &err), &err);
	assert_ok(bv_lockfile_load(&on_disk, lock_path, &err), &err);
	assert_true(bv_lockfile_equivalent(on_disk, res.lock));
	assert_int_equal(lstat(shim, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_true(bv_shims_current(f->root, res.lock));
	bv_lockops_txn_release(&txn);
	assert_int_equal(try_lock(f->root), 0);

	/* the reader takes the lock late: bv.lock is read again under it */
	assert_null(reader.lock);
	assert_ok(bv_lockops_txn_lock(&reader, NULL, &err), &err);
	assert_non_null(reader.project_lock);
	assert_non_null(reader.lock);
	assert_non_null(bv_lockfile_find(reader.lock, "blast"));
	assert_int_equal(try_lock(f->root), BV_EEXISTS);
	bv_lockops_txn_release(&reader);

	/* remove commits bv.toml and bv.lock together */
	assert_ok(bv_lockops_open(&txn, f->root, true, NULL, &err), &err);
	assert_non_null(txn.lock);
	assert_ok(bv_lockops_remove(&removed, txn.project, txn.lock, ids, 1, &err), &err);
	assert_ok(bv_lockops_commit(&txn, &removed, &err), &err);
	bv_lockops_txn_release(&txn);
	text = read_file(toml_path);
	assert_null(strstr(text, "blast"));
	free(text);
	bv_lockfile_free(on_disk);
	on_disk = NULL;
	assert_ok(bv_lockfile_load(&on_disk, lock_path, &err), &err);
	assert_int_equal(on_disk->n_tools, 0);
	assert_int_equal(lstat(shim, &st), -1);

	bv_lockfile_free(on_disk);
	bv_lockops_result_release(&res);
	bv_lockops_result_release(&removed);
	bv_strv_clear(&fr.asked);
	free(lock_path);
	free(toml_path);
	free(shim);
}

static void test_lockops__commit_refuses_unallowed_shadow(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_project *p;
	struct bv_lockops_txn txn;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct fake_registry fr = {.asked = BV_STRV_INIT};
	struct bv_error *err = NULL;
	char *lock_path = bv_path_join(f->root, "bv.lock");
	char *msg;

	add_tool_exposing(f, "lstool", "ls");
	p = project(f, "[[tools]]\nid = \"lstool\"\n\n[binary_overrides]\nls = \"lstool\"\n");
	relock_ok(f, p, NULL, &fr, &res);
	bv_project_free(p);
	/* bv.toml changed its mind after the lock was computed (as a hostile bv.lock would) */
	bv_project_free(project(f, "[[tools]]\nid = \"lstool\"\n"));
	assert_ok(bv_lockops_open(&txn, f->root, true, NULL, &err), &err);
	assert_int_equal(bv_lockops_commit(&txn, &res, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "bv.lock makes 'ls' of tool 'lstool' replace the system command "
				 "in bv exec and bv shell, and bv.toml does not allow it");
	free(msg);
	bv_error_free(err);
	/* nothing written */
	assert_int_equal(access(lock_path, F_OK), -1);
	bv_lockops_txn_release(&txn);
	bv_lockops_result_release(&res);
	bv_strv_clear(&fr.asked);
	free(lock_path);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lockops__fill_entry_from_factored_manifest,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__data_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__fill_entry_without_registry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lockops__relock_new_project_resolves_all,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__relock_keeps_matching_pinned_entry,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_lockops__relock_requirement_change_resolves_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__relock_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__relock_admit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__remove, setup, teardown),
		cmocka_unit_test(test_lockops__diff_groups_lockfile_lines),
		cmocka_unit_test_setup_teardown(test_lockops__binary_index_shadow_rule, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lockops__add_and_frozen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockops__commit_under_project_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lockops__commit_refuses_unallowed_shadow,
						setup, teardown),
	};
	if (argc > 1 && access(argv[1], F_OK) == 0)
		sample = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
