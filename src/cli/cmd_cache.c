/*
 * bv cache size|list|verify|prune [--dry-run]: the content-addressed store and unpacked trees.
 */
#include <bv/apptainer.h>
#include <bv/data.h>
#include <bv/docker.h>
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/retain.h>
#include <bv/squashfs.h>
#include <bv/store.h>
#include <bv/unpack.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_dry_run;
static bool arg_fast;
static bool arg_yes;
static bool arg_all;
static unsigned arg_keep_recent = UINT_MAX; /* UINT_MAX: not given */

/*
 * What the cache holds on disk, as du counts it: the store's blobs, then each other top-level
 * directory (unpacked layers, image trees hard-linked from them and counted once, datasets,
 * SIF files, registry clones, tool caches).
 */
static char *node_local_dir(void);

static int cache_size(struct bv_store *s)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL, *local = node_local_dir();
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT, paths = BV_STRV_INIT;
	_cleanup_free_ int64_t *bytes = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int64_t blob_bytes = 0, total = 0;
	size_t blobs = 0;
	char human[32];
	if (bv_store_usage(&blob_bytes, &blobs, s, &err) < 0 || bv_cache_dir(&cache, &err) < 0)
		return bv_cli_report(err);
	d = opendir(cache);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			bv_strv_push(&names, de->d_name);
	bv_strv_sort(&names);
	/* the layers before the image trees, so that shared inodes count as layers */
	bv_strv_foreach (name, &names)
		bv_strv_push_take(&paths, bv_path_join(cache, *name));
	bytes = bv_xcalloc(paths.n + 1, sizeof(*bytes));
	if (bv_disk_usage(bytes, (const char *const *)paths.v, &err) < 0)
		return bv_cli_report(err);
	for (size_t i = 0; i < paths.n; i++)
		total += bytes[i];
	bv_cli_format_size(human, sizeof(human), total);
	printf("%s on disk at %s\n", human, bv_cli_text(cache));
	for (size_t i = 0; i < names.n; i++) {
		bv_cli_format_size(human, sizeof(human), bytes[i]);
		printf("  %-12s %10s", bv_cli_text(names.v[i]), human);
		if (!strcmp(names.v[i], "store")) {
			bv_cli_format_size(human, sizeof(human), blob_bytes);
			printf("  (%zu blobs, %s of content)", blobs, human);
		} else if (!strcmp(names.v[i], "rootfs")) {
			printf("  (beyond the layers it links to)");
		}
		putchar('\n');
	}
	if (local) {
		int64_t local_bytes = 0;
		const char *const one[] = {local, NULL};
		if (bv_disk_usage(&local_bytes, one, &err) < 0)
			return bv_cli_report(err);
		bv_cli_format_size(human, sizeof(human), local_bytes);
		printf("%s on this node at %s (node-local trees)\n", human, bv_cli_text(local));
	}
	return BV_EXIT_OK;
}

static int cache_list(struct bv_store *s)
{
	struct bv_error *err = NULL;
	struct bv_store_image *images = NULL;
	size_t n = 0;
	if (bv_store_list_images(&images, &n, s, &err) < 0)
		return bv_cli_report(err);
	for (size_t i = 0; i < n; i++) {
		char human[32];
		if (images[i].content_size >= 0)
			bv_cli_format_size(human, sizeof(human), images[i].content_size);
		else
			(void)snprintf(human, sizeof(human), "-");
		/* the digest bv.lock pins, not the OCI copy kept for a Docker v2 manifest */
		printf("%-60s %.19s %10s\n", bv_cli_text(images[i].ref_name),
		       images[i].pinned_digest, human);
	}
	bv_store_images_free(images, n);
	return BV_EXIT_OK;
}

/* The manifest copies bv run reads (bv/runplan.h) must hash to their names; a bad one is
 * removed, and the next run reads the registry's copy again. */
