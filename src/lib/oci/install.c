#include <bv/error.h>
#include <bv/paths.h>
#include <bv/store.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/registry/registry-internal.h"
#include "lib/oci/store/seal.h"
#include "lib/oci/store/unpack-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether `digest` is valid (bv_digest_valid), with its hex copied to `hex` (not terminated). */
static bool digest_hex_copy(char *hex, const char *digest)
{
	if (!bv_digest_valid(digest))
		return false;
	memcpy(hex, digest + sizeof(BV_DIGEST_PREFIX) - 1, BV_SHA256_HEX_LEN);
	return true;
}

/* "<root>/rootfs/", and the platform, with '/' made '-' */
static void namer_init_at(struct bv_install_rootfs_namer *n, const char *root)
{
	const char *platform = bv_registry_default_platform();
	size_t root_len = strlen(root), platform_len = strlen(platform);
	memset(n, 0, sizeof(*n));
	n->dir_len = root_len + strlen("/rootfs");
	n->name_len = BV_SHA256_HEX_LEN + 1 + platform_len;
	n->path = bv_xmalloc(n->dir_len + 1 + n->name_len + sizeof(BV_SEAL_SUFFIX));
	memcpy(n->path, root, root_len);
	memcpy(n->path + root_len, "/rootfs/", strlen("/rootfs/"));
	memset(n->path + n->dir_len + 1, '0', BV_SHA256_HEX_LEN);
	/* The platform is part of the name: one cache may serve amd64 and arm64 nodes. */
	n->path[n->dir_len + 1 + BV_SHA256_HEX_LEN] = '-';
	for (size_t i = 0; i < platform_len; i++)
		n->path[n->dir_len + 2 + BV_SHA256_HEX_LEN + i] =
			platform[i] == '/' ? '-' : platform[i];
	n->path[n->dir_len + 1 + n->name_len] = '\0';
}

int bv_install_rootfs_namer_init(struct bv_install_rootfs_namer *n, struct bv_error **err)
{
	enum bv_image_mode mode;
	_cleanup_free_ char *root = NULL;
	int r = bv_image_mode(&mode, err);
	memset(n, 0, sizeof(*n)); /* released safely whatever happens */
	if (r < 0)
		return r;
	r = mode == BV_IMAGE_LOCAL_DIR ? bv_local_dir(&root, err) : bv_cache_dir(&root, err);
	if (r < 0 || !root) /* never both 0 and NULL; said for the analyzer */
		return r < 0 ? r : BV_ERR;
	namer_init_at(n, root);
	return 0;
}

int bv_install_rootfs_namer_path(struct bv_install_rootfs_namer *n, const char *top_digest,
				 struct bv_error **err)
{
	if (!digest_hex_copy(n->path + n->dir_len + 1, top_digest))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid image digest '%s'",
				     top_digest ? top_digest : "(null)");
	return 0;
}

void bv_install_rootfs_namer_release(struct bv_install_rootfs_namer *n)
{
	free(n->path);
	n->path = NULL;
}

/* "<root>/rootfs/<hex>-<platform>": the trees of an image below `root` (cache or local). */
static int rootfs_below(char **out, const char *root, const char *top_digest, struct bv_error **err)
{
	struct bv_install_rootfs_namer n;
	int r;
	namer_init_at(&n, root);
	r = bv_install_rootfs_namer_path(&n, top_digest, err);
	if (r >= 0)
		*out = TAKE_PTR(n.path); /* terminated after the name */
	bv_install_rootfs_namer_release(&n);
	return r;
}

int bv_install_shared_rootfs_path(char **out, const char *top_digest, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL;
	int r = bv_cache_dir(&cache, err);
	return r < 0 ? r : rootfs_below(out, cache, top_digest, err);
}

int bv_install_shared_rootfs_dir(char **out, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL;
	int r = bv_cache_dir(&cache, err);
	if (r >= 0)
		*out = bv_path_join(cache, "rootfs");
	return r;
}

