/*
 * Tool and dataset manifests: every manifest of the sample registry, the fields bv relies on,
 * every validation error with its file:line:column, the JSON renderings and the digest.
 *
 * argv[1] is the sample registry (../shared/bv-registry-sample); tests that need it skip
 * when it is missing.  Made-up manifests are parsed under the path "m.toml".
 */
#include <bv/error.h>
#include <bv/manifest.h>
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/model/types-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

static const char *sample;
static struct bv_types *types;

#define need_sample()                                                          \
	do {                                                                   \
		if (!sample) {                                                 \
			print_message("# sample registry missing: skipped\n"); \
			skip();                                                \
		}                                                              \
	} while (0)

static char *sample_path(const char *rel)
{
	return bv_path_join(sample, rel);
}

static struct bv_manifest *load_ok(const char *rel)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	char *path = sample_path(rel);
	assert_ok(bv_manifest_load(&m, path, types, &err), &err);
	assert_non_null(m);
	assert_string_equal(m->path, path);
	free(path);
	return m;
}

static struct bv_manifest *parse_ok(const char *text)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	assert_ok(bv_manifest_parse(&m, text, strlen(text), "m.toml", types, &err), &err);
	assert_non_null(m);
	return m;
}

static void parse_fail(const char *text, const char *want)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	char *msg;
	int r = bv_manifest_parse(&m, text, strlen(text), "m.toml", types, &err);
	if (r >= 0) {
		print_error("parsed although it should fail with: %s\n", want);
		bv_manifest_free(m);
		fail();
	}
	assert_int_equal(r, BV_EINVALID);
	assert_null(m);
	msg = bv_error_format(err);
	bv_error_free(err);
	if (strcmp(msg, want))
		print_error("text:\n%s\n", text);
	assert_string_equal(msg, want);
	free(msg);
}

/* Lines 1-3, 4-6, 7-8: a valid tool needs these plus an entrypoint or subcommands. */
#define HEAD  "[tool]\nid = \"demo\"\nversion = \"1.0.0\"\n"
#define IMAGE "[tool.image]\nbackend = \"docker\"\nreference = \"example.org/demo:1\"\n"
#define HW    "[tool.hardware]\ncpu_cores = 2\n"
#define EP    "[tool.entrypoint]\ncommand = \"/usr/bin/demo\"\n"
#define BASE  HEAD IMAGE HW

