/*
 * bv/manifest.h - tool and dataset manifests of a bv registry.
 *
 * A registry holds tools/<id>/<version>.toml (struct bv_manifest) and data/<id>/<version>.toml
 * (struct bv_dataset), in the schema of upstream bv-registry.
 *
 * Calling sequence:
 *   struct bv_types *types;  bv_types_load_default(&types, &err);
 *   struct bv_manifest *m;
 *   if (bv_manifest_load(&m, path, types, &err) < 0) ...    "path:12:8: unknown type 'fastaq'..."
 *   m->id, m->inputs[i].type, m->binaries ...
 *   json_t *j = bv_manifest_to_json(m);                       bv show --format json
 *   bv_manifest_free(m);
 *
 * Validation follows the registry schema: id, version, [tool.image] and [tool.hardware] are
 * required; a tool needs an entrypoint or subcommands; every input and output type must be in
 * the type vocabulary (an unknown one is an error that suggests the nearest known type);
 * subcommand names cannot start with '-'; exposed binaries are unique and include the
 * entrypoint's.  Keys the schema does not know are kept out of the model and listed in
 * `warnings` with their line.
 *
 * Ownership: strings point into the manifest's TOML document, valid until bv_manifest_free().
 * JSON values returned are new references.
 *
 * Errors: BV_ENOTFOUND for a missing file, BV_EINVALID with "file:line:column: ..." otherwise.
 */
#ifndef BV_MANIFEST_H
#define BV_MANIFEST_H

#include <bv/toml.h>
#include <bv/types.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_error;

struct bv_manifest_io {
	const char *name;
	const char *type; /* as written, "fasta[protein]" */
	struct bv_type_ref type_ref;
	const char *cardinality; /* "one", "many" or "optional" */
	const char *mount;       /* NULL or absolute */
	const char *description;
	const struct bv_toml_value *default_value; /* NULL when absent */
};

struct bv_manifest_layer {
	const char *digest;
	int64_t size;
	const char *media_type;
	bool has_conda;
	const char *conda_name, *conda_version, *conda_build, *conda_channel, *conda_sha256;
};

struct bv_manifest_reference {
	const char *key;
	const char *id;
	const char *version;
	bool required;
	const char *mount_path; /* NULL when absent */
	int64_t size_bytes;     /* -1 when absent */
};

struct bv_manifest_subcommand {
	const char *name;
	struct bv_strv argv;
};

struct bv_manifest_env {
	const char *name;
	const char *value;
};

struct bv_manifest {
	char *path;
	struct bv_toml_doc *doc;
	char digest[72]; /* bv_manifest_text_digest() of the file */

	const char *id, *version;
	const char *description, *homepage, *license; /* NULL when absent */
	const char *tier;                             /* core, community or experimental */
	struct bv_strv maintainers;
	bool deprecated;

	const char *image_backend, *image_reference, *image_digest;

	bool factored;
	const char *factored_spec_path, *factored_image_reference, *factored_image_digest;
	const char *repodata_snapshot_digest;
	struct bv_manifest_layer *layers;
	size_t n_layers;

	int64_t cpu_cores;      /* -1 when absent */
	double ram_gb, disk_gb; /* -1 when absent */
	bool gpu_required;
	int64_t gpu_count;        /* -1 when absent (one, when required) */
	int64_t min_vram_gb;      /* -1 when absent */
	const char *cuda_version; /* "major.minor" or NULL */

	struct bv_manifest_reference *reference_data;
	size_t n_reference_data;

	struct bv_manifest_io *inputs, *outputs;
	size_t n_inputs, n_outputs;

	const char *entrypoint; /* command, NULL when the tool only has subcommands */
	const char *args_template;
	struct bv_manifest_env *env;
	size_t n_env;

	struct bv_manifest_subcommand *subcommands;
	size_t n_subcommands;

	struct bv_strv cache_paths;
	struct bv_strv binaries; /* exposed; defaults to the entrypoint's basename */

	struct bv_manifest_env *smoke_probes; /* binary -> probe argument */
	size_t n_smoke_probes;
	struct bv_strv smoke_skip;

	const char *signature_image, *signature_manifest; /* "sigstore" or NULL */
	/* [tool.signatures] public_keys (bv's addition): PEM ECDSA P-256 keys that may sign the
	 * image (bv/signature.h); checked for form only here */
	struct bv_strv signature_keys;

	struct bv_strv warnings;
};

int bv_manifest_parse(struct bv_manifest **out, const char *text, size_t len, const char *path,
		      const struct bv_types *types, struct bv_error **err);
/*
 * Loads a manifest whose digest is known already: bv's own content-addressed copy
 * (bv/runplan.h), named by that digest.  Skips hashing, which would load OpenSSL's
 * providers on the path of every `bv run`; `bv cache verify` checks the copies instead.
 */
int bv_manifest_load_known(struct bv_manifest **out, const char *path, const char *digest,
			   struct bv_error **err);
int bv_manifest_load(struct bv_manifest **out, const char *path, const struct bv_types *types,
		     struct bv_error **err);
void bv_manifest_free(struct bv_manifest *m);

/*
 * "sha256:<hex>" of the manifest file's bytes, recorded in bv.lock as manifest_sha256.
 * Upstream hashes its own re-serialisation, which no other program can reproduce byte for
 * byte; hashing the file lets `bv lock --check` see that a manifest is unchanged without
 * parsing it, at the price of reporting a comment-only edit as a change.  New string.
 */
char *bv_manifest_digest(const struct bv_manifest *m);

/* The same digest for bytes not parsed yet; `out` holds "sha256:" and 64 hex digits. */
void bv_manifest_text_digest(char out[72], const char *text, size_t len);

/*
 * bv show --format json: upstream's documented v1.0 shape, {"schema_version": "1.0",
 * "tool": {...}}.  The tool object carries upstream's fields (id, version, description,
 * homepage, license, image, inputs, outputs) plus entrypoint, binaries and subcommands,
 * which the schema's versioning policy allows as optional additions.  New reference.
 */
json_t *bv_manifest_to_json(const struct bv_manifest *m);
/* The "tool" object of bv_manifest_to_json alone (bv info --json builds on it). */
json_t *bv_manifest_tool_to_json(const struct bv_manifest *m);
/* bv show --format mcp: a Model Context Protocol tool description. */
json_t *bv_manifest_to_mcp(const struct bv_manifest *m);
/* bv show --format json-schema: draft-07 schema of the tool's inputs. */
json_t *bv_manifest_to_json_schema(const struct bv_manifest *m);

struct bv_dataset {
	char *path;
	struct bv_toml_doc *doc;
	const char *id, *version, *description;
	struct bv_strv source_urls; /* the first is the primary file */
	const char *sha256;         /* "sha256:<hex>" or NULL */
	int64_t size_bytes;         /* -1 when absent */
	const char *format;
	const char *post_download_action; /* noop, extract or decompress */
	const char *license;
	struct bv_strv warnings;
};

int bv_dataset_parse(struct bv_dataset **out, const char *text, size_t len, const char *path,
		     struct bv_error **err);
int bv_dataset_load(struct bv_dataset **out, const char *path, struct bv_error **err);
void bv_dataset_free(struct bv_dataset *d);

#endif
