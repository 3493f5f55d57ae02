/*
 * bv.toml: the model read from every section, unknown keys as warnings, positioned schema
 * errors, and the text edits behind bv add / bv remove, which must leave every byte they do
 * not own exactly as it was.
 *
 * Texts are parsed under the made-up path /p/bv.toml unless a test needs a real file.
 */
#include <bv/error.h>
#include <bv/project.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#define PATH "/p/bv.toml"

static struct bv_project *parse_ok(const char *text)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	assert_ok(bv_project_parse(&p, text, strlen(text), PATH, &err), &err);
	assert_non_null(p);
	return p;
}

/* Parses `text`, expects failure with `code` and the formatted message `want`. */
static void parse_fail(const char *text, int code, const char *want)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	char *msg;
	int r = bv_project_parse(&p, text, strlen(text), PATH, &err);
	if (r >= 0) {
		print_error("parsed although it should fail with: %s\n", want);
		bv_project_free(p);
		fail();
	}
	assert_int_equal(r, code);
	assert_null(p);
	assert_non_null(err);
	msg = bv_error_format(err);
	bv_error_free(err);
	if (strcmp(msg, want))
		print_error("text:\n%s\n", text);
	assert_string_equal(msg, want);
	free(msg);
}

/* All `len` bytes are parsed, a NUL inside too (a copy cut at the NUL was read past its end). */
static void test_project__nul_inside(void **state)
{
	static const char text[] = "[project]\nname = \"x\"\n# a\0\0\0\0\0\0\0\0 comment\n";
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	(void)state;
	assert_true(bv_project_parse(&p, text, sizeof(text) - 1, PATH, &err) < 0);
	assert_null(p);
	assert_non_null(err);
	bv_error_free(err);
}

static void test_project__minimal(void **state)
{
	struct bv_project *p = parse_ok("[project]\nname = \"demo\"\n");
	(void)state;
	assert_string_equal(p->path, PATH);
	assert_string_equal(p->root, "/p");
	assert_string_equal(p->name, "demo");
	assert_string_equal(bv_project_display_name(p), "demo");
	assert_null(p->description);
	assert_null(p->registry_url);
	assert_null(p->runtime_backend);
	assert_int_equal(p->n_tools, 0);
	assert_int_equal(p->n_overrides, 0);
	assert_int_equal(p->n_caches, 0);
	assert_int_equal(p->n_data, 0);
	assert_int_equal(p->gpu, -1);
	assert_int_equal(p->cpu_cores, -1);
	assert_true(p->ram_gb < 0);
	assert_int_equal(p->warnings.n, 0);
	assert_null(bv_project_find_tool(p, "samtools"));
	assert_int_equal(p->text_len, strlen("[project]\nname = \"demo\"\n"));
	assert_string_equal(p->text, "[project]\nname = \"demo\"\n");
	bv_project_free(p);
}

static const char full[] = "[project]\n"                             /* 1 */
			   "name = \"atlas\"\n"                      /* 2 */
			   "description = \"protein atlas\"\n"       /* 3 */
			   "\n"                                      /* 4 */
			   "[registry]\n"                            /* 5 */
			   "url = \"https://example.org/reg\"\n"     /* 6 */
			   "\n"                                      /* 7 */
			   "[runtime]\n"                             /* 8 */
			   "backend = \"apptainer\"\n"               /* 9 */
			   "\n"                                      /* 10 */
			   "[[tools]]\n"                             /* 11 */
			   "id = \"samtools\"\n"                     /* 12 */
			   "version = \"^1.21\"\n"                   /* 13 */
			   "\n"                                      /* 14 */
			   "[[tools]]\n"                             /* 15 */
			   "id = \"blast\"\n"                        /* 16 */
			   "\n"                                      /* 17 */
			   "[binary_overrides]\n"                    /* 18 */
			   "blastp = \"blast\"\n"                    /* 19 */
			   "samtools = \"samtools\"\n"               /* 20 */
			   "\n"                                      /* 21 */
			   "[[cache]]\n"                             /* 22 */
			   "match = \"colabfold\"\n"                 /* 23 */
			   "container_path = \"/cache/colabfold\"\n" /* 24 */
			   "host_path = \"~/weights/{tool}\"\n"      /* 25 */
			   "\n"                                      /* 26 */
			   "[[cache]]\n"                             /* 27 */
			   "container_path = \"/root/.cache\"\n"     /* 28 */
			   "host_path = \"/scratch/cache\"\n"        /* 29 */
			   "\n"                                      /* 30 */
			   "[data.pdb]\n"                            /* 31 */
			   "id = \"pdbaa\"\n"                        /* 32 */
			   "version = \"2024_01\"\n"                 /* 33 */
			   "\n"                                      /* 34 */
			   "[data.families]\n"                       /* 35 */
			   "id = \"pfam\"\n"                         /* 36 */
			   "\n"                                      /* 37 */
			   "[hardware]\n"                            /* 38 */
			   "gpu = true\n"                            /* 39 */
			   "cpu_cores = 16\n"                        /* 40 */
			   "ram_gb = 64\n";                          /* 41 */

