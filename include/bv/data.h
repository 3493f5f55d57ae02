/*
 * bv/data.h - reference data: the datasets of a registry (data/<id>/<version>.toml, struct
 * bv_dataset) downloaded, checked and published into the cache, listed, verified and removed.
 *
 * Calling sequence (bv data fetch):
 *   struct bv_dataset *d;
 *   bv_data_resolve(&d, idx, "pdbaa@2024_01", &err);      newest version without "@"
 *   struct bv_data_mirrors *m;  bv_data_mirrors_load(&m, &err);
 *   struct bv_data_options o = {.jobs = 4, .mirrors = m, .progress = cb};
 *   enum bv_data_outcome out[n];
 *   bv_data_fetch(out, sets, n, &o, &err);
 *   bv_data_mirrors_free(m);  bv_dataset_free(d);
 * and bv_data_list(), bv_data_lookup(), bv_data_verify_local(), bv_data_remove() on the
 * cache, bv_data_check_remote() on the registry's servers (bv data verify).
 *
 * Cache layout:
 *   <cache>/data/<id>/<version>/        the dataset, read-only, published by one rename
 *   <cache>/data/<id>/<version>.json    its record: files, sizes, sha256, fetched_at
 *   <cache>/data/<id>/<version>.lock    the OFD lock held while it is fetched or removed
 *   <cache>/data/.tmp/<id>@<version>.XXXXXX/   staging (dl/ downloads, tree/ the dataset)
 * A dataset counts as present when both the directory and the record exist; a directory
 * without its record (a crash between the two renames) is removed and fetched again.
 *
 * Fetching: every source URL of every dataset is downloaded in one curl_multi loop with at
 * most `jobs` transfers at a time: https, ftp and ftps anywhere, plain http only to a loopback
 * host (also after a redirect, checked before the first byte is written).  Bytes are hashed
 * (SHA-256) as they arrive and written in large blocks; a transfer cut short resumes with
 * Range (REST for ftp) from where it stopped, and failures are retried with exponential
 * backoff.  The first URL is the primary file, checked against the manifest's size_bytes and
 * sha256; the others are sidecars (an index beside its .vcf.gz) kept beside it.  File names
 * come from the manifest's URLs (the last path component), never from the server
 * (Content-Disposition, redirects), and must be plain names.  post_download_action "extract"
 * unpacks the primary (tar, tar.gz/.bz2/.xz/.zst, zip) with the rules of layer unpacking plus
 * stricter ones for data (src/lib/oci/store/unpack-internal.h); "decompress" decompresses
 * each file that is compressed (gzip, bzip2, xz, zstd), dropping its suffix; "noop" keeps
 * the files.  Many processes fetching one dataset: one downloads, the others wait on its
 * lock and find it published.
 *
 * Mirrors: BV_DATA_MIRRORS="https://ftp.ncbi.nlm.nih.gov/=https://mirror.example/ncbi/,..."
 * and the [data] table of the mirrors file ($XDG_CONFIG_HOME/bv/mirrors.toml, the one of
 * bv/imageref.h), prefix = replacement; the longest matching prefix wins and an entry of the
 * environment replaces the file's entry for the same prefix.  File names still come from the
 * manifest's URL.
 *
 * Ownership: datasets, mirrors and options are borrowed; entries and results returned are
 * new, freed with their _free/_release function.  Strings in callbacks are borrowed for the
 * call.
 *
 * Errors: BV_EINVALID for a bad spec, URL, file name, archive, or a size or digest that does
 * not match (nothing is published then), BV_ENOTFOUND for an unknown dataset or one that is
 * not in the cache, BV_ERR for network and system failures.  Messages name the dataset:
 * "could not fetch pdbaa 2024_01: pdbaa.tar.gz: sha256 mismatch (...)".
 */
#ifndef BV_DATA_H
#define BV_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_dataset;
struct bv_error;
struct bv_index;

/* Parses "id" or "id@version" (both names as bv_valid_name); *version is NULL without '@'. */
int bv_data_spec_parse(char **id, char **version, const char *spec, struct bv_error **err);

/* The dataset "id[@version]" of the registry, the newest version without one. */
int bv_data_resolve(struct bv_dataset **out, const struct bv_index *idx, const char *spec,
		    struct bv_error **err);

/* Every dataset id the registry has, sorted (appended to a NULL-terminated new array). */
int bv_data_registry_ids(char ***out, size_t *n, const struct bv_index *idx, struct bv_error **err);

