/*
 * The native backend: images come from bv's own store (bv_install) and run through
 * bv_native_run() in unprivileged namespaces.  This file turns a backend-neutral run request
 * into a native one: the image config's Entrypoint, Cmd, Env and WorkingDir, an /etc/passwd
 * and /etc/group that know the caller, a usable HOME, and NVIDIA libraries for GPU tools.
 */
#include "config.h"

#include <bv/error.h>
#include <bv/paths.h>
#include <bv/registry.h>
#include <bv/runtime.h>
#include <bv/version.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "lib/oci/store/retain-internal.h"
#include "lib/oci/store/seal.h"
#include "lib/oci/store/unpack-internal.h"
#include "lib/runtime/native/native-internal.h"
#include "lib/runtime/native/nvidia.h"
#include "lib/runtime/native/squashfs.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define NVIDIA_DIR "/.bv/nvidia"

static const char default_path[] =
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/* Reads an integer from a /proc/sys file; `fallback` when it does not exist. */
static long read_sysctl(const char *path, long fallback)
{
	char text[32];
	ssize_t n;
	int64_t v;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fallback;
	n = read(fd, text, sizeof(text) - 1);
	if (n <= 0)
		return fallback;
	text[n] = 0;
	text[strcspn(text, "\n")] = 0;
	return bv_parse_i64(&v, text) == 0 ? (long)v : fallback;
}

/*
 * Whether an unprivileged user namespace can be made, from the kernel's switches (Debian's
 * unprivileged_userns_clone, Ubuntu's AppArmor restriction, the namespace limit): a few
 * reads, where a trial unshare would cost a fork.
 */
static bool native_is_usable(struct bv_runtime *rt)
{
	(void)rt;
	if (read_sysctl("/proc/sys/user/max_user_namespaces", 1) <= 0)
		return false;
	if (geteuid() == 0)
		return true;
	if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone", 1) == 0)
		return false;
	return read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", 0) == 0;
}

static int native_health(struct bv_runtime *rt, struct bv_runtime_info *out, struct bv_error **err)
{
	if (!native_is_usable(rt))
		return bv_error_setc(err, BV_ERR, 0,
				     "unprivileged user namespaces are disabled on this machine");
	out->name = bv_xstrdup("native");
	out->version = bv_xstrdup(BV_VERSION);
	out->detail = bv_xasprintf("user namespaces, max %ld",
				   read_sysctl("/proc/sys/user/max_user_namespaces", -1));
	return 0;
}

/* local_dir mode: this node's tree, unpacked from the store on first use (install-internal.h). */
static int local_rootfs(char **out, const struct bv_image_spec *image, struct bv_error **err)
{
	struct bv_install_item it = {
		.tool_id = image->tool_id, .reference = image->reference, .pinned = image->digest};
	return bv_install_local_tree(out, &it, err);
}

static enum bv_image_mode image_mode(void)
{
	enum bv_image_mode mode;
	return bv_image_mode(&mode, NULL) >= 0 ? mode : BV_IMAGE_TREE;
}

/* The cheap stamp test; an image that fails it is said once, sync then builds it again. */
static bool squashfs_present(const struct bv_image_spec *image)
{
	_cleanup_free_ char *sqfs = NULL, *record = NULL;
	if (bv_squashfs_paths(&sqfs, &record, image->digest, NULL) < 0)
		return false;
	if (bv_squashfs_present(sqfs, record))
		return true;
	if (bv_path_exists(sqfs))
		bv_logf(BV_LOG_WARN,
			"the squashfs image '%s' does not match its record (changed since bv sync built it)",
			sqfs);
	return false;
}

static void listing_reset(void);

static int native_ensure(struct bv_runtime *rt, const struct bv_image_spec *images, size_t n,
			 const struct bv_ensure_options *o, struct bv_error **err)
{
	struct bv_install_item *items = bv_xcalloc(n + 1, sizeof(*items));
	struct bv_install_options io = {.mode = BV_INSTALL_FULL,
					.jobs = o ? o->jobs : 0,
					.platform = o ? o->platform : NULL,
					.progress = o ? o->progress : NULL,
					.progress_payload = o ? o->progress_payload : NULL};
	int r;
	(void)rt;
	listing_reset(); /* the trees are about to change */
	for (size_t i = 0; i < n; i++) {
		items[i].tool_id = images[i].tool_id;
		items[i].reference = images[i].reference;
		items[i].pinned = images[i].digest;
	}
	r = bv_install(items, n, &io, err);
	for (size_t i = 0; i < n && r >= 0 && image_mode() == BV_IMAGE_SQUASHFS; i++) {
		_cleanup_free_ char *sqfs = NULL, *record = NULL;
		if (!items[i].rootfs) /* another platform's image: pulled, not unpacked */
			continue;
		r = bv_squashfs_paths(&sqfs, &record, items[i].top_digest, err);
		if (r >= 0)
			r = bv_squashfs_build(items[i].rootfs, sqfs, record, err);
	}
	for (size_t i = 0; i < n; i++)
		bv_install_item_release(&items[i]);
	free(items);
	return r;
}

