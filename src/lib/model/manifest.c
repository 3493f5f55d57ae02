/*
 * Registry manifests: tools/<id>/<version>.toml and data/<id>/<version>.toml.
 */
#include <bv/error.h>
#include <bv/manifest.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/schema.h"
#include "lib/model/types-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define MANIFEST_MAX_SIZE (4u << 20)

void bv_manifest_free(struct bv_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_inputs; i++)
		bv_type_ref_release(&m->inputs[i].type_ref);
	for (size_t i = 0; i < m->n_outputs; i++)
		bv_type_ref_release(&m->outputs[i].type_ref);
	for (size_t i = 0; i < m->n_subcommands; i++)
		bv_strv_clear(&m->subcommands[i].argv);
	free(m->inputs);
	free(m->outputs);
	free(m->subcommands);
	free(m->layers);
	free(m->reference_data);
	free(m->env);
	free(m->smoke_probes);
	bv_strv_clear(&m->maintainers);
	bv_strv_clear(&m->cache_paths);
	bv_strv_clear(&m->binaries);
	bv_strv_clear(&m->smoke_skip);
	bv_strv_clear(&m->signature_keys);
	bv_strv_clear(&m->warnings);
	bv_toml_doc_free(m->doc);
	free(m->path);
	free(m);
}

static const struct bv_toml_pos *pos_of(const struct bv_schema_table *t, const char *key)
{
	const struct bv_toml_kv *kv = bv_schema_find(t, key);
	return kv ? &kv->value.pos : &t->pos;
}

static int require_nonempty(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
			    const char **out)
{
	if (bv_schema_string(s, t, key, true, out) < 0)
		return BV_EINVALID;
	if (!(*out)[0])
		return bv_schema_fail(s, *pos_of(t, key), "'%s' in %s must not be empty", key,
				      t->name);
	return 0;
}

static int one_of(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		  const char *value, const char *const *allowed)
{
	struct bv_buf list = BV_BUF_INIT;
	int r;
	for (const char *const *a = allowed; *a; a++)
		if (!strcmp(*a, value))
			return 0;
	for (const char *const *a = allowed; *a; a++)
		bv_buf_printf(&list, "%s'%s'", a == allowed ? "" : a[1] ? ", " : " or ", *a);
	r = bv_schema_fail(s, *pos_of(t, key), "'%s' in %s must be %s, not '%s'", key, t->name,
			   list.buf, value);
	bv_buf_release(&list);
	return r;
}

static int read_io(struct bv_schema *s, const struct bv_schema_table *tool, const char *key,
		   const struct bv_types *types, struct bv_manifest_io **out, size_t *n_out)
{
	static const char *const known[] = {"name",        "type",    "cardinality", "mount",
					    "description", "default", NULL};
	static const char *const cardinalities[] = {"one", "many", "optional", NULL};
	const struct bv_toml_array *a = NULL;
	const char *name = !strcmp(key, "inputs") ? "[[tool.inputs]]" : "[[tool.outputs]]";
	int r = bv_schema_array(s, tool, key, false, &a, NULL);
	if (r <= 0)
		return r;
	*out = bv_xcalloc(a->n + 1, sizeof(**out));
	for (size_t i = 0; i < a->n; i++) {
		struct bv_manifest_io *io = &(*out)[i];
		struct bv_schema_table t;
		const struct bv_toml_kv *def;
		if (bv_schema_table_at(s, a, i, name, &t) < 0 ||
		    require_nonempty(s, &t, "name", &io->name) < 0 ||
		    require_nonempty(s, &t, "type", &io->type) < 0 ||
		    bv_schema_string(s, &t, "cardinality", false, &io->cardinality) < 0 ||
		    bv_schema_string(s, &t, "mount", false, &io->mount) < 0 ||
		    bv_schema_string(s, &t, "description", false, &io->description) < 0 ||
		    bv_schema_check_keys(s, &t, known) < 0)
			return BV_EINVALID;
		(*n_out)++;
		if (!io->cardinality)
			io->cardinality = "one";
		if (one_of(s, &t, "cardinality", io->cardinality, cardinalities) < 0)
			return BV_EINVALID;
		if (io->mount && io->mount[0] != '/')
			return bv_schema_fail(s, *pos_of(&t, "mount"),
					      "'mount' in %s must be an absolute path, not '%s'",
					      name, io->mount);
		if (bv_type_ref_parse(&io->type_ref, io->type) < 0)
			return bv_schema_fail(s, *pos_of(&t, "type"), "invalid type '%s' in %s",
					      io->type, name);
		if (types && !bv_types_lookup(types, io->type_ref.id)) {
			const char *guess = bv_types_suggest(types, io->type_ref.id);
			if (guess)
				return bv_schema_fail(s, *pos_of(&t, "type"),
						      "unknown type '%s' in %s; did you mean '%s'?",
						      io->type_ref.id, name, guess);
			return bv_schema_fail(s, *pos_of(&t, "type"), "unknown type '%s' in %s",
					      io->type_ref.id, name);
		}
		def = bv_schema_find(&t, "default");
		io->default_value = def ? &def->value : NULL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp((*out)[j].name, io->name))
				return bv_schema_fail(s, *pos_of(&t, "name"),
						      "%s '%s' is declared twice", name, io->name);
	}
	return 0;
}