struct bv_data_mirrors;
int bv_data_mirrors_load(struct bv_data_mirrors **out, struct bv_error **err);
void bv_data_mirrors_free(struct bv_data_mirrors *m);

struct bv_data_progress {
	const char *id, *version;
	uint64_t bytes_done, bytes_total; /* bytes_total 0 when unknown */
	double rate;                      /* bytes per second over the whole fetch */
	bool finished;
};

struct bv_data_options {
	const char *cache_dir;                 /* NULL: bv_cache_dir() */
	unsigned jobs;                         /* transfers at once; 0: 4 */
	unsigned retries;                      /* attempts after the first; 0: 5 */
	unsigned backoff_ms;                   /* first retry delay; 0: 250 */
	const struct bv_data_mirrors *mirrors; /* NULL: none */
	void (*progress)(const struct bv_data_progress *p, void *payload);   /* about 10/s */
	void (*on_wait)(const char *id, const char *version, void *payload); /* once, after 1 s */
	void *payload;
};

enum bv_data_outcome {
	BV_DATA_FETCHED, /* downloaded and published by this call */
	BV_DATA_CACHED,  /* was in the cache already (or another process just fetched it) */
};

/* Fetches `n` datasets (see above); out[i] says what happened to sets[i]. */
int bv_data_fetch(enum bv_data_outcome *out, const struct bv_dataset *const *sets, size_t n,
		  const struct bv_data_options *o, struct bv_error **err);

/* One dataset in the cache, from its record. */
struct bv_data_entry {
	char *id, *version;
	char *path;   /* <cache>/data/<id>/<version> */
	int64_t size; /* bytes of its files */
	size_t n_files;
	char *sha256;     /* "sha256:..." of the primary file as downloaded */
	char *fetched_at; /* RFC 3339 */
	bool verified;    /* its primary file matched the sha256 the registry declared */
};
void bv_data_entry_release(struct bv_data_entry *e);
void bv_data_entries_free(struct bv_data_entry *e, size_t n);

/* Every dataset in the cache with a record, sorted by id then version. */
int bv_data_list(struct bv_data_entry **out, size_t *n, const char *cache_dir,
		 struct bv_error **err);

/* One dataset; BV_ENOTFOUND when it is not in the cache. */
int bv_data_lookup(struct bv_data_entry *out, const char *cache_dir, const char *id,
		   const char *version, struct bv_error **err);

/*
 * Re-hashes the files of a cached dataset against its record: 1 intact, 0 damaged with
 * *problem (new string) saying what differs.
 */
int bv_data_verify_local(char **problem, const char *cache_dir, const char *id, const char *version,
			 struct bv_error **err);

/*
 * Publishes a dataset brought by a bundle (bv/bundle.h): the tree `staged_dir` (moved, so on
 * the cache's file system) is hashed against `staged_record`, whose id, version and primary
 * sha256 must be bv.lock's (`sha256`, "" to skip), then renamed into place with the record,
 * under the dataset's lock.  Nothing is published on a mismatch (BV_EINVALID); a dataset
 * already in the cache is kept.
 */
int bv_data_import(const char *cache_dir, const char *id, const char *version, const char *sha256,
		   const char *staged_dir, const char *staged_record, struct bv_error **err);

/*
 * Removes `id` at `version` (NULL: every version) under its lock; *removed counts them.
 * BV_ENOTFOUND when nothing matched.
 */
int bv_data_remove(size_t *removed, const char *cache_dir, const char *id, const char *version,
		   struct bv_error **err);

enum bv_data_status {
	BV_DATA_PASS,     /* reachable, size within the tolerance (or not declared) */
	BV_DATA_MISMATCH, /* reachable, size differs by more than the tolerance */
	BV_DATA_FAIL,     /* unreachable or refused */
};

struct bv_data_check {
	enum bv_data_status status;
	int64_t declared, actual; /* -1 when unknown */
	char *detail;             /* why it failed, or NULL */
};
void bv_data_checks_free(struct bv_data_check *c, size_t n);

/*
 * Asks the server of each dataset's primary URL for its size: HEAD, falling back to a GET of
 * "Range: bytes=0-0" where HEAD is refused or says nothing; `tolerance` is the relative size
 * difference still counted as PASS.  out[i] (a new array of `n`) belongs to sets[i].
 */
int bv_data_check_remote(struct bv_data_check **out, const struct bv_dataset *const *sets, size_t n,
			 double tolerance, const struct bv_data_options *o, struct bv_error **err);

#endif