int bv_install_rootfs_path(char **out, const char *top_digest, struct bv_error **err)
{
	struct bv_install_rootfs_namer n;
	int r = bv_install_rootfs_namer_init(&n, err);
	if (r >= 0)
		r = bv_install_rootfs_namer_path(&n, top_digest, err);
	if (r >= 0 && !n.path) /* never: said for the analyzer */
		r = BV_ERR;
	if (r >= 0)
		*out = TAKE_PTR(n.path);
	bv_install_rootfs_namer_release(&n);
	return r < 0 ? r : 0;
}

void bv_install_item_release(struct bv_install_item *it)
{
	free(it->top_digest);
	for (size_t i = 0; i < it->n_layers; i++) {
		free(it->layers[i].media_type);
		free(it->layers[i].digest);
	}
	free(it->layers);
	free(it->rootfs);
	it->top_digest = it->rootfs = NULL;
	it->layers = NULL;
	it->n_layers = 0;
}

static void copy_result(struct bv_install_item *it, const struct bv_resolved *r, bool by_platform)
{
	it->top_digest = bv_xstrdup(by_platform ? r->manifest_digest : r->top_digest);
	it->size = (int64_t)r->total_size;
	it->layers = bv_xcalloc(r->n_layers + 1, sizeof(*it->layers));
	for (size_t i = 0; i < r->n_layers; i++) {
		it->layers[i].media_type = bv_xstrdup(r->layers[i].media_type);
		it->layers[i].digest = bv_xstrdup(r->layers[i].digest);
		it->layers[i].size = r->layers[i].size;
	}
	it->n_layers = r->n_layers;
}

/*
 * The image config (Env, WorkingDir, Entrypoint, Cmd) next to the rootfs, written before the
 * rootfs appears, so that a run reads one small file instead of walking the store.
 */
static int save_config(const struct bv_store *store, const struct bv_resolved *r,
		       const char *rootfs, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf config = BV_BUF_INIT;
	_cleanup_free_ char *path = bv_install_config_path(rootfs);
	_cleanup_free_ char *parent = bv_xstrndup(rootfs, (size_t)(strrchr(rootfs, '/') - rootfs));
	int rc = bv_store_read_blob(&config, store, r->config.digest, 4u << 20, err);
	if (rc >= 0)
		rc = bv_mkdir_p(parent, 0755, err);
	if (rc >= 0)
		rc = bv_write_file_atomic(path, config.buf, config.len, 0644, err);
	return rc;
}

char *bv_install_config_path(const char *rootfs)
{
	return bv_xasprintf("%s.json", rootfs);
}

/* "<root>" of "<root>/rootfs/<name>": where the layer trees of that root filesystem are. */
static char *trees_root(const char *rootfs)
{
	char *root = bv_xstrdup(rootfs);
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(root, '/');
		if (slash)
			*slash = '\0';
	}
	return root;
}

/*
 * Where unpack() puts layer trees ("<root>/layers" beside "<root>/rootfs/<image>"), so that
 * the pull unpacks each layer there while it downloads; derived from the rootfs path, so it
 * follows wherever that path is.
 */
static int layers_dir_for_pull(char **out, struct bv_error **err)
{
	static const char any[] =
		"sha256:"
		"0000000000000000000000000000000000000000000000000000000000000000";
	_cleanup_free_ char *rootfs = NULL, *root = NULL;
	int r = bv_install_rootfs_path(&rootfs, any, err);
	if (r < 0 || !rootfs) /* never both 0 and NULL; said for the analyzer */
		return r < 0 ? r : BV_ERR;
	root = trees_root(rootfs);
	*out = bv_path_join(root, "layers");
	return 0;
}

/*
 * Resolves a pin from the store alone: the pinned document, this platform's manifest of an
 * index, its config and layers all present (each was verified when it was published).  That
 * is what lets an offline sync unpack what `bv sync --from` or an earlier pull brought; any
 * gap sends the caller to the registry.
 */
