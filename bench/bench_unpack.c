/*
 * bench_unpack: the unpack-only benchmark of `make bench` (scripts/bench-pull.sh).
 *
 *   bench_unpack [-n RUNS] [-w WORKDIR] NAME=LAYOUT:TAG...
 *
 * For each image, the manifest tagged TAG in the OCI image layout LAYOUT (its index.json
 * names it with org.opencontainers.image.ref.name) is read, then, RUNS times (default 5)
 * after one untimed warm-up, every layer blob is unpacked with bv_unpack_layer() into a fresh
 * layer tree and the image built from them with bv_unpack_image(), exactly as bv sync does
 * (src/lib/oci/install.c).  Only those two calls are timed; removing the trees and flushing their
 * writes (sync) happen between runs, untimed.  Prints one line per image on stdout:
 *
 *   unpack <NAME> <median ms>
 *
 * and, on stderr, the layer count and how many entries the root filesystem has, so that two
 * builds compared with BENCH_UNPACK_BASELINE can be seen to build the same tree.  WORKDIR
 * (default: $TMPDIR or /tmp) must be on a file system where hard links work.
 */
#include <bv/error.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/oci/store/unpack-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define MAX_RUNS 1000

struct image {
	const char *name;
	struct bv_strv blobs; /* paths of the layer blobs, lowest first */
	struct bv_strv media_types;
};

static int fail(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	fprintf(stderr, "bench_unpack: %s\n", msg);
	free(msg);
	bv_error_free(err);
	return 1;
}

static json_t *load_json(const char *path)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (!j)
		fprintf(stderr, "bench_unpack: %s: %s\n", path, jerr.text);
	return j;
}

static char *blob_path(const char *layout, const char *digest)
{
	const char *colon = strchr(digest, ':');
	if (!colon)
		return NULL;
	return bv_xasprintf("%s/blobs/%.*s/%s", layout, (int)(colon - digest), digest, colon + 1);
}