/*
 * The entries of the directory holding the root filesystems, read once (a few getdents64
 * calls) when one process asks about many images, as `bv sync` and `bv doctor` do on a large
 * project, instead of two stat(2) per image: on 1000 tools that is most of a sync with nothing
 * to do.  It answers only in this process, until ensure or remove changes the trees (both
 * drop it); what it cannot answer for sure (a symbolic link, a file system without d_type)
 * goes to stat(2) as before.  Another process unpacking or pruning meanwhile is the same race
 * as with a stat(2) a moment earlier: ensure finds a tree sealed since and keeps it.
 */
#define LISTING_AFTER 16 /* images checked one by one before the directory is listed */

/*
 * A name of the directory, and whether "<name>.seal" is there too: a tree and its seal share
 * an entry, so that one lookup answers for both and each name is kept once.
 */
struct listed {
	size_t name;        /* offset in listing.names */
	size_t len;         /* of the name */
	size_t hash;        /* listing_hash(), kept for growing the table */
	unsigned char type; /* DT_* of <name>, or ONLY_SEAL */
	bool sealed;        /* "<name>.seal" is listed: bv_unpack_is_sealed() takes any type */
};

#define ONLY_SEAL 0xff /* no DT_* value */

#define LISTING_NAMES_HINT   ((256u << 10) - 1) /* and the NUL bv_buf keeps */
#define LISTING_ENTRIES_HINT 4096u

static struct {
	char *dir; /* listed, or NULL */
	size_t dir_len;
	bool failed;
	struct bv_buf names;    /* every name, each with its NUL */
	struct listed *entries; /* in directory order */
	size_t n, alloc;
	/* open addressing by the names' hash, a power of two of slots holding an entry's index
	 * + 1 (0: empty): a sort and a binary search per image were half of this listing */
	uint32_t *slots;
	size_t n_slots;
	unsigned checks;
} listing;

static void listing_reset(void)
{
	bv_buf_release(&listing.names);
	free(listing.entries);
	free(listing.slots);
	free(listing.dir);
	memset(&listing, 0, sizeof(listing));
	bv_buf_init(&listing.names, 0);
}

/* A hash of a name eight bytes at a step (FNV-1a, a byte at a time, was as slow as the sort
 * it replaced on names of 80 bytes) */
