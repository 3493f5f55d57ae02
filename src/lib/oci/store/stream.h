/*
 * stream.h - unpacking a layer while it downloads: one child process per layer in flight.
 *
 * Why a process: bv has no threads, libcurl pushes bytes into the parent while libarchive
 * pulls them through a blocking read callback.  The child reads the partial blob file as it
 * grows (bv_unpack_layer_from(): pread, page-cache hits, no second read from disk) and
 * writes the layer tree in a staging directory; the parent keeps downloading, hashing and
 * writing.  The tree is published only after the parent has verified the blob's digest and
 * published the blob, and says so.
 *
 * Calling sequence (the registry client, src/lib/oci/registry/registry.c):
 *   bv_unpack_stream_start(&s, partial_path, size, media_type, "<cache>/layers/<hex>",
 *                          digest, &err);           after bv_store_ingest_begin()
 *   bv_unpack_stream_notify(s, bytes_in_file);      after each bv_store_ingest_write()
 *   bv_unpack_stream_verdict(s, true);              after bv_store_ingest_commit() succeeded
 *   ... bv_unpack_stream_ready(s) says whether the child is done (poll, no wait) ...
 *   bv_unpack_stream_finish(s, &err);               waits: 0 when the tree is in place
 * or, when the download fails, is reset or restarts:
 *   bv_unpack_stream_abort(s);                      the child discards its staging tree
 *
 * Protocol, over a socketpair: the parent sends 'n' (more bytes may be in the file, at most
 * every 256 KiB and at the end), then 'C' (the digest matched) or 'A' (discard).  End of
 * file without 'C' (the parent died, even by kill -9) is an abort: the child removes its
 * staging tree and exits, so nothing unverified is ever published.  The child answers once,
 * when it is done: a status code and a message.  A child killed itself leaves
 * "<tree>.tmp-<pid>", which the next unpack of that layer removes (unpack.c, clean_stale).
 *
 * The child closes every descriptor it does not need (the parent's sockets and locks stay
 * the parent's), ignores SIGINT, SIGQUIT, SIGHUP and SIGTERM (it ends with its parent) and
 * leaves with _exit().  libarchive is loaded in the parent, before the first fork.
 *
 * Ownership: a stream is freed by bv_unpack_stream_finish() or bv_unpack_stream_abort().
 *
 * Errors: start fails (and the caller downloads without streaming) when the child cannot be
 * made; finish returns the child's error (BV_EINVALID for a bad layer, as
 * bv_unpack_layer() would), which callers may drop and unpack from the store instead.
 */
#ifndef BV_LIB_OCI_STORE_STREAM_H
#define BV_LIB_OCI_STORE_STREAM_H

#include <stdbool.h>
#include <stdint.h>

struct bv_error;
struct bv_unpack_stream;

int bv_unpack_stream_start(struct bv_unpack_stream **out, const char *partial_path, uint64_t size,
			   const char *media_type, const char *dest_dir, const char *digest,
			   struct bv_error **err);

/* `have`: bytes in the file now. */
void bv_unpack_stream_notify(struct bv_unpack_stream *s, uint64_t have);

/* Says once whether the blob was verified and published (true) or not. */
void bv_unpack_stream_verdict(struct bv_unpack_stream *s, bool ok);

/* Whether the child has answered, so that finish will not wait for long. */
bool bv_unpack_stream_ready(const struct bv_unpack_stream *s);

int bv_unpack_stream_finish(struct bv_unpack_stream *s, struct bv_error **err);

/* Accepts NULL. */
void bv_unpack_stream_abort(struct bv_unpack_stream *s);

#endif
