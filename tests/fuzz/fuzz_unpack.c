/*
 * libFuzzer target for layer unpacking: bv_unpack_layer() on hostile layer blobs, and
 * bv_unpack_image() on two layers that unpacked; and for reference data archives.
 *
 * The first input byte chooses how the rest becomes a blob: bits 0-1 raw, gzip (zlib's
 * deflate with a gzip header) or zstd; bits 2-3 the media type; bit 4 splits the rest into
 * two layers at the offset in bytes 1-2 and builds an image from them; bit 5 keeps the tar
 * headers' checksums as they are (otherwise they are recomputed, so that mutations of names
 * and types get past libarchive's checksum test); bit 6 unpacks the first blob as reference
 * data instead (bv_unpack_archive(): every symlink inside the tree, no special files, the
 * canaries untouched).  Everything happens in
 * one private directory per process:
 *
 *   <tmp>/blob, <tmp>/blob2     the layer blobs
 *   <tmp>/outside/canary        a canary beside the destination ("../outside/canary")
 *   <tmp>/dest, <tmp>/dest2     fresh layer trees, <tmp>/image the root filesystem
 *   /tmp/bv-fuzz-canary/canary  a canary at a fixed absolute path, for absolute symlinks
 *
 * Checked: every call succeeds or fails with BV_EINVALID or BV_ERR and a message; a failed
 * call leaves no tree and no temporary directory; a tree that unpacked is sealed, matches its
 * seal (bv_unpack_verify) and its blob has a diff_id; nothing appears beside the destination
 * but the tree and its ".seal"; both canaries (directory listing, content, mode, link count)
 * are untouched; bv_unpack_remove_tree() removes the tree and its seal.  A violation aborts,
 * which libFuzzer reports as a finding.
 */
#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/oci/store/unpack-internal.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ABS_CANARY_DIR "/tmp/bv-fuzz-canary"
#define CANARY_TEXT    "canary: must never change\n"

static char *tmp;                       /* the private directory */
static char *outside, *abs_canary_file; /* canary directories' files */
static char *outside_file;
static struct stat outside_st, abs_st; /* the canary directories */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_unpack: %s\n", what);
	abort();
}

static void make_canary(const char *dir, const char *file, struct stat *st)
{
	int fd;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot create a canary directory");
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || bv_write_all(fd, CANARY_TEXT, strlen(CANARY_TEXT)) < 0 || close(fd) < 0)
		die("cannot write a canary");
	if (chmod(dir, 0755) < 0 || chmod(file, 0644) < 0 || lstat(dir, st) < 0)
		die("cannot stat a canary directory");
}

/* The directory holds exactly the file "canary", unchanged, with one link. */
static void check_canary(const char *dir, const char *file, const struct stat *want)
{
	struct stat st;
	char buf[sizeof(CANARY_TEXT) + 16];
	ssize_t n;
	int fd;
	DIR *d;
	struct dirent *de;

	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_ino != want->st_ino ||
	    st.st_mode != want->st_mode || st.st_uid != want->st_uid)
		die("a canary directory was changed");
	if (lstat(file, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644 ||
	    st.st_nlink != 1 || st.st_size != (off_t)strlen(CANARY_TEXT))
		die("a canary file was changed or linked");
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		die("cannot open a canary");
	n = bv_read_all(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)strlen(CANARY_TEXT) || memcmp(buf, CANARY_TEXT, (size_t)n))
		die("a canary's content was changed");
	d = opendir(dir);
	if (!d)
		die("cannot list a canary directory");
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "canary"))
			die("something appeared in a canary directory");
	closedir(d);
}

/* <tmp> holds the blobs, "outside" and exactly the names in `allowed` (NULL-terminated). */
static void check_beside(const char *const *allowed)
{
	DIR *d = opendir(tmp);
	struct dirent *de;
	if (!d)
		die("cannot list the private directory");
	while ((de = readdir(d))) {
		bool ok = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			  !strcmp(de->d_name, "outside") || !strcmp(de->d_name, "blob") ||
			  !strcmp(de->d_name, "blob2");
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = !strcmp(de->d_name, *a);
		if (!ok) {
			fprintf(stderr, "fuzz_unpack: unexpected '%s' beside the destination\n",
				de->d_name);
			abort();
		}
	}
	closedir(d);
	check_canary(outside, outside_file, &outside_st);
	check_canary(ABS_CANARY_DIR, abs_canary_file, &abs_st);
}

