/*
 * archive_loader.h - libarchive, loaded with dlopen() the first time bv unpacks a layer.
 *
 * Why not link it: Debian's libarchive brings libxml2, ICU and libstdc++ with it, and loading
 * them cost 4 ms at every start of bv (hyperfine: bv --version 2.2 ms without, 6.2 ms with).
 * Only `bv add`, `bv sync` and `bv update` unpack layers, so only they pay for it.  bv compiles
 * against libarchive's headers only and calls it through this table, filled from
 * "libarchive.so.13" on first use.  src/lib/oci/store/unpack.c routes its calls through the table
 * with macros, so the code reads as ordinary libarchive code.
 *
 * Calling sequence:
 *   if (!bv_archive_get(&err)) return BV_ERR;     then call libarchive as usual (unpack.c)
 *
 * The library stays loaded for the life of the process; a failed load is retried next time.
 * Errors: NULL with "could not load libarchive (libarchive.so.13): ...; install libarchive13".
 */
#ifndef BV_LIB_ARCHIVE_LOADER_H
#define BV_LIB_ARCHIVE_LOADER_H

#include <archive.h>
#include <archive_entry.h>

struct bv_error;

/* Every libarchive function bv calls. */
#define BV_ARCHIVE_FUNCTIONS(X)               \
	X(archive_entry_clear)                \
	X(archive_entry_copy_pathname)        \
	X(archive_entry_copy_stat)            \
	X(archive_entry_copy_symlink)         \
	X(archive_entry_filetype)             \
	X(archive_entry_free)                 \
	X(archive_entry_gid)                  \
	X(archive_entry_hardlink)             \
	X(archive_entry_mode)                 \
	X(archive_entry_mtime)                \
	X(archive_entry_mtime_is_set)         \
	X(archive_entry_mtime_nsec)           \
	X(archive_entry_new)                  \
	X(archive_entry_pathname)             \
	X(archive_entry_pathname_utf8)        \
	X(archive_entry_rdev)                 \
	X(archive_entry_set_filetype)         \
	X(archive_entry_set_gid)              \
	X(archive_entry_set_hardlink)         \
	X(archive_entry_set_mtime)            \
	X(archive_entry_set_pathname)         \
	X(archive_entry_set_perm)             \
	X(archive_entry_set_size)             \
	X(archive_entry_set_symlink)          \
	X(archive_entry_set_uid)              \
	X(archive_entry_size)                 \
	X(archive_entry_sparse_count)         \
	X(archive_entry_symlink)              \
	X(archive_entry_uid)                  \
	X(archive_entry_xattr_next)           \
	X(archive_entry_xattr_reset)          \
	X(archive_errno)                      \
	X(archive_error_string)               \
	X(archive_read_data_block)            \
	X(archive_read_free)                  \
	X(archive_read_new)                   \
	X(archive_read_next_header)           \
	X(archive_read_open)                  \
	X(archive_read_open_fd)               \
	X(archive_read_support_filter_bzip2)  \
	X(archive_read_support_filter_gzip)   \
	X(archive_read_support_filter_none)   \
	X(archive_read_support_filter_xz)     \
	X(archive_read_support_filter_zstd)   \
	X(archive_read_support_format_empty)  \
	X(archive_read_support_format_gnutar) \
	X(archive_read_support_format_raw)    \
	X(archive_read_support_format_tar)    \
	X(archive_read_support_format_zip)    \
	X(archive_write_close)                \
	X(archive_write_data)                 \
	X(archive_write_free)                 \
	X(archive_write_header)               \
	X(archive_write_new)                  \
	X(archive_write_open_fd)              \
	X(archive_write_set_format_pax_restricted)

struct bv_archive_api {
#define BV_ARCHIVE_FIELD(f) __typeof__(f) *f; /* NOLINT(bugprone-macro-parentheses): a name */
	BV_ARCHIVE_FUNCTIONS(BV_ARCHIVE_FIELD)
#undef BV_ARCHIVE_FIELD
};

/* The table once loaded (NULL before); unpack.c's macros read it. */
extern const struct bv_archive_api *bv_archive_api;

const struct bv_archive_api *bv_archive_get(struct bv_error **err);

#endif
