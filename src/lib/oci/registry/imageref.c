/*
 * imageref.c - image reference parsing and formatting, registry mirrors (see imageref-internal.h).
 */
#include <arpa/inet.h>
#include <bv/error.h>
#include <bv/toml.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/model/paths-internal.h"
#include "lib/model/schema.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define MAX_REPOSITORY_LEN 255 /* the distribution implementation's limit on a name */
#define MAX_TAG_LEN        128
#define SHOWN_MAX          80 /* characters of a hostile reference quoted in a message */

static const char *const hub_aliases[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};

/* ---- helpers ------------------------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* Untrusted text as it may be quoted in a message (util/parse.h). */
static char *shown(const char *text, size_t len)
{
	return bv_str_shown(text, len, SHOWN_MAX);
}

__attribute__((format(printf, 4, 5))) static int fail(struct bv_error **err, const char *text,
						      size_t len, const char *fmt, ...)
{
	_cleanup_free_ char *quoted = shown(text, len);
	_cleanup_free_ char *why = NULL;
	va_list ap;
	va_start(ap, fmt);
	why = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(err, BV_EINVALID, 0, "invalid image reference '%s': %s", quoted, why);
}

/* Docker Hub's names map to "docker.io"; anything else stays as given. */
static bool is_hub(const char *host, size_t len)
{
	for (size_t i = 0; i < BV_ARRAY_SIZE(hub_aliases); i++)
		if (strlen(hub_aliases[i]) == len && !strncasecmp(host, hub_aliases[i], len))
			return true;
	return false;
}