static void cleanup(void)
{
	(void)bv_unpack_remove_tree(tmp, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	char *templ;
	(void)argc;
	(void)argv;
	/* tmpfs when there is one: every unpack ends with syncfs(2) */
	templ = bv_xasprintf("%s/bv-fuzz-unpack.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(templ))
		die("cannot create the private directory");
	tmp = templ;
	atexit(cleanup);
	outside = bv_path_join(tmp, "outside");
	outside_file = bv_path_join(outside, "canary");
	abs_canary_file = bv_xstrdup(ABS_CANARY_DIR "/canary");
	make_canary(outside, outside_file, &outside_st);
	make_canary(ABS_CANARY_DIR, abs_canary_file, &abs_st);
	return 0;
}

static void write_blob(const char *path, const uint8_t *data, size_t size, unsigned how)
{
	uint8_t *out = NULL;
	size_t out_len = size;
	int fd;

	if (how == 1) { /* gzip */
		z_stream z = {0};
		uLong bound;
		if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			die("deflateInit2 failed");
		bound = deflateBound(&z, (uLong)size) + 32;
		out = bv_xmalloc(bound);
		z.next_in = (Bytef *)(uintptr_t)data;
		z.avail_in = (uInt)size;
		z.next_out = out;
		z.avail_out = (uInt)bound;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			die("deflate failed");
		out_len = z.total_out;
		deflateEnd(&z);
	} else if (how == 2) { /* zstd */
		size_t bound = ZSTD_compressBound(size);
		out = bv_xmalloc(bound);
		out_len = ZSTD_compress(out, bound, data, size, 1);
		if (ZSTD_isError(out_len))
			die("ZSTD_compress failed");
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || bv_write_all(fd, out ? out : data, out_len) < 0 || close(fd) < 0)
		die("cannot write the blob");
	free(out);
}

/* A failure is BV_EINVALID or BV_ERR with a message. */
static void check_failure(int r, struct bv_error *err)
{
	if (r != BV_EINVALID && r != BV_ERR)
		die("an unexpected error code");
	if (!err || err->code != r || !err->message || !*err->message)
		die("a failure without a message");
	bv_error_free(err);
}

/*
 * Unpacks one layer into <tmp>/<name>; returns whether it succeeded, checked.  `whole` says
 * the blob's compressed stream is known to be complete: a raw tar, or one compressed here.
 * The tar reader stops at the end-of-archive blocks, so a layer whose stream is damaged after
 * them unpacks, and bv_unpack_diff_id(), reading to the end, refuses it.  libarchive also
 * stacks decompressors, so the input itself may be gzip or zstd inside the blob's and be
 * damaged in the same way.
 */
static bool unpack_one(const char *blob, const char *media_type, const char *name, bool whole)
{
	_cleanup_free_ char *dest = bv_path_join(tmp, name);
	struct bv_strv warnings = BV_STRV_INIT;
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	struct bv_error *err = NULL;
	char diff_id[BV_UNPACK_DIFF_ID_LEN + 1];
	char *problem = NULL;
	int r;

	o.warnings = &warnings;
	o.max_entries = 4096;      /* tar bombs stay small */
	o.max_bytes = 16ULL << 20; /* and on tmpfs */
	r = bv_unpack_layer(blob, media_type, dest, &o, &err);
	bv_strv_clear(&warnings);
	if (r < 0) {
		check_failure(r, err);
		if (bv_path_exists(dest) || bv_unpack_is_sealed(dest))
			die("a failed unpack left its destination");
		return false;
	}
	if (err)
		die("success with an error");
	if (!bv_unpack_is_sealed(dest))
		die("an unpacked tree has no seal");
	r = bv_unpack_verify(&problem, dest, false, false, &err);
	if (r != 1) {
		fprintf(stderr, "fuzz_unpack: verify says %d: %s\n", r,
			problem ? problem
			: err   ? err->message
				: "?");
		die("a fresh tree does not match its seal");
	}
	r = bv_unpack_diff_id(blob, media_type, diff_id, &err);
	if (r < 0 && whole) {
		fprintf(stderr, "fuzz_unpack: %s\n", err ? err->message : "?");
		die("an unpacked blob has no diff_id");
	}
	if (r < 0) {
		check_failure(r, err);
	} else if (strncmp(diff_id, "sha256:", 7) || strlen(diff_id) != BV_UNPACK_DIFF_ID_LEN)
		die("a diff_id is not sha256:<hex>");
	return true;
}

static void remove_tree(const char *name)
{
	_cleanup_free_ char *dest = bv_path_join(tmp, name);
	struct bv_error *err = NULL;
	if (bv_unpack_remove_tree(dest, &err) < 0) {
		fprintf(stderr, "fuzz_unpack: %s\n", err ? err->message : "?");
		die("cannot remove a tree");
	}
	if (bv_path_exists(dest) || bv_unpack_is_sealed(dest))
		die("a removed tree is still there");
}

static void build_image(void)
{
	_cleanup_free_ char *a = bv_path_join(tmp, "dest");
	_cleanup_free_ char *b = bv_path_join(tmp, "dest2");
	_cleanup_free_ char *image = bv_path_join(tmp, "image");
	const char *const trees[] = {a, b};
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	struct bv_error *err = NULL;
	char *problem = NULL;
	int r = bv_unpack_image(trees, 2, image, &o, &err);
	static const char *const beside[] = {"dest",  "dest.seal",  "dest2", "dest2.seal",
					     "image", "image.seal", NULL};

	if (r < 0) {
		check_failure(r, err);
		if (bv_path_exists(image))
			die("a failed image build left its root filesystem");
	} else {
		if (!bv_unpack_is_sealed(image))
			die("a root filesystem has no seal");
		if (bv_unpack_verify(&problem, image, false, false, &err) != 1) {
			fprintf(stderr, "fuzz_unpack: %s\n",
				problem ? problem
				: err   ? err->message
					: "?");
			die("a fresh root filesystem does not match its seal");
		}
	}
	check_beside(beside);
	if (r == 0)
		remove_tree("image");
}

/*
 * Recomputes the checksum of every ustar header, walking the tar as a reader would (a header,
 * then its data rounded up to 512 bytes), so that mutated names, types and modes reach bv
 * instead of failing libarchive's checksum test.
 */
static void fix_checksums(uint8_t *tar, size_t len)
{
	size_t pos = 0;
	while (pos + 512 <= len) {
		uint8_t *h = tar + pos;
		uint64_t size = 0, sum = 0;
		if (memcmp(h + 257, "ustar", 5)) {
			pos += 512; /* not a header: look at the next block */
			continue;
		}
		memset(h + 148, ' ', 8);
		for (size_t i = 0; i < 512; i++)
			sum += h[i];
		for (int i = 5; i >= 0; i--, sum >>= 3)
			h[148 + i] = (uint8_t)('0' + (sum & 7));
		h[154] = '\0';
		if (h[124] & 0x80) { /* base-256: bv would refuse it anyway, do not skip much */
			pos += 512;
			continue;
		}
		for (int i = 0; i < 12 && h[124 + i] >= '0' && h[124 + i] <= '7'; i++)
			size = size * 8 + (uint64_t)(h[124 + i] - '0');
		if (size > len)
			break;
		pos += 512 + (size_t)((size + 511) / 512 * 512);
	}
}

/* Whether the bytes start with a gzip or zstd magic number, as bv_unpack_layer() sniffs. */
static bool compressed(const uint8_t *data, size_t size)
{
	return (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) ||
	       (size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4));
}

/*
 * Every symlink below `fd` (at `depth` below the dataset's top) stays inside the tree, and
 * nothing but directories, files and symlinks is there: the rules of bv_unpack_archive().
 */
static void check_data_tree(int fd, unsigned depth)
{
	DIR *d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 0));
	struct dirent *de;
	if (!d)
		die("cannot list a data tree");
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("cannot stat in a data tree");
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				die("cannot open a data directory");
			check_data_tree(sub, depth + 1);
			close(sub);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
			long level = (long)depth;
			if (n < 0)
				die("cannot read a data symlink");
			target[n] = '\0';
			if (target[0] == '/')
				die("a data symlink is absolute");
			for (char *save = NULL, *c = strtok_r(target, "/", &save); c;
			     c = strtok_r(NULL, "/", &save)) {
				level += !strcmp(c, "..") ? -1 : strcmp(c, ".") ? 1 : 0;
				if (level < 0)
					die("a data symlink leads out of its tree");
			}
		} else if (!S_ISREG(st.st_mode)) {
			die("a data tree holds a special file");
		}
	}
	closedir(d);
}