static int read_image_and_factored(struct bv_schema *s, struct bv_manifest *m,
				   const struct bv_schema_table *tool)
{
	static const char *const image_keys[] = {"backend", "reference", "digest", NULL};
	static const char *const factored_keys[] = {"spec_path",    "image_reference",
						    "image_digest", "repodata_snapshot_digest",
						    "layers",       NULL};
	static const char *const layer_keys[] = {"digest",        "size",     "media_type",
						 "conda_package", "blob_url", NULL};
	static const char *const conda_keys[] = {"name",    "version", "build",
						 "channel", "sha256",  NULL};
	struct bv_schema_table t;
	const struct bv_toml_array *a = NULL;
	int r;
	if (bv_schema_table(s, tool, "image", true, &t) < 0 ||
	    require_nonempty(s, &t, "backend", &m->image_backend) < 0 ||
	    require_nonempty(s, &t, "reference", &m->image_reference) < 0 ||
	    bv_schema_string(s, &t, "digest", false, &m->image_digest) < 0 ||
	    bv_schema_check_keys(s, &t, image_keys) < 0)
		return BV_EINVALID;
	r = bv_schema_table(s, tool, "factored", false, &t);
	if (r <= 0)
		return r;
	if (bv_schema_string(s, &t, "spec_path", false, &m->factored_spec_path) < 0 ||
	    bv_schema_string(s, &t, "image_reference", true, &m->factored_image_reference) < 0 ||
	    bv_schema_string(s, &t, "image_digest", false, &m->factored_image_digest) < 0 ||
	    bv_schema_string(s, &t, "repodata_snapshot_digest", false,
			     &m->repodata_snapshot_digest) < 0 ||
	    bv_schema_check_keys(s, &t, factored_keys) < 0)
		return BV_EINVALID;
	/* As upstream: the factored image is used only when it is pinned by digest. */
	m->factored = m->factored_image_digest && m->factored_image_digest[0];
	r = bv_schema_array(s, &t, "layers", false, &a, NULL);
	if (r <= 0)
		return r;
	m->layers = bv_xcalloc(a->n + 1, sizeof(*m->layers));
	for (size_t i = 0; i < a->n; i++) {
		struct bv_manifest_layer *l = &m->layers[i];
		struct bv_schema_table lt, ct;
		if (bv_schema_table_at(s, a, i, "[[tool.factored.layers]]", &lt) < 0 ||
		    require_nonempty(s, &lt, "digest", &l->digest) < 0 ||
		    bv_schema_integer(s, &lt, "size", true, &l->size) < 0 ||
		    bv_schema_string(s, &lt, "media_type", true, &l->media_type) < 0 ||
		    bv_schema_check_keys(s, &lt, layer_keys) < 0)
			return BV_EINVALID;
		m->n_layers++;
		r = bv_schema_table(s, &lt, "conda_package", false, &ct);
		if (r < 0)
			return r;
		if (r > 0) {
			l->has_conda = true;
			if (bv_schema_string(s, &ct, "name", true, &l->conda_name) < 0 ||
			    bv_schema_string(s, &ct, "version", true, &l->conda_version) < 0 ||
			    bv_schema_string(s, &ct, "build", false, &l->conda_build) < 0 ||
			    bv_schema_string(s, &ct, "channel", false, &l->conda_channel) < 0 ||
			    bv_schema_string(s, &ct, "sha256", false, &l->conda_sha256) < 0 ||
			    bv_schema_check_keys(s, &ct, conda_keys) < 0)
				return BV_EINVALID;
		}
	}
	return 0;
}