/* Lower-cased copy, with Docker Hub's aliases replaced by "docker.io". */
static char *canonical_host(const char *host, size_t len)
{
	char *s;
	if (is_hub(host, len))
		return bv_xstrdup(BV_IMAGEREF_DOCKER_HUB);
	s = bv_xstrndup(host, len);
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* ":<port>" with 1 <= port <= 65535, the whole of s[0..len). */
static bool port_valid(const char *s, size_t len)
{
	char digits[8];
	unsigned port;
	if (len < 2 || len > 6 || s[0] != ':')
		return false;
	memcpy(digits, s + 1, len - 1);
	digits[len - 1] = '\0';
	return bv_parse_uint(&port, digits) == 0 && port >= 1 && port <= 65535;
}

/*
 * host[:port] where host is DNS labels ([A-Za-z0-9], inner '-') joined by dots, or an IPv6
 * address in brackets.
 */
static bool host_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		char addr[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		size_t alen;
		if (!close)
			return false;
		alen = (size_t)(close - s) - 1;
		if (alen == 0 || alen >= sizeof(addr))
			return false;
		memcpy(addr, s + 1, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return false;
		i = alen + 2;
		return i == len || port_valid(s + i, len - i);
	}
	for (;;) {
		size_t start = i;
		while (i < len && (is_alnum(s[i]) || s[i] == '-'))
			i++;
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		if (i == len)
			return true;
		if (s[i] == ':')
			return port_valid(s + i, len - i);
		if (s[i] != '.')
			return false;
		i++;
	}
}

/* One path component: [a-z0-9]+ joined by '.', '_', "__" or one or more '-'. */
static bool component_valid(const char *s, size_t len)
{
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < len && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == len)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += i + 1 < len && s[i + 1] == '_' ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

static bool tag_valid(const char *s, size_t len)
{
	if (len == 0 || len > MAX_TAG_LEN || !(is_alnum(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* The algorithm part of a digest, as the OCI image specification writes it. */
static bool algorithm_valid(const char *s, size_t len)
{
	bool need_alnum = true;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_lower_alnum(s[i])) {
			need_alnum = false;
		} else if (!need_alnum && strchr("+._-", s[i])) {
			need_alnum = true;
		} else {
			return false;
		}
	}
	return !need_alnum;
}

static int check_digest(const char *text, size_t text_len, const char *d, struct bv_error **err)
{
	const char *colon = strchr(d, ':');
	size_t n;

	if (!colon)
		return fail(err, text, text_len, "digest must be 'sha256:<64 hex digits>'");
	n = (size_t)(colon - d);
	if (n != 6 || memcmp(d, "sha256", 6)) {
		if (!algorithm_valid(d, n))
			return fail(err, text, text_len, "digest must be 'sha256:<64 hex digits>'");
		_cleanup_free_ char *alg = shown(d, n);
		return fail(err, text, text_len, "unsupported digest algorithm '%s'", alg);
	}
	n = strlen(colon + 1);
	if (n != 64)
		return fail(err, text, text_len, "sha256 digest must have 64 hex digits, not %zu",
			    n);
	if (!bv_digest_valid(d))
		return fail(err, text, text_len, "sha256 digest must be lower-case hex digits");
	return 0;
}

/* Validates the repository path rest[0..len) (without registry) component by component. */
static int check_repository(const char *text, size_t text_len, const char *rest, size_t len,
			    struct bv_error **err)
{
	size_t i = 0;
	if (len == 0)
		return fail(err, text, text_len, "missing repository name");
	if (len > MAX_REPOSITORY_LEN)
		return fail(err, text, text_len, "repository name is longer than %d characters",
			    MAX_REPOSITORY_LEN);
	while (i <= len) {
		const char *slash = memchr(rest + i, '/', len - i);
		size_t n = slash ? (size_t)(slash - (rest + i)) : len - i;
		if (n == 0)
			return fail(err, text, text_len, "empty path component");
		if (!component_valid(rest + i, n)) {
			_cleanup_free_ char *c = shown(rest + i, n);
			for (size_t k = 0; k < n; k++)
				if (rest[i + k] >= 'A' && rest[i + k] <= 'Z')
					return fail(err, text, text_len,
						    "repository must be lower case ('%s')", c);
			return fail(err, text, text_len, "invalid repository component '%s'", c);
		}
		i += n + 1;
	}
	return 0;
}

/* ---- references ---------------------------------------------------------------------- */

int bv_imageref_parse(struct bv_imageref *out, const char *text, struct bv_error **err)
{
	_cleanup_free_ char *registry = NULL, *repository = NULL, *tag = NULL, *digest = NULL;
	size_t text_len, name_len, rest_len = 0, repo_len;
	const char *name, *at, *slash, *rest = NULL, *last_slash, *colon;
	int r;

	if (!text || !*text)
		return bv_error_setc(err, BV_EINVALID, 0, "invalid image reference '': empty");
	text_len = strnlen(text, BV_IMAGEREF_MAX_LEN + 1);
	if (text_len > BV_IMAGEREF_MAX_LEN)
		return fail(err, text, text_len, "longer than %d characters", BV_IMAGEREF_MAX_LEN);

	name = bv_str_has_prefix(text, "docker://") ? text + strlen("docker://") : text;
	at = strchr(name, '@');
	name_len = at ? (size_t)(at - name) : strlen(name);
	if (name_len == 0)
		return fail(err, text, text_len, "missing repository name");
	if (at) {
		r = check_digest(text, text_len, at + 1, err);
		if (r < 0)
			return r;
		digest = bv_xstrdup(at + 1);
	}

	/* The first component is a host only when it cannot be a repository component. */
	slash = memchr(name, '/', name_len);
	if (slash) {
		size_t n = (size_t)(slash - name);
		if (memchr(name, '.', n) || memchr(name, ':', n) ||
		    (n == 9 && !memcmp(name, "localhost", 9))) {
			if (!host_valid(name, n)) {
				_cleanup_free_ char *h = shown(name, n);
				return fail(err, text, text_len, "invalid registry host '%s'", h);
			}
			registry = canonical_host(name, n);
			rest = slash + 1;
			rest_len = name_len - n - 1;
		}
	}
	if (!registry) {
		registry = bv_xstrdup(BV_IMAGEREF_DOCKER_HUB);
		rest = name;
		rest_len = name_len;
	}

	/* A tag can only follow the last '/': before it, a ':' was the registry's port. */
	last_slash = rest;
	for (size_t i = 0; i < rest_len; i++)
		if (rest[i] == '/')
			last_slash = rest + i + 1;
	colon = memchr(last_slash, ':', rest_len - (size_t)(last_slash - rest));
	repo_len = colon ? (size_t)(colon - rest) : rest_len;
	if (colon) {
		size_t n = rest_len - repo_len - 1;
		if (n == 0)
			return fail(err, text, text_len, "empty tag");
		if (!tag_valid(colon + 1, n)) {
			_cleanup_free_ char *t = shown(colon + 1, n);
			return fail(err, text, text_len, "invalid tag '%s'", t);
		}
		tag = bv_xstrndup(colon + 1, n);
	}
	r = check_repository(text, text_len, rest, repo_len, err);
	if (r < 0)
		return r;
	if (!strcmp(registry, BV_IMAGEREF_DOCKER_HUB) && !memchr(rest, '/', repo_len)) {
		repository = bv_xasprintf("library/%.*s", (int)repo_len, rest);
		if (repo_len + strlen("library/") > MAX_REPOSITORY_LEN)
			return fail(err, text, text_len,
				    "repository name is longer than %d characters",
				    MAX_REPOSITORY_LEN);
	} else {
		repository = bv_xstrndup(rest, repo_len);
	}

	out->registry = TAKE_PTR(registry);
	out->repository = TAKE_PTR(repository);
	out->tag = TAKE_PTR(tag);
	out->digest = TAKE_PTR(digest);
	return 0;
}

char *bv_imageref_format(const struct bv_imageref *r)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_printf(&b, "%s/%s", r->registry, r->repository);
	if (r->tag)
		bv_buf_printf(&b, ":%s", r->tag);
	if (r->digest)
		bv_buf_printf(&b, "@%s", r->digest);
	return bv_buf_detach(&b, NULL);
}

char *bv_imageref_pinned(const struct bv_imageref *r, const char *digest)
{
	if (!digest)
		digest = r->digest;
	if (!digest)
		return NULL;
	return bv_xasprintf("%s/%s@%s", r->registry, r->repository, digest);
}

void bv_imageref_release(struct bv_imageref *r)
{
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	*r = (struct bv_imageref){0};
}

const char *bv_imageref_api_host(const char *registry)
{
	return is_hub(registry, strlen(registry)) ? "registry-1.docker.io" : registry;
}

bool bv_imageref_same_registry(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (is_hub(a, la) || is_hub(b, lb))
		return is_hub(a, la) && is_hub(b, lb);
	return la == lb && !strncasecmp(a, b, la);
}

bool bv_imageref_host_is_loopback(const char *registry)
{
	size_t len = strlen(registry);

	if (!host_valid(registry, len))
		return false;
	if (registry[0] == '[')
		return bv_url_host_is_loopback(registry + 1,
					       (size_t)(strchr(registry, ']') - registry) - 1);
	return bv_url_host_is_loopback(registry, strcspn(registry, ":"));
}

/* ---- mirrors ------------------------------------------------------------------------- */

struct bv_mirrors {
	struct bv_strv src; /* canonical registry names */
	struct bv_strv dst; /* dst.v[i] serves src.v[i] */
	struct bv_strv insecure;
};

static void mirrors_set(struct bv_mirrors *m, const char *src, size_t src_len, const char *dst,
			size_t dst_len)
{
	_cleanup_free_ char *key = canonical_host(src, src_len);
	for (size_t i = 0; i < m->src.n; i++) {
		if (!strcmp(m->src.v[i], key)) {
			free(m->dst.v[i]);
			m->dst.v[i] = canonical_host(dst, dst_len);
			return;
		}
	}
	bv_strv_push_take(&m->src, TAKE_PTR(key));
	bv_strv_push_take(&m->dst, canonical_host(dst, dst_len));
}

static void trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* BV_MIRRORS: "src=dst,src=dst", blanks around entries and an empty entry ignored. */
static int mirrors_from_env(struct bv_mirrors *m, const char *value, struct bv_error **err)
{
	const char *p = value;
	for (;;) {
		size_t len = strcspn(p, ","), src_len, dst_len;
		const char *entry = p, *eq, *dst;
		trim(&entry, &len);
		if (len) {
			_cleanup_free_ char *e = shown(entry, len);
			eq = memchr(entry, '=', len);
			if (!eq)
				return bv_error_setc(err, BV_EINVALID, 0,
						     "invalid BV_MIRRORS entry '%s': expected "
						     "'registry=mirror'",
						     e);
			src_len = (size_t)(eq - entry);
			dst = eq + 1;
			dst_len = len - src_len - 1;
			trim(&entry, &src_len);
			trim(&dst, &dst_len);
			if (!host_valid(entry, src_len) || !host_valid(dst, dst_len))
				return bv_error_setc(
					err, BV_EINVALID, 0,
					"invalid BV_MIRRORS entry '%s': both sides must "
					"be registry hosts (host or host:port)",
					e);
			mirrors_set(m, entry, src_len, dst, dst_len);
		}
		p += strcspn(p, ",");
		if (!*p)
			return 0;
		p++;
	}
}

static bool string_is_host(const struct bv_toml_value *v)
{
	return v->type == BV_TOML_STRING && strlen(v->u.string.ptr) == v->u.string.len &&
	       host_valid(v->u.string.ptr, v->u.string.len);
}

static int mirrors_from_doc(struct bv_mirrors *m, struct bv_schema *s,
			    const struct bv_toml_table *root)
{
	/* [data] holds the mirrors of dataset hosts (src/lib/data/data.c) */
	static const char *const known_root[] = {"mirrors", "insecure", "data", NULL};
	static const char *const known_insecure[] = {"registries", NULL};
	struct bv_schema_table top = bv_schema_root(s, root), mirrors, insecure;
	const struct bv_toml_array *list = NULL;
	int r;

	if (bv_schema_check_keys(s, &top, known_root) < 0)
		return BV_EINVALID;
	r = bv_schema_table(s, &top, "mirrors", false, &mirrors);
	if (r < 0)
		return r;
	for (size_t i = 0; r > 0 && i < mirrors.t->n; i++) {
		const struct bv_toml_kv *kv = &mirrors.t->items[i];
		if (strlen(kv->key) != kv->key_len || !host_valid(kv->key, kv->key_len))
			return bv_schema_fail(s, kv->pos,
					      "'%s' in [mirrors] is not a registry host", kv->key);
		if (kv->value.type != BV_TOML_STRING)
			return bv_schema_fail(s, kv->value.pos,
					      "mirror of '%s' must be a string, not %s", kv->key,
					      bv_toml_type_name(kv->value.type));
		if (!string_is_host(&kv->value))
			return bv_schema_fail(s, kv->value.pos,
					      "mirror of '%s' must be a registry host (host or "
					      "host:port)",
					      kv->key);
		mirrors_set(m, kv->key, kv->key_len, kv->value.u.string.ptr,
			    kv->value.u.string.len);
	}
	r = bv_schema_table(s, &top, "insecure", false, &insecure);
	if (r <= 0)
		return r;
	if (bv_schema_check_keys(s, &insecure, known_insecure) < 0)
		return BV_EINVALID;
	r = bv_schema_array(s, &insecure, "registries", false, &list, NULL);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < list->n; i++) {
		if (!string_is_host(&list->items[i]))
			return bv_schema_fail(
				s, list->items[i].pos,
				"entries of 'registries' in [insecure] must be registry "
				"hosts (host or host:port)");
		bv_strv_push_take(&m->insecure, canonical_host(list->items[i].u.string.ptr,
							       list->items[i].u.string.len));
	}
	return 0;
}

char *bv_mirrors_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	_cleanup_free_ char *home = bv_home_dir();
	/* A relative XDG_CONFIG_HOME is invalid by the base directory specification. */
	if (xdg && xdg[0] == '/')
		return bv_xasprintf("%s/bv/mirrors.toml", xdg);
	if (home && *home)
		return bv_xasprintf("%s/.config/bv/mirrors.toml", home);
	return NULL;
}

