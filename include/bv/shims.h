/*
 * bv/shims.h - the project's .bv/bin: one entry per binary of bv.lock's binary index, so
 * that `samtools ...` runs `bv run samtools ...` once .bv/bin is on PATH (bv exec, bv shell).
 *
 * Calling sequence (add, remove, lock, sync, update, exec):
 *   if (bv_shims_write(project_root, lock, &err) < 0) ...
 *   if (!bv_shims_current(project_root, lock)) ...     exec's auto-sync check
 *
 * Each shim is a symbolic link to the running bv executable (/proc/self/exe), which
 * dispatches on argv[0]: no shell starts, so a shim costs what bv run costs, and it finds
 * its project from its own path, the working directory or BV_PROJECT_ROOT (upstream's shell
 * scripts work only from the project root).  The directory is built next to the old one and
 * swapped in with renameat2(RENAME_EXCHANGE), so a concurrent shell never sees it half
 * written.  ".bv/" is added to the project's .gitignore (created when missing), as upstream
 * does.
 *
 * Ownership: arguments are borrowed.
 *
 * Errors: 0 or a negative code; a binary name that could not be a file name is BV_EINVALID.
 */
#ifndef BV_SHIMS_H
#define BV_SHIMS_H

#include <stdbool.h>

struct bv_error;
struct bv_lockfile;

int bv_shims_write(const char *project_root, const struct bv_lockfile *lock, struct bv_error **err);

/*
 * Whether .bv/bin holds exactly one link per binary of `lock`, each pointing at this bv.  A
 * positive answer is remembered in .bv/bin.ok (the directory's dev, inode, mtime and ctime, a
 * hash of the names and the bv path), written only for a directory whose ctime had settled;
 * while all of it still matches, the links are not read again.
 */
bool bv_shims_current(const char *project_root, const struct bv_lockfile *lock);

/*
 * The directory to put on PATH for the shims of the project at `project_root`: its .bv/bin,
 * or, when that path holds a ':' (which PATH cannot carry), a symbolic link to it at
 * <cache>/path/<sha256(.bv/bin)[:32]>, created or repaired here.  BV_EINVALID when the cache
 * path has a ':' too.  *out is new and the caller's.
 */
int bv_shims_path_dir(char **out, const char *project_root, struct bv_error **err);

#endif