static int setup(void **state)
{
	struct bv_error *err = NULL;
	(void)state;
	if (bv_types_load_default(&types, &err) < 0) {
		char *msg = bv_error_format(err);
		print_error("cannot load the type vocabulary: %s\n", msg);
		free(msg);
		bv_error_free(err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bv_types_free(types);
	types = NULL;
	return 0;
}

/* Every tools/<id>/<version>.toml of the sample loads, and says what its name says. */
static void test_manifest__all_sample_tools(void **state)
{
	_cleanup_free_ char *tools = NULL;
	_cleanup_strv_ struct bv_strv ids = BV_STRV_INIT;
	DIR *d;
	struct dirent *de;
	size_t files = 0;
	(void)state;
	need_sample();
	tools = sample_path("tools");
	d = opendir(tools);
	assert_non_null(d);
	while ((de = readdir(d))) {
		_cleanup_free_ char *dir = NULL;
		DIR *vd;
		struct dirent *ve;
		if (de->d_name[0] == '.')
			continue;
		dir = bv_path_join(tools, de->d_name);
		vd = opendir(dir);
		assert_non_null(vd);
		bv_strv_push(&ids, de->d_name);
		while ((ve = readdir(vd))) {
			size_t len = strlen(ve->d_name);
			struct bv_error *err = NULL;
			struct bv_manifest *m = NULL;
			char *path, *version;
			if (len < 6 || strcmp(ve->d_name + len - 5, ".toml"))
				continue;
			path = bv_path_join(dir, ve->d_name);
			version = bv_xstrndup(ve->d_name, len - 5);
			assert_ok(bv_manifest_load(&m, path, types, &err), &err);
			assert_string_equal(m->id, de->d_name);
			assert_string_equal(m->version, version);
			assert_non_null(m->image_reference);
			assert_true(m->entrypoint || m->n_subcommands);
			if (m->warnings.n)
				print_message("# %s: %s\n", path, m->warnings.v[0]);
			assert_int_equal(m->warnings.n, 0);
			for (size_t i = 0; i < m->n_inputs; i++)
				assert_non_null(bv_types_lookup(types, m->inputs[i].type_ref.id));
			for (size_t i = 0; i < m->n_outputs; i++)
				assert_non_null(bv_types_lookup(types, m->outputs[i].type_ref.id));
			bv_manifest_free(m);
			free(version);
			free(path);
			files++;
		}
		closedir(vd);
	}
	closedir(d);
	assert_int_equal(ids.n, 20);
	assert_int_equal(files, 22); /* blast and colabfold have two versions */
}

static void test_manifest__samtools(void **state)
{
	struct bv_manifest *m;
	(void)state;
	need_sample();
	m = load_ok("tools/samtools/1.21.0.toml");
	assert_string_equal(m->id, "samtools");
	assert_string_equal(m->version, "1.21.0");
	assert_string_equal(m->homepage, "http://www.htslib.org/");
	assert_string_equal(m->license, "MIT");
	assert_string_equal(m->tier, "core");
	assert_int_equal(m->maintainers.n, 1);
	assert_string_equal(m->maintainers.v[0], "github:samtools");
	assert_false(m->deprecated);

	assert_string_equal(m->image_backend, "docker");
	assert_string_equal(m->image_reference, "quay.io/biocontainers/samtools:1.21--h50ea8bc_0");
	assert_null(m->image_digest);

	/* Factored: pinned by digest. */
	assert_true(m->factored);
	assert_string_equal(m->factored_spec_path, "specs/samtools/1.21.0.toml");
	assert_string_equal(m->factored_image_reference,
			    "ghcr.io/tejasprabhune/bv-pkg/samtools:1.21.0");
	assert_string_equal(
		m->factored_image_digest,
		"sha256:dfe7e8f31d6814b4f76e21af0bc5be7b0c6bcaa774694b188a76c01fb86fa24d");
	assert_int_equal(m->n_layers, 0);

	assert_int_equal(m->cpu_cores, 4);
	assert_true(m->ram_gb == 8.0);
	assert_true(m->disk_gb == 2.0);
	assert_false(m->gpu_required);
	assert_int_equal(m->min_vram_gb, -1);
	assert_null(m->cuda_version);
	assert_int_equal(m->n_reference_data, 0);

	assert_int_equal(m->n_inputs, 1);
	assert_string_equal(m->inputs[0].name, "input");
	assert_string_equal(m->inputs[0].type, "bam");
	assert_string_equal(m->inputs[0].type_ref.id, "bam");
	assert_int_equal(m->inputs[0].type_ref.params.n, 0);
	assert_string_equal(m->inputs[0].cardinality, "one");
	assert_null(m->inputs[0].mount);
	assert_null(m->inputs[0].default_value);
	assert_int_equal(m->n_outputs, 1);
	assert_string_equal(m->outputs[0].name, "output");
	assert_string_equal(m->outputs[0].description, "Processed alignment file");

	assert_string_equal(m->entrypoint, "samtools");
	assert_string_equal(m->args_template, "sort -@ {cpu_cores} -o {output} {input}");
	assert_int_equal(m->n_env, 0);
	assert_int_equal(m->n_subcommands, 0);
	assert_int_equal(m->binaries.n, 1); /* explicit */
	assert_string_equal(m->binaries.v[0], "samtools");
	assert_int_equal(m->cache_paths.n, 0);
	assert_null(m->signature_image);
	bv_manifest_free(m);
}

static void test_manifest__factored_needs_digest(void **state)
{
	struct bv_manifest *m;
	(void)state;
	m = parse_ok(BASE EP "[tool.factored]\nimage_reference = \"ghcr.io/x/demo:1\"\n");
	assert_false(m->factored);
	assert_string_equal(m->factored_image_reference, "ghcr.io/x/demo:1");
	assert_null(m->factored_image_digest);
	bv_manifest_free(m);

	m = parse_ok(BASE EP "[tool.factored]\nimage_reference = \"r\"\nimage_digest = \"\"\n");
	assert_false(m->factored);
	bv_manifest_free(m);

	m = parse_ok(BASE EP
		     "[tool.factored]\nimage_reference = \"r\"\nimage_digest = \"sha256:ab\"\n"
		     "[[tool.factored.layers]]\ndigest = \"sha256:01\"\nsize = 42\n"
		     "media_type = \"application/vnd.oci.image.layer.v1.tar+gzip\"\n"
		     "[tool.factored.layers.conda_package]\nname = \"zlib\"\n"
		     "version = \"1.3\"\nbuild = \"h0\"\nchannel = \"conda-forge\"\n"
		     "[[tool.factored.layers]]\ndigest = \"sha256:02\"\nsize = 7\n"
		     "media_type = \"t\"\n");
	assert_true(m->factored);
	assert_int_equal(m->n_layers, 2);
	assert_string_equal(m->layers[0].digest, "sha256:01");
	assert_int_equal(m->layers[0].size, 42);
	assert_true(m->layers[0].has_conda);
	assert_string_equal(m->layers[0].conda_name, "zlib");
	assert_string_equal(m->layers[0].conda_version, "1.3");
	assert_string_equal(m->layers[0].conda_build, "h0");
	assert_string_equal(m->layers[0].conda_channel, "conda-forge");
	assert_null(m->layers[0].conda_sha256);
	assert_false(m->layers[1].has_conda);
	assert_int_equal(m->layers[1].size, 7);
	bv_manifest_free(m);
}

static void test_manifest__default_binary(void **state)
{
	struct bv_manifest *m = parse_ok(BASE EP);
	(void)state;
	/* Defaults to the basename of the entrypoint. */
	assert_int_equal(m->binaries.n, 1);
	assert_string_equal(m->binaries.v[0], "demo");
	assert_string_equal(m->tier, "community");
	assert_int_equal(m->ram_gb < 0, 1);
	assert_int_equal(m->disk_gb < 0, 1);
	assert_int_equal(m->n_inputs, 0);
	bv_manifest_free(m);

	/* Explicit binaries keep their order. */
	m = parse_ok(BASE EP "[tool.binaries]\nexposed = [\"demo-aux\", \"demo\"]\n");
	assert_int_equal(m->binaries.n, 2);
	assert_string_equal(m->binaries.v[0], "demo-aux");
	assert_string_equal(m->binaries.v[1], "demo");
	bv_manifest_free(m);

	/* Subcommands only: nothing is exposed unless listed. */
	m = parse_ok(BASE "[tool.subcommands]\nrun = [\"python\", \"/app/run.py\"]\n");
	assert_null(m->entrypoint);
	assert_int_equal(m->binaries.n, 0);
	bv_manifest_free(m);
}

static void test_manifest__genie2(void **state)
{
	struct bv_manifest *m;
	(void)state;
	need_sample();
	m = load_ok("tools/genie2/1.0.0.toml");
	assert_null(m->entrypoint);
	assert_null(m->args_template);
	assert_int_equal(m->n_subcommands, 3);
	assert_string_equal(m->subcommands[0].name, "train");
	assert_int_equal(m->subcommands[0].argv.n, 2);
	assert_string_equal(m->subcommands[0].argv.v[0], "python");
	assert_string_equal(m->subcommands[0].argv.v[1], "/app/genie2/genie/train.py");
	assert_string_equal(m->subcommands[1].name, "sample_scaffold");
	assert_string_equal(m->subcommands[2].name, "sample_unconditional");
	assert_string_equal(m->subcommands[2].argv.v[1],
			    "/app/genie2/genie/sample_unconditional.py");
	assert_int_equal(m->n_reference_data, 0); /* [tool.reference_data] is empty */
	assert_int_equal(m->n_inputs, 0);         /* inputs = [] */
	assert_int_equal(m->n_outputs, 0);
	assert_true(m->gpu_required);
	assert_int_equal(m->min_vram_gb, -1);
	assert_null(m->cuda_version);
	assert_string_equal(
		m->image_digest,
		"sha256:0e489b76848b0be02cd85d536718f3a6a01e08f5fad303a85109ed8ba0dcf36e");
	assert_false(m->factored);
	assert_int_equal(m->binaries.n, 0);
	assert_string_equal(m->tier, "community");
	bv_manifest_free(m);
}

static void test_manifest__colabfold(void **state)
{
	struct bv_manifest *m;
	(void)state;
	need_sample();
	m = load_ok("tools/colabfold/1.6.1.toml");
	assert_string_equal(m->version, "1.6.1");
	assert_int_equal(m->maintainers.n, 2);
	assert_string_equal(m->maintainers.v[1], "github:steineggerlab");
	/* Written inside [tool.entrypoint] in the registry. */
	assert_int_equal(m->cache_paths.n, 1);
	assert_string_equal(m->cache_paths.v[0], "/cache/colabfold");
	assert_int_equal(m->n_inputs, 1);
	assert_string_equal(m->inputs[0].type, "fasta[protein]");
	assert_string_equal(m->inputs[0].type_ref.id, "fasta");
	assert_int_equal(m->inputs[0].type_ref.params.n, 1);
	assert_string_equal(m->inputs[0].type_ref.params.v[0], "protein");
	assert_string_equal(m->outputs[0].type_ref.id, "dir");
	assert_true(m->gpu_required);
	assert_int_equal(m->min_vram_gb, 8);
	assert_string_equal(m->cuda_version, "12.0");
	assert_string_equal(m->entrypoint, "colabfold_batch");
	assert_int_equal(m->binaries.n, 1);
	assert_string_equal(m->binaries.v[0], "colabfold_batch");
	bv_manifest_free(m);
}

static void test_manifest__more_fields(void **state)
{
	struct bv_manifest *m = parse_ok(
		HEAD "description = \"d\"\ndeprecated = true\ntier = \"experimental\"\n"
		     "cache_paths = [\"/c1\"]\n" IMAGE "digest = \"sha256:aa\"\n" HW "ram_gb = 3\n"
		     "[tool.hardware.gpu]\nrequired = false\nmin_vram_gb = 24\n"
		     "cuda_version = \"11.8\"\n"
		     "[tool.reference_data.db]\nid = \"pdbaa\"\nversion = \"2024_01\"\n"
		     "required = true\nmount_path = \"/db\"\nsize_bytes = 10\n"
		     "[tool.reference_data.extra]\nid = \"pfam\"\nversion = \"36.0\"\n"
		     "[[tool.inputs]]\nname = \"q\"\ntype = \" msa[a3m, stockholm] \"\n"
		     "cardinality = \"many\"\nmount = \"/in\"\ndefault = 3\n"
		     "[[tool.inputs]]\nname = \"opt\"\ntype = \"file\"\n"
		     "cardinality = \"optional\"\n" EP "args_template = \"{q}\"\n"
		     "[tool.entrypoint.env]\nOMP_NUM_THREADS = \"4\"\nLANG = \"C\"\n"
		     "[tool.subcommands]\nindex = [\"demo-index\"]\n"
		     "[tool.smoke]\nskip = [\"demo-index\"]\n"
		     "[tool.smoke.probes]\ndemo = \"--version\"\n"
		     "[tool.signatures]\nimage = \"sigstore\"\nmanifest = \"sigstore\"\n"
		     "public_keys = [\"-----BEGIN PUBLIC KEY-----\\nAA==\\n-----END PUBLIC "
		     "KEY-----\\n\"]\n");
	(void)state;
	assert_string_equal(m->description, "d");
	assert_true(m->deprecated);
	assert_string_equal(m->tier, "experimental");
	assert_int_equal(m->cache_paths.n, 1);
	assert_string_equal(m->image_digest, "sha256:aa");
	assert_true(m->ram_gb == 3.0);
	assert_false(m->gpu_required);
	assert_int_equal(m->min_vram_gb, 24);
	assert_string_equal(m->cuda_version, "11.8");
	assert_int_equal(m->n_reference_data, 2);
	assert_string_equal(m->reference_data[0].key, "db");
	assert_string_equal(m->reference_data[0].id, "pdbaa");
	assert_string_equal(m->reference_data[0].version, "2024_01");
	assert_true(m->reference_data[0].required);
	assert_string_equal(m->reference_data[0].mount_path, "/db");
	assert_int_equal(m->reference_data[0].size_bytes, 10);
	assert_false(m->reference_data[1].required);
	assert_null(m->reference_data[1].mount_path);
	assert_int_equal(m->reference_data[1].size_bytes, -1);
	assert_int_equal(m->n_inputs, 2);
	assert_string_equal(m->inputs[0].type_ref.id, "msa");
	assert_int_equal(m->inputs[0].type_ref.params.n, 2);
	assert_string_equal(m->inputs[0].type_ref.params.v[1], "stockholm");
	assert_string_equal(m->inputs[0].cardinality, "many");
	assert_string_equal(m->inputs[0].mount, "/in");
	assert_non_null(m->inputs[0].default_value);
	assert_int_equal(m->inputs[0].default_value->type, BV_TOML_INTEGER);
	assert_int_equal(m->inputs[0].default_value->u.integer, 3);
	assert_string_equal(m->inputs[1].cardinality, "optional");
	assert_int_equal(m->n_env, 2);
	assert_string_equal(m->env[0].name, "OMP_NUM_THREADS");
	assert_string_equal(m->env[0].value, "4");
	assert_string_equal(m->env[1].name, "LANG");
	assert_int_equal(m->n_subcommands, 1);
	assert_string_equal(m->subcommands[0].argv.v[0], "demo-index");
	assert_int_equal(m->smoke_skip.n, 1);
	assert_int_equal(m->n_smoke_probes, 1);
	assert_string_equal(m->smoke_probes[0].name, "demo");
	assert_string_equal(m->smoke_probes[0].value, "--version");
	assert_string_equal(m->signature_image, "sigstore");
	assert_string_equal(m->signature_manifest, "sigstore");
	assert_int_equal(m->signature_keys.n, 1);
	assert_string_equal(m->signature_keys.v[0],
			    "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n");
	assert_int_equal(m->warnings.n, 0);
	bv_manifest_free(m);
}

static void test_manifest__unknown_keys_warn(void **state)
{
	struct bv_manifest *m =
		parse_ok("[tool]\nid = \"demo\"\nversion = \"1.0.0\"\nlogo = \"x\"\n"
			 "[tool.image]\nbackend = \"docker\"\nreference = \"r\"\n"
			 "platform = \"arm64\"\n" HW EP "[extra]\nk = 1\n");
	(void)state;
	assert_int_equal(m->warnings.n, 3);
	assert_string_equal(m->warnings.v[0], "m.toml:13: unknown key 'extra' in the top level "
					      "(ignored)");
	assert_string_equal(m->warnings.v[1], "m.toml:4: unknown key 'logo' in [tool] (ignored)");
	assert_string_equal(m->warnings.v[2],
			    "m.toml:8: unknown key 'platform' in [tool.image] (ignored)");
	bv_manifest_free(m);
}

/*
 * Every string that becomes a path, a mount, an argument or an environment entry is refused
 * at load when it could leave its directory or change the meaning of what it is put in.
 */
static void test_manifest__hostile_names(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{"[tool]\nid = \"../../x\"\nversion = \"1.0.0\"\n" IMAGE HW EP,
		 "m.toml:2:6: invalid id '../../x' in [tool]"},
		{"[tool]\nid = \"demo\"\nversion = \".ssh\"\n" IMAGE HW EP,
		 "m.toml:3:11: invalid version '.ssh' in [tool]"},
		{"[tool]\nid = \"-rf\"\nversion = \"1\"\n" IMAGE HW EP, "invalid id '-rf'"},
		{"[tool]\nid = \"a b\"\nversion = \"1\"\n" IMAGE HW EP, "invalid id 'a b'"},
		{"[tool]\nid = \"a\\u001b[31m\"\nversion = \"1\"\n" IMAGE HW EP,
		 "invalid id 'a?[31m'"},
		{BASE EP "[tool.reference_data.x]\nid = \"../../home\"\nversion = \".ssh\"\n"
			 "mount_path = \"/loot\"\n",
		 "invalid id '../../home' in [tool.reference_data.x]"},
		{BASE EP "[tool.reference_data.x]\nid = \"home\"\nversion = \"../.ssh\"\n",
		 "invalid version '../.ssh' in [tool.reference_data.x]"},
		{BASE EP "[tool.reference_data.\"../x\"]\nid = \"db\"\nversion = \"1\"\n",
		 "invalid name '../x' in [tool.reference_data]"},
		{BASE EP "[tool.reference_data.x]\nid = \"db\"\nversion = \"1\"\n"
			 "mount_path = \"/data/../etc\"\n",
		 "invalid mount_path '/data/../etc'"},
		{BASE EP "[tool.reference_data.x]\nid = \"db\"\nversion = \"1\"\n"
			 "mount_path = \"/proc/sys\"\n",
		 "bv mounts /proc, /sys and /dev itself"},
		{BASE EP "[tool.reference_data.x]\nid = \"db\"\nversion = \"1\"\n"
			 "mount_path = \"/\"\n",
		 "it would hide the whole image"},
		{BASE EP "[tool.reference_data.x]\nid = \"db\"\nversion = \"1\"\n"
			 "mount_path = \"/data,ro\"\n",
		 "it contains ',', ':' or a control character"},
		{HEAD IMAGE HW
		 "[tool.entrypoint]\ncommand = \"demo\"\ncache_paths = [\"/c/../..\"]\n",
		 "invalid cache path '/c/../..'"},
		{BASE EP "[tool.subcommands]\n\"../x\" = [\"demo\"]\n",
		 "invalid subcommand name '../x'"},
		{BASE EP "[tool.binaries]\nexposed = [\"demo\", \"..\"]\n",
		 "invalid binary name '..'"},
		{BASE EP "[tool.binaries]\nexposed = [\"demo\", \"x:y\"]\n",
		 "invalid binary name 'x:y'"},
		{HEAD IMAGE HW "[tool.entrypoint]\ncommand = \"demo\"\n[tool.entrypoint.env]\n"
			       "\"A=B\" = \"x\"\n",
		 "invalid environment variable name"},
		/* found by fuzz_model: the default binary is the entrypoint's basename */
		{BASE "[tool.entrypoint]\ncommand = \"/usr/bin/..\"\n",
		 "invalid binary name '..' in [tool.entrypoint] command"},
		{BASE "[tool.entrypoint]\ncommand = \"/usr/bin/\"\n",
		 "binary name in [tool.entrypoint] command must not be empty"},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_error *err = NULL;
		struct bv_manifest *m = NULL;
		char *msg;
		int r = bv_manifest_parse(&m, cases[i].text, strlen(cases[i].text), "m.toml", types,
					  &err);
		assert_int_equal(r, BV_EINVALID);
		assert_null(m);
		msg = bv_error_format(err);
		bv_error_free(err);
		if (!strstr(msg, cases[i].needle))
			print_error("case %zu: '%s' lacks '%s'\n", i, msg, cases[i].needle);
		assert_non_null(strstr(msg, cases[i].needle));
		free(msg);
	}
}

static void test_manifest__validation_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"", "m.toml:1:1: missing key 'tool' in the top level"},
		{"tool = 1\n",
		 "m.toml:1:8: 'tool' in the top level must be a table, not an integer"},
		{HEAD IMAGE EP, "m.toml:1:1: missing key 'hardware' in [tool]"},
		{HEAD HW EP, "m.toml:1:1: missing key 'image' in [tool]"},
		{HEAD "[tool.image]\nbackend = \"docker\"\n" HW EP,
		 "m.toml:4:1: missing key 'reference' in [tool.image]"},
		{HEAD "[tool.image]\nbackend = \"docker\"\nreference = \"\"\n" HW EP,
		 "m.toml:6:13: 'reference' in [tool.image] must not be empty"},
		{"[tool]\nid = \"\"\nversion = \"1\"\n" IMAGE HW EP,
		 "m.toml:2:6: 'id' in [tool] must not be empty"},
		{"[tool]\nid = \"demo\"\n" IMAGE HW EP,
		 "m.toml:1:1: missing key 'version' in [tool]"},
		{"[tool]\nid = 3\nversion = \"1\"\n" IMAGE HW EP,
		 "m.toml:2:6: 'id' in [tool] must be a string, not an integer"},
		{BASE, "m.toml:1:1: tool 'demo' needs [tool.entrypoint] or [tool.subcommands]"},
		{BASE "[tool.subcommands]\n", "m.toml:1:1: tool 'demo' needs [tool.entrypoint] or "
					      "[tool.subcommands]"},
		{BASE EP "[tool.signatures]\nimage = \"sigstore\"\npublic_keys = [\"abc\"]\n",
		 "m.toml:13:15: public_keys[0] in [tool.signatures] is not a PEM public key "
		 "(-----BEGIN PUBLIC KEY-----)"},
		{BASE EP "[tool.signatures]\npublic_keys = \"abc\"\n",
		 "m.toml:12:15: 'public_keys' in [tool.signatures] must be an array, not a string"},
		{BASE "[tool.entrypoint]\ncommand = \"\"\n",
		 "m.toml:10:11: 'command' in [tool.entrypoint] must not be empty"},
		{BASE "[tool.subcommands]\n\"-x\" = [\"a\"]\n",
		 "m.toml:10:1: invalid subcommand name '-x' in [tool.subcommands]; use letters, digits, '.', '_', '+' and '-', starting with a letter, digit or '_', at most 128 characters"},
		{BASE "[tool.subcommands]\n\"\" = [\"a\"]\n",
		 "m.toml:10:1: subcommand name in [tool.subcommands] must not be empty"},
		{BASE "[tool.subcommands]\nrun = []\n",
		 "m.toml:10:7: subcommand 'run' has an empty command"},
		{BASE "[tool.subcommands]\nrun = [\"a\", 1]\n",
		 "m.toml:10:13: 'run' in [tool.subcommands] must be an array of strings"},
		{BASE "[tool.subcommands]\nrun = \"a\"\n",
		 "m.toml:10:7: 'run' in [tool.subcommands] must be an array, not a string"},
		{BASE EP "[tool.binaries]\nexposed = [\"demo\", \"x\", \"demo\"]\n",
		 "m.toml:12:11: binary 'demo' is listed twice in [tool.binaries]"},
		{BASE EP "[tool.binaries]\nexposed = [\"other\"]\n",
		 "m.toml:12:11: [tool.binaries] exposed must include the entrypoint 'demo'"},
		{BASE EP "[tool.binaries]\nexposed = [\"demo\", \"bin/x\"]\n",
		 "m.toml:12:11: invalid binary name 'bin/x' in [tool.binaries]; use letters, digits, "
		 "'.', '_', '+' and '-', starting with a letter, digit or '_', at most 128 characters"},
		{BASE EP "[tool.binaries]\nexposed = [\"demo\", \"\"]\n",
		 "m.toml:12:11: binary name in [tool.binaries] must not be empty"},
		{BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"fastaq\"\n",
		 "m.toml:13:8: unknown type 'fastaq' in [[tool.inputs]]; did you mean 'fastq'?"},
		{BASE EP "[[tool.outputs]]\nname = \"r\"\ntype = \"bmm[x]\"\n",
		 "m.toml:13:8: unknown type 'bmm' in [[tool.outputs]]; did you mean 'bam'?"},
		{BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"spectrogram\"\n",
		 "m.toml:13:8: unknown type 'spectrogram' in [[tool.inputs]]"},
		{BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"fasta[\"\n",
		 "m.toml:13:8: invalid type 'fasta[' in [[tool.inputs]]"},
		{BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"\"\n",
		 "m.toml:13:8: 'type' in [[tool.inputs]] must not be empty"},
		{BASE EP "[[tool.inputs]]\ntype = \"bam\"\n",
		 "m.toml:11:1: missing key 'name' in [[tool.inputs]]"},
		{BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"bam\"\ncardinality = \"some\"\n",
		 "m.toml:14:15: 'cardinality' in [[tool.inputs]] must be 'one', 'many' or "
		 "'optional', not 'some'"},
		{BASE EP "[[tool.outputs]]\nname = \"o\"\ntype = \"dir\"\nmount = \"out\"\n",
		 "m.toml:14:9: 'mount' in [[tool.outputs]] must be an absolute path, not 'out'"},
		{BASE EP "[tool.reference_data.db]\nid = \"pdbaa\"\nversion = \"1\"\n"
			 "mount_path = \"db\"\n",
		 "m.toml:14:14: invalid mount_path 'db' in [tool.reference_data.db]: it must be an "
		 "absolute path"},
		{BASE EP "[tool.reference_data.db]\nid = \"pdbaa\"\n",
		 "m.toml:11:1: missing key 'version' in [tool.reference_data.db]"},
		{HEAD IMAGE HW "[tool.hardware.gpu]\nrequired = true\ncuda_version = \"12\"\n" EP,
		 "m.toml:11:16: 'cuda_version' must be \"major.minor\", not '12'"},
		{HEAD IMAGE HW "[tool.hardware.gpu]\nrequired = true\ncuda_version = \"12.\"\n" EP,
		 "m.toml:11:16: 'cuda_version' must be \"major.minor\", not '12.'"},
		{HEAD IMAGE HW
		 "[tool.hardware.gpu]\nrequired = true\ncuda_version = \"v12.0\"\n" EP,
		 "m.toml:11:16: 'cuda_version' must be \"major.minor\", not 'v12.0'"},
		{HEAD IMAGE HW
		 "[tool.hardware.gpu]\nrequired = true\ncuda_version = \"12.0.1\"\n" EP,
		 "m.toml:11:16: 'cuda_version' must be \"major.minor\", not '12.0.1'"},
		{HEAD IMAGE HW "[tool.hardware.gpu]\nrequired = true\ncuda_version = \".1\"\n" EP,
		 "m.toml:11:16: 'cuda_version' must be \"major.minor\", not '.1'"},
		{HEAD IMAGE HW "[tool.hardware.gpu]\nmin_vram_gb = 8\n" EP,
		 "m.toml:9:1: missing key 'required' in [tool.hardware.gpu]"},
		{HEAD IMAGE "[tool.hardware]\ncpu_cores = \"4\"\n" EP,
		 "m.toml:8:13: 'cpu_cores' in [tool.hardware] must be an integer, not a string"},
		{HEAD "tier = \"gold\"\n" IMAGE HW EP,
		 "m.toml:4:8: 'tier' in [tool] must be 'core', 'community' or 'experimental', not "
		 "'gold'"},
		{HEAD "cache_paths = [\"cache\"]\n" IMAGE HW EP,
		 "m.toml:4:15: invalid cache path 'cache' in [tool]: it must be an absolute path"},
		{HEAD "maintainers = \"me\"\n" IMAGE HW EP,
		 "m.toml:4:15: 'maintainers' in [tool] must be an array, not a string"},
		{BASE EP "[tool.factored]\nimage_digest = \"sha256:aa\"\n",
		 "m.toml:11:1: missing key 'image_reference' in [tool.factored]"},
		{BASE EP "[tool.factored]\nimage_reference = \"r\"\n[[tool.factored.layers]]\n"
			 "digest = \"sha256:01\"\nmedia_type = \"t\"\n",
		 "m.toml:13:1: missing key 'size' in [[tool.factored.layers]]"},
		{BASE EP "[tool.entrypoint.env]\nX = 1\n",
		 "m.toml:12:5: 'X' in [tool.entrypoint.env] must be a string, not an integer"},
		{"[tool]\nid = \"demo\"\n[tool\n",
		 "m.toml:3:6: expected ']' to end the table header"},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++)
		parse_fail(cases[i].text, cases[i].want);
}