static size_t listing_hash(const char *name, size_t len)
{
	const char *start = name;
	uint64_t h = (uint64_t)len * 0x9e3779b97f4a7c15u, w;
	for (; len >= 8; name += 8, len -= 8) {
		memcpy(&w, name, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15u;
		h ^= h >> 29;
	}
	if (len && name - start >= 8) { /* the last 8 bytes, some hashed already */
		memcpy(&w, name + len - 8, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15u;
	} else {
		for (; len; name++, len--)
			h = (h ^ (unsigned char)*name) * 0x100000001b3u;
	}
	return (size_t)(h ^ (h >> 32));
}

/* Twice the slots, the entries placed again by their kept hashes. */
static void listing_grow_slots(void)
{
	free(listing.slots);
	listing.n_slots = listing.n_slots ? 2 * listing.n_slots : 1024;
	listing.slots = bv_xcalloc(listing.n_slots, sizeof(*listing.slots));
	for (size_t i = 0; i < listing.n; i++) {
		size_t k = listing.entries[i].hash & (listing.n_slots - 1);
		while (listing.slots[k])
			k = (k + 1) & (listing.n_slots - 1);
		listing.slots[k] = (uint32_t)(i + 1);
	}
}

/* The entry of `name` (len bytes), or NULL; with `add`, a new one when there is none. */
static struct listed *listing_find(const char *name, size_t len, bool add)
{
	size_t h, k;
	struct listed *e;
	if (!listing.n_slots && !add)
		return NULL;
	h = listing_hash(name, len);
	for (k = h & (listing.n_slots - 1); listing.n_slots && listing.slots[k];
	     k = (k + 1) & (listing.n_slots - 1)) {
		e = &listing.entries[listing.slots[k] - 1];
		if (e->hash == h && e->len == len &&
		    !memcmp(listing.names.buf + e->name, name, len))
			return e;
	}
	if (!add)
		return NULL;
	if (2 * (listing.n + 1) > listing.n_slots) { /* at most half full */
		listing_grow_slots();
		for (k = h & (listing.n_slots - 1); listing.slots[k];)
			k = (k + 1) & (listing.n_slots - 1);
	}
	if (listing.n == listing.alloc)
		bv_grow((void **)&listing.entries, &listing.alloc, listing.n + 1,
			sizeof(*listing.entries));
	if (listing.names.alloc - listing.names.len <= len + 1)
		bv_buf_grow(&listing.names, len + 1);
	e = &listing.entries[listing.n++];
	*e = (struct listed){.name = listing.names.len, .len = len, .hash = h, .type = ONLY_SEAL};
	memcpy(listing.names.buf + listing.names.len, name, len);
	listing.names.len += len + 1;
	listing.names.buf[listing.names.len - 1] = '\0';
	listing.names.buf[listing.names.len] = '\0'; /* a bv_buf stays terminated */
	listing.slots[k] = (uint32_t)listing.n;
	return e;
}

static bool is_seal_name(const char *name, size_t len)
{
	size_t n = strlen(BV_SEAL_SUFFIX);
	return len > n && !memcmp(name + len - n, BV_SEAL_SUFFIX, n);
}

/* bv_dir_each()'s callback: "<x>.seal" marks x's entry sealed, any other name is x's own */
static int listing_add(const char *name, unsigned char type, void *payload)
{
	size_t len = strlen(name);
	(void)payload;
	if (listing.n >= UINT32_MAX / 4) /* not a directory bv made: ask stat(2) */
		return -E2BIG;
	if (is_seal_name(name, len))
		listing_find(name, len - strlen(BV_SEAL_SUFFIX), true)->sealed = true;
	else
		listing_find(name, len, true)->type = type;
	return 0;
}

static void listing_read(const char *dir, size_t dir_len)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	unsigned checks = listing.checks;
	listing_reset();
	listing.checks = checks;
	listing.dir = bv_xstrndup(dir, dir_len);
	listing.dir_len = dir_len;
	/* room for some 3000 images: allocations this large are mapped, and only the pages
	 * used are ever touched, where growing by realloc() copied them again and again */
	bv_buf_init(&listing.names, LISTING_NAMES_HINT);
	listing.entries = bv_xmalloc(LISTING_ENTRIES_HINT * sizeof(*listing.entries));
	listing.alloc = LISTING_ENTRIES_HINT;
	fd = open(listing.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		listing.failed = true;
		return;
	}
	buf = bv_xmalloc(BV_DIRBUF_SIZE);
	/* an error midway: a partial listing would call present trees missing */
	if (bv_dir_each(fd, buf, listing_add, NULL) < 0)
		listing.failed = true;
}

/*
 * From the listing of the first dir_len bytes of `rootfs` (its directory): 1 when the entry
 * after the slash, name_len bytes, is a directory with its seal beside it, 0 when not, -1 to
 * ask stat(2).
 */
static int listed_at(const char *rootfs, size_t dir_len, size_t name_len)
{
	const char *name = rootfs + dir_len + 1;
	const struct listed *tree;
	if (++listing.checks <= LISTING_AFTER)
		return -1;
	if (is_seal_name(name, name_len)) /* its entry is the seal of another name */
		return -1;
	if (!listing.dir || listing.dir_len != dir_len || memcmp(listing.dir, rootfs, dir_len))
		listing_read(rootfs, dir_len);
	if (listing.failed)
		return -1;
	tree = listing_find(name, name_len, false);
	if (!tree || tree->type == ONLY_SEAL)
		return 0;
	if (tree->type != DT_DIR)
		return tree->type == DT_LNK || tree->type == DT_UNKNOWN ? -1 : 0;
	return tree->sealed ? 1 : 0;
}

/* listed_at() for any path, whose seal must be where bv_seal_path() says: beside it. */
static int listed_rootfs(const char *rootfs)
{
	_cleanup_free_ char *seal = NULL;
	const char *slash = strrchr(rootfs, '/');
	size_t len = strlen(rootfs);
	if (!slash || slash == rootfs || !slash[1]) {
		++listing.checks;
		return -1;
	}
	seal = bv_seal_path(rootfs);
	/* the seal must sit beside the tree for one listing to answer for both */
	if (strncmp(seal, rootfs, len) != 0 || strcmp(seal + len, BV_SEAL_SUFFIX) != 0) {
		++listing.checks;
		return -1;
	}
	return listed_at(rootfs, (size_t)(slash - rootfs), len - (size_t)(slash + 1 - rootfs));
}

/* Whether the root filesystem at `rootfs` is there and complete; `listed` from the listing. */
static int check_listed(int listed, const char *rootfs, const struct bv_image_spec *image,
			struct bv_error **err)
{
	struct stat st;
	if (listed == 1)
		return 0;
	/* an unsealed tree is incomplete or damaged (bv/unpack.h): sync builds it again */
	if (listed == 0 || stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    !bv_unpack_is_sealed(rootfs))
		return bv_error_setc(
			err, BV_ENOTFOUND, 0, "the image of %s (%s) is not on this machine",
			image->tool_id ? image->tool_id : image->reference, image->reference);
	return 0;
}

static int check_rootfs(const char *rootfs, const struct bv_image_spec *image,
			struct bv_error **err)
{
	return check_listed(listed_rootfs(rootfs), rootfs, image, err);
}

static int find_rootfs(char **out, const struct bv_image_spec *image, struct bv_error **err)
{
	_cleanup_free_ char *rootfs = NULL;
	int r = bv_install_rootfs_path(&rootfs, image->digest, err);
	if (r >= 0)
		r = check_rootfs(rootfs, image, err);
	if (r < 0)
		return r;
	*out = TAKE_PTR(rootfs);
	return 0;
}

/*
 * What is_available looks up once per runtime, not once per image: the image mode and where
 * the trees are (bv_install_rootfs_namer).  A runtime lives for one command, whose settings
 * (BV_IMAGE_MODE, the cache, the node-local directory) are fixed before it first asks; a
 * settings error is left to the per-image path, which reports it as before.
 */
struct native_state {
	int ready; /* 0: not looked up, 1: looked up, -1: the per-image path */
	enum bv_image_mode mode;
	struct bv_install_rootfs_namer namer; /* unless squashfs */
};

static struct native_state *native_state(struct bv_runtime *rt)
{
	struct native_state *st = rt->state;
	if (!st)
		st = rt->state = bv_xcalloc(1, sizeof(*st));
	if (st->ready)
		return st;
	st->ready = -1;
	if (bv_image_mode(&st->mode, NULL) < 0)
		return st;
	if (st->mode != BV_IMAGE_SQUASHFS) {
		if (bv_install_rootfs_namer_init(&st->namer, NULL) < 0)
			return st;
	}
	st->ready = 1;
	return st;
}

static void native_free(struct bv_runtime *rt)
{
	struct native_state *st = rt->state;
	if (!st)
		return;
	bv_install_rootfs_namer_release(&st->namer);
	free(st);
	rt->state = NULL;
}

/* find_rootfs() without building a path per image: whether the tree is there, no error. */
static bool rootfs_here(struct native_state *st, const struct bv_image_spec *image)
{
	const struct bv_install_rootfs_namer *n = &st->namer;
	if (bv_install_rootfs_namer_path(&st->namer, image->digest, NULL) < 0)
		return false;
	return check_listed(listed_at(n->path, n->dir_len, n->name_len), n->path, image, NULL) == 0;
}

static int native_is_available(struct bv_runtime *rt, const struct bv_image_spec *image,
			       bool *available_out, struct bv_error **err)
{
	struct native_state *st = native_state(rt);
	_cleanup_free_ char *rootfs = NULL;
	enum bv_image_mode mode = st->ready > 0 ? st->mode : image_mode();
	bool here;
	(void)err;
	/* squashfs: the image file is what a run needs, whatever tree there is */
	if (mode == BV_IMAGE_SQUASHFS) {
		*available_out = squashfs_present(image);
		return 0;
	}
	if (st->ready > 0) {
		here = rootfs_here(st, image);
	} else {
		struct bv_error *missing = NULL;
		here = find_rootfs(&rootfs, image, &missing) >= 0;
		bv_error_free(missing);
	}
	/* local_dir: a node that has no tree yet unpacks one from the store when it runs */
	*available_out = here || (mode == BV_IMAGE_LOCAL_DIR && bv_install_in_store(image->digest));
	return 0;
}

/*
 * The trees and their seals sit side by side in one directory (listed_rootfs()), and whether
 * an image is available is whether its entries are there: only the directory's own stat
 * changes with that answer.  squashfs and local_dir look at files elsewhere, one by one.
 */
static int native_image_sources(struct bv_runtime *rt, struct bv_strv *out)
{
	char *dir = NULL;
	struct bv_error *err = NULL;
	(void)rt;
	if (image_mode() != BV_IMAGE_TREE) /* from the variable, which bv.toml's setting fills */
		return -1;
	if (bv_install_shared_rootfs_dir(&dir, &err) < 0) {
		bv_error_free(err);
		return -1;
	}
	bv_strv_push_take(out, dir);
	return 0;
}

static int native_inspect(struct bv_runtime *rt, const struct bv_image_spec *image,
			  struct bv_image_info *out, struct bv_error **err)
{
	_cleanup_free_ char *rootfs = NULL;
	int r = find_rootfs(&rootfs, image, err);
	(void)rt;
	if (r < 0)
		return r;
	/* The layers are shared between images through hard links, so no size is its own. */
	out->size = -1;
	return 0;
}

static int native_remove(struct bv_runtime *rt, const struct bv_image_spec *image,
			 struct bv_error **err)
{
	_cleanup_free_ char *rootfs = NULL, *config = NULL;
	int r = bv_install_rootfs_path(&rootfs, image->digest, err);
	(void)rt;
	listing_reset(); /* the trees are about to change */
	if (r < 0)
		return r;
	config = bv_install_config_path(rootfs);
	if (bv_path_exists(rootfs))
		r = bv_unpack_remove_tree(rootfs, err);
	if (r >= 0 && unlink(config) < 0 && errno != ENOENT)
		r = bv_error_set_errno(err, "could not remove '%s'", config);
	return r;
}

/* The index of `key`'s entry in `env` ("KEY=..."), or -1. */
static bool env_has(const struct bv_strv *env, const char *key)
{
	return bv_strv_env_find(env, key, strlen(key)) >= 0;
}

/* Appends ":dir" to the list variable `key`, or sets it to `dir` when it is unset. */
static void env_append_dir(struct bv_strv *env, const char *key, const char *dir)
{
	ssize_t i = bv_strv_env_find(env, key, strlen(key));
	char *entry =
		i < 0 ? bv_xasprintf("%s=%s", key, dir) : bv_xasprintf("%s:%s", env->v[i], dir);
	if (i < 0) {
		bv_strv_push_take(env, entry);
		return;
	}
	free(env->v[i]);
	env->v[i] = entry;
}

static void push_json_strings(struct bv_strv *out, json_t *array)
{
	size_t i;
	json_t *v;
	json_array_foreach(array, i, v) if (json_is_string(v))
		bv_strv_push(out, json_string_value(v));
}

struct native_run {
	struct bv_strv argv, env, strings;
	struct bv_native_mount *mounts;
	size_t n_mounts;
	struct bv_native_file files[2];
	size_t n_files;
	struct bv_buf passwd, group;
	const char *workdir;
	json_t *config;
};

static void native_run_release(struct native_run *nr)
{
	bv_strv_clear(&nr->argv);
	bv_strv_clear(&nr->env);
	bv_strv_clear(&nr->strings);
	free(nr->mounts);
	bv_buf_release(&nr->passwd);
	bv_buf_release(&nr->group);
	json_decref(nr->config);
}

/* Whether `text` (passwd or group format) has an entry whose third field is `id`. */
static bool has_id(const char *text, unsigned id)
{
	char want[24];
	int len = snprintf(want, sizeof(want), ":%u:", id);
	for (const char *line = text; line && *line;) {
		const char *end = strchrnul(line, '\n');
		const char *p = line;
		/* skip name and password */
		for (int field = 0; field < 2 && p < end; field++) {
			p = memchr(p, ':', (size_t)(end - p));
			if (!p)
				break;
			if (field == 0)
				p++;
		}
		if (p && p < end && (size_t)(end - p) >= (size_t)len &&
		    strncmp(p, want, (size_t)len) == 0)
			return true;
		line = *end ? end + 1 : end;
	}
	return false;
}

/* The caller's user name on the host (NSS can be slow, so only when an entry is missing). */
static void caller_name(char *name, size_t size, unsigned uid)
{
	const struct passwd *pw = getpwuid(uid);
	if (pw && pw->pw_name[0] && !strpbrk(pw->pw_name, ":\n"))
		snprintf(name, size, "%s", pw->pw_name);
	else
		snprintf(name, size, "user%u", uid);
}

/*
 * /etc/passwd and /etc/group with an entry for the caller when the image has none, so tools
 * that look up their user (ssh, git, python's getpass) work.  The home directory is /tmp,
 * the private writable tmpfs.
 */
static void plan_identity(struct native_run *nr, const char *rootfs)
{
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
	_cleanup_free_ char *passwd_path = bv_path_join(rootfs, "etc/passwd");
	_cleanup_free_ char *group_path = bv_path_join(rootfs, "etc/group");
	char name[64] = "";
	if (bv_buf_read_file(&nr->passwd, passwd_path, 1u << 20, NULL) < 0)
		bv_buf_reset(&nr->passwd);
	if (bv_buf_read_file(&nr->group, group_path, 1u << 20, NULL) < 0)
		bv_buf_reset(&nr->group);
	if (!has_id(nr->passwd.buf, uid) || !has_id(nr->group.buf, gid))
		caller_name(name, sizeof(name), uid);
	if (!has_id(nr->passwd.buf, uid)) {
		if (nr->passwd.len && nr->passwd.buf[nr->passwd.len - 1] != '\n')
			bv_buf_putc(&nr->passwd, '\n');
		bv_buf_printf(&nr->passwd, "%s:x:%u:%u:%s:/tmp:/bin/sh\n", name, uid, gid, name);
		nr->files[nr->n_files++] = (struct bv_native_file){
			.target = "/etc/passwd", .content = nr->passwd.buf, .len = nr->passwd.len};
	}
	if (!has_id(nr->group.buf, gid)) {
		if (nr->group.len && nr->group.buf[nr->group.len - 1] != '\n')
			bv_buf_putc(&nr->group, '\n');
		bv_buf_printf(&nr->group, "%s:x:%u:\n", name, gid);
		nr->files[nr->n_files++] = (struct bv_native_file){
			.target = "/etc/group", .content = nr->group.buf, .len = nr->group.len};
	}
}

static void add_mount(struct native_run *nr, const char *host, const char *target, bool read_only)
{
	nr->mounts = bv_xreallocarray(nr->mounts, nr->n_mounts + 1, sizeof(*nr->mounts));
	nr->mounts[nr->n_mounts++] =
		(struct bv_native_mount){.host = bv_strv_push(&nr->strings, host),
					 .target = bv_strv_push(&nr->strings, target),
					 .read_only = read_only};
}

/*
 * NVIDIA driver libraries under /.bv/nvidia/lib (the devices come with the host's /dev).  Under
 * Slurm, the GPUs the job was not granted are covered with /dev/null, as Apptainer's --nv
 * under a constrained job shows only the granted ones; only nodes the host's /dev really has,
 * since that is the /dev the tool sees.
 */
static int plan_gpu(struct native_run *nr, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv devices = BV_STRV_INIT, libraries = BV_STRV_INIT;
	_cleanup_strv_ struct bv_strv hidden = BV_STRV_INIT;
	const char *visible = getenv("NVIDIA_VISIBLE_DEVICES");
	const char *granted = getenv("SLURM_STEP_GPUS");
	int r = bv_nvidia_files(&devices, &libraries, err);
	if (r < 0 || !devices.n)
		return r;
	if (!granted)
		granted = getenv("SLURM_JOB_GPUS");
	if ((r = bv_nvidia_hidden(&hidden, &devices, granted, err)) < 0)
		return r;
	bv_strv_foreach (dev, &hidden) {
		_cleanup_free_ char *target = bv_xasprintf("/dev/%s", strrchr(*dev, '/') + 1);
		if (bv_path_exists(target))
			add_mount(nr, "/dev/null", target, true);
	}
	bv_strv_foreach (lib, &libraries) {
		_cleanup_free_ char *target =
			bv_xasprintf(NVIDIA_DIR "/lib/%s", strrchr(*lib, '/') + 1);
		add_mount(nr, *lib, target, true);
	}
	if (bv_path_exists("/usr/bin/nvidia-smi"))
		add_mount(nr, "/usr/bin/nvidia-smi", NVIDIA_DIR "/bin/nvidia-smi", true);
	env_append_dir(&nr->env, "PATH", NVIDIA_DIR "/bin");
	env_append_dir(&nr->env, "LD_LIBRARY_PATH", NVIDIA_DIR "/lib");
	if (visible) {
		_cleanup_free_ char *e = bv_xasprintf("NVIDIA_VISIBLE_DEVICES=%s", visible);
		bv_strv_env_set(&nr->env, e);
	}
	return 0;
}

/*
 * An image for another platform (a bv.lock written with --platform) would fail in exec with
 * "Exec format error", or worse run under binfmt emulation: refuse it by its config instead.
 */
static int check_platform(const json_t *config, const struct bv_run_request *req,
			  struct bv_error **err)
{
	const char *os = json_string_value(json_object_get(config, "os"));
	const char *arch = json_string_value(json_object_get(config, "architecture"));
	const char *variant = json_string_value(json_object_get(config, "variant"));
	const char *host = bv_registry_default_platform();
	_cleanup_free_ char *have = NULL;
	if (!os || !arch)
		return 0; /* no config (an older unpack) or one that does not say */
	have = bv_xasprintf("%s/%s%s%s", os, arch, variant && variant[0] ? "/" : "",
			    variant ? variant : "");
	if (bv_platform_matches(host, have))
		return 0;
	return bv_error_setc(
		err, BV_EINVALID, 0, "the image of %s is for %s, but this machine is %s",
		req->image.tool_id ? req->image.tool_id : req->image.reference, have, host);
}

/* `config` (taken) is the image config when the caller has it, else read beside `rootfs`. */
static int plan_run(struct native_run *nr, const char *rootfs, json_t *config,
		    const struct bv_run_request *req, struct bv_error **err)
{
	_cleanup_free_ char *config_path = bv_install_config_path(rootfs);
	json_t *cfg = NULL;
	json_error_t jerr;
	int r;
	nr->config = config ? config : json_load_file(config_path, 0, &jerr);
	if (!nr->config && errno != ENOENT && bv_path_exists(config_path))
		return bv_error_setc(err, BV_EINVALID, 0, "could not read image config '%s': %s",
				     config_path, jerr.text);
	r = check_platform(nr->config, req, err);
	if (r < 0)
		return r;
	cfg = json_object_get(nr->config, "config");

	/* Docker's rule: the Entrypoint stays, the arguments replace Cmd. */
	push_json_strings(&nr->argv, json_object_get(cfg, "Entrypoint"));
	if (req->argv && req->argv[0])
		bv_strv_pushv(&nr->argv, req->argv);
	else
		push_json_strings(&nr->argv, json_object_get(cfg, "Cmd"));
	if (!nr->argv.n)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "no command to run: the image of %s has no Entrypoint or Cmd",
				     req->image.tool_id ? req->image.tool_id
							: req->image.reference);

	push_json_strings(&nr->env, json_object_get(cfg, "Env"));
	if (!env_has(&nr->env, "PATH"))
		bv_strv_env_set(&nr->env, default_path);
	if (!env_has(&nr->env, "HOME"))
		bv_strv_env_set(&nr->env, "HOME=/tmp");
	for (const char *const *e = req->env; e && *e; e++)
		bv_strv_env_set(&nr->env, *e);

	nr->workdir = req->workdir;
	if (!nr->workdir && json_is_string(json_object_get(cfg, "WorkingDir")) &&
	    json_string_value(json_object_get(cfg, "WorkingDir"))[0] == '/')
		nr->workdir = json_string_value(json_object_get(cfg, "WorkingDir"));

	for (size_t i = 0; i < req->n_mounts; i++)
		add_mount(nr, req->mounts[i].host, req->mounts[i].target, req->mounts[i].read_only);
	if (req->gpu && (r = plan_gpu(nr, err)) < 0)
		return r;
	plan_identity(nr, rootfs);
	return 0;
}

