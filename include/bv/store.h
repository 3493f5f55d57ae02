/*
 * bv/store.h - bv's content-addressed blob store, laid out as an OCI image layout.
 *
 * Calling sequence (a pull, as the registry client does it):
 *   struct bv_store *s = NULL;
 *   if (bv_store_open(&s, NULL, &err) < 0) ...            <cache>/store, created if missing
 *   if (!bv_store_has_blob(s, layer_digest)) {
 *           struct bv_store_ingest *in = NULL;
 *           r = bv_store_ingest_begin(&in, s, layer_digest, layer_size, &err);
 *           if (r == BV_EEXISTS) ...                   another process is fetching it: wait
 *           off = bv_store_ingest_offset(in);          > 0: resume with "Range: bytes=off-"
 *           for each chunk: bv_store_ingest_write(in, chunk, n, &err);
 *           (server ignored Range: bv_store_ingest_reset(in, &err), then write from byte 0)
 *           r = bv_store_ingest_commit(in, &err);      verified and published, or an error
 *           (on a network error: bv_store_ingest_abort(in, true) keeps the bytes for later)
 *   }
 *   bv_store_put_blob(NULL, s, config_json, len, config_digest, &err);
 *   bv_store_put_blob(NULL, s, manifest_json, len, manifest_digest, &err);
 *   bv_store_add_image(s, ref_name, manifest_digest, media_type, manifest_size, &err);
 *   bv_store_free(s);
 *
 * Layout (<store> is <cache>/store by default), readable by skopeo and umoci as
 * "oci:<store>:<ref_name>" and "<store>:<ref_name>":
 *   oci-layout                {"imageLayoutVersion":"1.0.0"}
 *   index.json                OCI image index; one manifest descriptor per image bv added,
 *                             annotated with org.opencontainers.image.ref.name (a name in the
 *                             OCI ref.name grammar, see bv_store_ref_name()) and dev.bv.digest
 *                             (the manifest digest bv pinned; other tools may rewrite a
 *                             descriptor, the annotation says what bv meant)
 *   blobs/sha256/<hex>        every blob, named by the sha256 of its bytes, mode 0444
 *   tmp/                      partial downloads (<hex>.partial) and temporary files
 *   locks/                    gc.lock, index.lock and one <hex>.lock per blob being ingested
 * The OCI tools ignore tmp/ and locks/.
 *
 * Crash safety.  A blob is published only by rename(2) of a file that has been written in
 * full, fsync'ed and verified against its digest, followed by an fsync of blobs/sha256.  So a
 * kill -9 or a power cut at any instant leaves under blobs/ either nothing for that digest or
 * the complete verified blob: existence of blobs/sha256/<hex> is the commit marker, and
 * bv_store_has_blob() trusts it without hashing.  Everything in between lives in tmp/: a
 * partial file survives a crash and is resumed (its bytes are re-hashed on reopen, so the
 * running digest always covers exactly what is on disk; bytes damaged by a power cut fail the
 * final verification, which deletes the partial).  index.json is only ever replaced whole
 * (bv_write_file_atomic()); a crash can leave an ".index.json.XXXXXX" temporary next to it,
 * which the OCI tools ignore and bv_store_clean_tmp() removes.
 *
 * Concurrency (several processes, possibly on several machines sharing the store over NFS).
 * All locks are OFD locks (util/lock.h), which NFS forwards to the server and which the
 * kernel drops when a process dies, so no lock outlives its holder.
 * - Ingesting a blob holds locks/<hex>.lock exclusively, so one process writes a given partial
 *   file at a time; a second one gets BV_EEXISTS and can poll bv_store_has_blob() or skip.
 * - Publishing is a rename onto a content-addressed name: two processes publishing the same
 *   digest write identical bytes, and whichever rename wins, readers see a complete blob.
 * - index.json is read without a lock (it is replaced atomically) and modified only under an
 *   exclusive locks/index.lock: read, change, write, unlock.
 * - Every open store handle holds a shared lock on locks/gc.lock, and bv_store_gc() needs it
 *   exclusively (without waiting: BV_EEXISTS "in use by another bv process").  Reachability
 *   is only known to the caller, and a concurrent pull has fetched blobs before it adds its
 *   image, so a collector running alongside a pull would delete the pull's fresh layers.
 *   This also makes it safe for gc to delete per-blob lock files, which otherwise must stay
 *   (see util/lock.h).  Two handles in one process conflict like two processes.
 *
 * Digests: only "sha256:" followed by 64 lower-case hex digits is accepted, everywhere
 * (BV_EINVALID otherwise).  Besides rejecting algorithms bv cannot verify, this guarantees
 * that a digest from a registry never turns into a path outside blobs/sha256.
 *
 * Memory stays flat: ingest hashes as it writes, verify and gc hash files through a 64 KiB
 * buffer; only bv_store_put_blob() and bv_store_read_blob() hold a (small, bounded) blob.
 *
 * Ownership: a store owns its paths; bv_store_dir() is borrowed.  An ingest borrows its store,
 * which must outlive it.  bv_store_ingest_commit() and bv_store_ingest_abort() always consume
 * the ingest.  char * results are new strings; lists are appended to the caller's vectors;
 * bv_store_list_images() returns an array freed with bv_store_images_free().
 *
 * Errors: 0 or a negative enum bv_error_code with details in `err`; outputs are written only
 * on success.  BV_EINVALID for bad digests, names and blobs that fail verification (the
 * message names the blob), BV_ENOTFOUND for missing blobs and images, BV_EEXISTS for locks
 * held by another process.  Nothing here prints.
 */