static int read_hardware(struct bv_schema *s, struct bv_manifest *m,
			 const struct bv_schema_table *tool)
{
	static const char *const keys[] = {"cpu_cores", "ram_gb", "disk_gb", "gpu", NULL};
	static const char *const gpu_keys[] = {"required", "count", "min_vram_gb", "cuda_version",
					       NULL};
	struct bv_schema_table t, g;
	int r;
	m->cpu_cores = m->min_vram_gb = m->gpu_count = -1;
	m->ram_gb = m->disk_gb = -1;
	if (bv_schema_table(s, tool, "hardware", true, &t) < 0 ||
	    bv_schema_integer(s, &t, "cpu_cores", false, &m->cpu_cores) < 0 ||
	    bv_schema_number(s, &t, "ram_gb", false, &m->ram_gb) < 0 ||
	    bv_schema_number(s, &t, "disk_gb", false, &m->disk_gb) < 0 ||
	    bv_schema_check_keys(s, &t, keys) < 0)
		return BV_EINVALID;
	r = bv_schema_table(s, &t, "gpu", false, &g);
	if (r <= 0)
		return r;
	if (bv_schema_bool(s, &g, "required", true, &m->gpu_required) < 0 ||
	    bv_schema_integer(s, &g, "count", false, &m->gpu_count) < 0 ||
	    bv_schema_integer(s, &g, "min_vram_gb", false, &m->min_vram_gb) < 0 ||
	    bv_schema_string(s, &g, "cuda_version", false, &m->cuda_version) < 0 ||
	    bv_schema_check_keys(s, &g, gpu_keys) < 0)
		return BV_EINVALID;
	if (m->cuda_version) {
		const char *dot = strchr(m->cuda_version, '.');
		size_t n = strspn(m->cuda_version, "0123456789");
		if (!n || !dot || (size_t)(dot - m->cuda_version) != n || !dot[1] ||
		    strspn(dot + 1, "0123456789") != strlen(dot + 1))
			return bv_schema_fail(s, *pos_of(&g, "cuda_version"),
					      "'cuda_version' must be \"major.minor\", not '%s'",
					      m->cuda_version);
	}
	return 0;
}

