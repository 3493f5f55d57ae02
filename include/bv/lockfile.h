/*
 * bv/lockfile.h - the lock file, bv.lock: what every tool of a project resolved to.
 *
 * The format is upstream bv's (format version 1) so that either implementation can read the
 * other's locks: top-level `version`, `[metadata]`, one `[tools.<id>]` table per tool and the
 * derived `[binary_index]`.  Upstream reads it with serde's deny_unknown_fields, so this reader
 * is just as strict (an unknown key is an error, never a warning) and this writer emits exactly
 * upstream's field names and nothing else.
 *
 * Calling sequence:
 *   struct bv_lockfile *lock;
 *   r = bv_lockfile_load(&lock, "bv.lock", &err);          BV_ENOTFOUND: no lock yet
 *   if (r == BV_ENOTFOUND) lock = bv_lockfile_new(BV_VERSION, bv_time_now());
 *   struct bv_lock_tool *t = bv_lockfile_upsert(lock, "samtools");
 *   bv_lock_set_string(&t->version, "1.21.0");  ...
 *   bv_lockfile_rebuild_binary_index(lock, bins, tools, n, &err);
 *   bv_lockfile_diff(old, lock, &lines);                   `bv lock --check`
 *   bv_lockfile_save(lock, "bv.lock", &err);               atomic replacement
 *   bv_lockfile_free(lock);
 *
 * What is written for optional or empty fields.  Upstream's reader requires every field that
 * has no serde default, and the only ones known to have one are those upstream itself omits
 * when empty.  So the writer omits exactly those: `declared_version_req` when "", `spec_kind`
 * when it is the default legacy_image, `metadata.hardware_summary` when NULL, `[binary_index]`
 * when empty, `image_size_bytes` when unknown (-1; an Option in upstream's model) and a layer's
 * `conda_package` when NULL.  Everything else is always written, even empty:
 * `binaries = []`, `layers = []`, an empty `[tools.<id>.reference_data_pins]` table,
 * `manifest_sha256 = ""` and an empty `[tools]` table, because a strict reader that lacks a
 * default for them would refuse the file if they were missing.  The reader in turn accepts
 * every field it writes as optional when upstream might have left it out (layers, pins,
 * binaries, manifest_sha256, image_size_bytes, spec_kind, declared_version_req, tools).
 *
 * Output is deterministic: tools, pins and the binary index are sorted bytewise by key (like
 * upstream's BTreeMaps), and bv_toml_write() has a fixed layout, so the same lock always gives
 * the same bytes, and writing what was read gives back identical bytes.  Timestamps are kept
 * as the strings read (only checked to be RFC 3339), so nothing is lost in a round trip.
 *
 * Ownership: a struct bv_lockfile owns every string and array in it (plain malloc, freed by
 * bv_lockfile_free()).  String fields of tools, layers and pins are never NULL after
 * bv_lockfile_upsert()/parse; replace them with bv_lock_set_string().  Pointers to tools are
 * invalidated by the next upsert or remove.
 *
 * Errors: functions that can fail return 0 or a negative enum bv_error_code.  Contents errors
 * are BV_EINVALID with "file:line:column: ..."; a missing file is BV_ENOTFOUND.
 */
#ifndef BV_LOCKFILE_H
#define BV_LOCKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_buf;
struct bv_error;

/* The only format version this bv reads and writes. */
#define BV_LOCKFILE_VERSION 1

/* A layer's conda package (`conda_package`), for factored images whose manifest lists it. */
struct bv_lock_conda {
	char *name, *version, *build, *channel, *sha256;
};

struct bv_lock_layer {
	char *digest; /* "sha256:<64 hex>" */
	int64_t size; /* bytes, >= 0 */
	char *media_type;
	struct bv_lock_conda *conda; /* NULL when absent */
};

/* One `reference_data_pins.<key>` entry. */
struct bv_lock_data_pin {
	char *key, *id, *version, *sha256;
};

struct bv_lock_tool {
	char *tool_id;
	char *declared_version_req; /* bv.toml's requirement; "" when absent */
	char *version;
	bool factored; /* spec_kind = "factored_oci"; false is legacy_image (not written) */
	char *image_reference;
	char *image_digest;       /* "sha256:<64 hex>" or "" */
	char *manifest_sha256;    /* "sha256:<64 hex>" or "" */
	int64_t image_size_bytes; /* -1 when unknown (then not written) */
	char *resolved_at;        /* RFC 3339 */
	struct bv_lock_layer *layers;
	size_t n_layers;
	struct bv_lock_data_pin *pins; /* sorted by key */
	size_t n_pins;
	struct bv_strv binaries; /* in the manifest's order */
};

struct bv_lock_binary {
	char *binary;
	char *tool;
};