/* bv_unpack_archive() (reference data) of the same bytes: confined, or failed with a message. */
static void unpack_data(const char *blob)
{
	_cleanup_free_ char *dest = bv_path_join(tmp, "data");
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	struct bv_error *err = NULL;
	int fd, r;

	o.max_entries = 4096;
	o.max_bytes = 16ULL << 20;
	if (mkdir(dest, 0755) < 0)
		die("cannot create the data directory");
	fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open the data directory");
	r = bv_unpack_archive(fd, blob, "'blob'", &o, &err);
	if (r < 0)
		check_failure(r, err);
	else
		check_data_tree(fd, 0);
	close(fd);
	check_beside((const char *const[]){"data", NULL});
	remove_tree("data");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const media_types[] = {
		NULL, "application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.docker.image.rootfs.diff.tar.gzip"};
	static const char *const beside_one[] = {"dest", "dest.seal", NULL};
	static const char *const beside_two[] = {"dest", "dest.seal", "dest2", "dest2.seal", NULL};
	static const char *const nothing[] = {NULL};
	_cleanup_free_ char *blob = bv_path_join(tmp, "blob");
	_cleanup_free_ char *blob2 = bv_path_join(tmp, "blob2");
	unsigned how, flags;
	const char *media_type;
	bool two, ok1, ok2 = false;
	size_t split = 0;
	_cleanup_free_ uint8_t *copy = NULL;

	if (size < 1)
		return 0;
	flags = data[0];
	how = flags & 3u;
	media_type = media_types[(flags >> 2) & 3u];
	two = flags & 0x10u;
	data++;
	size--;
	if (two) {
		if (size < 2)
			return 0;
		split = ((size_t)data[0] | (size_t)data[1] << 8);
		data += 2;
		size -= 2;
		split = size ? split % (size + 1) : 0;
	}
	if (how == 3)
		how = 0;
	if (!(flags & 0x20u)) { /* checksums fixed unless bit 5 asks for the bytes as they are */
		copy = bv_xmalloc(size + 1);
		memcpy(copy, data, size);
		fix_checksums(copy, two ? split : size);
		fix_checksums(copy + split, size - split);
		data = copy;
	}

	write_blob(blob, data, two ? split : size, how);
	if (flags & 0x40u) { /* reference data instead of a layer */
		unpack_data(blob);
		check_beside(nothing);
		return 0;
	}
	ok1 = unpack_one(blob, media_type, "dest", !compressed(data, two ? split : size));
	check_beside(ok1 ? beside_one : nothing);
	if (two) {
		write_blob(blob2, data + split, size - split, how);
		ok2 = unpack_one(blob2, media_type, "dest2",
				 !compressed(data + split, size - split));
		check_beside(ok1 && ok2 ? beside_two
			     : ok1      ? beside_one
			     : ok2      ? (const char *const[]){"dest2", "dest2.seal", NULL}
					: nothing);
		if (ok1 && ok2)
			build_image();
		if (ok2)
			remove_tree("dest2");
	}
	if (ok1)
		remove_tree("dest");
	check_beside(nothing);
	return 0;
}