/*
 * cache_paths written inside [tool.entrypoint] (as the registry's colabfold does) are checked
 * too.  The position is not asserted: the check reports the [tool] header (1:2), not the
 * value (11:15) -- see the report.
 */
static void test_manifest__entrypoint_cache_paths(void **state)
{
	static const char text[] = BASE EP "cache_paths = [\"/ok\", \"rel\"]\n";
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	char *msg;
	(void)state;
	assert_int_equal(bv_manifest_parse(&m, text, strlen(text), "m.toml", types, &err),
			 BV_EINVALID);
	assert_null(m);
	msg = bv_error_format(err);
	assert_memory_equal(msg, "m.toml:", 7);
	assert_non_null(strstr(
		msg,
		": invalid cache path 'rel' in [tool.entrypoint]: it must be an absolute path"));
	free(msg);
	bv_error_free(err);

	m = parse_ok(HEAD "cache_paths = [\"/a\"]\n" IMAGE HW EP "cache_paths = [\"/b\"]\n");
	assert_int_equal(m->cache_paths.n, 2);
	assert_string_equal(m->cache_paths.v[0], "/a");
	assert_string_equal(m->cache_paths.v[1], "/b");
	bv_manifest_free(m);
}

static void test_manifest__load_missing(void **state)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	struct bv_dataset *d = NULL;
	(void)state;
	assert_int_equal(bv_manifest_load(&m, "/nonexistent/bv/x.toml", types, &err), BV_ENOTFOUND);
	assert_null(m);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_dataset_load(&d, "/nonexistent/bv/x.toml", &err), BV_ENOTFOUND);
	assert_null(d);
	bv_error_free(err);
}