static void test_project__every_section(void **state)
{
	struct bv_project *p = parse_ok(full);
	const struct bv_project_tool *t;
	(void)state;

	assert_string_equal(p->name, "atlas");
	assert_string_equal(p->description, "protein atlas");
	assert_string_equal(p->registry_url, "https://example.org/reg");
	assert_string_equal(p->runtime_backend, "apptainer");

	assert_int_equal(p->n_tools, 2);
	assert_string_equal(p->tools[0].id, "samtools");
	assert_string_equal(p->tools[0].version, "^1.21");
	assert_int_equal(p->tools[0].pos.line, 11);
	assert_string_equal(p->tools[1].id, "blast");
	assert_string_equal(p->tools[1].version, ""); /* latest */
	assert_int_equal(p->tools[1].pos.line, 15);
	t = bv_project_find_tool(p, "blast");
	assert_ptr_equal(t, &p->tools[1]);
	assert_null(bv_project_find_tool(p, "blastp"));

	assert_int_equal(p->n_overrides, 2);
	assert_string_equal(p->overrides[0].binary, "blastp");
	assert_string_equal(p->overrides[0].tool, "blast");
	assert_string_equal(p->overrides[1].binary, "samtools");
	assert_string_equal(p->overrides[1].tool, "samtools");

	assert_int_equal(p->n_caches, 2);
	assert_string_equal(p->caches[0].match, "colabfold");
	assert_string_equal(p->caches[0].container_path, "/cache/colabfold");
	assert_string_equal(p->caches[0].host_path, "~/weights/{tool}");
	assert_string_equal(p->caches[1].match, "*"); /* default */
	assert_string_equal(p->caches[1].container_path, "/root/.cache");
	assert_string_equal(p->caches[1].host_path, "/scratch/cache");

	assert_int_equal(p->n_data, 2);
	assert_string_equal(p->data[0].key, "pdb");
	assert_string_equal(p->data[0].id, "pdbaa");
	assert_string_equal(p->data[0].version, "2024_01");
	assert_string_equal(p->data[1].key, "families");
	assert_string_equal(p->data[1].id, "pfam");
	assert_null(p->data[1].version);

	assert_int_equal(p->gpu, 1);
	assert_int_equal(p->cpu_cores, 16);
	assert_true(p->ram_gb == 64.0); /* an integer is a number too */
	assert_int_equal(p->warnings.n, 0);
	bv_project_free(p);
}

static void test_project__hardware_partial(void **state)
{
	struct bv_project *p =
		parse_ok("[project]\nname = \"x\"\n[hardware]\ngpu = false\nram_gb = 7.5\n");
	(void)state;
	assert_int_equal(p->gpu, 0);
	assert_int_equal(p->cpu_cores, -1);
	assert_true(p->ram_gb == 7.5);
	bv_project_free(p);

	p = parse_ok("[project]\nname = \"x\"\n[hardware]\ncpu_cores = 2\n");
	assert_int_equal(p->gpu, -1);
	assert_int_equal(p->cpu_cores, 2);
	assert_true(p->ram_gb < 0);
	bv_project_free(p);
}

static void test_project__backends(void **state)
{
	static const char *const ok[] = {"auto", "native", "docker", "apptainer", "singularity"};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(ok); i++) {
		char *text = bv_xasprintf("[project]\nname = \"x\"\n[runtime]\nbackend = \"%s\"\n",
					  ok[i]);
		struct bv_project *p = parse_ok(text);
		assert_string_equal(p->runtime_backend, ok[i]);
		bv_project_free(p);
		free(text);
	}
}

/* [runtime] image_mode and local_dir (issue 17), with or without a backend */
static void test_project__image_mode(void **state)
{
	struct bv_project *p = parse_ok("[project]\nname = \"x\"\n[runtime]\n"
					"image_mode = \"squashfs\"\nlocal_dir = \"/scratch\"\n");
	(void)state;
	assert_null(p->runtime_backend);
	assert_string_equal(p->image_mode, "squashfs");
	assert_string_equal(p->local_dir, "/scratch");
	bv_project_free(p);
}