/* stdout and stderr into memory files for BV_STDIO_CAPTURE; returns the saved fds. */
struct capture {
	int saved[3];
	int files[3];
};

static int capture_begin(struct capture *c, struct bv_error **err)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c->files[0] = null;
	c->files[1] = memfd_create("bv-stdout", MFD_CLOEXEC);
	c->files[2] = memfd_create("bv-stderr", MFD_CLOEXEC);
	for (int i = 0; i < 3; i++)
		c->saved[i] = -1;
	if (c->files[0] < 0 || c->files[1] < 0 || c->files[2] < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		c->saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
		if (c->saved[i] < 0 || dup2(c->files[i], i) < 0)
			goto fail;
	}
	return 0;
fail:;
	int r = bv_error_set_errno(err, "could not capture the output of the tool");
	for (int i = 0; i < 3; i++) {
		if (c->saved[i] >= 0) {
			dup2(c->saved[i], i);
			close(c->saved[i]);
		}
		if (c->files[i] >= 0)
			close(c->files[i]);
	}
	return r;
}

static int read_back(int fd, char **out, size_t *len)
{
	struct bv_buf b = BV_BUF_INIT;
	if (lseek(fd, 0, SEEK_SET) < 0 || bv_buf_read_fd(&b, fd, SIZE_MAX, NULL) < 0) {
		bv_buf_release(&b);
		return -1;
	}
	*out = bv_buf_detach(&b, len);
	return 0;
}