/* Without a vocabulary any type id is accepted (its syntax is still checked). */
static void test_manifest__no_types(void **state)
{
	static const char text[] = BASE EP "[[tool.inputs]]\nname = \"r\"\ntype = \"whatever\"\n";
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	(void)state;
	assert_ok(bv_manifest_parse(&m, text, strlen(text), "m.toml", NULL, &err), &err);
	assert_string_equal(m->inputs[0].type_ref.id, "whatever");
	bv_manifest_free(m);
}

static void test_manifest__to_json(void **state)
{
	struct bv_manifest *m;
	json_t *got, *want;
	(void)state;
	need_sample();
	m = load_ok("tools/samtools/1.21.0.toml");
	got = bv_manifest_to_json(m);
	want = json_pack(
		"{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:s, s:s, s:s}],"
		" s:[{s:s, s:s, s:s, s:s}], s:{s:s, s:s}, s:[s]}}",
		"schema_version", "1.0", "tool", "id", "samtools", "version", "1.21.0",
		"description",
		"Tools for manipulating next-generation sequencing data in SAM/BAM/CRAM formats",
		"homepage", "http://www.htslib.org/", "license", "MIT", "image", "backend",
		"docker", "reference", "quay.io/biocontainers/samtools:1.21--h50ea8bc_0", "inputs",
		"name", "input", "type", "bam", "cardinality", "one", "description",
		"Input alignment file (BAM, SAM, or CRAM)", "outputs", "name", "output", "type",
		"bam", "cardinality", "one", "description", "Processed alignment file",
		"entrypoint", "command", "samtools", "args_template",
		"sort -@ {cpu_cores} -o {output} {input}", "binaries", "samtools");
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *dump = json_dumps(got, JSON_SORT_KEYS);
		print_error("got %s\n", dump);
		free(dump);
		fail();
	}
	json_decref(got);
	json_decref(want);
	bv_manifest_free(m);
}