static void test_project__unknown_keys_warn(void **state)
{
	static const char text[] = "colour = \"blue\"\n"       /* 1 */
				   "[project]\n"               /* 2 */
				   "name = \"w\"\n"            /* 3 */
				   "nmae = \"typo\"\n"         /* 4 */
				   "[registry]\n"              /* 5 */
				   "url = \"/srv/reg\"\n"      /* 6 */
				   "branch = \"main\"\n"       /* 7 */
				   "[runtime]\n"               /* 8 */
				   "backend = \"docker\"\n"    /* 9 */
				   "gpus = 2\n"                /* 10 */
				   "[[tools]]\n"               /* 11 */
				   "id = \"bwa\"\n"            /* 12 */
				   "pin = true\n"              /* 13 */
				   "version = \"0.7\"\n"       /* 14 */
				   "[[cache]]\n"               /* 15 */
				   "container_path = \"/c\"\n" /* 16 */
				   "host_path = \"/h\"\n"      /* 17 */
				   "mode = \"rw\"\n"           /* 18 */
				   "[data.ref]\n"              /* 19 */
				   "id = \"pfam\"\n"           /* 20 */
				   "sha = \"x\"\n"             /* 21 */
				   "[hardware]\n"              /* 22 */
				   "disk_gb = 10\n"            /* 23 */
				   "cpu_cores = 3\n"           /* 24 */
				   "[extras]\n"                /* 25 */
				   "a = 1\n";                  /* 26 */
	static const char *const want[] = {
		PATH ":4: unknown key 'nmae' in [project] (ignored)",
		PATH ":7: unknown key 'branch' in [registry] (ignored)",
		PATH ":10: unknown key 'gpus' in [runtime] (ignored)",
		PATH ":13: unknown key 'pin' in [[tools]] (ignored)",
		PATH ":18: unknown key 'mode' in [[cache]] (ignored)",
		PATH ":21: unknown key 'sha' in [data.ref] (ignored)",
		PATH ":23: unknown key 'disk_gb' in [hardware] (ignored)",
		PATH ":1: unknown key 'colour' in the top level (ignored)",
		PATH ":25: unknown key 'extras' in the top level (ignored)",
	};
	struct bv_project *p = parse_ok(text);
	(void)state;

	/* Each message once, and the rest of the file still read. */
	assert_int_equal(p->warnings.n, BV_ARRAY_SIZE(want));
	for (size_t i = 0; i < BV_ARRAY_SIZE(want); i++)
		assert_string_equal(p->warnings.v[i], want[i]);
	assert_string_equal(p->name, "w");
	assert_string_equal(p->registry_url, "/srv/reg");
	assert_false(p->require_signed);
	assert_string_equal(p->runtime_backend, "docker");
	assert_int_equal(p->n_tools, 1);
	assert_string_equal(p->tools[0].version, "0.7");
	assert_int_equal(p->n_caches, 1);
	assert_int_equal(p->n_data, 1);
	assert_string_equal(p->data[0].id, "pfam");
	assert_int_equal(p->cpu_cores, 3);
	bv_project_free(p);
}

/* Top-level unknown keys: the table name in the message. */
static void test_project__unknown_top_level_key(void **state)
{
	struct bv_project *p = parse_ok("[project]\nname = \"w\"\n\n[tool]\nid = \"x\"\n");
	(void)state;
	assert_int_equal(p->warnings.n, 1);
	assert_string_equal(p->warnings.v[0],
			    PATH ":4: unknown key 'tool' in the top level (ignored)");
	bv_project_free(p);
}