/* NAME=LAYOUT:TAG into `img`; the layout's path may itself hold colons, the tag cannot. */
static int load_image(const char *arg, struct image *img)
{
	const char *eq = strchr(arg, '=');
	const char *colon = strrchr(arg, ':');
	_cleanup_free_ char *name = NULL, *layout = NULL, *index_path = NULL;
	_cleanup_free_ char *manifest_path = NULL;
	json_t *index = NULL, *manifest = NULL, *m, *l;
	size_t i;
	int r = 1;

	if (!eq || !colon || colon < eq) {
		fprintf(stderr, "bench_unpack: expected NAME=LAYOUT:TAG, not '%s'\n", arg);
		return 1;
	}
	name = bv_xstrndup(arg, (size_t)(eq - arg));
	layout = bv_xstrndup(eq + 1, (size_t)(colon - eq - 1));
	index_path = bv_xasprintf("%s/index.json", layout);
	if (!(index = load_json(index_path)))
		return 1;
	json_array_foreach(json_object_get(index, "manifests"), i, m)
	{
		const char *ref = json_string_value(json_object_get(
			json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		const char *digest = json_string_value(json_object_get(m, "digest"));
		if (ref && digest && !strcmp(ref, colon + 1)) {
			free(manifest_path);
			manifest_path = blob_path(layout, digest);
		}
	}
	if (!manifest_path) {
		fprintf(stderr, "bench_unpack: %s has no image tagged '%s'\n", layout, colon + 1);
		goto out;
	}
	if (!(manifest = load_json(manifest_path)))
		goto out;
	json_array_foreach(json_object_get(manifest, "layers"), i, l)
	{
		const char *digest = json_string_value(json_object_get(l, "digest"));
		const char *media_type = json_string_value(json_object_get(l, "mediaType"));
		char *path = digest ? blob_path(layout, digest) : NULL;
		if (!path) {
			fprintf(stderr, "bench_unpack: %s: layer %zu has no digest\n",
				manifest_path, i);
			goto out;
		}
		bv_strv_push_take(&img->blobs, path);
		bv_strv_push(&img->media_types, media_type ? media_type : "");
	}
	if (!img->blobs.n) {
		fprintf(stderr, "bench_unpack: %s: no layers\n", manifest_path);
		goto out;
	}
	img->name = arg; /* printed up to the '=' */
	r = 0;
out:
	json_decref(index);
	json_decref(manifest);
	return r;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Entries below `dir` (not following symlinks); the check that two builds made the same tree. */
static unsigned long count_entries(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	unsigned long n = 0;
	if (!d) {
		close(fd);
		return 0;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (e->d_type == DT_DIR) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				n += count_entries(sub);
		}
	}
	closedir(d);
	return n;
}

/* One unpack of `img` under `dir` (which must not exist); its time in *ms. */
static int unpack_once(const struct image *img, const char *dir, double *ms, bool report)
{
	struct bv_error *err = NULL;
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	_cleanup_strv_ struct bv_strv trees = BV_STRV_INIT;
	_cleanup_free_ char *rootfs = bv_xasprintf("%s/rootfs", dir);
	double start;

	for (size_t i = 0; i < img->blobs.n; i++)
		bv_strv_pushf(&trees, "%s/layers/%zu", dir, i);
	start = now_ms();
	for (size_t i = 0; i < img->blobs.n; i++)
		if (bv_unpack_layer(img->blobs.v[i], img->media_types.v[i], trees.v[i], &o, &err) <
		    0)
			return fail(err);
	if (bv_unpack_image((const char *const *)trees.v, trees.n, rootfs, &o, &err) < 0)
		return fail(err);
	*ms = now_ms() - start;
	if (report) {
		int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fprintf(stderr, "bench_unpack: %.*s: %zu layers, %lu entries in the rootfs\n",
			(int)strcspn(img->name, "="), img->name, img->blobs.n,
			fd >= 0 ? count_entries(fd) : 0);
	}
	if (bv_unpack_remove_tree(dir, &err) < 0)
		return fail(err);
	sync();
	return 0;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned runs = 5;
	const char *tmp = getenv("TMPDIR");
	_cleanup_free_ char *work = NULL;
	const char *base = tmp && tmp[0] ? tmp : "/tmp";
	int opt, r = 0;

	while ((opt = getopt(argc, argv, "n:w:")) != -1) {
		if (opt == 'n' && bv_parse_uint(&runs, optarg) == 0 && runs >= 1 &&
		    runs <= MAX_RUNS)
			continue;
		if (opt == 'w') {
			base = optarg;
			continue;
		}
		fprintf(stderr, "usage: bench_unpack [-n RUNS] [-w WORKDIR] NAME=LAYOUT:TAG...\n");
		return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: bench_unpack [-n RUNS] [-w WORKDIR] NAME=LAYOUT:TAG...\n");
		return 2;
	}
	work = bv_xasprintf("%s/bench-unpack.XXXXXX", base);
	if (!mkdtemp(work)) {
		perror("bench_unpack: mkdtemp");
		return 1;
	}
	for (int a = optind; a < argc && !r; a++) {
		struct image img = {.blobs = BV_STRV_INIT, .media_types = BV_STRV_INIT};
		double times[MAX_RUNS], warm;
		if ((r = load_image(argv[a], &img)) == 0) {
			for (unsigned k = 0; k <= runs && !r; k++) {
				_cleanup_free_ char *dir = bv_xasprintf("%s/%u", work, k);
				r = unpack_once(&img, dir, k ? &times[k - 1] : &warm, k == 0);
			}
		}
		if (!r) {
			qsort(times, runs, sizeof(*times), compare_doubles);
			printf("unpack %.*s %.1f\n", (int)strcspn(img.name, "="), img.name,
			       runs % 2 ? times[runs / 2]
					: (times[runs / 2 - 1] + times[runs / 2]) / 2);
			fflush(stdout);
		}
		bv_strv_clear(&img.blobs);
		bv_strv_clear(&img.media_types);
	}
	if (rmdir(work) < 0 && !r)
		perror("bench_unpack: rmdir");
	return r;
}