static void test_manifest__to_json_subcommands(void **state)
{
	struct bv_manifest *m;
	json_t *root, *j, *sc;
	(void)state;
	need_sample();
	m = load_ok("tools/genie2/1.0.0.toml");
	root = bv_manifest_to_json(m);
	assert_string_equal(json_string_value(json_object_get(root, "schema_version")), "1.0");
	j = json_object_get(root, "tool");
	assert_true(json_is_object(j));
	assert_null(json_object_get(j, "entrypoint"));
	assert_null(json_object_get(j, "binaries"));
	sc = json_object_get(j, "subcommands");
	assert_true(json_is_object(sc));
	assert_int_equal(json_object_size(sc), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(sc, "train"), 1)),
			    "/app/genie2/genie/train.py");
	assert_int_equal(json_array_size(json_object_get(j, "inputs")), 0);
	json_decref(root);
	bv_manifest_free(m);
}

static const char io_manifest[] = BASE EP "description = \"x\"\n"
					  "[[tool.inputs]]\nname = \"reads\"\ntype = \"fastq\"\n"
					  "description = \"the reads\"\n"
					  "[[tool.inputs]]\nname = \"ref\"\ntype = \"fasta[dna]\"\n"
					  "cardinality = \"many\"\n"
					  "[[tool.inputs]]\nname = \"adapters\"\ntype = \"fasta\"\n"
					  "cardinality = \"optional\"\n";