static int read_reference_data(struct bv_schema *s, struct bv_manifest *m,
			       const struct bv_schema_table *tool)
{
	static const char *const keys[] = {"id",         "version",    "required",
					   "mount_path", "size_bytes", NULL};
	struct bv_schema_table t;
	int r = bv_schema_table(s, tool, "reference_data", false, &t);
	if (r <= 0)
		return r;
	m->reference_data = bv_xcalloc(t.t->n + 1, sizeof(*m->reference_data));
	for (size_t i = 0; i < t.t->n; i++) {
		struct bv_manifest_reference *ref = &m->reference_data[i];
		struct bv_schema_table e;
		ref->key = t.t->items[i].key;
		ref->size_bytes = -1;
		if (bv_schema_check_name(s, t.t->items[i].pos, "name", t.name, ref->key) < 0 ||
		    bv_schema_table(s, &t, ref->key, true, &e) < 0 ||
		    bv_schema_name(s, &e, "id", true, &ref->id) < 0 ||
		    bv_schema_name(s, &e, "version", true, &ref->version) < 0 ||
		    bv_schema_bool(s, &e, "required", false, &ref->required) < 0 ||
		    bv_schema_container_path(s, &e, "mount_path", false, &ref->mount_path) < 0 ||
		    bv_schema_integer(s, &e, "size_bytes", false, &ref->size_bytes) < 0 ||
		    bv_schema_check_keys(s, &e, keys) < 0)
			return BV_EINVALID;
		m->n_reference_data++;
	}
	return 0;
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Appends `key` of `t` to m->cache_paths; each must be absolute. */
static int read_cache_paths(struct bv_schema *s, struct bv_manifest *m,
			    const struct bv_schema_table *t)
{
	size_t before = m->cache_paths.n;
	if (bv_schema_strings(s, t, "cache_paths", false, &m->cache_paths) < 0)
		return BV_EINVALID;
	for (size_t i = before; i < m->cache_paths.n; i++)
		if (bv_schema_check_container_path(s, *pos_of(t, "cache_paths"), "cache path",
						   t->name, m->cache_paths.v[i]) < 0)
			return BV_EINVALID;
	return 0;
}

static bool valid_env_name(const char *name)
{
	if (!*name || (*name >= '0' && *name <= '9'))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	       strlen(name);
}

static int read_entrypoint(struct bv_schema *s, struct bv_manifest *m,
			   const struct bv_schema_table *tool)
{
	/* The registry's colabfold manifest writes cache_paths inside [tool.entrypoint]. */
	static const char *const keys[] = {"command", "args_template", "env", "cache_paths", NULL};
	struct bv_schema_table t, env;
	int r = bv_schema_table(s, tool, "entrypoint", false, &t);
	if (r <= 0)
		return r;
	if (require_nonempty(s, &t, "command", &m->entrypoint) < 0 ||
	    bv_schema_string(s, &t, "args_template", false, &m->args_template) < 0 ||
	    read_cache_paths(s, m, &t) < 0 || bv_schema_check_keys(s, &t, keys) < 0)
		return BV_EINVALID;
	r = bv_schema_table(s, &t, "env", false, &env);
	if (r <= 0)
		return r;
	m->env = bv_xcalloc(env.t->n + 1, sizeof(*m->env));
	for (size_t i = 0; i < env.t->n; i++) {
		m->env[i].name = env.t->items[i].key;
		if (!valid_env_name(m->env[i].name))
			return bv_schema_fail(
				s, env.t->items[i].pos,
				"invalid environment variable name in %s: use letters, "
				"digits and '_', not starting with a digit",
				env.name);
		if (bv_schema_string(s, &env, m->env[i].name, true, &m->env[i].value) < 0)
			return BV_EINVALID;
		m->n_env++;
	}
	return 0;
}

static int read_subcommands(struct bv_schema *s, struct bv_manifest *m,
			    const struct bv_schema_table *tool)
{
	struct bv_schema_table t;
	int r = bv_schema_table(s, tool, "subcommands", false, &t);
	if (r <= 0)
		return r;
	m->subcommands = bv_xcalloc(t.t->n + 1, sizeof(*m->subcommands));
	for (size_t i = 0; i < t.t->n; i++) {
		struct bv_manifest_subcommand *sc = &m->subcommands[i];
		const struct bv_toml_kv *kv = &t.t->items[i];
		sc->name = kv->key;
		bv_strv_init(&sc->argv);
		m->n_subcommands++;
		if (bv_schema_check_name(s, kv->pos, "subcommand name", t.name, sc->name) < 0)
			return BV_EINVALID;
		if (bv_schema_strings(s, &t, sc->name, true, &sc->argv) < 0)
			return BV_EINVALID;
		if (!sc->argv.n)
			return bv_schema_fail(s, kv->value.pos,
					      "subcommand '%s' has an empty command", sc->name);
	}
	return 0;
}

static int read_binaries_and_smoke(struct bv_schema *s, struct bv_manifest *m,
				   const struct bv_schema_table *tool)
{
	static const char *const binaries_keys[] = {"exposed", NULL};
	static const char *const smoke_keys[] = {"probes", "skip", NULL};
	static const char *const signature_keys[] = {"image", "manifest", "public_keys", NULL};
	struct bv_schema_table t, probes;
	int exposed = 0;
	int r = bv_schema_table(s, tool, "binaries", false, &t);
	if (r < 0)
		return r;
	if (r > 0) {
		struct bv_toml_pos at = *pos_of(&t, "exposed");
		exposed = bv_schema_strings(s, &t, "exposed", false, &m->binaries);
		if (exposed < 0 || bv_schema_check_keys(s, &t, binaries_keys) < 0)
			return BV_EINVALID;
		for (size_t i = 0; i < m->binaries.n; i++) {
			if (bv_schema_check_name(s, at, "binary name", t.name, m->binaries.v[i]) <
			    0)
				return BV_EINVALID;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(m->binaries.v[i], m->binaries.v[j]))
					return bv_schema_fail(
						s, at,
						"binary '%s' is listed twice in [tool.binaries]",
						m->binaries.v[i]);
		}
		/* An explicit list, even an empty one, must let the entrypoint be run. */
		if (exposed > 0 && m->entrypoint &&
		    !bv_strv_contains(&m->binaries, basename_of(m->entrypoint)))
			return bv_schema_fail(
				s, at, "[tool.binaries] exposed must include the entrypoint '%s'",
				basename_of(m->entrypoint));
	}
	if (!exposed && m->entrypoint) {
		/* the default binary is a name like any other ("/usr/bin/.." is not) */
		if (bv_schema_check_name(s, *pos_of(tool, "entrypoint"), "binary name",
					 "[tool.entrypoint] command",
					 basename_of(m->entrypoint)) < 0)
			return BV_EINVALID;
		bv_strv_push(&m->binaries, basename_of(m->entrypoint));
	}

	r = bv_schema_table(s, tool, "smoke", false, &t);
	if (r < 0)
		return r;
	if (r > 0) {
		if (bv_schema_strings(s, &t, "skip", false, &m->smoke_skip) < 0 ||
		    bv_schema_check_keys(s, &t, smoke_keys) < 0)
			return BV_EINVALID;
		r = bv_schema_table(s, &t, "probes", false, &probes);
		if (r < 0)
			return r;
		if (r > 0) {
			m->smoke_probes = bv_xcalloc(probes.t->n + 1, sizeof(*m->smoke_probes));
			for (size_t i = 0; i < probes.t->n; i++) {
				m->smoke_probes[i].name = probes.t->items[i].key;
				if (bv_schema_string(s, &probes, m->smoke_probes[i].name, true,
						     &m->smoke_probes[i].value) < 0)
					return BV_EINVALID;
				m->n_smoke_probes++;
			}
		}
	}

	r = bv_schema_table(s, tool, "signatures", false, &t);
	if (r <= 0)
		return r;
	if (bv_schema_string(s, &t, "image", false, &m->signature_image) < 0 ||
	    bv_schema_string(s, &t, "manifest", false, &m->signature_manifest) < 0 ||
	    bv_schema_strings(s, &t, "public_keys", false, &m->signature_keys) < 0 ||
	    bv_schema_check_keys(s, &t, signature_keys) < 0)
		return BV_EINVALID;
	/* only the form here: parsing the keys would load OpenSSL on every manifest read, and
	 * bv run reads one; the signature check parses them (src/lib/oci/signature.c) */
	for (size_t i = 0; i < m->signature_keys.n; i++)
		if (!bv_str_has_prefix(m->signature_keys.v[i], "-----BEGIN PUBLIC KEY-----"))
			return bv_schema_fail(s, *pos_of(&t, "public_keys"),
					      "public_keys[%zu] in [tool.signatures] is not a PEM "
					      "public key (-----BEGIN PUBLIC KEY-----)",
					      i);
	return 0;
}