static void test_project__schema_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"", PATH ":1:1: missing key 'project' in the top level"},
		{"[registry]\nurl = \"x\"\n", PATH ":1:1: missing key 'project' in the top level"},
		{"project = \"x\"\n",
		 PATH ":1:11: 'project' in the top level must be a table, not a string"},
		{"[project]\ndescription = \"d\"\n", PATH ":1:1: missing key 'name' in [project]"},
		{"[project]\nname = \"\"\n", PATH ":2:8: 'name' in [project] must not be empty"},
		{"[project]\nname = 42\n",
		 PATH ":2:8: 'name' in [project] must be a string, not an integer"},
		{"[project]\nname = \"x\"\ndescription = [\"d\"]\n",
		 PATH ":3:15: 'description' in [project] must be a string, not an array"},
		{"[project]\nname = \"x\"\n[registry]\n",
		 PATH ":3:1: missing key 'url' in [registry]"},
		{"[project]\nname = \"x\"\n[registry]\nurl = \"u\"\nrequire_signed = \"yes\"\n",
		 PATH ":5:18: 'require_signed' in [registry] must be a boolean, not a string"},
		{"[project]\nname = \"x\"\n[runtime]\nbackend = true\n",
		 PATH ":4:11: 'backend' in [runtime] must be a string, not a boolean"},
		{"[project]\nname = \"x\"\n[runtime]\nbackend = \"podman\"\n", PATH
		 ":4:11: unknown backend 'podman' in [runtime]; expected auto, native, docker, "
		 "apptainer or singularity"},
		{"[project]\nname = \"x\"\n[runtime]\nimage_mode = \"overlay\"\n", PATH
		 ":4:14: unknown image_mode 'overlay' in [runtime]; expected tree, local_dir or "
		 "squashfs"},
		{"[project]\nname = \"x\"\n[runtime]\nlocal_dir = \"scratch\"\n",
		 PATH ":4:13: local_dir in [runtime] must be an absolute path"},
		{"tools = \"samtools\"\n[project]\nname = \"x\"\n",
		 PATH ":1:9: 'tools' in the top level must be an array, not a string"},
		{"tools = [\"samtools\"]\n[project]\nname = \"x\"\n",
		 PATH ":1:10: entries of [[tools]] must be tables, not a string"},
		{"[project]\nname = \"x\"\n[[tools]]\nversion = \"1\"\n",
		 PATH ":3:1: missing key 'id' in [[tools]]"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = 7\n",
		 PATH ":4:6: 'id' in [[tools]] must be a string, not an integer"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"bwa\"\nversion = 1\n",
		 PATH ":5:11: 'version' in [[tools]] must be a string, not an integer"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"Samtools\"\n",
		 PATH ":4:6: invalid tool id 'Samtools'"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"samtools@1.21\"\n",
		 PATH ":4:6: invalid tool id 'samtools@1.21'"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"\"\n",
		 PATH ":4:6: invalid tool id ''"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"../etc\"\n",
		 PATH ":4:6: invalid tool id '../etc'"},
		{"[project]\nname = \"x\"\n\n[[tools]]\nid = \"bwa\"\n\n[[tools]]\nid = \"blast\"\n\n"
		 "[[tools]]\nid = \"bwa\"\nversion = \"1\"\n",
		 PATH ":10:1: tool 'bwa' is declared twice (first on line 4)"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"a\"\n[[tools]]\nid = \"a\"\n"
		 "[[tools]]\nid = \"a\"\n",
		 PATH ":5:1: tool 'a' is declared twice (first on line 3)"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"bwa\"\nversion = \">>1\"\n",
		 PATH ":5:11: invalid version requirement '>>1': unexpected '>'"},
		{"[project]\nname = \"x\"\n[binary_overrides]\nblastp = 1\n",
		 PATH ":4:10: 'blastp' in [binary_overrides] must be a string, not an integer"},
		{"[project]\nname = \"x\"\n[[cache]]\ncontainer_path = \"cache\"\nhost_path = \"/h\"\n",
		 PATH
		 ":4:18: invalid container_path 'cache' in [[cache]]: it must be an absolute path"},
		{"[project]\nname = \"x\"\n[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"~/.ssh\"\n",
		 PATH
		 ":5:13: invalid host_path '~/.ssh' in [[cache]]: it is in a hidden directory of "
		 "your home, where keys and settings live"},
		{"[project]\nname = \"x\"\n[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"~\"\n",
		 PATH
		 ":5:13: invalid host_path '~' in [[cache]]: it is your home directory or above it"},
		{"[project]\nname = \"x\"\n[binary_overrides]\n\"../sh\" = \"x\"\n", PATH
		 ":4:1: invalid binary name '../sh' in [binary_overrides]; use letters, digits, "
		 "'.', '_', '+' and '-', starting with a letter, digit or '_', at most 128 "
		 "characters"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \"a;b\"\n",
		 PATH ":4:6: invalid tool id 'a;b'"},
		{"[project]\nname = \"x\"\n[[tools]]\nid = \".x\"\n",
		 PATH ":4:6: invalid tool id '.x'"},
		{"[project]\nname = \"x\"\n[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"\"\n",
		 PATH ":5:13: 'host_path' in [[cache]] must not be empty"},
		{"[project]\nname = \"x\"\n[[cache]]\nhost_path = \"/h\"\n",
		 PATH ":3:1: missing key 'container_path' in [[cache]]"},
		{"[project]\nname = \"x\"\n[[cache]]\nmatch = 1\ncontainer_path = \"/c\"\n",
		 PATH ":4:9: 'match' in [[cache]] must be a string, not an integer"},
		{"[project]\nname = \"x\"\n[data]\nref = \"pfam\"\n",
		 PATH ":4:7: 'ref' in [data] must be a table, not a string"},
		{"[project]\nname = \"x\"\n[data.ref]\nversion = \"36.0\"\n",
		 PATH ":3:1: missing key 'id' in [data.ref]"},
		{"[project]\nname = \"x\"\n[hardware]\ngpu = \"yes\"\n",
		 PATH ":4:7: 'gpu' in [hardware] must be a boolean, not a string"},
		{"[project]\nname = \"x\"\n[hardware]\ncpu_cores = 2.5\n",
		 PATH ":4:13: 'cpu_cores' in [hardware] must be an integer, not a float"},
		{"[project]\nname = \"x\"\n[hardware]\nram_gb = \"8\"\n",
		 PATH ":4:10: 'ram_gb' in [hardware] must be a number, not a string"},
		{"hardware = 1\n[project]\nname = \"x\"\n",
		 PATH ":1:12: 'hardware' in the top level must be a table, not an integer"},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++)
		parse_fail(cases[i].text, BV_EINVALID, cases[i].want);
}

static void test_project__toml_syntax_error(void **state)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	static const char text[] = "[project]\nname = \"x\"\nname = \"y\"\n";
	char *msg;
	(void)state;
	assert_int_equal(bv_project_parse(&p, text, strlen(text), PATH, &err), BV_EINVALID);
	assert_null(p);
	msg = bv_error_format(err);
	assert_string_equal(msg, PATH ":3:1: duplicate key 'name'");
	free(msg);
	bv_error_free(err);
}

static char *write_project(const char *dir, const char *text)
{
	struct bv_error *err = NULL;
	char *path = bv_path_join(dir, "bv.toml");
	assert_ok(bv_write_file_atomic(path, text, strlen(text), 0644, &err), &err);
	return path;
}

static char *slurp(const char *path)
{
	struct bv_error *err = NULL;
	struct bv_buf b = BV_BUF_INIT;
	assert_ok(bv_buf_read_file(&b, path, 1u << 20, &err), &err);
	return bv_buf_detach(&b, NULL);
}

static void test_project__load(void **state)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	char *dir = test_mkdtemp("project");
	char *path, *msg;
	(void)state;
	assert_non_null(dir);

	assert_int_equal(bv_project_load(&p, dir, &err), BV_ENOTFOUND);
	assert_null(p);
	bv_error_free(err);
	err = NULL;

	path = write_project(dir, full);
	assert_ok(bv_project_load(&p, dir, &err), &err);
	assert_string_equal(p->path, path);
	assert_string_equal(p->root, dir);
	assert_string_equal(p->text, full);
	assert_int_equal(p->n_tools, 2);
	bv_project_free(p);
	p = NULL;
	free(path);

	/* Errors name the real path. */
	path = write_project(dir, "[project]\nname = \"\"\n");
	assert_int_equal(bv_project_load(&p, dir, &err), BV_EINVALID);
	msg = bv_error_format(err);
	{
		char *want = bv_xasprintf("%s:2:8: 'name' in [project] must not be empty", path);
		assert_string_equal(msg, want);
		free(want);
	}
	free(msg);
	bv_error_free(err);
	free(path);

	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