#ifndef BV_STORE_H
#define BV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_buf;
struct bv_error;
struct bv_strv;
struct bv_store;
struct bv_store_ingest;

#define BV_STORE_REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define BV_STORE_DIGEST_ANNOTATION   "dev.bv.digest"

/* Partials and temporary files older than this are stale (clean_tmp, gc). */
#define BV_STORE_STALE_SECONDS 3600

/*
 * Whether `name` matches the OCI ref.name grammar: components of alphanumerics joined by one
 * of "-._:@+" or "--", separated by '/'.
 */
bool bv_store_ref_name_valid(const char *name);

/*
 * A ref.name for an image reference ("quay.io/biocontainers/samtools:1.21--h50ea8bc_0" is
 * already one and comes back unchanged): every other character becomes '-', runs of
 * separators shrink to their first character (except "--"), separators at the ends of a
 * component and empty components are dropped.  Never fails; "image" when nothing is left.
 */
char *bv_store_ref_name(const char *image_ref);

/*
 * Opens the store at `dir` (NULL: <cache>/store, see bv/paths.h), creating the layout when
 * parts of it are missing.  Creation is safe against concurrent openers: directories are
 * created idempotently, and oci-layout and index.json are written atomically (index.json
 * under the index lock, so an image added meanwhile is never overwritten).  A store on a
 * read-only file system opens for reading.
 */
int bv_store_open(struct bv_store **out, const char *dir, struct bv_error **err);
void bv_store_free(struct bv_store *s);
const char *bv_store_dir(const struct bv_store *s);

/* Whether the blob is published (false for an invalid digest). */
bool bv_store_has_blob(const struct bv_store *s, const char *digest);

/* The path blobs/sha256/<hex>, whether or not it exists; NULL for an invalid digest. */
char *bv_store_blob_path(const struct bv_store *s, const char *digest);

/*
 * Starts storing blob `digest` of `expected_size` bytes (-1: unknown) in tmp/<hex>.partial,
 * under an exclusive, non-blocking lock on locks/<hex>.lock: BV_EEXISTS when another process
 * (or another ingest in this one) holds it.  An existing partial is reopened and its bytes
 * re-hashed, so the download can resume at bv_store_ingest_offset(); a partial longer than
 * `expected_size` cannot be the blob's prefix and is truncated.  When the offset already
 * equals `expected_size`, commit without downloading.  Does not check whether the blob is
 * already published: ask bv_store_has_blob() first.
 */
int bv_store_ingest_begin(struct bv_store_ingest **out, struct bv_store *s, const char *digest,
			  int64_t expected_size, struct bv_error **err);

/* The number of bytes in the partial file: where the download continues. */
int64_t bv_store_ingest_offset(const struct bv_store_ingest *in);

/* The partial file being written, for a reader that follows it (borrowed). */
const char *bv_store_ingest_path(const struct bv_store_ingest *in);

/*
 * Appends `len` bytes and feeds them to the running sha256.  More bytes than `expected_size`
 * in total is BV_EINVALID and writes nothing.  After a failed write(2) (a full disk) the
 * ingest refuses further writes and commits; abort it (keeping the partial is fine: the next
 * begin re-hashes whatever reached the file).
 */
int bv_store_ingest_write(struct bv_store_ingest *in, const void *data, size_t len,
			  struct bv_error **err);

/* Truncates the partial to 0 bytes and restarts the hash (the server ignored Range). */
int bv_store_ingest_reset(struct bv_store_ingest *in, struct bv_error **err);

/*
 * Flushes the partial, checks its size and sha256 and publishes it as blobs/sha256/<hex>
 * (mode 0444, directory flushed).  A size or digest mismatch deletes the partial and returns
 * BV_EINVALID ("blob 'sha256:0123456789ab' failed verification: expected sha256:..., got
 * sha256:..."); other failures keep it for a retry.  Always releases the lock and frees `in`.
 */
int bv_store_ingest_commit(struct bv_store_ingest *in, struct bv_error **err);

/*
 * Gives up: keeps the partial for a later resume when `keep_partial`, else deletes it.
 * Releases the lock and frees `in`; accepts NULL.
 */
void bv_store_ingest_abort(struct bv_store_ingest *in, bool keep_partial);