static int resolve_local(struct bv_resolved *out, const struct bv_store *store, const char *pin,
			 const char *platform)
{
	_cleanup_buf_ struct bv_buf top = BV_BUF_INIT, image = BV_BUF_INIT;
	struct bv_resolved res = {0}, idx = {0};
	_cleanup_free_ char *manifest = bv_xstrdup(pin);
	bool ok;
	if (!bv_store_has_blob(store, pin) ||
	    bv_store_read_blob(&top, store, pin, BV_REGISTRY_MANIFEST_MAX, NULL) < 0 ||
	    bv_registry_parse_document(&idx, top.buf, top.len, platform, NULL) < 0)
		return BV_ENOTFOUND;
	if (!idx.config.digest) { /* an index: idx names this platform's manifest */
		free(manifest);
		manifest = idx.manifest_digest ? bv_xstrdup(idx.manifest_digest) : NULL;
		if (!manifest || !bv_store_has_blob(store, manifest) ||
		    bv_store_read_blob(&image, store, manifest, BV_REGISTRY_MANIFEST_MAX, NULL) <
			    0 ||
		    bv_registry_parse_document(&res, image.buf, image.len, platform, NULL) < 0 ||
		    !res.config.digest) {
			bv_resolved_release(&idx);
			bv_resolved_release(&res);
			return BV_ENOTFOUND;
		}
		res.platform = TAKE_PTR(idx.platform);
		bv_resolved_release(&idx);
	} else {
		res = idx;
		bv_buf_add(&image, top.buf, top.len);
	}
	ok = bv_store_has_blob(store, res.config.digest);
	for (size_t i = 0; ok && i < res.n_layers; i++)
		ok = bv_store_has_blob(store, res.layers[i].digest);
	if (!ok) {
		bv_resolved_release(&res);
		return BV_ENOTFOUND;
	}
	free(res.top_digest);
	free(res.manifest_digest);
	res.top_digest = bv_xstrdup(pin);
	res.manifest_digest = TAKE_PTR(manifest);
	res.manifest_size = image.len;
	*out = res;
	return 0;
}

/*
 * Unpacks every layer of `r` once, then the image's root filesystem at it->rootfs; the layer
 * trees go next to it ("<root>/layers", see trees_root()), in the cache or node-local.
 *
 * Under an exclusive lock per root filesystem ("<root>/locks/unpack-<name>.lock", so on the
 * node for node-local trees): the unpack itself tolerates racing processes (the loser
 * discards its copy), but on a cluster many tasks sync one cold cache at once, and each would
 * otherwise unpack the whole image in parallel on the shared file system.  A waiter finds the
 * sealed trees and returns at once.
 */
static int unpack(struct bv_install_item *it, const struct bv_store *store,
		  const struct bv_resolved *r, struct bv_error **err)
{
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	_cleanup_strv_ struct bv_strv trees = BV_STRV_INIT;
	_cleanup_free_ char *cache = trees_root(it->rootfs);
	const char *name = strrchr(it->rootfs, '/');
	_cleanup_free_ char *lock_dir = bv_path_join(cache, "locks");
	_cleanup_free_ char *lock_path =
		bv_xasprintf("%s/unpack-%s.lock", lock_dir, name ? name + 1 : it->rootfs);
	struct bv_lock lk = BV_LOCK_INIT;
	int rc = bv_mkdir_p(lock_dir, 0755, err);
	if (rc >= 0)
		rc = bv_lock_acquire(&lk, lock_path, BV_LOCK_EXCLUSIVE, true, err);
	if (rc < 0)
		return bv_error_wrap(err, rc, "could not unpack '%s' for %s", it->reference,
				     it->tool_id);
	if (is_dir(it->rootfs) && bv_unpack_is_sealed(it->rootfs)) {
		bv_lock_release(&lk); /* another process built it while we waited */
		return 0;
	}
	/*
	 * Where every run mounts the project: made in the image, a run needs no overlay to
	 * create it (bv_native_run), which saves a millisecond or two per run.
	 */
	o.mount_point = "workspace";
	for (size_t i = 0; i < r->n_layers && rc >= 0; i++) {
		const char *tree =
			bv_strv_pushf(&trees, "%s/layers/%s", cache, r->layers[i].digest + 7);
		_cleanup_free_ char *blob = bv_store_blob_path(store, r->layers[i].digest);
		rc = bv_unpack_layer(blob, r->layers[i].media_type, tree, &o, err);
	}
	if (rc >= 0)
		rc = save_config(store, r, it->rootfs, err);
	if (rc >= 0)
		rc = bv_unpack_image((const char *const *)trees.v, trees.n, it->rootfs, &o, err);
	bv_lock_release(&lk);
	if (rc < 0)
		return bv_error_wrap(err, rc, "could not unpack '%s' for %s", it->reference,
				     it->tool_id);
	return 0;
}