static void test_project__template(void **state)
{
	char *text = bv_project_template("my \"lab\"");
	struct bv_project *p = parse_ok(text);
	(void)state;
	assert_string_equal(p->name, "my \"lab\"");
	assert_int_equal(p->n_tools, 0);
	assert_int_equal(p->warnings.n, 0);
	bv_project_free(p);
	free(text);
}

/* Text edits. */

static char *without(const char *text, const char *id)
{
	struct bv_error *err = NULL;
	struct bv_project *p = parse_ok(text);
	char *out = NULL;
	assert_ok(bv_project_text_without_tool(&out, p, id, &err), &err);
	assert_non_null(out);
	bv_project_free(p);
	return out;
}

static char *with(const char *text, const char *id, const char *version)
{
	struct bv_error *err = NULL;
	struct bv_project *p = parse_ok(text);
	char *out = NULL;
	assert_ok(bv_project_text_with_tool(&out, p, id, version, &err), &err);
	assert_non_null(out);
	bv_project_free(p);
	return out;
}

/* Ten add and remove cycles of two tools leave the file as it was: no blank lines pile up. */
static void test_project__add_remove_cycles_are_stable(void **state)
{
	static const char *const starts[] = {
		"[project]\nname = \"p\"\n",
		"[project]\nname = \"p\"\n\n[[tools]]\nid = \"samtools\"\n",
		"[project]\nname = \"p\"\n\n# keep me\n[[tools]]\nid = \"samtools\"\n\n[runtime]\n"
		"backend = \"native\"\n",
	};
	(void)state;
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		char *text = strdup(starts[k]);
		for (int i = 0; i < 10; i++) {
			char *a = with(text, "bwa", "");
			char *b = with(a, "minimap2", "^2");
			char *c = without(b, "bwa");
			char *d = without(c, "minimap2");
			free(text);
			free(a);
			free(b);
			free(c);
			text = d;
		}
		assert_string_equal(text, starts[k]);
		free(text);
	}
}

/* The ids declared by `text`, space-separated, "id@version" when pinned. */
static char *declared(const char *text)
{
	struct bv_project *p = parse_ok(text);
	struct bv_buf b = BV_BUF_INIT;
	for (size_t i = 0; i < p->n_tools; i++)
		bv_buf_printf(&b, "%s%s%s%s", i ? " " : "", p->tools[i].id,
			      p->tools[i].version[0] ? "@" : "", p->tools[i].version);
	bv_project_free(p);
	return bv_buf_detach(&b, NULL);
}

static void assert_declared(const char *text, const char *want)
{
	char *got = declared(text);
	assert_string_equal(got, want);
	free(got);
}

static const char three[] = "# lab project\n"
			    "[project]\n"
			    "name = \"lab\"  # short\n"
			    "\n"
			    "# aligner\n"
			    "[[tools]]\n"
			    "id = \"bwa\"\n"
			    "version = \"^0.7\"\n"
			    "\n"
			    "# caller, keep in sync with the paper\n"
			    "[[tools]]\n"
			    "id = \"bcftools\"\n"
			    "\n"
			    "\t# trailing comment of bcftools\n"
			    "[[tools]]\n"
			    "# pinned\n"
			    "id = \"samtools\"\n"
			    "version = \"=1.21.0\"   # exact\n"
			    "\n"
			    "[hardware]\n"
			    "cpu_cores = 4\n";

static void test_project__without_first(void **state)
{
	char *out = without(three, "bwa");
	(void)state;
	/* Comments right above a header belong to it: "# aligner" goes with bwa, the comment
	 * above bcftools stays with bcftools. */
	assert_string_equal(out, "# lab project\n"
				 "[project]\n"
				 "name = \"lab\"  # short\n"
				 "\n"
				 "# caller, keep in sync with the paper\n"
				 "[[tools]]\n"
				 "id = \"bcftools\"\n"
				 "\n"
				 "\t# trailing comment of bcftools\n"
				 "[[tools]]\n"
				 "# pinned\n"
				 "id = \"samtools\"\n"
				 "version = \"=1.21.0\"   # exact\n"
				 "\n"
				 "[hardware]\n"
				 "cpu_cores = 4\n");
	assert_declared(out, "bcftools samtools@=1.21.0");
	free(out);
}

static void test_project__without_middle(void **state)
{
	char *out = without(three, "bcftools");
	(void)state;
	assert_string_equal(out, "# lab project\n"
				 "[project]\n"
				 "name = \"lab\"  # short\n"
				 "\n"
				 "# aligner\n"
				 "[[tools]]\n"
				 "id = \"bwa\"\n"
				 "version = \"^0.7\"\n"
				 "\n"
				 "\t# trailing comment of bcftools\n"
				 "[[tools]]\n"
				 "# pinned\n"
				 "id = \"samtools\"\n"
				 "version = \"=1.21.0\"   # exact\n"
				 "\n"
				 "[hardware]\n"
				 "cpu_cores = 4\n");
	assert_declared(out, "bwa@^0.7 samtools@=1.21.0");
	free(out);
}

