/*
 * paths.c - cache root, project discovery, "~" expansion and the caller's directory in a
 * container (see include/bv/paths.h and paths-internal.h).
 */
#include <bv/error.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/model/paths-internal.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Drops trailing slashes in place, keeping a lone "/". */
static char *strip_slashes(char *s)
{
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

bool bv_offline(void)
{
	const char *v = getenv("BV_OFFLINE");
	return v && v[0] && strcmp(v, "0") && strcmp(v, "false");
}

static const char *const image_modes[] = {"tree", "local_dir", "squashfs"};

const char *bv_image_mode_name(enum bv_image_mode mode)
{
	return image_modes[mode];
}

int bv_image_mode_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(image_modes) / sizeof(image_modes[0]); i++)
		if (!strcmp(name, image_modes[i]))
			return (int)i;
	return -1;
}

int bv_image_mode(enum bv_image_mode *out, struct bv_error **err)
{
	const char *v = env_nonempty("BV_IMAGE_MODE");
	int m = v ? bv_image_mode_parse(v) : BV_IMAGE_TREE;
	if (m < 0)
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"unknown BV_IMAGE_MODE '%s'; expected tree, local_dir or squashfs", v);
	*out = (enum bv_image_mode)m;
	return 0;
}

int bv_local_dir(char **out, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL, *base = NULL;
	const char *v = env_nonempty("BV_LOCAL_DIR");
	struct stat st;
	int r = bv_cache_dir(&cache, err);
	if (r < 0 || !cache) /* never both 0 and NULL; said for the analyzer */
		return r < 0 ? r : BV_ERR;
	if (!v)
		v = env_nonempty("TMPDIR");
	if (!v)
		v = stat("/local", &st) == 0 && S_ISDIR(st.st_mode) ? "/local" : "/tmp";
	if (v[0] != '/')
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the node-local directory '%s' is not an absolute path", v);
	base = strip_slashes(bv_xstrdup(v));
	*out = bv_xasprintf("%s/bv-%u/%016llx", strcmp(base, "/") ? base : "", (unsigned)getuid(),
			    (unsigned long long)bv_fnv1a64(cache, strlen(cache)));
	return 0;
}

int bv_offline_error(struct bv_error **err, const char *what)
{
	return bv_error_setc(err, BV_EINVALID, 0,
			     "cannot %s: bv is offline (--offline or BV_OFFLINE is set)", what);
}

char *bv_home_dir(void)
{
	const char *v = env_nonempty("HOME");
	const struct passwd *pw;
	if (v)
		return bv_xstrdup(v);
	pw = getpwuid(getuid());
	return pw && pw->pw_dir && pw->pw_dir[0] ? bv_xstrdup(pw->pw_dir) : NULL;
}

int bv_cache_dir(char **out, struct bv_error **err)
{
	_cleanup_free_ char *home = NULL;
	const char *v = env_nonempty("BV_CACHE_DIR");
	if (v) {
		*out = strip_slashes(bv_xstrdup(v));
		return 0;
	}
	v = env_nonempty("XDG_CACHE_HOME");
	if (v && v[0] == '/') {
		*out = strip_slashes(bv_path_join(v, "bv"));
		return 0;
	}
	home = bv_home_dir();
	if (home) {
		*out = strip_slashes(bv_path_join(home, ".cache/bv"));
		return 0;
	}
	return bv_error_setc(err, BV_ENOTFOUND, 0,
			     "cannot find a cache directory: set BV_CACHE_DIR or HOME");
}

int bv_project_find(char **root_out, const char *start_dir, struct bv_error **err)
{
	_cleanup_free_ char *start = NULL;
	_cleanup_free_ char *dir = NULL;

	if (start_dir) {
		start = realpath(start_dir, NULL);
		if (!start)
			return bv_error_set_errno(err, "could not resolve '%s'", start_dir);
	} else {
		start = getcwd(NULL, 0);
		if (!start)
			return bv_error_set_errno(err, "could not get the current directory");
	}
	dir = bv_xstrdup(start);
	for (;;) {
		_cleanup_free_ char *candidate = bv_path_join(dir, "bv.toml");
		struct stat st;
		char *slash;

		if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
			*root_out = TAKE_PTR(dir);
			return 0;
		}
		if (!strcmp(dir, "/"))
			break;
		slash = strrchr(dir, '/');
		if (!slash)
			break; /* realpath() and getcwd() return absolute paths; defensive */
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	/* no bv.toml anywhere above: a directory with only a bv.lock is a project too */
	free(dir);
	dir = bv_xstrdup(start);
	for (;;) {
		_cleanup_free_ char *candidate = bv_path_join(dir, "bv.lock");
		struct stat st;
		char *slash;
		if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
			*root_out = TAKE_PTR(dir);
			return 0;
		}
		slash = strrchr(dir, '/');
		if (!strcmp(dir, "/") || !slash)
			break;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	return bv_error_setc(err, BV_ENOTFOUND, 0,
			     "not in a bv project (no bv.toml in '%s' or any parent directory)",
			     start);
}

char *bv_expand_home(const char *path)
{
	_cleanup_free_ char *home = NULL;
	if (path[0] != '~' || (path[1] != '\0' && path[1] != '/'))
		return bv_xstrdup(path);
	home = bv_home_dir();
	if (!home)
		return bv_xstrdup(path);
	if (path[1] == '\0')
		return bv_xstrdup(home);
	return bv_path_join(home, path + 2);
}

char *bv_project_container_dir(const char *root, const char *cwd, const char *mount)
{
	size_t len = strlen(root);
	if (strncmp(cwd, root, len) != 0 || (cwd[len] != '/' && cwd[len] != '\0'))
		return NULL;
	return bv_xasprintf("%s%s", mount, cwd + len);
}