static void test_manifest__to_mcp(void **state)
{
	struct bv_manifest *m = parse_ok(io_manifest);
	json_t *j = bv_manifest_to_mcp(m), *want;
	(void)state;
	want = json_pack("{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}},"
			 " s:[s, s]}}",
			 "name", "demo", "description", "demo", "inputSchema", "type", "object",
			 "properties", "reads", "type", "string", "description",
			 "the reads (fastq)", "ref", "type", "string", "description",
			 "ref (fasta[dna])", "adapters", "type", "string", "description",
			 "adapters (fasta)", "required", "reads", "ref");
	assert_non_null(want);
	if (!json_equal(j, want)) {
		char *dump = json_dumps(j, JSON_SORT_KEYS);
		print_error("got %s\n", dump);
		free(dump);
		fail();
	}
	json_decref(want);
	json_decref(j);
	bv_manifest_free(m);
}

static void test_manifest__to_json_schema(void **state)
{
	struct bv_manifest *m = parse_ok(io_manifest);
	json_t *j = bv_manifest_to_json_schema(m), *props, *required;
	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "$schema")),
			    "http://json-schema.org/draft-07/schema#");
	assert_string_equal(json_string_value(json_object_get(j, "title")), "demo 1.0.0");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "object");
	assert_true(json_is_false(json_object_get(j, "additionalProperties")));
	props = json_object_get(j, "properties");
	assert_int_equal(json_object_size(props), 3);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(props, "ref"), "x-bv-type")),
		"fasta[dna]");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(props, "reads"), "x-bv-type")),
		"fastq");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(props, "reads"), "type")),
		"string");
	required = json_object_get(j, "required");
	assert_int_equal(json_array_size(required), 2);
	assert_string_equal(json_string_value(json_array_get(required, 0)), "reads");
	assert_string_equal(json_string_value(json_array_get(required, 1)), "ref");
	json_decref(j);

	/* The mcp form has no x-bv-type. */
	j = bv_manifest_to_mcp(m);
	props = json_object_get(json_object_get(j, "inputSchema"), "properties");
	assert_null(json_object_get(json_object_get(props, "ref"), "x-bv-type"));
	json_decref(j);
	bv_manifest_free(m);
}