static void test_project__without_last_before_table(void **state)
{
	char *out = without(three, "samtools");
	(void)state;
	assert_string_equal(out, "# lab project\n"
				 "[project]\n"
				 "name = \"lab\"  # short\n"
				 "\n"
				 "# aligner\n"
				 "[[tools]]\n"
				 "id = \"bwa\"\n"
				 "version = \"^0.7\"\n"
				 "\n"
				 "# caller, keep in sync with the paper\n"
				 "[[tools]]\n"
				 "id = \"bcftools\"\n"
				 "\n"
				 "[hardware]\n"
				 "cpu_cores = 4\n");
	assert_declared(out, "bwa@^0.7 bcftools");
	free(out);
}

static void test_project__without_at_end_of_file(void **state)
{
	static const char text[] = "[project]\nname = \"x\"\n\n[[tools]]\nid = \"a\"\n\n"
				   "[[tools]]\nid = \"b\"\nversion = \"1\"";
	char *out = without(text, "b");
	(void)state;
	/* the blank line above the removed entry goes with it */
	assert_string_equal(out, "[project]\nname = \"x\"\n\n[[tools]]\nid = \"a\"\n");
	assert_declared(out, "a");
	free(out);

	out = without(text, "a");
	assert_string_equal(out,
			    "[project]\nname = \"x\"\n\n[[tools]]\nid = \"b\"\nversion = \"1\"");
	assert_declared(out, "b@1");
	free(out);

	/* The only tool, the last line with a final newline. */
	out = without("[project]\nname = \"x\"\n[[tools]]\nid = \"a\"\n", "a");
	assert_string_equal(out, "[project]\nname = \"x\"\n");
	assert_declared(out, "");
	free(out);
}

/* The next header may belong to a nested table ([data.x]) or another array ([[cache]]). */
static void test_project__without_before_nested_headers(void **state)
{
	static const char text[] = "[project]\nname = \"x\"\n"
				   "[[tools]]\nid = \"a\"\n"
				   "[data.genome]\nid = \"hg38\"\n"
				   "[[tools]]\nid = \"b\"\n"
				   "[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"/h\"\n"
				   "[[tools]]\nid = \"c\"\n";
	char *out = without(text, "a");
	(void)state;
	assert_string_equal(out, "[project]\nname = \"x\"\n"
				 "[data.genome]\nid = \"hg38\"\n"
				 "[[tools]]\nid = \"b\"\n"
				 "[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"/h\"\n"
				 "[[tools]]\nid = \"c\"\n");
	assert_declared(out, "b c");
	free(out);

	out = without(text, "b");
	assert_string_equal(out, "[project]\nname = \"x\"\n"
				 "[[tools]]\nid = \"a\"\n"
				 "[data.genome]\nid = \"hg38\"\n"
				 "[[cache]]\ncontainer_path = \"/c\"\nhost_path = \"/h\"\n"
				 "[[tools]]\nid = \"c\"\n");
	assert_declared(out, "a c");
	free(out);
}

/* CRLF files and indented headers: whole lines go, line endings stay as they were. */
static void test_project__without_crlf_and_indent(void **state)
{
	char *out = without("[project]\r\nname = \"x\"\r\n  [[tools]] # one\r\n  id = \"a\"\r\n"
			    "[[tools]]\r\nid = \"b\"\r\n",
			    "a");
	(void)state;
	assert_string_equal(out, "[project]\r\nname = \"x\"\r\n[[tools]]\r\nid = \"b\"\r\n");
	assert_declared(out, "b");
	free(out);
}

static void test_project__without_errors(void **state)
{
	struct bv_error *err = NULL;
	struct bv_project *p = parse_ok(three);
	char *out = NULL, *msg;
	(void)state;

	assert_int_equal(bv_project_text_without_tool(&out, p, "blast", &err), BV_ENOTFOUND);
	assert_null(out);
	msg = bv_error_format(err);
	assert_string_equal(msg, "tool 'blast' is not declared in '" PATH "'");
	free(msg);
	bv_error_free(err);
	err = NULL;
	bv_project_free(p);

	/* No tools at all. */
	p = parse_ok("[project]\nname = \"x\"\n");
	assert_int_equal(bv_project_text_without_tool(&out, p, "bwa", &err), BV_ENOTFOUND);
	assert_null(out);
	bv_error_free(err);
	err = NULL;
	bv_project_free(p);

	/* Inline tables have no lines of their own to remove. */
	p = parse_ok("tools = [{id = \"bwa\"}, {id = \"x\"}]\n[project]\nname = \"x\"\n");
	assert_int_equal(p->n_tools, 2);
	assert_int_equal(bv_project_text_without_tool(&out, p, "x", &err), BV_EINVALID);
	assert_null(out);
	msg = bv_error_format(err);
	assert_string_equal(msg, PATH ":1:24: cannot edit tool 'x': declare tools as [[tools]] "
				      "tables, not inline");
	free(msg);
	bv_error_free(err);
	err = NULL;

	assert_int_equal(bv_project_text_with_tool(&out, p, "bwa", "1", &err), BV_EINVALID);
	assert_null(out);
	msg = bv_error_format(err);
	assert_string_equal(msg, PATH ":1:10: cannot edit tool 'bwa': declare tools as [[tools]] "
				      "tables, not inline");
	free(msg);
	bv_error_free(err);
	err = NULL;

	/* A NULL err still gets the code. */
	assert_int_equal(bv_project_text_with_tool(&out, p, "bwa", "1", NULL), BV_EINVALID);
	assert_int_equal(bv_project_text_without_tool(&out, p, "nope", NULL), BV_ENOTFOUND);
	assert_null(out);
	bv_project_free(p);
}