static void verify_manifest_copies(struct bv_strv *problems)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL, *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		return;
	}
	dir = bv_path_join(cache, "manifests");
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
		char digest[72];
		if (!bv_str_has_suffix(de->d_name, ".toml") || strlen(de->d_name) != 69)
			continue;
		path = bv_path_join(dir, de->d_name);
		if (bv_buf_read_file(&text, path, 1u << 20, &err) < 0) {
			bv_error_free(err);
			err = NULL;
			continue;
		}
		bv_manifest_text_digest(digest, text.buf, text.len);
		if (strncmp(digest + 7, de->d_name, 64) != 0) {
			bv_strv_pushf(problems, "manifest copy %s is corrupt (removed)", path);
			(void)unlink(path);
		}
	}
}

/* Apptainer's SIF files against the records made when they were pulled. */
static void verify_sifs(struct bv_strv *problems)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	if (bv_cache_dir(&cache, &err) < 0 || bv_apptainer_verify(problems, NULL, cache, &err) < 0)
		bv_error_free(err);
}

/* The squashfs images of image_mode "squashfs" against their records, hashed in full. */
static void verify_squashfs(struct bv_strv *problems)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	if (bv_cache_dir(&cache, &err) < 0 || bv_squashfs_verify(problems, cache, &err) < 0) {
		_cleanup_free_ char *msg = bv_error_format(err);
		bv_strv_pushf(problems, "%s", msg);
		bv_error_free(err);
	}
}

/*
 * Every unpacked tree against its seal (bv/unpack.h).  A damaged one loses its seal, so the
 * next `bv sync` (or run) unpacks it again from the verified blobs.
 */
static void verify_trees_in(const char *cache, struct bv_strv *problems)
{
	static const char *const kinds[] = {"layers", "rootfs"};
	struct bv_error *err = NULL;
	for (size_t k = 0; k < BV_ARRAY_SIZE(kinds); k++) {
		_cleanup_free_ char *dir = bv_path_join(cache, kinds[k]);
		_cleanup_closedir_ DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			_cleanup_free_ char *path = NULL, *problem = NULL;
			struct stat st;
			int r;
			if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
				continue; /* .json, .seal, .lease and .tmp-<pid> go with their tree
					   */
			path = bv_path_join(dir, de->d_name);
			if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			r = bv_unpack_verify(&problem, path, arg_fast, true, &err);
			if (r < 0) {
				_cleanup_free_ char *msg = bv_error_format(err);
				bv_error_free(err);
				err = NULL;
				bv_strv_pushf(problems, "%s", msg);
			} else if (r == 0) {
				bv_strv_pushf(
					problems,
					"%s is damaged: %s (run 'bv sync' to unpack it again)",
					path, problem);
			}
		}
	}
}

