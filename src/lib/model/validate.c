/*
 * validate.c - rules for untrusted names and container paths (see validate.h).
 */
#include "lib/model/validate.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

#include "util/banned.h"

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

bool bv_valid_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '.' || *s == '-' || *s == '+')
		return false;
	for (; s[n]; n++)
		if (n >= BV_NAME_MAX || !name_char(s[n]))
			return false;
	return true;
}

/* Mounting over these would take the container's view of the kernel and devices. */
static const char *const system_mounts[] = {"/proc", "/sys", "/dev"};

bool bv_valid_container_path(const char *s, const char **why)
{
	const char *p;
	const char *dummy;

	if (!why)
		why = &dummy;
	if (!s || s[0] != '/') {
		*why = "it must be an absolute path";
		return false;
	}
	if (!s[1]) {
		*why = "it would hide the whole image";
		return false;
	}
	if (strlen(s) >= 1024) {
		*why = "it is too long";
		return false;
	}
	for (p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f || c == ',' || c == ':') {
			*why = "it contains ',', ':' or a control character";
			return false;
		}
	}
	for (p = s; *p;) {
		const char *start = p + 1;
		const char *end = strchrnul(start, '/');
		size_t len = (size_t)(end - start);
		if (!len || (len == 1 && start[0] == '.') ||
		    (len == 2 && start[0] == '.' && start[1] == '.')) {
			*why = "it must not contain empty, '.' or '..' components";
			return false;
		}
		p = end;
	}
	for (size_t i = 0; i < BV_ARRAY_SIZE(system_mounts); i++) {
		size_t len = strlen(system_mounts[i]);
		if (!strncmp(s, system_mounts[i], len) && (!s[len] || s[len] == '/')) {
			*why = "bv mounts /proc, /sys and /dev itself";
			return false;
		}
	}
	return true;
}

/* Whether `path` is `dir` or below it ("/a/b" is below "/a", "/ab" is not). */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/' || n == 1);
}

bool bv_valid_host_mount(const char *path, const char *home, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	if (!bv_valid_container_path(path, why)) {
		/* the same shape rules; /proc, /sys and /dev are refused on the host side too */
		if (path && path[0] == '/' && !path[1])
			*why = "it is the whole file system";
		return false;
	}
	if (home && home[0] == '/') {
		size_t n = strlen(home);
		while (n > 1 && home[n - 1] == '/')
			n--;
		if (path_within(home, path)) {
			*why = "it is your home directory or above it";
			return false;
		}
		if (n > 1 && !strncmp(path, home, n) && path[n] == '/' && path[n + 1] == '.') {
			const char *rest = path + n + 1;
			if (strncmp(rest, ".cache", 6) || (rest[6] && rest[6] != '/')) {
				*why = "it is in a hidden directory of your home, where keys and "
				       "settings live";
				return false;
			}
		}
	}
	return true;
}

/*
 * Commands that scripts, shells and people expect to be the system's own.  Kept sorted for
 * bsearch; a tool may still expose one when bv.toml's [binary_overrides] names it.
 */
static const char *const system_commands[] = {
	"[",     "awk",   "basename", "bash",   "cat",   "cd",     "chgrp",    "chmod",    "chown",
	"cp",    "curl",  "cut",      "dash",   "date",  "dd",     "df",       "dirname",  "doas",
	"du",    "echo",  "env",      "false",  "find",  "git",    "grep",     "gzip",     "head",
	"id",    "kill",  "ln",       "login",  "ls",    "mkdir",  "mktemp",   "mount",    "mv",
	"nice",  "nohup", "passwd",   "printf", "ps",    "pwd",    "readlink", "realpath", "rm",
	"rmdir", "scp",   "sed",      "sh",     "sleep", "sort",   "ssh",      "stat",     "su",
	"sudo",  "tail",  "tar",      "tee",    "test",  "touch",  "tr",       "true",     "umount",
	"uname", "uniq",  "wc",       "wget",   "which", "whoami", "xargs",    "zsh",
};

static int compare_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool bv_shadows_system_command(const char *name)
{
	return name && bsearch(&name, system_commands, BV_ARRAY_SIZE(system_commands),
			       sizeof(system_commands[0]), compare_name) != NULL;
}