/* sha256 of `path` by an independent implementation. */
static char *sha256sum(const char *path)
{
	char *cmd = bv_xasprintf("sha256sum '%s'", path);
	char line[256] = "";
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(pclose(f), 0);
	free(cmd);
	line[64] = '\0';
	return bv_xasprintf("sha256:%s", line);
}

static char *digest_of(const char *text)
{
	struct bv_manifest *m = parse_ok(text);
	char *d = bv_manifest_digest(m);
	char raw[72];
	bv_manifest_text_digest(raw, text, strlen(text));
	assert_string_equal(d, raw);
	bv_manifest_free(m);
	return d;
}

/*
 * The digest is of the file's bytes (bv.lock's manifest_sha256): the same file gives the same
 * digest, any edit, even a comment, gives another.
 */
static void test_manifest__digest(void **state)
{
	static const char a[] = BASE EP;
	static const char b[] = BASE EP "# a comment\n";
	static const char c[] = HEAD IMAGE "[tool.hardware]\ncpu_cores = 3\n" EP;
	char *da, *da2, *db, *dc, *file, *path;
	char raw[72];
	struct bv_manifest *m;
	(void)state;

	da = digest_of(a);
	da2 = digest_of(a);
	db = digest_of(b);
	dc = digest_of(c);
	assert_int_equal(strlen(da), 71);
	assert_memory_equal(da, "sha256:", 7);
	assert_int_equal(strspn(da + 7, "0123456789abcdef"), 64);
	assert_string_equal(da, da2);
	assert_string_not_equal(da, db);
	assert_string_not_equal(da, dc);
	assert_string_not_equal(db, dc);
	bv_manifest_text_digest(raw, "", 0);
	assert_string_equal(
		raw, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(da);
	free(da2);
	free(db);
	free(dc);

	need_sample();
	path = sample_path("tools/samtools/1.21.0.toml");
	m = load_ok("tools/samtools/1.21.0.toml");
	file = sha256sum(path);
	da = bv_manifest_digest(m);
	assert_string_equal(da, file);
	free(da);
	free(file);
	free(path);
	bv_manifest_free(m);
}

/* Datasets. */

static struct bv_dataset *dataset_ok(const char *text)
{
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	assert_ok(bv_dataset_parse(&d, text, strlen(text), "d.toml", &err), &err);
	assert_non_null(d);
	return d;
}

static void dataset_fail(const char *text, const char *want)
{
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	char *msg;
	int r = bv_dataset_parse(&d, text, strlen(text), "d.toml", &err);
	if (r >= 0) {
		print_error("parsed although it should fail with: %s\n", want);
		bv_dataset_free(d);
		fail();
	}
	assert_int_equal(r, BV_EINVALID);
	assert_null(d);
	msg = bv_error_format(err);
	bv_error_free(err);
	assert_string_equal(msg, want);
	free(msg);
}

static void test_manifest__dataset_pdbaa(void **state)
{
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	char *path;
	(void)state;
	need_sample();
	path = sample_path("data/pdbaa/2024_01.toml");
	assert_ok(bv_dataset_load(&d, path, &err), &err);
	assert_string_equal(d->path, path);
	assert_string_equal(d->id, "pdbaa");
	assert_string_equal(d->version, "2024_01");
	assert_string_equal(d->description,
			    "PDB amino acid sequences as a preformatted BLAST database");
	assert_int_equal(d->source_urls.n, 1);
	assert_string_equal(d->source_urls.v[0],
			    "https://ftp.ncbi.nlm.nih.gov/blast/db/pdbaa.tar.gz");
	assert_int_equal(d->size_bytes, 123942212);
	assert_string_equal(
		d->sha256,
		"sha256:aef9656e065df952e438ecad52920acc51a3e6e9dcb27b157fe167eba4f93d91");
	assert_string_equal(d->format, "tar");
	assert_string_equal(d->post_download_action, "extract");
	assert_string_equal(d->license, "public domain (NCBI)");
	assert_int_equal(d->warnings.n, 0);
	bv_dataset_free(d);
	free(path);

	/* The other two sample datasets load too. */
	path = sample_path("data/pfam/36.0.toml");
	assert_ok(bv_dataset_load(&d, path, &err), &err);
	assert_string_equal(d->id, "pfam");
	assert_string_equal(d->version, "36.0");
	bv_dataset_free(d);
	free(path);
	path = sample_path("data/card/3.3.0.toml");
	assert_ok(bv_dataset_load(&d, path, &err), &err);
	assert_string_equal(d->id, "card");
	bv_dataset_free(d);
	free(path);
}

#define DS_HEAD "[data]\nid = \"db\"\nversion = \"2024_01\"\n"
#define DS_URLS "source_urls = [\"https://example.org/db.gz\"]\n"

static void test_manifest__dataset_defaults(void **state)
{
	struct bv_dataset *d = dataset_ok(DS_HEAD DS_URLS "mirror = \"x\"\n");
	(void)state;
	assert_string_equal(d->post_download_action, "noop");
	assert_null(d->sha256);
	assert_int_equal(d->size_bytes, -1);
	assert_null(d->description);
	assert_null(d->format);
	assert_int_equal(d->warnings.n, 1);
	assert_string_equal(d->warnings.v[0], "d.toml:5: unknown key 'mirror' in [data] (ignored)");
	bv_dataset_free(d);

	d = dataset_ok(DS_HEAD DS_URLS "post_download_action = \"decompress\"\n"
				       "sha256 = \"sha256:" /* 64 digits */
				       "0123456789abcdef0123456789abcdef"
				       "0123456789abcdef0123456789abcdef\"\n");
	assert_string_equal(d->post_download_action, "decompress");
	assert_non_null(d->sha256);
	bv_dataset_free(d);
}

static void test_manifest__dataset_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"", "d.toml:1:1: missing key 'data' in the top level"},
		{"[data]\nversion = \"1\"\n" DS_URLS, "d.toml:1:1: missing key 'id' in [data]"},
		{"[data]\nid = \"db\"\nversion = \"\"\n" DS_URLS,
		 "d.toml:3:11: 'version' in [data] must not be empty"},
		{DS_HEAD, "d.toml:1:1: missing key 'source_urls' in [data]"},
		{DS_HEAD "source_urls = []\n", "d.toml:4:15: 'source_urls' in [data] is empty"},
		{DS_HEAD "source_urls = [1]\n",
		 "d.toml:4:16: 'source_urls' in [data] must be an array of strings"},
		{DS_HEAD DS_URLS "sha256 = \"abc\"\n",
		 "d.toml:5:10: 'sha256' in [data] must be \"sha256:<64 hex digits>\""},
		{DS_HEAD DS_URLS
		 "sha256 = \"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
		 "0123456789abcdef\"\n",
		 "d.toml:5:10: 'sha256' in [data] must be \"sha256:<64 hex digits>\""},
		{DS_HEAD DS_URLS
		 "sha256 = \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
		 "0123456789abcde\"\n",
		 "d.toml:5:10: 'sha256' in [data] must be \"sha256:<64 hex digits>\""},
		{DS_HEAD DS_URLS "sha256 = \"md5:0123456789abcdef0123456789abcdef\"\n",
		 "d.toml:5:10: 'sha256' in [data] must be \"sha256:<64 hex digits>\""},
		{DS_HEAD DS_URLS "post_download_action = \"unzip\"\n",
		 "d.toml:5:24: 'post_download_action' in [data] must be 'noop', 'extract' or "
		 "'decompress', not 'unzip'"},
		{DS_HEAD DS_URLS "size_bytes = \"10\"\n",
		 "d.toml:5:14: 'size_bytes' in [data] must be an integer, not a string"},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++)
		dataset_fail(cases[i].text, cases[i].want);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest__all_sample_tools),
		cmocka_unit_test(test_manifest__samtools),
		cmocka_unit_test(test_manifest__factored_needs_digest),
		cmocka_unit_test(test_manifest__default_binary),
		cmocka_unit_test(test_manifest__genie2),
		cmocka_unit_test(test_manifest__colabfold),
		cmocka_unit_test(test_manifest__more_fields),
		cmocka_unit_test(test_manifest__unknown_keys_warn),
		cmocka_unit_test(test_manifest__validation_errors),
		cmocka_unit_test(test_manifest__hostile_names),
		cmocka_unit_test(test_manifest__entrypoint_cache_paths),
		cmocka_unit_test(test_manifest__load_missing),
		cmocka_unit_test(test_manifest__no_types),
		cmocka_unit_test(test_manifest__to_json),
		cmocka_unit_test(test_manifest__to_json_subcommands),
		cmocka_unit_test(test_manifest__to_mcp),
		cmocka_unit_test(test_manifest__to_json_schema),
		cmocka_unit_test(test_manifest__digest),
		cmocka_unit_test(test_manifest__dataset_pdbaa),
		cmocka_unit_test(test_manifest__dataset_defaults),
		cmocka_unit_test(test_manifest__dataset_errors),
	};
	struct stat st;
	if (argc > 1 && stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))
		sample = argv[1];
	unsetenv("BV_TYPES_FILE");
	return cmocka_run_group_tests(tests, setup, teardown);
}