static int capture_end(struct capture *c, struct bv_run_result *res, struct bv_error **err)
{
	int r = 0;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 3; i++) {
		dup2(c->saved[i], i);
		close(c->saved[i]);
	}
	if (read_back(c->files[1], &res->out, &res->out_len) < 0 ||
	    read_back(c->files[2], &res->err, &res->err_len) < 0)
		r = bv_error_set_errno(err, "could not read the output of the tool");
	for (int i = 0; i < 3; i++)
		close(c->files[i]);
	return r;
}

/*
 * squashfs mode: a lease on the image file, its stamp checked against the record, and the
 * image mounted (in this process's new mount namespace, see squashfs.h) on a node-local
 * mount point, which becomes the root filesystem of the run.
 */
static int squashfs_rootfs(char **rootfs_out, json_t **config_out, int *lease,
			   const struct bv_image_spec *image, struct bv_error **err)
{
	_cleanup_free_ char *sqfs = NULL, *record = NULL, *local = NULL, *mnt = NULL;
	_cleanup_close_ int fd = -1;
	json_t *config = NULL;
	int r = bv_squashfs_paths(&sqfs, &record, image->digest, err);
	if (r >= 0)
		r = bv_retain_lease(lease, sqfs, err);
	if (r >= 0)
		r = bv_squashfs_open(&fd, &config, sqfs, record, err);
	if (r == BV_ENOTFOUND)
		r = bv_error_wrap(err, r, "the image of %s is not on this machine",
				  image->tool_id ? image->tool_id : image->reference);
	if (r >= 0)
		r = bv_local_dir(&local, err);
	if (r >= 0) {
		mnt = bv_path_join(local, "mnt");
		r = bv_mkdir_p(mnt, 0755, err);
	}
	if (r >= 0)
		r = bv_squashfs_mount(fd, mnt, err);
	if (r < 0) {
		json_decref(config);
		return r;
	}
	*config_out = config;
	*rootfs_out = TAKE_PTR(mnt);
	return 0;
}