static int read_tool(struct bv_schema *s, struct bv_manifest *m, const struct bv_types *types)
{
	static const char *const keys[] = {"id",       "version",  "description", "homepage",
					   "license",  "tier",     "maintainers", "deprecated",
					   "image",    "factored", "hardware",    "reference_data",
					   "inputs",   "outputs",  "entrypoint",  "subcommands",
					   "binaries", "smoke",    "signatures",  "cache_paths",
					   NULL};
	static const char *const tiers[] = {"core", "community", "experimental", NULL};
	struct bv_schema_table root = bv_schema_root(s, bv_toml_doc_root(m->doc)), tool;
	static const char *const root_keys[] = {"tool", NULL};

	if (bv_schema_table(s, &root, "tool", true, &tool) < 0 ||
	    bv_schema_check_keys(s, &root, root_keys) < 0 ||
	    bv_schema_name(s, &tool, "id", true, &m->id) < 0 ||
	    bv_schema_name(s, &tool, "version", true, &m->version) < 0 ||
	    bv_schema_string(s, &tool, "description", false, &m->description) < 0 ||
	    bv_schema_string(s, &tool, "homepage", false, &m->homepage) < 0 ||
	    bv_schema_string(s, &tool, "license", false, &m->license) < 0 ||
	    bv_schema_string(s, &tool, "tier", false, &m->tier) < 0 ||
	    bv_schema_strings(s, &tool, "maintainers", false, &m->maintainers) < 0 ||
	    bv_schema_bool(s, &tool, "deprecated", false, &m->deprecated) < 0 ||
	    read_cache_paths(s, m, &tool) < 0 || bv_schema_check_keys(s, &tool, keys) < 0)
		return BV_EINVALID;
	if (!m->tier)
		m->tier = "community";
	if (one_of(s, &tool, "tier", m->tier, tiers) < 0 ||
	    read_image_and_factored(s, m, &tool) < 0 || read_hardware(s, m, &tool) < 0 ||
	    read_reference_data(s, m, &tool) < 0 ||
	    read_io(s, &tool, "inputs", types, &m->inputs, &m->n_inputs) < 0 ||
	    read_io(s, &tool, "outputs", types, &m->outputs, &m->n_outputs) < 0 ||
	    read_entrypoint(s, m, &tool) < 0 || read_subcommands(s, m, &tool) < 0 ||
	    read_binaries_and_smoke(s, m, &tool) < 0)
		return BV_EINVALID;
	if (!m->entrypoint && !m->n_subcommands)
		return bv_schema_fail(s, tool.pos,
				      "tool '%s' needs [tool.entrypoint] or [tool.subcommands]",
				      m->id);
	return 0;
}