static bool disk_full(const struct bv_error *e)
{
	int no = bv_error_errno(e);
	return no == ENOSPC || no == EDQUOT;
}

/*
 * local_dir mode: it->rootfs is node-local, and so is the lock unpack() takes, so one
 * process per node unpacks.  A node-local disk that fills up sends the image to the shared
 * tree in the cache, with one warning.
 */
static int unpack_local(struct bv_install_item *it, const struct bv_store *store,
			const struct bv_resolved *r, struct bv_error **err)
{
	_cleanup_free_ char *root = trees_root(it->rootfs);
	struct bv_error *local_err = NULL;
	int rc = unpack(it, store, r, &local_err);
	if (rc >= 0 || !disk_full(local_err)) {
		if (rc < 0 && err && !*err)
			*err = local_err;
		else
			bv_error_free(local_err);
		return rc;
	}
	bv_logf(BV_LOG_WARN,
		"the node-local directory '%s' is full; %s runs from the shared tree in the cache",
		root, it->tool_id ? it->tool_id : it->reference);
	bv_error_free(local_err);
	free(it->rootfs);
	it->rootfs = NULL;
	rc = bv_install_shared_rootfs_path(&it->rootfs, it->top_digest, err);
	if (rc < 0 || (is_dir(it->rootfs) && bv_unpack_is_sealed(it->rootfs)))
		return rc;
	return unpack(it, store, r, err);
}

static int unpack_here(struct bv_install_item *it, const struct bv_store *store,
		       const struct bv_resolved *r, struct bv_error **err)
{
	enum bv_image_mode mode;
	int rc = bv_image_mode(&mode, err);
	if (rc < 0)
		return rc;
	return mode == BV_IMAGE_LOCAL_DIR ? unpack_local(it, store, r, err)
					  : unpack(it, store, r, err);
}

/* ---- building several root filesystems at once ---------------------------------------- */

/*
 * The error chain of a builder process, sent whole to the parent so that what the user reads
 * is what the same failure prints without one: per level, outermost first, the code, the
 * errno and the message's length, then the message.
 */
struct wire_level {
	int32_t code, sys_errno;
	uint32_t len;
};

#define WIRE_MESSAGE_MAX (16u * 1024)
#define WIRE_LEVELS_MAX  64
#define WIRE_ANSWER_MAX  (1u << 20) /* more is not read: the decoder stops at a cut level */

/* The answer of a builder: its result, the root filesystem it built, and its error chain. */
static void wire_encode(struct bv_buf *b, int rc, const char *rootfs, const struct bv_error *e)
{
	struct wire_level head = {.code = rc, .len = rootfs ? (uint32_t)strlen(rootfs) : 0};
	bv_buf_add(b, &head, sizeof(head));
	if (head.len)
		bv_buf_add(b, rootfs, head.len);
	for (unsigned depth = 0; e && depth < WIRE_LEVELS_MAX; e = e->cause, depth++) {
		const char *msg = e->message ? e->message : "";
		struct wire_level l = {.code = e->code, .sys_errno = e->sys_errno};
		l.len = (uint32_t)strnlen(msg, WIRE_MESSAGE_MAX);
		bv_buf_add(b, &l, sizeof(l));
		bv_buf_add(b, msg, l.len);
	}
}