struct bv_lockfile {
	int64_t version; /* BV_LOCKFILE_VERSION */
	char *bv_version;
	char *generated_at;         /* RFC 3339 */
	char *hardware_summary;     /* NULL: upstream never fills it */
	struct bv_lock_tool *tools; /* sorted by tool_id */
	size_t n_tools;
	struct bv_lock_binary *binary_index; /* sorted by binary */
	size_t n_binary_index;
};

/* An empty lock stamped with `bv_version` and `now` (seconds since the epoch) as generated_at. */
struct bv_lockfile *bv_lockfile_new(const char *bv_version, int64_t now);
void bv_lockfile_free(struct bv_lockfile *lock);
/* A deep copy (bv lock --check edits a copy and compares it with the original). */
struct bv_lockfile *bv_lockfile_clone(const struct bv_lockfile *lock);

/* Parses `len` bytes of `text`; `path` names the file in error messages. */
int bv_lockfile_parse(struct bv_lockfile **out, const char *text, size_t len, const char *path,
		      struct bv_error **err);
/* Reads and parses `path` (at most 64 MiB); BV_ENOTFOUND when it does not exist. */
int bv_lockfile_load(struct bv_lockfile **out, const char *path, struct bv_error **err);

/* Appends the lock as TOML to `out` (see the top of this file for the exact layout). */
void bv_lockfile_write(struct bv_buf *out, const struct bv_lockfile *lock);
/* Writes the lock to `path` atomically (mode 0644). */
int bv_lockfile_save(const struct bv_lockfile *lock, const char *path, struct bv_error **err);

/* Frees *field and stores a copy of `value` ("" for NULL). */
void bv_lock_set_string(char **field, const char *value);

/* The entry of `tool_id`, or NULL. */
struct bv_lock_tool *bv_lockfile_find(const struct bv_lockfile *lock, const char *tool_id);
/*
 * The entry of `tool_id`, created when absent (in sorted position) with every string "",
 * image_size_bytes -1, no layers, pins or binaries.  An existing entry is returned unchanged.
 */
struct bv_lock_tool *bv_lockfile_upsert(struct bv_lockfile *lock, const char *tool_id);
/* Removes the entry of `tool_id`; BV_ENOTFOUND (without an error message) when absent. */
int bv_lockfile_remove(struct bv_lockfile *lock, const char *tool_id);

/* Appends a layer with empty strings, size 0 and no conda package; returns it. */
struct bv_lock_layer *bv_lock_tool_add_layer(struct bv_lock_tool *tool);
/* Drops every layer of `tool` (before recording the layers of a newly pulled image). */
void bv_lock_tool_clear_layers(struct bv_lock_tool *tool);
/* The pin of `key`, created (in sorted position, empty strings) when absent. */
struct bv_lock_data_pin *bv_lock_tool_set_pin(struct bv_lock_tool *tool, const char *key);

/*
 * Rebuilds `binary_index` from every tool's `binaries`.  Override i routes
 * override_binaries[i] to override_tools[i] (bv.toml's [binary_overrides]).  Two tools
 * exposing one binary without an override, an override naming a tool that is not locked or
 * one that does not provide the binary, and an override for a binary no tool exposes are
 * BV_EINVALID errors; the index is then left unchanged.
 */
int bv_lockfile_rebuild_binary_index(struct bv_lockfile *lock, const char *const *override_binaries,
				     const char *const *override_tools, size_t n_overrides,
				     struct bv_error **err);

/*
 * Appends one readable line to `lines` for each difference that `bv lock --check` cares
 * about, in tool order and then for the binary index:
 *   "+ samtools 1.21.0 (new)", "- bwa 0.7.18 (removed)",
 *   "~ samtools: version 1.20.0 -> 1.21.0", "~ samtools: image digest sha256:abc… -> …",
 *   "~ samtools: manifest changed", "~ samtools: layer count 2 -> 3",
 *   "~ samtools: layer[1] (htslib@1.21) digest … -> …", "~ samtools: binaries [a, b] -> [a]",
 *   "~ binary index: view: samtools -> htslib".
 * Ignored: generated_at, resolved_at, sizes, declared_version_req, bv_version, a manifest
 * digest that is empty on either side, the order of binaries, and layer details other than
 * the digest.  Also compared: spec_kind, image_reference and the data pins.
 */
void bv_lockfile_diff(const struct bv_lockfile *old, const struct bv_lockfile *new,
		      struct bv_strv *lines);
/* True when bv_lockfile_diff() finds nothing. */
bool bv_lockfile_equivalent(const struct bv_lockfile *a, const struct bv_lockfile *b);

/* 0 when `digest` is "sha256:" and 64 lowercase hex digits, BV_EINVALID otherwise. */
int bv_lockfile_validate_digest(const char *digest);

#endif