static int parse(struct bv_manifest **out, const char *text, size_t len, const char *path,
		 const struct bv_types *types, const char *known_digest, struct bv_error **err)
{
	struct bv_manifest *m = bv_xcalloc(1, sizeof(*m));
	struct bv_schema s = {.file = path, .err = err};
	int r;
	bv_strv_init(&s.names);
	bv_strv_init(&m->maintainers);
	bv_strv_init(&m->cache_paths);
	bv_strv_init(&m->binaries);
	bv_strv_init(&m->smoke_skip);
	bv_strv_init(&m->signature_keys);
	bv_strv_init(&m->warnings);
	s.warnings = &m->warnings;
	m->path = bv_xstrdup(path);
	if (known_digest)
		snprintf(m->digest, sizeof(m->digest), "%s", known_digest);
	else
		bv_manifest_text_digest(m->digest, text, len);
	r = bv_toml_parse(&m->doc, text, len, path, err);
	if (r >= 0)
		r = read_tool(&s, m, types);
	bv_schema_release(&s);
	if (r < 0) {
		bv_manifest_free(m);
		return BV_EINVALID;
	}
	*out = m;
	return 0;
}

int bv_manifest_parse(struct bv_manifest **out, const char *text, size_t len, const char *path,
		      const struct bv_types *types, struct bv_error **err)
{
	return parse(out, text, len, path, types, NULL, err);
}

int bv_manifest_load_known(struct bv_manifest **out, const char *path, const char *digest,
			   struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r = bv_buf_read_file(&text, path, MANIFEST_MAX_SIZE, err);
	if (r < 0)
		return r;
	return parse(out, text.buf, text.len, path, NULL, digest, err);
}

