/*
 * archive_calls.h - routes every libarchive call in a file through the table that
 * archive_loader.c fills with dlopen(), so the file is written against the plain libarchive
 * API.  Include it after <archive.h> and <archive_entry.h>, and call bv_archive_get() before
 * the first call.  One list for every file, kept in step with BV_ARCHIVE_FUNCTIONS.
 */
#ifndef BV_LIB_ARCHIVE_CALLS_H
#define BV_LIB_ARCHIVE_CALLS_H

#include "lib/oci/store/archive_loader.h"

#define archive_entry_clear                (bv_archive_api->archive_entry_clear)
#define archive_entry_copy_pathname        (bv_archive_api->archive_entry_copy_pathname)
#define archive_entry_copy_stat            (bv_archive_api->archive_entry_copy_stat)
#define archive_entry_copy_symlink         (bv_archive_api->archive_entry_copy_symlink)
#define archive_entry_filetype             (bv_archive_api->archive_entry_filetype)
#define archive_entry_free                 (bv_archive_api->archive_entry_free)
#define archive_entry_gid                  (bv_archive_api->archive_entry_gid)
#define archive_entry_hardlink             (bv_archive_api->archive_entry_hardlink)
#define archive_entry_mode                 (bv_archive_api->archive_entry_mode)
#define archive_entry_mtime                (bv_archive_api->archive_entry_mtime)
#define archive_entry_mtime_is_set         (bv_archive_api->archive_entry_mtime_is_set)
#define archive_entry_mtime_nsec           (bv_archive_api->archive_entry_mtime_nsec)
#define archive_entry_new                  (bv_archive_api->archive_entry_new)
#define archive_entry_pathname             (bv_archive_api->archive_entry_pathname)
#define archive_entry_pathname_utf8        (bv_archive_api->archive_entry_pathname_utf8)
#define archive_entry_rdev                 (bv_archive_api->archive_entry_rdev)
#define archive_entry_set_filetype         (bv_archive_api->archive_entry_set_filetype)
#define archive_entry_set_gid              (bv_archive_api->archive_entry_set_gid)
#define archive_entry_set_hardlink         (bv_archive_api->archive_entry_set_hardlink)
#define archive_entry_set_mtime            (bv_archive_api->archive_entry_set_mtime)
#define archive_entry_set_pathname         (bv_archive_api->archive_entry_set_pathname)
#define archive_entry_set_perm             (bv_archive_api->archive_entry_set_perm)
#define archive_entry_set_size             (bv_archive_api->archive_entry_set_size)
#define archive_entry_set_symlink          (bv_archive_api->archive_entry_set_symlink)
#define archive_entry_set_uid              (bv_archive_api->archive_entry_set_uid)
#define archive_entry_size                 (bv_archive_api->archive_entry_size)
#define archive_entry_sparse_count         (bv_archive_api->archive_entry_sparse_count)
#define archive_entry_symlink              (bv_archive_api->archive_entry_symlink)
#define archive_entry_uid                  (bv_archive_api->archive_entry_uid)
#define archive_entry_xattr_next           (bv_archive_api->archive_entry_xattr_next)
#define archive_entry_xattr_reset          (bv_archive_api->archive_entry_xattr_reset)
#define archive_errno                      (bv_archive_api->archive_errno)
#define archive_error_string               (bv_archive_api->archive_error_string)
#define archive_read_data_block            (bv_archive_api->archive_read_data_block)
#define archive_read_free                  (bv_archive_api->archive_read_free)
#define archive_read_new                   (bv_archive_api->archive_read_new)
#define archive_read_next_header           (bv_archive_api->archive_read_next_header)
#define archive_read_open                  (bv_archive_api->archive_read_open)
#define archive_read_open_fd               (bv_archive_api->archive_read_open_fd)
#define archive_read_support_filter_bzip2  (bv_archive_api->archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip   (bv_archive_api->archive_read_support_filter_gzip)
#define archive_read_support_filter_none   (bv_archive_api->archive_read_support_filter_none)
#define archive_read_support_filter_xz     (bv_archive_api->archive_read_support_filter_xz)
#define archive_read_support_filter_zstd   (bv_archive_api->archive_read_support_filter_zstd)
#define archive_read_support_format_empty  (bv_archive_api->archive_read_support_format_empty)
#define archive_read_support_format_gnutar (bv_archive_api->archive_read_support_format_gnutar)
#define archive_read_support_format_raw    (bv_archive_api->archive_read_support_format_raw)
#define archive_read_support_format_tar    (bv_archive_api->archive_read_support_format_tar)
#define archive_read_support_format_zip    (bv_archive_api->archive_read_support_format_zip)
#define archive_write_close                (bv_archive_api->archive_write_close)
#define archive_write_data                 (bv_archive_api->archive_write_data)
#define archive_write_free                 (bv_archive_api->archive_write_free)
#define archive_write_header               (bv_archive_api->archive_write_header)
#define archive_write_new                  (bv_archive_api->archive_write_new)
#define archive_write_open_fd              (bv_archive_api->archive_write_open_fd)
#define archive_write_set_format_pax_restricted \
	(bv_archive_api->archive_write_set_format_pax_restricted)

#endif