/*
 * Stores a small blob held in memory (a manifest, a config).  With `expected_digest` the data
 * must hash to it (BV_EINVALID otherwise, nothing written); without, the digest is computed.
 * A blob already present is not rewritten.  *digest_out (may be NULL) gets "sha256:<hex>".
 */
int bv_store_put_blob(char **digest_out, struct bv_store *s, const void *data, size_t len,
		      const char *expected_digest, struct bv_error **err);

/*
 * Appends the blob to `out` after re-hashing it: BV_ENOTFOUND when absent, BV_EINVALID when
 * its bytes no longer match its name ("blob 'sha256:...' is corrupt ...") and BV_ERR (EFBIG)
 * when it is larger than `max`.
 */
int bv_store_read_blob(struct bv_buf *out, const struct bv_store *s, const char *digest, size_t max,
		       struct bv_error **err);

/* One manifest descriptor of index.json. */
struct bv_store_image {
	char *ref_name;       /* org.opencontainers.image.ref.name */
	char *digest;         /* the manifest (or index) digest */
	char *pinned_digest;  /* the registry's digest it was pulled by (bv.lock's); else digest */
	int64_t content_size; /* config + layers of a manifest; -1 for an index or unreadable */
	char *media_type;
	int64_t size;
};

/*
 * Records image `ref_name` (bv_store_ref_name_valid()) -> manifest in index.json, under the
 * index lock, replacing an entry with the same name; adding what is already there changes
 * nothing.  The manifest blob must be in the store (BV_ENOTFOUND) and be `size` bytes
 * (BV_EINVALID); `media_type` is one of the OCI or Docker manifest or index types.
 */
int bv_store_add_image(struct bv_store *s, const char *ref_name, const char *manifest_digest,
		       const char *media_type, int64_t size, struct bv_error **err);

/*
 * The same, for a manifest bv wrote itself from the registry's `source_digest` (a Docker
 * schema 2 manifest rewritten with OCI media types, so that OCI tools such as skopeo and umoci
 * can read the image): the descriptor names the new manifest and its "dev.bv.digest"
 * annotation the source, and bv_store_gc() keeps it for as long as the source is kept.
 */
int bv_store_add_image_as(struct bv_store *s, const char *ref_name, const char *manifest_digest,
			  const char *media_type, int64_t size, const char *source_digest,
			  struct bv_error **err);

/*
 * The images in index.json that have a ref.name, in file order (*out NULL when there are
 * none).  Descriptors other tools added without a name are kept in the file but not listed.
 */
int bv_store_list_images(struct bv_store_image **out, size_t *n_out, const struct bv_store *s,
			 struct bv_error **err);
void bv_store_images_free(struct bv_store_image *images, size_t n);

/* Drops image `ref_name` from index.json (BV_ENOTFOUND if absent); blobs stay until gc. */
int bv_store_remove_image(struct bv_store *s, const char *ref_name, struct bv_error **err);

/*
 * Checks the whole store and appends one line per problem to `problems`:
 *   "blob sha256:... is corrupt"                      its bytes hash to something else
 *   "unexpected file 'blobs/sha256/NAME'"             not named by a digest
 *   "image NAME: manifest sha256:... is missing"      also config and layer
 *   "image NAME: manifest sha256:... cannot be parsed: ..."
 * For an index (manifest list), the child manifests that are present are checked in turn; a
 * pull normally fetches one platform, so absent children are a problem only if all are.
 * Returns 0 whatever it finds; errors are failures to read the store itself.
 */
int bv_store_verify(struct bv_store *s, struct bv_strv *problems, struct bv_error **err);

/* Total apparent size and number of the published blobs. */
int bv_store_usage(int64_t *bytes_out, size_t *blobs_out, const struct bv_store *s,
		   struct bv_error **err);

/*
 * Removes every blob not reachable from `keep_manifest_digests` (through config, layers and
 * the children of indexes that are present), the index.json entries whose manifests are not
 * kept (first, so a crash never leaves an entry pointing at a deleted manifest), stale
 * partials (older than BV_STORE_STALE_SECONDS), other temporary files and per-blob lock
 * files.  Needs the store to itself (BV_EEXISTS otherwise, see above); a kept manifest that
 * is corrupt stops it (BV_EINVALID), since what it references is then unknown.  `removed`
 * (may be NULL) gets "sha256:<hex>" per blob and "tmp/NAME" per scratch file, *freed_bytes
 * (may be NULL) their sizes.  With `dry_run` nothing changes and no exclusive lock is taken.
 */
int bv_store_gc(struct bv_store *s, const char *const *keep_manifest_digests, size_t n_keep,
		bool dry_run, struct bv_strv *removed, int64_t *freed_bytes, struct bv_error **err);

/*
 * Removes scratch files older than BV_STORE_STALE_SECONDS: partials no ingest holds, other
 * files in tmp/ and index.json temporaries.  Safe while other processes use the store.
 * `removed` (may be NULL) gets "tmp/NAME" (or the root file's name) per file.
 */
int bv_store_clean_tmp(struct bv_store *s, struct bv_strv *removed, struct bv_error **err);

#endif