int bv_manifest_load(struct bv_manifest **out, const char *path, const struct bv_types *types,
		     struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r = bv_buf_read_file(&text, path, MANIFEST_MAX_SIZE, err);
	if (r < 0)
		return r;
	return bv_manifest_parse(out, text.buf, text.len, path, types, err);
}

void bv_manifest_text_digest(char out[72], const char *text, size_t len)
{
	memcpy(out, "sha256:", 7);
	bv_sha256_hex(out + 7, text, len);
}

char *bv_manifest_digest(const struct bv_manifest *m)
{
	return bv_xstrdup(m->digest);
}

/* JSON renderings. */

static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (!j)
		bv_oom();
	return j;
}

static void set_str(json_t *o, const char *key, const char *value)
{
	if (value)
		json_object_set_new(o, key, jstr(value));
}

static json_t *io_to_json(const struct bv_manifest_io *io, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		set_str(o, "name", io[i].name);
		set_str(o, "type", io[i].type);
		set_str(o, "cardinality", io[i].cardinality);
		set_str(o, "description", io[i].description);
		set_str(o, "mount", io[i].mount);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *bv_manifest_tool_to_json(const struct bv_manifest *m)
{
	json_t *o = json_object(), *image = json_object();
	set_str(o, "id", m->id);
	set_str(o, "version", m->version);
	set_str(o, "description", m->description);
	set_str(o, "homepage", m->homepage);
	set_str(o, "license", m->license);
	set_str(image, "backend", m->image_backend);
	set_str(image, "reference", m->image_reference);
	json_object_set_new(o, "image", image);
	json_object_set_new(o, "inputs", io_to_json(m->inputs, m->n_inputs));
	json_object_set_new(o, "outputs", io_to_json(m->outputs, m->n_outputs));
	if (m->entrypoint) {
		json_t *e = json_object();
		set_str(e, "command", m->entrypoint);
		set_str(e, "args_template", m->args_template);
		json_object_set_new(o, "entrypoint", e);
	}
	if (m->binaries.n) {
		json_t *b = json_array();
		bv_strv_foreach (name, &m->binaries)
			json_array_append_new(b, jstr(*name));
		json_object_set_new(o, "binaries", b);
	}
	if (m->n_subcommands) {
		json_t *sc = json_object();
		for (size_t i = 0; i < m->n_subcommands; i++) {
			json_t *argv = json_array();
			bv_strv_foreach (arg, &m->subcommands[i].argv)
				json_array_append_new(argv, jstr(*arg));
			json_object_set_new(sc, m->subcommands[i].name, argv);
		}
		json_object_set_new(o, "subcommands", sc);
	}
	return o;
}

json_t *bv_manifest_to_json(const struct bv_manifest *m)
{
	json_t *o = json_object();
	set_str(o, "schema_version", "1.0");
	json_object_set_new(o, "tool", bv_manifest_tool_to_json(m));
	return o;
}

static json_t *input_properties(const struct bv_manifest *m, bool schema, json_t **required)
{
	json_t *props = json_object();
	*required = json_array();
	for (size_t i = 0; i < m->n_inputs; i++) {
		const struct bv_manifest_io *io = &m->inputs[i];
		json_t *p = json_object();
		char *desc = bv_xasprintf("%s (%s)", io->description ? io->description : io->name,
					  io->type);
		set_str(p, "type", "string");
		set_str(p, "description", desc);
		free(desc);
		if (schema)
			set_str(p, "x-bv-type", io->type);
		json_object_set_new(props, io->name, p);
		if (strcmp(io->cardinality, "optional"))
			json_array_append_new(*required, jstr(io->name));
	}
	return props;
}

json_t *bv_manifest_to_mcp(const struct bv_manifest *m)
{
	json_t *o = json_object(), *schema = json_object(), *required;
	set_str(o, "name", m->id);
	set_str(o, "description", m->description ? m->description : m->id);
	set_str(schema, "type", "object");
	json_object_set_new(schema, "properties", input_properties(m, false, &required));
	json_object_set_new(schema, "required", required);
	json_object_set_new(o, "inputSchema", schema);
	return o;
}

json_t *bv_manifest_to_json_schema(const struct bv_manifest *m)
{
	json_t *o = json_object(), *required;
	char *title = bv_xasprintf("%s %s", m->id, m->version);
	set_str(o, "$schema", "http://json-schema.org/draft-07/schema#");
	set_str(o, "title", title);
	free(title);
	set_str(o, "description", m->description);
	set_str(o, "type", "object");
	json_object_set_new(o, "properties", input_properties(m, true, &required));
	json_object_set_new(o, "required", required);
	json_object_set_new(o, "additionalProperties", json_false());
	return o;
}

/* Datasets. */

void bv_dataset_free(struct bv_dataset *d)
{
	if (!d)
		return;
	bv_strv_clear(&d->source_urls);
	bv_strv_clear(&d->warnings);
	bv_toml_doc_free(d->doc);
	free(d->path);
	free(d);
}

int bv_dataset_parse(struct bv_dataset **out, const char *text, size_t len, const char *path,
		     struct bv_error **err)
{
	static const char *const keys[] = {
		"id",      "version",    "description", "source_urls",
		"sha256",  "size_bytes", "format",      "post_download_action",
		"license", "deprecated", NULL};
	static const char *const actions[] = {"noop", "extract", "decompress", NULL};
	static const char *const root_keys[] = {"data", NULL};
	struct bv_dataset *d = bv_xcalloc(1, sizeof(*d));
	struct bv_schema s = {.file = path, .err = err};
	struct bv_schema_table root, t;
	int r;
	bv_strv_init(&s.names);
	bv_strv_init(&d->source_urls);
	bv_strv_init(&d->warnings);
	s.warnings = &d->warnings;
	d->path = bv_xstrdup(path);
	d->size_bytes = -1;
	r = bv_toml_parse(&d->doc, text, len, path, err);
	if (r < 0)
		goto out;
	root = bv_schema_root(&s, bv_toml_doc_root(d->doc));
	r = BV_EINVALID;
	if (bv_schema_table(&s, &root, "data", true, &t) < 0 ||
	    bv_schema_check_keys(&s, &root, root_keys) < 0 ||
	    bv_schema_name(&s, &t, "id", true, &d->id) < 0 ||
	    bv_schema_name(&s, &t, "version", true, &d->version) < 0 ||
	    bv_schema_string(&s, &t, "description", false, &d->description) < 0 ||
	    bv_schema_strings(&s, &t, "source_urls", true, &d->source_urls) < 0 ||
	    bv_schema_string(&s, &t, "sha256", false, &d->sha256) < 0 ||
	    bv_schema_integer(&s, &t, "size_bytes", false, &d->size_bytes) < 0 ||
	    bv_schema_string(&s, &t, "format", false, &d->format) < 0 ||
	    bv_schema_string(&s, &t, "post_download_action", false, &d->post_download_action) < 0 ||
	    bv_schema_string(&s, &t, "license", false, &d->license) < 0 ||
	    bv_schema_check_keys(&s, &t, keys) < 0)
		goto out;
	if (!d->source_urls.n) {
		bv_schema_fail(&s, *pos_of(&t, "source_urls"), "'source_urls' in [data] is empty");
		goto out;
	}
	if (!d->post_download_action)
		d->post_download_action = "noop";
	if (one_of(&s, &t, "post_download_action", d->post_download_action, actions) < 0)
		goto out;
	if (d->sha256 && !bv_digest_valid(d->sha256)) {
		bv_schema_fail(&s, *pos_of(&t, "sha256"),
			       "'sha256' in [data] must be \"sha256:<64 hex digits>\"");
		goto out;
	}
	r = 0;
out:
	bv_schema_release(&s);
	if (r < 0) {
		bv_dataset_free(d);
		return BV_EINVALID;
	}
	*out = d;
	return 0;
}

int bv_dataset_load(struct bv_dataset **out, const char *path, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r = bv_buf_read_file(&text, path, MANIFEST_MAX_SIZE, err);
	if (r < 0)
		return r;
	return bv_dataset_parse(out, text.buf, text.len, path, err);
}