static int native_run(struct bv_runtime *rt, const struct bv_run_request *req,
		      struct bv_run_result *out, struct bv_error **err)
{
	struct native_run nr = {.argv = BV_STRV_INIT,
				.env = BV_STRV_INIT,
				.strings = BV_STRV_INIT,
				.passwd = BV_BUF_INIT,
				.group = BV_BUF_INIT};
	struct bv_native_request nreq = {0};
	struct capture cap;
	_cleanup_free_ char *rootfs = NULL;
	_cleanup_close_ int lease = -1;
	json_t *config = NULL;
	int status = -1;
	enum bv_image_mode mode = image_mode();
	int r = mode == BV_IMAGE_SQUASHFS ? 0
					  : bv_install_rootfs_path(&rootfs, req->image.digest, err);
	(void)rt;
	if (r >= 0 && mode == BV_IMAGE_LOCAL_DIR) {
		_cleanup_free_ char *parent =
			bv_xstrndup(rootfs, (size_t)(strrchr(rootfs, '/') - rootfs));
		r = bv_mkdir_p(parent, 0755, err);
	}
	/* the lease first, so that prune cannot take the tree between the check and the run */
	if (r >= 0 && mode != BV_IMAGE_SQUASHFS)
		r = bv_retain_lease(&lease, rootfs, err);
	if (r >= 0 && mode == BV_IMAGE_LOCAL_DIR) {
		_cleanup_free_ char *used = NULL;
		r = local_rootfs(&used, &req->image, err);
		if (r >= 0 && strcmp(used, rootfs)) { /* the node is full: the shared tree */
			bv_closep(&lease);
			lease = -1;
			free(rootfs);
			rootfs = TAKE_PTR(used);
			r = bv_retain_lease(&lease, rootfs, err);
		}
	}
	if (r >= 0 && mode == BV_IMAGE_SQUASHFS)
		r = squashfs_rootfs(&rootfs, &config, &lease, &req->image, err);
	else if (r >= 0)
		r = check_rootfs(rootfs, &req->image, err);
	if (r >= 0)
		r = plan_run(&nr, rootfs, TAKE_PTR(config), req, err);
	if (r < 0)
		goto out;
	nreq.rootfs = rootfs;
	nreq.argv = (const char *const *)nr.argv.v;
	nreq.env = (const char *const *)nr.env.v;
	nreq.workdir = nr.workdir;
	nreq.mounts = nr.mounts;
	nreq.n_mounts = nr.n_mounts;
	nreq.files = nr.files;
	nreq.n_files = nr.n_files;
	if (req->stdio == BV_STDIO_CAPTURE) {
		r = capture_begin(&cap, err);
		if (r < 0)
			goto out;
		r = bv_native_run(&status, &nreq, err);
		int c = capture_end(&cap, out, r < 0 ? NULL : err);
		if (r >= 0)
			r = c;
	} else if (req->may_replace_process) {
		fflush(stdout);
		fflush(stderr);
		r = bv_native_exec(&nreq, err);
	} else {
		r = bv_native_run(&status, &nreq, err);
	}
	if (r >= 0)
		out->status = status;
out:
	native_run_release(&nr);
	return r;
}

static const struct bv_runtime_ops native_ops = {
	.name = "native",
	.is_usable = native_is_usable,
	.health = native_health,
	.ensure = native_ensure,
	.is_available = native_is_available,
	.inspect = native_inspect,
	.run = native_run,
	.remove = native_remove,
	.image_sources = native_image_sources,
	.free = native_free,
};

int bv_runtime_native_new(struct bv_runtime **out, struct bv_error **err)
{
	struct bv_runtime *rt = bv_xcalloc(1, sizeof(*rt));
	(void)err;
	rt->ops = &native_ops;
	*out = rt;
	return 0;
}
