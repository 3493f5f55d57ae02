/*
 * bv/install.h - getting the images bv.lock pins onto this machine: resolve, pull, unpack.
 *
 * Calling sequence (bv sync, bv add, bv lock):
 *   struct bv_install_item items[n] = {{.tool_id = "samtools",
 *                                       .reference = "quay.io/biocontainers/samtools:1.21--0",
 *                                       .pinned = lock_entry->image_digest}, ...};
 *   struct bv_install_options o = {.mode = BV_INSTALL_FULL};
 *   if (bv_install(items, n, &o, &err) < 0) ...
 *   items[i].top_digest, .size, .layers, .rootfs
 *   bv_install_item_release(&items[i]);
 *
 * A pinned item whose root filesystem exists is done: nothing is opened but that directory,
 * which is what keeps a warm `bv sync` in the milliseconds.  Everything else is resolved
 * against its registry (mirrors and credentials as configured), pulled into the store in one
 * parallel transfer, and unpacked: each layer once into <cache>/layers/<hex>, each image into
 * <cache>/rootfs/<top hex>-<os>-<arch>[-<variant>] from hard links into the layer trees.  A
 * pinned item must resolve to its pin (pulling by digest verifies every byte); an unpinned
 * one records what its tag points to now.
 *
 * Platforms: without options.platform an index resolves to this machine's image and
 * top_digest is what the tag points to (the index itself for a multi-platform image, so one
 * bv.lock serves every platform).  With options.platform ("os/arch[/variant]", see
 * bv_platform_normalize()) the index resolves to that platform's image and top_digest is the
 * digest of that platform's manifest, a pin no other platform can be pulled under.  An image
 * for another platform than this machine's is pulled into the store but not unpacked (it
 * could not run here; a machine of that platform sharing the cache unpacks it from there).
 *
 * Where an image's root filesystem and its saved config are (for the backends that run from
 * them) is in src/lib/oci/install-internal.h, for the library and its tests only.
 *
 * Ownership: inputs are borrowed; outputs belong to the item until
 * bv_install_item_release().
 *
 * Errors: one error naming the tool and the image; nothing of a failed image becomes visible
 * (the store publishes verified blobs only, unpacking renames complete trees only).
 */
#ifndef BV_INSTALL_H
#define BV_INSTALL_H

#include <bv/registry.h>
#include <stdbool.h>
#include <stdint.h>

struct bv_error;

enum bv_install_mode {
	BV_INSTALL_FULL,         /* resolve, pull and unpack */
	BV_INSTALL_RESOLVE_ONLY, /* only what the tag points to (bv lock) */
};

struct bv_install_item {
	/* in */
	const char *tool_id;
	const char *reference; /* as the manifest writes it; tag kept */
	const char *pinned;    /* "sha256:..." or NULL/"" to resolve the tag */
	/* out */
	char *top_digest; /* bv.lock's image_digest (see Platforms above) */
	int64_t size;     /* config + layers, compressed; -1 when not looked up */
	struct bv_descriptor *layers;
	size_t n_layers;
	char *rootfs; /* the image's root filesystem (FULL mode; NULL for another platform) */
	bool present; /* was already installed */
};

struct bv_install_options {
	enum bv_install_mode mode;
	const char *platform; /* NULL: this machine's; else what the pins must be for */
	unsigned jobs;        /* 0: BV_JOBS, else 8 */
	bv_pull_progress_fn progress;
	void *progress_payload;
};

int bv_install(struct bv_install_item *items, size_t n, const struct bv_install_options *o,
	       struct bv_error **err);

void bv_install_item_release(struct bv_install_item *it);

#endif