/* This node's scratch trees (local_dir mode, bv/paths.h); NULL when it has none. */
static char *node_local_dir(void)
{
	struct bv_error *err = NULL;
	char *dir = NULL;
	if (bv_local_dir(&dir, &err) < 0) {
		bv_error_free(err);
		return NULL;
	}
	if (!bv_path_exists(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static void verify_trees(struct bv_strv *problems)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL, *local = node_local_dir();
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		return;
	}
	verify_trees_in(cache, problems);
	if (local)
		verify_trees_in(local, problems);
}

static int cache_verify(struct bv_store *s)
{
	struct bv_error *err = NULL;
	struct bv_strv problems = BV_STRV_INIT;
	int r = BV_EXIT_OK;
	if (bv_store_verify(s, &problems, &err) < 0)
		return bv_cli_report(err);
	verify_manifest_copies(&problems);
	verify_sifs(&problems);
	verify_squashfs(&problems);
	verify_trees(&problems);
	bv_strv_foreach (p, &problems)
		printf("%s\n", bv_cli_text(*p));
	if (problems.n) {
		bv_cli_error("the store has %zu problem%s", problems.n, problems.n == 1 ? "" : "s");
		r = BV_EXIT_FAILURE;
	} else {
		bv_cli_status("The store is intact\n");
	}
	bv_strv_clear(&problems);
	return r;
}

/*
 * The image digests the locks of known projects pin: every project registered in the cache
 * (bv/retain.h), this project, and those in BV_KNOWN_PROJECTS.
 */
static int known_digests(const char *cache, struct bv_strv *keep, struct bv_strv *keep_data,
			 size_t *projects)
{
	struct bv_strv roots = BV_STRV_INIT;
	struct bv_error *err = NULL;
	char *here = NULL;
	const char *env = getenv("BV_KNOWN_PROJECTS");
	int r = 0;
	if (bv_retain_projects(cache, &roots, &err) < 0) {
		bv_strv_clear(&roots);
		return bv_cli_report(err);
	}
	if (bv_project_find(&here, NULL, NULL) == 0 && !bv_strv_contains(&roots, here))
		bv_strv_push_take(&roots, here);
	else
		free(here);
	if (env && *env) {
		char *copy = bv_xstrdup(env), *save = NULL;
		for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
			if (!bv_strv_contains(&roots, dir))
				bv_strv_push(&roots, dir);
		free(copy);
	}
	*projects = 0;
	bv_strv_foreach (root, &roots) {
		_cleanup_free_ char *path = bv_path_join(*root, "bv.lock");
		struct bv_lockfile *lock = NULL;
		r = bv_lockfile_load(&lock, path, &err);
		if (r == BV_ENOTFOUND) {
			bv_error_free(err);
			err = NULL;
			r = 0;
			continue;
		}
		if (r < 0) {
			r = bv_cli_report(err);
			break;
		}
		for (size_t i = 0; i < lock->n_tools; i++) {
			if (lock->tools[i].image_digest[0])
				bv_strv_push(keep, lock->tools[i].image_digest);
			for (size_t k = 0; k < lock->tools[i].n_pins; k++)
				bv_strv_pushf(keep_data, "%s@%s", lock->tools[i].pins[k].id,
					      lock->tools[i].pins[k].version);
		}
		bv_lockfile_free(lock);
		(*projects)++;
	}
	bv_strv_clear(&roots);
	return r;
}

/*
 * Removes unpacked trees whose image or layer is no longer wanted.  A root filesystem that a
 * running tool holds a lease on (bv/retain.h) is kept, with a note, in a dry run too.
 */
static void prune_trees(const char *dir, const struct bv_strv *keep, bool by_image,
			const struct bv_store *s, size_t *removed, size_t *busy)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char digest[80];
		bool wanted;
		_cleanup_free_ char *path = NULL;
		int claim = -1, claimed = 1;
		struct stat st;
		bool is_file = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISREG(st.st_mode);
		if (de->d_name[0] == '.' || strlen(de->d_name) < 64 ||
		    bv_str_has_suffix(de->d_name, ".lease") ||
		    bv_str_has_suffix(de->d_name, ".seal") ||
		    bv_str_has_suffix(de->d_name, ".lock"))
			continue;
		(void)snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
		wanted = by_image ? bv_strv_contains(keep, digest) : bv_store_has_blob(s, digest);
		if (wanted)
			continue;
		path = bv_path_join(dir, de->d_name);
		/* a root filesystem, or a squashfs image (whose runs lease "<image>.lease") */
		if (by_image && (!is_file || bv_str_has_suffix(de->d_name, ".sqfs"))) {
			struct bv_error *err = NULL;
			claimed = bv_retain_claim(&claim, path, &err);
			if (claimed < 0) {
				_cleanup_free_ char *msg = bv_error_format(err);
				bv_error_free(err);
				bv_cli_warning("%s; keeping it", msg);
				continue;
			}
			if (!claimed) {
				(*busy)++;
				printf("keeping %s (a running tool is using it)\n",
				       bv_cli_text(path));
				continue;
			}
		}
		(*removed)++;
		if (arg_dry_run) {
			printf("would remove %s\n", bv_cli_text(path));
		} else if (is_file) {
			/*
			 * An image's saved config (bv_install_config_path) goes with its rootfs; a
			 * squashfs image with its record and any staging file of a killed build.
			 */
			(void)unlink(path);
		} else {
			(void)bv_unpack_remove_tree(path, NULL);
		}
		if (claim >= 0) {
			if (arg_dry_run)
				close(claim);
			else
				bv_retain_unclaim(path, claim);
		}
	}
}

