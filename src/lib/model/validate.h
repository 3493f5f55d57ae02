/*
 * validate.h - the one check for every untrusted string that becomes a path, a mount, an
 * argument, an environment entry, a label or a shell word.
 *
 * Registry manifests come from a public repository that anyone can send changes to, and
 * bv.toml and bv.lock from whoever committed them.  Their readers (manifest.c, lockfile.c,
 * project.c, services.c) apply these rules as they load a file, so a value that could climb
 * out of a directory ("../../home"), add a mount option (','), split a PATH (':') or start
 * an option ("-rf") never reaches the code that builds paths, mounts and commands, and every
 * refusal names the file, line and key.  Code that joins such a value to a directory still
 * resolves the result beneath that directory (bv_fs_check_beneath) as a second wall.
 *
 * Calling sequence (in a reader):
 *   if (!bv_valid_name(id))
 *       return bv_schema_fail(s, pos, "invalid tool id '%s': %s", id, BV_NAME_RULE);
 *   if (!bv_valid_container_path(mount_path, &why))
 *       return bv_schema_fail(s, pos, "invalid 'mount_path' '%s': %s", mount_path, why);
 *   if (bv_shadows_system_command(binary)) ...    refused unless [binary_overrides] names it
 *
 * Ownership: nothing is allocated; `why` points at a static string.
 *
 * Errors: the predicates only answer; the caller words the error (file, key, rule).
 */
#ifndef BV_LIB_VALIDATE_H
#define BV_LIB_VALIDATE_H

#include <stdbool.h>

/* The longest name accepted: longer ids and versions are not in any registry. */
#define BV_NAME_MAX 128

/* What bv_valid_name() accepts, for messages. */
#define BV_NAME_RULE                                                                         \
	"use letters, digits, '.', '_', '+' and '-', starting with a letter, digit or '_', " \
	"at most 128 characters"

/*
 * Tool ids, versions, dataset ids and versions, binary, subcommand, service and session
 * names: the characters of a file name that no shell, PATH, mount option or label treats
 * specially, not starting with '.' or '-' (so never ".", "..", a hidden file or an option).
 */
bool bv_valid_name(const char *s);

/*
 * A path inside a container where bv mounts something (reference data, caches, volumes):
 * absolute, clean (no empty, "." or ".." component, no trailing '/'), not "/" itself, not in
 * /proc, /sys or /dev, without ',' or ':' (mount and bind syntax) or control characters,
 * shorter than 1024 bytes.  On refusal *why says which rule failed.
 */
bool bv_valid_container_path(const char *s, const char **why);

/*
 * A host directory that a project file asks bv to mount into a tool ([[cache]] host_path,
 * a service volume), after '~' is expanded: absolute, clean, without ',', ':' or control
 * characters, and not "/", not `home` or a directory above it, not a hidden directory in
 * `home` (~/.ssh, ~/.gnupg, ~/.aws, ...) or anything in one, except ~/.cache.  A project from
 * someone else could otherwise hand the user's keys to its tools.  `home` may be NULL.
 */
bool bv_valid_host_mount(const char *path, const char *home, const char **why);

/*
 * Whether `name` is a core system command (sh, bash, env, ls, cat, cp, sudo, ...) that a tool
 * exposing it would replace inside `bv exec` and `bv shell`.  Such a binary is allowed only
 * when bv.toml's [binary_overrides] names it explicitly.
 */
bool bv_shadows_system_command(const char *name);

#endif