static void test_project__with_appends(void **state)
{
	static const char base[] = "[project]\nname = \"x\"\n# tools below\n";
	char *out = with(base, "samtools", "^1.21");
	(void)state;
	assert_string_equal(out, "[project]\nname = \"x\"\n# tools below\n"
				 "\n[[tools]]\nid = \"samtools\"\nversion = \"^1.21\"\n");
	assert_declared(out, "samtools@^1.21");
	free(out);

	/* Latest: no version line.  A file without a final newline gets one first. */
	out = with("[project]\nname = \"x\"", "bwa", "");
	assert_string_equal(out, "[project]\nname = \"x\"\n\n[[tools]]\nid = \"bwa\"\n");
	assert_declared(out, "bwa");
	free(out);

	/* After existing entries and other tables, which stay as they are. */
	out = with(three, "blast", ">=2.14, <3");
	{
		char *want = bv_xasprintf(
			"%s\n[[tools]]\nid = \"blast\"\nversion = \">=2.14, <3\"\n", three);
		assert_string_equal(out, want);
		free(want);
	}
	assert_declared(out, "bwa@^0.7 bcftools samtools@=1.21.0 blast@>=2.14, <3");
	free(out);
}

static void test_project__with_replaces_version(void **state)
{
	char *out = with(three, "bwa", "=0.7.18");
	(void)state;
	assert_string_equal(out, "# lab project\n"
				 "[project]\n"
				 "name = \"lab\"  # short\n"
				 "\n"
				 "# aligner\n"
				 "[[tools]]\n"
				 "id = \"bwa\"\n"
				 "version = \"=0.7.18\"\n"
				 "\n"
				 "# caller, keep in sync with the paper\n"
				 "[[tools]]\n"
				 "id = \"bcftools\"\n"
				 "\n"
				 "\t# trailing comment of bcftools\n"
				 "[[tools]]\n"
				 "# pinned\n"
				 "id = \"samtools\"\n"
				 "version = \"=1.21.0\"   # exact\n"
				 "\n"
				 "[hardware]\n"
				 "cpu_cores = 4\n");
	assert_declared(out, "bwa@=0.7.18 bcftools samtools@=1.21.0");
	free(out);

	/* "" (latest) drops the version line. */
	out = with(three, "samtools", "");
	{
		const char *at = strstr(three, "version = \"=1.21.0\"   # exact\n");
		char *want;
		assert_non_null(at);
		want = bv_xasprintf("%.*s%s", (int)(at - three), three,
				    at + strlen("version = \"=1.21.0\"   # exact\n"));
		assert_string_equal(out, want);
		free(want);
	}
	assert_declared(out, "bwa@^0.7 bcftools samtools");
	free(out);
}

static void test_project__with_adds_version_line(void **state)
{
	char *out = with(three, "bcftools", "^1.21");
	(void)state;
	assert_string_equal(out, "# lab project\n"
				 "[project]\n"
				 "name = \"lab\"  # short\n"
				 "\n"
				 "# aligner\n"
				 "[[tools]]\n"
				 "id = \"bwa\"\n"
				 "version = \"^0.7\"\n"
				 "\n"
				 "# caller, keep in sync with the paper\n"
				 "[[tools]]\n"
				 "id = \"bcftools\"\n"
				 "version = \"^1.21\"\n"
				 "\n"
				 "\t# trailing comment of bcftools\n"
				 "[[tools]]\n"
				 "# pinned\n"
				 "id = \"samtools\"\n"
				 "version = \"=1.21.0\"   # exact\n"
				 "\n"
				 "[hardware]\n"
				 "cpu_cores = 4\n");
	assert_declared(out, "bwa@^0.7 bcftools@^1.21 samtools@=1.21.0");
	free(out);

	/* The id on the last line, without a final newline. */
	out = with("[project]\nname = \"x\"\n[[tools]]\nid = \"a\"", "a", "2");
	assert_string_equal(out,
			    "[project]\nname = \"x\"\n[[tools]]\nid = \"a\"\nversion = \"2\"\n");
	assert_declared(out, "a@2");
	free(out);

	/* Nothing to change: latest requested, no version line. */
	out = with("[project]\nname = \"x\"\n[[tools]]\nid = \"a\"\n# c\n", "a", "");
	assert_string_equal(out, "[project]\nname = \"x\"\n[[tools]]\nid = \"a\"\n# c\n");
	free(out);
}

