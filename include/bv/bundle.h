/*
 * bv/bundle.h - air-gapped bundles: everything a bv.lock pins in one tar, and installing it
 * on a machine without network.
 *
 * Calling sequence (bv bundle -o FILE):
 *   struct bv_bundle_extra data[] = {{"bv/data/hg38/1.json", "<cache>/data/hg38/1.json"}, ...};
 *   if (bv_bundle_write(file, lock, project_root, data, n, &err) < 0) ...
 * and (bv sync --from FILE):
 *   struct bv_bundle *b;
 *   if (bv_bundle_open(&b, file, &err) < 0) ...          not a tar, bad names: refused here
 *   bv_bundle_lock_text(b), bv_bundle_toml_text(b)          the project it was made from
 *   if (bv_bundle_install(b, lock, staging, &err) < 0) ...  nothing published on an error
 *   bv_bundle_free(b);
 *
 * Layout of the tar (fixed order, mtime 0, owner 0:0, modes 0644/0755, so one bv.lock and
 * one store give the same bytes every time), readable by skopeo as "oci-archive:FILE:REF":
 *   oci-layout, index.json     one descriptor per image bv.lock pins, annotated with
 *                              org.opencontainers.image.ref.name (bv_store_ref_name() of the
 *                              lock's image reference) and dev.bv.digest (the lock's pin); a
 *                              Docker schema 2 pin is named through the OCI view the store
 *                              keeps of it, as in the store's own index.json
 *   blobs/sha256/<hex>         the pinned documents, the children of an index that the store
 *                              holds, configs and layers, sorted
 *   bv/bv.lock, bv/bv.toml     the project
 *   bv/manifests/<hex>.toml    the registry manifests the lock entries were made from
 *   bv/data/...                extras (reference data), as given to bv_bundle_write()
 *
 * Installing reads the tar twice: first every blob is hashed (and small JSON ones kept) and
 * every image bv.lock pins is checked complete (pinned document, this platform's manifest,
 * config and layers, matching the lock's layer list) from the bundle and the store; only then
 * are the blobs the store lacks copied into it (hashed again as the store publishes them),
 * the images recorded in the store's index.json and the manifest copies, checked against
 * manifest_sha256, kept in <cache>/manifests.  So a bad bundle publishes nothing, with one
 * blob's files open at a time however many it holds.  Entries under bv/data/
 * are copied to `staging` for the data layer to check and publish.
 *
 * Ownership: a bundle owns its texts (borrowed by the accessors); inputs are borrowed.
 *
 * Errors: BV_EINVALID for a file that is not a tar, an entry that escapes the archive root or
 * is not part of the layout, a blob whose bytes do not hash to its name (the message names
 * the blob) and a manifest copy that does not match bv.lock; BV_ENOTFOUND for a blob the lock
 * needs that is in neither the bundle nor the store (writing: "run 'bv sync' first").
 */
#ifndef BV_BUNDLE_H
#define BV_BUNDLE_H

#include <stddef.h>

struct bv_bundle;
struct bv_error;
struct bv_lockfile;

/* A file or directory tree of this machine, written under `name` in the bundle. */
struct bv_bundle_extra {
	const char *name; /* "bv/data/<id>/<version>" or "bv/data/<id>/<version>.json" */
	const char *path;
};

int bv_bundle_write(const char *out_path, const struct bv_lockfile *lock, const char *project_root,
		    const struct bv_bundle_extra *extras, size_t n_extras, struct bv_error **err);

int bv_bundle_open(struct bv_bundle **out, const char *path, struct bv_error **err);
void bv_bundle_free(struct bv_bundle *b);

/* bv/bv.lock and bv/bv.toml as stored (NUL-terminated), and their lengths. */
const char *bv_bundle_lock_text(const struct bv_bundle *b, size_t *len);
const char *bv_bundle_toml_text(const struct bv_bundle *b, size_t *len);
/* Whether the bundle holds entries under bv/data/. */
int bv_bundle_has_data(const struct bv_bundle *b);

/* `staging` (NULL: entries under bv/data/ are skipped) must be an empty directory. */
int bv_bundle_install(struct bv_bundle *b, const struct bv_lockfile *lock, const char *staging,
		      struct bv_error **err);

#endif