/* Reference data no known project pins (bv.lock's reference_data_pins), as images. */
static void prune_data(const struct bv_strv *keep, size_t *removed, int64_t *freed)
{
	struct bv_data_entry *e = NULL;
	struct bv_error *err = NULL;
	size_t n = 0;
	if (bv_data_list(&e, &n, NULL, &err) < 0) {
		_cleanup_free_ char *msg = bv_error_format(err);
		bv_error_free(err);
		bv_cli_warning("%s; keeping the reference data", msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *spec = bv_xasprintf("%s@%s", e[i].id, e[i].version);
		size_t gone = 0;
		if (bv_strv_contains(keep, spec))
			continue;
		if (arg_dry_run) {
			printf("would remove %s\n", bv_cli_text(e[i].path));
		} else if (bv_data_remove(&gone, NULL, e[i].id, e[i].version, &err) < 0) {
			_cleanup_free_ char *msg = bv_error_format(err);
			bv_error_free(err);
			err = NULL;
			bv_cli_warning("%s", msg);
			continue;
		} else {
			printf("removed %s\n", bv_cli_text(e[i].path));
		}
		(*removed)++;
		*freed += e[i].size;
	}
	bv_data_entries_free(e, n);
}

/* When image `digest` was last used: its root filesystem's mtime, else its manifest blob's. */
static time_t last_used(const char *cache, const struct bv_store *s,
			const struct bv_store_image *img)
{
	_cleanup_free_ char *dir = bv_path_join(cache, "rootfs");
	_cleanup_free_ char *blob = bv_store_blob_path(s, img->digest);
	_cleanup_closedir_ DIR *d = opendir(dir);
	const char *hex = strchr(img->pinned_digest, ':');
	struct dirent *de;
	struct stat st;
	time_t t = 0;
	while (hex && d && (de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		if (strncmp(de->d_name, hex + 1, 64) != 0 || strchr(de->d_name, '.'))
			continue;
		path = bv_path_join(dir, de->d_name);
		if (stat(path, &st) == 0 && st.st_mtime > t)
			t = st.st_mtime;
	}
	if (!t && blob && stat(blob, &st) == 0)
		t = st.st_mtime;
	return t;
}

/* The tool an image belongs to: its name without tag or digest. */
static char *repository_of(const char *ref_name)
{
	const char *slash = strrchr(ref_name, '/'), *end = strchr(ref_name, '@');
	const char *colon = strrchr(slash ? slash : ref_name, ':');
	if (!end || (colon && colon < end))
		end = colon;
	return end ? bv_xstrndup(ref_name, (size_t)(end - ref_name)) : bv_xstrdup(ref_name);
}

/*
 * --keep-recent N: adds to `keep` the N most recently used images of each tool that no
 * project pins, so going back to an older version does not mean a new download.
 */
static int keep_recent(struct bv_strv *keep, const char *cache, const struct bv_store *s,
		       unsigned n)
{
	struct bv_store_image *images = NULL;
	struct bv_error *err = NULL;
	size_t count = 0;
	_cleanup_free_ time_t *used = NULL;
	_cleanup_free_ bool *done = NULL;
	if (bv_store_list_images(&images, &count, s, &err) < 0)
		return bv_cli_report(err);
	used = bv_xcalloc(count + 1, sizeof(*used));
	done = bv_xcalloc(count + 1, sizeof(*done));
	for (size_t i = 0; i < count; i++) {
		done[i] = bv_strv_contains(keep, images[i].pinned_digest) ||
			  bv_strv_contains(keep, images[i].digest);
		used[i] = last_used(cache, s, &images[i]);
	}
	for (size_t i = 0; i < count; i++) {
		_cleanup_free_ char *repo = repository_of(images[i].ref_name);
		for (unsigned kept = 0; kept < n; kept++) {
			size_t best = SIZE_MAX;
			for (size_t j = i; j < count; j++) {
				_cleanup_free_ char *other = NULL;
				if (done[j])
					continue;
				other = repository_of(images[j].ref_name);
				if (strcmp(other, repo) == 0 &&
				    (best == SIZE_MAX || used[j] > used[best]))
					best = j;
			}
			if (best == SIZE_MAX)
				break;
			done[best] = true;
			bv_strv_push(keep, images[best].pinned_digest);
			if (strcmp(images[best].digest, images[best].pinned_digest))
				bv_strv_push(keep, images[best].digest);
		}
	}
	bv_store_images_free(images, count);
	return 0;
}

/*
 * The Docker images bv pulled (bv/docker.h) that nothing keeps.  No engine is not an error:
 * the note says what stayed.
 */
static void prune_owned(const char *cache, const struct bv_strv *keep, size_t *removed)
{
	struct bv_strv gone = BV_STRV_INIT, kept = BV_STRV_INIT;
	struct bv_error *err = NULL;
	int r = bv_docker_owned_prune(&gone, &kept, cache, (const char *const *)keep->v, keep->n,
				      arg_dry_run, &err);
	if (r < 0) {
		_cleanup_free_ char *msg = bv_error_format(err);
		bv_error_free(err);
		bv_cli_warning("%s; keeping the Docker images", msg);
	} else if (r == 1) {
		bv_cli_status(
			"note: no Docker engine answers; the images bv pulled into it stay\n");
	}
	bv_strv_foreach (ref, &gone)
		printf("%s Docker image %s\n", arg_dry_run ? "would remove" : "removed",
		       bv_cli_text(*ref));
	bv_strv_foreach (why, &kept)
		bv_cli_warning("keeping Docker image %s", *why);
	*removed = gone.n;
	bv_strv_clear(&gone);
	bv_strv_clear(&kept);
}

/*
 * prune, or with `everything` (bv cache clean) the same walk with nothing kept, then the SIF
 * files, saved manifests and registry clones.  Files in the store and the unpacked trees are
 * read-only, which defeats a plain rm -rf by their owner: bv makes them writable as it goes.
 * Trees a running tool holds are kept, and a store that another bv is using is refused.
 */
static int clean_rest(const char *cache)
{
	/* manifests.tiers is derived from manifests/ and goes with it */
	static const char *const paths[] = {"sif", "manifests", "manifests.tiers", "index"};
	for (size_t i = 0; i < BV_ARRAY_SIZE(paths); i++) {
		_cleanup_free_ char *path = bv_path_join(cache, paths[i]);
		struct bv_error *err = NULL;
		if (!bv_path_exists(path))
			continue;
		if (arg_dry_run) {
			printf("would remove %s\n", bv_cli_text(path));
			continue;
		}
		if (bv_rm_rf(path, &err) < 0)
			return bv_cli_report(err);
		printf("removed %s\n", bv_cli_text(path));
	}
	return 0;
}

static int cache_prune(struct bv_store *s, bool everything, size_t *count_out)
{
	struct bv_error *err = NULL;
	struct bv_strv keep = BV_STRV_INIT, removed = BV_STRV_INIT, keep_data = BV_STRV_INIT;
	int64_t data_freed = 0;
	size_t datasets = 0, engine_images = 0;
	struct bv_strv no_keep = BV_STRV_INIT;
	const struct bv_strv *images_keep = &keep;
	char data_human[32];
	_cleanup_free_ char *cache = NULL, *rootfs = NULL, *layers = NULL;
	_cleanup_free_ char *local = node_local_dir();
	int64_t freed = 0;
	size_t projects = 0, trees = 0, busy = 0;
	char human[32];
	int r = 0;
	if (bv_cache_dir(&cache, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	r = everything ? 0 : known_digests(cache, &keep, &keep_data, &projects);
	if (r)
		goto out;
	/* --all: every image goes, as with clean; datasets still follow the projects' pins */
	if (arg_all)
		images_keep = &no_keep;
	else if (!everything && arg_keep_recent != UINT_MAX && projects &&
		 (r = keep_recent(&keep, cache, s, arg_keep_recent)))
		goto out;
	if (!projects && !everything && !arg_all) {
		bv_cli_error("no project is known, so everything would look unused");
		bv_cli_hint(
			"run 'bv cache prune' inside a project, or list projects in BV_KNOWN_PROJECTS");
		r = BV_EXIT_FAILURE;
		goto out;
	}
	if (bv_store_gc(s, (const char *const *)images_keep->v, images_keep->n, arg_dry_run,
			&removed, &freed, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	rootfs = bv_path_join(cache, "rootfs");
	layers = bv_path_join(cache, "layers");
	prune_trees(rootfs, images_keep, true, s, &trees, &busy);
	prune_trees(layers, images_keep, false, s, &trees, &busy);
	{
		_cleanup_free_ char *sq = bv_path_join(cache, "squashfs");
		prune_trees(sq, images_keep, true, s, &trees, &busy);
	}
	if (local) { /* this node's scratch trees; other nodes prune their own */
		_cleanup_free_ char *lr = bv_path_join(local, "rootfs");
		_cleanup_free_ char *ll = bv_path_join(local, "layers");
		prune_trees(lr, images_keep, true, s, &trees, &busy);
		prune_trees(ll, images_keep, false, s, &trees, &busy);
	}
	if (!arg_all || projects)
		prune_data(&keep_data, &datasets, &data_freed);
	/* clean is about bv's own files; the engine's images stay recorded for a later prune */
	if (!everything)
		prune_owned(cache, images_keep, &engine_images);
	if (everything && (r = clean_rest(cache)))
		goto out;
	bv_strv_foreach (line, &removed)
		printf("%s %s\n", arg_dry_run ? "would remove" : "removed", bv_cli_text(*line));
	bv_cli_format_size(human, sizeof(human), freed);
	bv_cli_format_size(data_human, sizeof(data_human), data_freed);
	bv_cli_status("%s %zu blobs (%s), %zu unpacked trees and %zu datasets (%s)",
		      arg_dry_run ? "Would remove" : "Removed", removed.n, human, trees, datasets,
		      data_human);
	if (engine_images)
		bv_cli_status(", %zu Docker image%s", engine_images, engine_images == 1 ? "" : "s");
	if (count_out)
		*count_out = removed.n + trees + datasets + engine_images;
	if (everything || (arg_all && !projects))
		bv_cli_status("%s\n", busy ? "; kept the trees running tools use" : "");
	else if (arg_all)
		bv_cli_status("; kept the reference data %zu project%s use\n", projects,
			      projects == 1 ? "" : "s");
	else
		bv_cli_status("; kept what %zu project%s use\n", projects,
			      projects == 1 ? "" : "s");
	r = BV_EXIT_OK;
out:
	bv_strv_clear(&keep);
	bv_strv_clear(&keep_data);
	bv_strv_clear(&removed);
	bv_strv_clear(&no_keep);
	return r;
}

/*
 * prune on a terminal without --yes: the dry run first, then a question when something
 * would go.  Without a terminal (scripts, CI) it goes ahead, as it always did.
 */
static int cache_prune_asking(struct bv_store *s)
{
	size_t count = 0;
	int r;
	if (arg_yes || arg_dry_run || isatty(STDIN_FILENO) != 1 || isatty(STDERR_FILENO) != 1)
		return cache_prune(s, false, NULL);
	arg_dry_run = true;
	r = cache_prune(s, false, &count);
	arg_dry_run = false;
	if (r || !count)
		return r;
	if (!bv_cli_confirm("Remove them?")) {
		bv_cli_status("Nothing removed\n");
		return BV_EXIT_OK;
	}
	return cache_prune(s, false, NULL);
}

static int run_cache(int argc, char **argv)
{
	struct bv_store *s = NULL;
	struct bv_error *err = NULL;
	const char *what;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_cache, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	what = argv[first];
	if (strcmp(what, "size") && strcmp(what, "list") && strcmp(what, "verify") &&
	    strcmp(what, "prune") && strcmp(what, "clean")) {
		bv_cli_error(
			"unknown cache command '%s'; expected size, list, verify, prune or clean",
			what);
		return BV_EXIT_USAGE;
	}
	if (arg_fast && strcmp(what, "verify")) {
		bv_cli_error("--fast only applies to 'bv cache verify'");
		return BV_EXIT_USAGE;
	}
	if ((arg_all || arg_keep_recent != UINT_MAX) && strcmp(what, "prune")) {
		bv_cli_error("--all and --keep-recent only apply to 'bv cache prune'");
		return BV_EXIT_USAGE;
	}
	if (arg_all && arg_keep_recent != UINT_MAX) {
		bv_cli_error("--all removes every image; --keep-recent cannot keep any with it");
		return BV_EXIT_USAGE;
	}
	if (arg_dry_run && strcmp(what, "prune") && strcmp(what, "clean")) {
		bv_cli_error("--dry-run only applies to 'bv cache prune' and 'bv cache clean'");
		return BV_EXIT_USAGE;
	}
	if (bv_store_open(&s, NULL, &err) < 0)
		return bv_cli_report(err);
	if (!strcmp(what, "size"))
		r = cache_size(s);
	else if (!strcmp(what, "list"))
		r = cache_list(s);
	else if (!strcmp(what, "verify"))
		r = cache_verify(s);
	else if (!strcmp(what, "prune"))
		r = cache_prune_asking(s);
	else
		r = cache_prune(s, true, NULL);
	bv_store_free(s);
	return r;
}

static const struct bv_cli_option cache_options[] = {
	{"dry-run", 'n', BV_OPT_FLAG, &arg_dry_run, NULL, "with prune: show what would be removed"},
	{"yes", 'y', BV_OPT_FLAG, &arg_yes, NULL,
	 "with prune: do not ask on a terminal before removing"},
	{"all", 0, BV_OPT_FLAG, &arg_all, NULL,
	 "with prune: remove every image, pinned or not (reference data still follows the pins)"},
	{"keep-recent", 0, BV_OPT_UINT, &arg_keep_recent, "N",
	 "with prune: keep the N most recently used unpinned images of each tool"},
	{"fast", 0, BV_OPT_FLAG, &arg_fast, NULL,
	 "with verify: check unpacked trees' names, modes and sizes, not their contents"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

static const struct bv_cli_subcommand cache_subcommands[] = {
	{"size", BV_OPERANDS_NONE},  {"list", BV_OPERANDS_NONE},  {"verify", BV_OPERANDS_NONE},
	{"prune", BV_OPERANDS_NONE}, {"clean", BV_OPERANDS_NONE}, {NULL, BV_OPERANDS_NONE},
};

const struct bv_cli_command bv_cmd_cache = {
	.name = "cache",
	.usage = "size|list|verify [--fast]|prune [--dry-run] [-y] [--all | --keep-recent N]|clean "
		 "[--dry-run]",
	.summary = "inspect, verify and prune the image store",
	.description =
		"size: what the cache uses on disk, by directory.  list: the images it holds.  verify: re-hashes\nevery blob, checks every image is complete and every unpacked tree against its seal (a\ndamaged tree is unpacked again by the next sync).  prune: removes what no known project's\nbv.lock pins (every project bv has added, synced or locked with this cache, this project,\nand those in BV_KNOWN_PROJECTS, colon-separated) and no running tool uses, and the Docker\nimages bv pulled that no project pins (never images it did not pull); on a terminal it\nasks first (-y: do not).  --all removes every image; --keep-recent N keeps the N most\nrecently used unpinned images of each tool.  clean:\nremoves every image, unpacked tree, dataset, SIF and registry clone (not the tool\ncaches), which rm -rf cannot do to bv's read-only files; trees in use are kept.",
	.options = cache_options,
	.run = run_cache,
	.subcommands = cache_subcommands,
};