static void test_project__save_text(void **state)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	char *dir = test_mkdtemp("project");
	char *path, *text, *on_disk, *msg, *want;
	struct stat st;
	(void)state;
	assert_non_null(dir);
	path = write_project(dir, three);
	assert_ok(bv_project_load(&p, dir, &err), &err);

	/* A good edit is written, and the file reads back. */
	assert_ok(bv_project_text_with_tool(&text, p, "blast", "^2", &err), &err);
	assert_ok(bv_project_save_text(p, text, &err), &err);
	on_disk = slurp(path);
	assert_string_equal(on_disk, text);
	free(on_disk);
	free(text);

	/* Text that does not parse as a project is refused; the file is untouched. */
	assert_int_equal(bv_project_save_text(p, "[project]\nname = \"\"\n", &err), BV_EINVALID);
	msg = bv_error_format(err);
	want = bv_xasprintf("refusing to write '%s': %s:2:8: 'name' in [project] must not be empty",
			    path, path);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
	bv_error_free(err);
	err = NULL;
	on_disk = slurp(path);
	assert_non_null(strstr(on_disk, "id = \"blast\""));
	free(on_disk);

	assert_int_equal(bv_project_save_text(p, "[project\n", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(
		bv_project_save_text(p, "[project]\nname = \"x\"\n[[tools]]\nid = \"A\"\n", NULL),
		BV_EINVALID);
	on_disk = slurp(path);
	assert_non_null(strstr(on_disk, "id = \"blast\""));
	assert_non_null(strstr(on_disk, "# caller, keep in sync with the paper\n"));
	free(on_disk);

	/* No temporary files left next to it. */
	assert_int_equal(stat(path, &st), 0);
	{
		char *cmd = bv_xasprintf("test \"$(ls -A '%s' | wc -l)\" -eq 1", dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}

	bv_project_free(p);
	free(path);
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

/* Appending a [[tools]] entry after inline tools gives text that is refused, not written. */
static void test_project__with_after_inline_is_refused(void **state)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	char *dir = test_mkdtemp("project");
	static const char text[] = "tools = [{id = \"bwa\"}]\n[project]\nname = \"x\"\n";
	char *path, *out = NULL, *on_disk;
	(void)state;
	assert_non_null(dir);
	path = write_project(dir, text);
	assert_ok(bv_project_load(&p, dir, &err), &err);
	assert_int_equal(bv_project_text_with_tool(&out, p, "samtools", "", &err), BV_EINVALID);
	assert_null(out);
	{
		char *msg = bv_error_format(err);
		assert_non_null(strstr(msg, "declare tools as [[tools]] tables, not inline"));
		free(msg);
	}
	bv_error_free(err);
	on_disk = slurp(path);
	assert_string_equal(on_disk, text);
	free(on_disk);
	free(out);
	bv_project_free(p);
	free(path);
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

static void test_project__cache_host_path(void **state)
{
	static const struct {
		const char *host_path, *tool, *want; /* "@" stands for $HOME */
	} cases[] = {
		{"~/weights/{tool}", "colabfold", "@/weights/colabfold"},
		{"~", "x", "@"},
		{"~/", "x", "@"},
		{"/scratch/{tool}/{tool}.d", "bwa", "/scratch/bwa/bwa.d"},
		{"/scratch/fixed", "bwa", "/scratch/fixed"},
		{"~other/{tool}", "bwa", "~other/bwa"},
		{"/a/~/{tool", "bwa", "/a/~/{tool"},
		{"/a/{TOOL}/{tol}", "bwa", "/a/{TOOL}/{tol}"},
		{"{tool}", "", ""},
		{"rel/{tool}", "x", "rel/x"},
	};
	char *home = test_mkdtemp("home");
	(void)state;
	assert_non_null(home);
	setenv("HOME", home, 1);
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_cache_rule rule = {"*", "/c", cases[i].host_path};
		char *got = bv_cache_rule_host_path(&rule, cases[i].tool);
		struct bv_buf want = BV_BUF_INIT;
		for (const char *s = cases[i].want; *s; s++) {
			if (*s == '@')
				bv_buf_puts(&want, home);
			else
				bv_buf_putc(&want, *s);
		}
		bv_buf_putc(&want, '\0');
		assert_string_equal(got, want.buf);
		bv_buf_release(&want);
		free(got);
	}
	assert_int_equal(bv_rm_rf(home, NULL), 0);
	free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_project__nul_inside),
		cmocka_unit_test(test_project__minimal),
		cmocka_unit_test(test_project__every_section),
		cmocka_unit_test(test_project__hardware_partial),
		cmocka_unit_test(test_project__backends),
		cmocka_unit_test(test_project__image_mode),
		cmocka_unit_test(test_project__unknown_keys_warn),
		cmocka_unit_test(test_project__unknown_top_level_key),
		cmocka_unit_test(test_project__schema_errors),
		cmocka_unit_test(test_project__toml_syntax_error),
		cmocka_unit_test(test_project__load),
		cmocka_unit_test(test_project__template),
		cmocka_unit_test(test_project__without_first),
		cmocka_unit_test(test_project__without_middle),
		cmocka_unit_test(test_project__without_last_before_table),
		cmocka_unit_test(test_project__without_at_end_of_file),
		cmocka_unit_test(test_project__without_before_nested_headers),
		cmocka_unit_test(test_project__without_crlf_and_indent),
		cmocka_unit_test(test_project__without_errors),
		cmocka_unit_test(test_project__with_appends),
		cmocka_unit_test(test_project__with_replaces_version),
		cmocka_unit_test(test_project__with_adds_version_line),
		cmocka_unit_test(test_project__save_text),
		cmocka_unit_test(test_project__add_remove_cycles_are_stable),
		cmocka_unit_test(test_project__with_after_inline_is_refused),
		cmocka_unit_test(test_project__cache_host_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