/* Rebuilds what wire_encode() wrote; a short or damaged answer is an error of its own. */
static int wire_decode(const struct bv_buf *b, char **rootfs, struct bv_error **err)
{
	struct wire_level head, l;
	size_t pos = sizeof(head);
	struct bv_error *chain = NULL, **tail = &chain;
	int rc;

	if (b->len < sizeof(head))
		return bv_error_set(err, "a process building a root filesystem stopped "
					 "without an answer");
	memcpy(&head, b->buf, sizeof(head));
	if (head.len > b->len - pos)
		return bv_error_set(err, "a process building a root filesystem sent a "
					 "damaged answer");
	*rootfs = head.len ? bv_xstrndup(b->buf + pos, head.len) : NULL;
	pos += head.len;
	rc = head.code < 0 ? head.code : 0;
	while (rc < 0 && b->len - pos >= sizeof(l)) {
		struct bv_error *e;
		memcpy(&l, b->buf + pos, sizeof(l));
		pos += sizeof(l);
		if (l.len > b->len - pos)
			break;
		e = bv_xcalloc(1, sizeof(*e));
		e->code = l.code < 0 ? l.code : BV_ERR;
		e->sys_errno = l.sys_errno;
		e->message = bv_xstrndup(b->buf + pos, l.len);
		pos += l.len;
		*tail = e;
		tail = &e->cause;
	}
	if (rc < 0 && !chain)
		return bv_error_setc(err, rc, 0, "a process building a root filesystem failed");
	if (rc < 0 && err) {
		/* as bv_error_setc() does: an error left in *err is replaced */
		bv_error_free(*err);
		*err = chain;
	} else {
		bv_error_free(chain);
	}
	return rc;
}

struct builder {
	pid_t pid;
	int fd; /* the read end of the builder's pipe */
	size_t item;
	struct bv_buf answer;
};

__attribute__((noreturn)) static void builder_main(int fd, pid_t parent, struct bv_install_item *it,
						   const struct bv_store *store,
						   const struct bv_resolved *r)
{
	struct bv_error *e = NULL;
	struct bv_buf b = BV_BUF_INIT;
	int rc;

	/*
	 * Dies with bv: a tree cut short stays "<tree>.tmp-<pid>", which the next build
	 * removes (unpack.c), so nothing half-made is ever seen.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1); /* bv is gone already: nobody waits for this tree */
	bv_proc_default_signals();
	rc = unpack_here(it, store, r, &e);
	wire_encode(&b, rc, it->rootfs, rc < 0 ? e : NULL);
	(void)bv_write_all(fd, b.buf, b.len);
	_exit(0);
}

static int builder_start(struct builder *bd, size_t i, struct bv_install_item *it,
			 const struct bv_store *store, const struct bv_resolved *r,
			 struct bv_error **err)
{
	pid_t parent = getpid();
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return bv_error_set_errno(err, "could not make a pipe");
	fflush(NULL); /* what is buffered now is written once, by bv, not again by the child */
	bd->pid = fork();
	if (bd->pid < 0) {
		close(p[0]);
		close(p[1]);
		return bv_error_set_errno(err, "could not start a process to unpack '%s'",
					  it->reference);
	}
	if (bd->pid == 0) {
		close(p[0]);
		builder_main(p[1], parent, it, store, r);
	}
	close(p[1]);
	bd->fd = p[0];
	bd->item = i;
	bd->answer = (struct bv_buf)BV_BUF_INIT;
	return 0;
}

/*
 * Reads what the builder sent; at its end (1), reaps it and takes its result into the item:
 * the root filesystem (local_dir mode may have moved it to the shared tree) and any error.
 */
static int builder_read(struct builder *bd, struct bv_install_item *it, int *rc,
			struct bv_error **item_err)
{
	char buf[4096];
	ssize_t n = read(bd->fd, buf, sizeof(buf));
	int status;
	char *rootfs = NULL;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0) {
		if (bd->answer.len + (size_t)n <= WIRE_ANSWER_MAX)
			bv_buf_add(&bd->answer, buf, (size_t)n);
		return 0;
	}
	close(bd->fd);
	bd->fd = -1;
	while (waitpid(bd->pid, &status, 0) < 0 && errno == EINTR)
		;
	*rc = wire_decode(&bd->answer, &rootfs, item_err);
	bv_buf_release(&bd->answer);
	if (rootfs) {
		free(it->rootfs);
		it->rootfs = rootfs;
	}
	return 1;
}