int bv_mirrors_load(struct bv_mirrors **out, struct bv_error **err)
{
	struct bv_mirrors *m = bv_xcalloc(1, sizeof(*m));
	_cleanup_free_ char *path = bv_mirrors_path();
	const char *env = getenv("BV_MIRRORS");
	struct bv_toml_doc *doc = NULL;
	int r = 0;

	bv_strv_init(&m->src);
	bv_strv_init(&m->dst);
	bv_strv_init(&m->insecure);
	if (path) {
		r = bv_toml_parse_file(&doc, path, err);
		if (r == BV_ENOTFOUND) {
			bv_error_free(err ? TAKE_PTR(*err) : NULL);
			r = 0;
		} else if (r == 0) {
			struct bv_schema s = {.file = path, .warnings = NULL, .err = err};
			r = mirrors_from_doc(m, &s, bv_toml_doc_root(doc));
			bv_schema_release(&s);
			bv_toml_doc_free(doc);
		}
	}
	if (r == 0 && env && *env)
		r = mirrors_from_env(m, env, err);
	if (r < 0) {
		bv_mirrors_free(m);
		return r;
	}
	*out = m;
	return 0;
}

const char *bv_mirrors_lookup(const struct bv_mirrors *m, const char *registry)
{
	for (size_t i = 0; i < m->src.n; i++)
		if (bv_imageref_same_registry(m->src.v[i], registry))
			return m->dst.v[i];
	return NULL;
}

bool bv_mirrors_insecure(const struct bv_mirrors *m, const char *host)
{
	if (!host)
		return false;
	for (size_t i = 0; i < m->insecure.n; i++)
		if (bv_imageref_same_registry(m->insecure.v[i], host))
			return true;
	return false;
}

void bv_mirrors_free(struct bv_mirrors *m)
{
	if (!m)
		return;
	bv_strv_clear(&m->src);
	bv_strv_clear(&m->dst);
	bv_strv_clear(&m->insecure);
	free(m);
}