/*
 * How many root filesystems are built at once: one per core (two at least, so that one
 * build's syncfs overlaps another's work), never more than the pull's jobs.
 */
static size_t builder_slots(unsigned jobs)
{
	cpu_set_t set;
	size_t slots = 2;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 2)
		slots = (size_t)CPU_COUNT(&set);
	if (jobs && slots > jobs)
		slots = jobs;
	return slots > 8 ? 8 : slots;
}

/*
 * Unpacks every item that is not present (it->rootfs set), each in a process of its own
 * when there are several, at most builder_slots() at once: the rootfs builds are system
 * calls and a syncfs each, which two cores do in about half the time.  Each builder takes
 * the same per-tree lock and writes the same trees as unpack_here() in this process would.
 * The first failing item (in item order) is the error, as when they are built one by one;
 * after a failure no more builders start.  Sequential when there is only one to build, or
 * when this process has a second thread and must not fork.
 */
static int unpack_all(struct bv_install_item *items, size_t n, const struct bv_store *store,
		      const struct bv_resolved *resolved, unsigned jobs, struct bv_error **err)
{
	size_t todo = 0, slots = builder_slots(jobs), next = 0, running = 0;
	struct builder *bds = NULL;
	struct bv_error **errs = NULL;
	int *rcs = NULL, r = 0;

	for (size_t i = 0; i < n; i++)
		todo += !items[i].present;
	if (todo < 2 || slots < 2 || !bv_proc_single_threaded()) {
		for (size_t i = 0; i < n && r >= 0; i++)
			if (!items[i].present)
				r = unpack_here(&items[i], store, &resolved[i], err);
		return r;
	}
	bds = bv_xcalloc(slots, sizeof(*bds));
	errs = bv_xcalloc(n, sizeof(*errs));
	rcs = bv_xcalloc(n, sizeof(*rcs));
	for (;;) {
		struct pollfd pfds[8];
		bool failed = false;
		for (size_t i = 0; i < n; i++)
			failed = failed || rcs[i] < 0;
		while (!failed && running < slots && next < n) {
			size_t i = next++;
			struct builder *bd = NULL;
			if (items[i].present)
				continue;
			for (size_t k = 0; k < slots && !bd; k++)
				if (!bds[k].pid)
					bd = &bds[k];
			rcs[i] = builder_start(bd, i, &items[i], store, &resolved[i], &errs[i]);
			if (rcs[i] < 0) {
				bd->pid = 0;
				failed = true;
			} else {
				running++;
			}
		}
		if (!running)
			break;
		for (size_t k = 0; k < slots; k++)
			pfds[k] = (struct pollfd){.fd = bds[k].pid ? bds[k].fd : -1,
						  .events = POLLIN};
		if (poll(pfds, (nfds_t)slots, -1) < 0 && errno != EINTR) {
			r = bv_error_set_errno(err, "could not wait for the unpacking processes");
			break;
		}
		for (size_t k = 0; k < slots; k++) {
			struct builder *bd = &bds[k];
			if (!bd->pid || !(pfds[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (builder_read(bd, &items[bd->item], &rcs[bd->item], &errs[bd->item])) {
				bd->pid = 0;
				running--;
			}
		}
	}
	/* a failed poll: the builders still running are told to stop, then reaped */
	for (size_t k = 0; k < slots; k++) {
		if (!bds[k].pid)
			continue;
		kill(bds[k].pid, SIGKILL);
		close(bds[k].fd);
		while (waitpid(bds[k].pid, NULL, 0) < 0 && errno == EINTR)
			;
		bv_buf_release(&bds[k].answer);
	}
	for (size_t i = 0; i < n; i++) {
		if (r >= 0 && rcs[i] < 0) {
			r = rcs[i];
			if (err) {
				bv_error_free(*err);
				*err = TAKE_PTR(errs[i]);
			}
		}
		bv_error_free(errs[i]);
	}
	free(bds);
	free(errs);
	free(rcs);
	return r;
}

int bv_install_local_tree(char **rootfs_out, const struct bv_install_item *image,
			  struct bv_error **err)
{
	struct bv_install_item it = {.tool_id = image->tool_id, .reference = image->reference};
	struct bv_resolved res = {0};
	struct bv_store *store = NULL;
	_cleanup_free_ char *problem = NULL, *root = NULL;
	bool damaged = false;
	int r = bv_install_rootfs_path(&it.rootfs, image->pinned, err);
	if (r < 0)
		return r;
	if (is_dir(it.rootfs) && bv_unpack_is_sealed(it.rootfs)) {
		/* cheap: names, types, modes and sizes against the seal, on local metadata */
		r = bv_seal_check(&problem, it.rootfs, true, err);
		if (r > 0) {
			*rootfs_out = TAKE_PTR(it.rootfs);
			return 0;
		}
		damaged = r == 0;
		if (damaged)
			bv_logf(BV_LOG_WARN,
				"the node-local tree '%s' is damaged (%s); unpacking it again",
				it.rootfs, problem ? problem : "differs from its seal");
	}
	if (r >= 0)
		r = bv_store_open(&store, NULL, err);
	if (r >= 0 && resolve_local(&res, store, image->pinned, NULL) < 0)
		r = bv_error_setc(err, BV_ENOTFOUND, 0,
				  "the image of %s (%s) is not in the cache; run 'bv sync' first",
				  image->tool_id ? image->tool_id : image->reference,
				  image->reference);
	if (r >= 0 && damaged) {
		/* a rootfs shares inodes with its layer trees: recheck those, unseal what is
		 * damaged */
		root = trees_root(it.rootfs);
		for (size_t i = 0; i < res.n_layers; i++) {
			_cleanup_free_ char *p = NULL,
					    *tree = bv_xasprintf("%s/layers/%s", root,
								 res.layers[i].digest + 7);
			if (bv_path_exists(tree))
				(void)bv_unpack_verify(&p, tree, true, true, NULL);
		}
		free(problem);
		problem = NULL;
		r = bv_unpack_verify(&problem, it.rootfs, true, true, err);
	}
	if (r >= 0) {
		it.top_digest = bv_xstrdup(image->pinned);
		r = unpack_local(&it, store, &res, err);
	}
	if (r >= 0)
		*rootfs_out = TAKE_PTR(it.rootfs);
	bv_resolved_release(&res);
	bv_store_free(store);
	free(it.rootfs);
	free(it.top_digest);
	return r < 0 ? r : 0;
}

bool bv_install_in_store(const char *top_digest)
{
	struct bv_store *store = NULL;
	struct bv_resolved res = {0};
	bool ok = bv_store_open(&store, NULL, NULL) >= 0 &&
		  resolve_local(&res, store, top_digest, NULL) == 0;
	bv_resolved_release(&res);
	bv_store_free(store);
	return ok;
}

int bv_install(struct bv_install_item *items, size_t n, const struct bv_install_options *o,
	       struct bv_error **err)
{
	struct bv_store *store = NULL;
	struct bv_mirrors *mirrors = NULL;
	struct bv_registry_client *client = NULL;
	struct bv_imageref *refs = bv_xcalloc(n + 1, sizeof(*refs));
	struct bv_resolved *resolved = bv_xcalloc(n + 1, sizeof(*resolved));
	struct bv_pull_request *reqs = bv_xcalloc(n + 1, sizeof(*reqs));
	size_t n_reqs = 0, n_refs = 0;
	_cleanup_free_ char *cache = NULL, *platform = NULL, *layers_dir = NULL;
	bool unpacks = o->mode == BV_INSTALL_FULL;
	int r = 0;

	if (o->platform) {
		r = bv_platform_normalize(&platform, o->platform, err);
		if (r < 0)
			goto out;
		unpacks = unpacks && bv_platform_matches(bv_registry_default_platform(), platform);
	}
	/* The fast path: pinned and unpacked already. */
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct bv_install_item *it = &items[i];
		it->size = -1;
		if (!it->pinned || !it->pinned[0] || !unpacks)
			continue;
		r = bv_install_rootfs_path(&it->rootfs, it->pinned, err);
		if (r >= 0 && is_dir(it->rootfs) && bv_unpack_is_sealed(it->rootfs)) {
			it->present = true;
			it->top_digest = bv_xstrdup(it->pinned);
		}
	}
	if (r < 0)
		goto out;

	for (size_t i = 0; i < n && r >= 0; i++) {
		struct bv_install_item *it = &items[i];
		struct bv_imageref *ref = &refs[i];
		if (it->present)
			continue;
		if (!store) {
			r = bv_cache_dir(&cache, err);
			if (r >= 0)
				r = bv_store_open(&store, NULL, err);
			if (r < 0)
				break;
		}
		if (o->mode == BV_INSTALL_FULL && it->pinned && it->pinned[0] &&
		    resolve_local(&resolved[i], store, it->pinned, platform) == 0) {
			copy_result(it, &resolved[i], platform != NULL);
			continue;
		}
		if (!client) {
			struct bv_registry_options ro = {0};
			r = bv_mirrors_load(&mirrors, err);
			if (r < 0)
				break;
			ro.store = store;
			ro.mirrors = mirrors;
			ro.jobs = o->jobs;
			ro.progress = o->progress;
			ro.progress_payload = o->progress_payload;
			/* layer trees are made while the layers download (see unpack() below) */
			if (unpacks)
				r = layers_dir_for_pull(&layers_dir, err);
			ro.unpack_dir = layers_dir;
			if (r >= 0)
				r = bv_registry_client_new(&client, &ro, err);
			if (r < 0)
				break;
		}
		r = bv_imageref_parse(ref, it->reference, err);
		if (r < 0) {
			r = bv_error_wrap(err, r, "tool '%s'", it->tool_id);
			break;
		}
		n_refs = i + 1;
		if (it->pinned && it->pinned[0]) {
			/* Pulling by digest is what makes the bytes verifiable against bv.lock. */
			free(ref->digest);
			ref->digest = bv_xstrdup(it->pinned);
		}
		r = bv_registry_resolve(&resolved[i], client, ref, platform, err);
		if (r < 0) {
			r = bv_error_wrap(err, r, "could not resolve '%s' for %s", it->reference,
					  it->tool_id);
			break;
		}
		if (it->pinned && it->pinned[0] && strcmp(resolved[i].top_digest, it->pinned)) {
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "'%s' for %s resolved to %s, but bv.lock pins %s",
					  it->reference, it->tool_id, resolved[i].top_digest,
					  it->pinned);
			break;
		}
		copy_result(it, &resolved[i], platform != NULL);
		if (o->mode == BV_INSTALL_FULL) {
			reqs[n_reqs].ref = ref;
			reqs[n_reqs++].resolved = &resolved[i];
		}
	}
	if (r >= 0 && n_reqs)
		r = bv_registry_pull(client, reqs, n_reqs, err);
	for (size_t i = 0; i < n && r >= 0 && unpacks; i++) {
		struct bv_install_item *it = &items[i];
		if (it->present)
			continue;
		free(it->rootfs);
		it->rootfs = NULL;
		r = bv_install_rootfs_path(&it->rootfs, it->top_digest, err);
	}
	if (r >= 0 && unpacks)
		r = unpack_all(items, n, store, resolved, o->jobs, err);
out:
	for (size_t i = 0; i < n; i++)
		bv_resolved_release(&resolved[i]);
	for (size_t i = 0; i < n_refs; i++)
		bv_imageref_release(&refs[i]);
	free(refs);
	free(resolved);
	free(reqs);
	bv_registry_client_free(client);
	bv_mirrors_free(mirrors);
	bv_store_free(store);
	return r < 0 ? r : 0;
}
