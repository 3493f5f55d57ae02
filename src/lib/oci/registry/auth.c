/*
 * auth.c - WWW-Authenticate challenges, token URLs, Docker credentials, token cache
 * (see auth-internal.h).
 */
#include <bv/error.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/model/paths-internal.h"
#include "lib/oci/registry/auth-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define CONFIG_MAX        (1024 * 1024) /* config.json */
#define HELPER_OUTPUT_MAX (64 * 1024)
#define AUTH_FIELD_MAX    4096 /* base64 "user:password" in config.json */
#define SHOWN_MAX         80
#define TOKEN_MIN_LIFE    60 /* seconds; the distribution token specification's default */
#define TOKEN_MAX_LIFE    (366 * 24 * 3600)
#define HUB_SERVER_URL    "https://index.docker.io/v1/"

/* ---- small helpers -------------------------------------------------------------------- */

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void wipe_buf(struct bv_buf *b)
{
	explicit_bzero(b->buf, b->len);
	bv_buf_release(b);
}

static inline void wipe_bufp(struct bv_buf *b)
{
	wipe_buf(b);
}
#define _cleanup_wipe_buf_ __attribute__((cleanup(wipe_bufp)))

/* Untrusted text as it may be quoted in a message (util/parse.h). */
static char *shown(const char *text, size_t len)
{
	return bv_str_shown(text, len, SHOWN_MAX);
}

/* ---- WWW-Authenticate ----------------------------------------------------------------- */

struct cursor {
	const char *s;
	size_t i, n;
};

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token68_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~+/", c));
}

static bool at_end(const struct cursor *c)
{
	return c->i >= c->n;
}

static char peek(const struct cursor *c)
{
	return at_end(c) ? '\0' : c->s[c->i];
}

static void skip_blanks(struct cursor *c)
{
	while (peek(c) == ' ' || peek(c) == '\t')
		c->i++;
}

static void skip_blanks_commas(struct cursor *c)
{
	while (peek(c) == ' ' || peek(c) == '\t' || peek(c) == ',')
		c->i++;
}

static size_t token_len(const struct cursor *c)
{
	size_t k = c->i;
	while (k < c->n && is_tchar((unsigned char)c->s[k]))
		k++;
	return k - c->i;
}

__attribute__((format(printf, 3, 4))) static int
header_fail(struct bv_error **err, const struct cursor *c, const char *fmt, ...)
{
	_cleanup_free_ char *quoted = shown(c->s, c->n);
	_cleanup_free_ char *why = NULL;
	va_list ap;
	va_start(ap, fmt);
	why = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(err, BV_EINVALID, 0,
			     "invalid WWW-Authenticate header '%s': %s at offset %zu", quoted, why,
			     c->i);
}

/* quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE, appended to `out` unescaped. */
static int quoted_string(struct cursor *c, struct bv_buf *out, struct bv_error **err)
{
	c->i++; /* the opening quote */
	for (;;) {
		unsigned char ch;
		if (at_end(c))
			return header_fail(err, c, "unterminated quoted string");
		ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			return 0;
		}
		if (ch == '\\') {
			c->i++;
			if (at_end(c))
				return header_fail(err, c, "unterminated quoted string");
			ch = (unsigned char)c->s[c->i];
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return header_fail(err, c, "control character in quoted string");
		bv_buf_putc(out, (char)ch);
		c->i++;
	}
}

/*
 * auth-param = token BWS "=" BWS ( token / quoted-string ).  Returns 1 with *name_len and
 * `value` filled, 0 (cursor unchanged) when what follows is not a parameter (a token68 or
 * the next challenge's scheme), or an error.
 */
static int auth_param(struct cursor *c, size_t *name_len, struct bv_buf *value,
		      struct bv_error **err)
{
	struct cursor k = *c;
	size_t n = token_len(&k), v;

	if (n == 0)
		return 0;
	k.i += n;
	skip_blanks(&k);
	if (peek(&k) != '=')
		return 0;
	k.i++;
	if (peek(&k) == '=')
		return 0; /* "abc==": token68 padding */
	skip_blanks(&k);
	if (at_end(&k) || peek(&k) == ',')
		return 0; /* "abc=" alone: token68 with one padding character */
	bv_buf_reset(value);
	if (peek(&k) == '"') {
		int r = quoted_string(&k, value, err);
		if (r < 0)
			return r;
	} else {
		v = token_len(&k);
		if (v == 0)
			return header_fail(err, &k, "invalid parameter value");
		bv_buf_add(value, k.s + k.i, v);
		k.i += v;
	}
	*name_len = n;
	*c = k;
	return 1;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool token68(struct cursor *c)
{
	struct cursor k = *c;
	size_t start = k.i;
	while (!at_end(&k) && is_token68_char((unsigned char)k.s[k.i]))
		k.i++;
	if (k.i == start)
		return false;
	while (peek(&k) == '=')
		k.i++;
	skip_blanks(&k);
	if (!at_end(&k) && peek(&k) != ',')
		return false;
	*c = k;
	return true;
}

static void challenge_release(struct bv_www_auth *a)
{
	free(a->realm);
	free(a->service);
	free(a->scope);
	*a = (struct bv_www_auth){0};
}

static int parse_challenge(struct cursor *c, struct bv_www_auth *ch, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf value = BV_BUF_INIT;
	size_t n = token_len(c);
	bool first = true;

	if (n == 0)
		return header_fail(err, c, "expected an authentication scheme");
	if (n == 5 && !strncasecmp(c->s + c->i, "basic", 5))
		ch->scheme = BV_AUTH_BASIC;
	else if (n == 6 && !strncasecmp(c->s + c->i, "bearer", 6))
		ch->scheme = BV_AUTH_BEARER;
	c->i += n;
	if (!at_end(c) && peek(c) != ' ' && peek(c) != '\t' && peek(c) != ',')
		return header_fail(err, c, "unexpected character after the scheme");
	skip_blanks(c);
	for (;;) {
		struct cursor save = *c;
		size_t name_len = 0;
		const char *name;
		char **slot = NULL;
		int r;

		skip_blanks_commas(c);
		if (at_end(c))
			return 0;
		name = c->s + c->i;
		r = auth_param(c, &name_len, &value, err);
		if (r < 0)
			return r;
		if (r == 0) {
			/* A token68 can only come right after the scheme, not after a comma. */
			if (first && !memchr(save.s + save.i, ',', c->i - save.i) && token68(c)) {
				first = false;
				continue;
			}
			*c = save; /* the next challenge starts here */
			return 0;
		}
		first = false;
		if (name_len == 5 && !strncasecmp(name, "realm", 5))
			slot = &ch->realm;
		else if (name_len == 7 && !strncasecmp(name, "service", 7))
			slot = &ch->service;
		else if (name_len == 5 && !strncasecmp(name, "scope", 5))
			slot = &ch->scope;
		if (slot && *slot) {
			_cleanup_free_ char *dup = shown(name, name_len);
			return header_fail(err, c, "parameter '%s' given twice", dup);
		}
		if (slot)
			*slot = bv_xstrndup(value.buf, value.len);
	}
}

int bv_www_authenticate_parse(struct bv_www_auth *out, const char *header_value,
			      struct bv_error **err)
{
	struct bv_www_auth best = {0};
	struct cursor c = {.s = header_value, .i = 0, .n = 0};

	c.n = strnlen(header_value, BV_WWW_AUTH_MAX_LEN + 1);
	if (c.n > BV_WWW_AUTH_MAX_LEN)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid WWW-Authenticate header: longer than %d bytes",
				     BV_WWW_AUTH_MAX_LEN);
	for (;;) {
		struct bv_www_auth ch = {0};
		size_t start;
		int r;

		skip_blanks_commas(&c);
		if (at_end(&c))
			break;
		start = c.i;
		r = parse_challenge(&c, &ch, err);
		if (r < 0) {
			challenge_release(&ch);
			challenge_release(&best);
			return r;
		}
		if (ch.scheme == BV_AUTH_BEARER && !ch.realm) {
			struct cursor at = c;
			at.i = start;
			challenge_release(&ch);
			challenge_release(&best);
			return header_fail(err, &at, "Bearer challenge without a realm");
		}
		/* The first Bearer challenge wins, else the first Basic one. */
		if (ch.scheme && (!best.scheme ||
				  (best.scheme == BV_AUTH_BASIC && ch.scheme == BV_AUTH_BEARER))) {
			challenge_release(&best);
			best = ch;
		} else {
			challenge_release(&ch);
		}
	}
	if (!best.scheme) {
		_cleanup_free_ char *quoted = shown(c.s, c.n);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid WWW-Authenticate header '%s': no Basic or Bearer "
				     "challenge",
				     quoted);
	}
	*out = best;
	return 0;
}

void bv_www_auth_release(struct bv_www_auth *a)
{
	challenge_release(a);
}

/* ---- token URL ------------------------------------------------------------------------ */

int bv_auth_token_url(char **out, const struct bv_www_auth *a, const char *fallback_scope,
		      struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	const char *realm = a->realm, *scope = a->scope ? a->scope : fallback_scope;
	size_t prefix;
	char sep;

	if (!realm)
		return bv_error_setc(err, BV_EINVALID, 0, "authentication challenge has no realm");
	prefix = !strncasecmp(realm, "https://", 8) ? 8 : !strncasecmp(realm, "http://", 7) ? 7 : 0;
	_cleanup_free_ char *quoted = shown(realm, strlen(realm));
	if (!prefix || !realm[prefix] || realm[prefix] == '/')
		return bv_error_setc(err, BV_EINVALID, 0,
				     "refusing token realm '%s': not an http(s) URL", quoted);
	for (const unsigned char *p = (const unsigned char *)realm; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '#')
			return bv_error_setc(err, BV_EINVALID, 0,
					     "refusing token realm '%s': blank, control "
					     "character, non-ASCII byte or fragment in the URL",
					     quoted);
	bv_buf_puts(&b, realm);
	sep = strchr(realm, '?') ? '&' : '?';
	if (a->service && *a->service) {
		bv_buf_putc(&b, sep);
		bv_buf_puts(&b, "service=");
		bv_url_encode(&b, a->service, NULL);
		sep = '&';
	}
	if (scope && *scope) {
		bv_buf_putc(&b, sep);
		bv_buf_puts(&b, "scope=");
		bv_url_encode(&b, scope, NULL);
	}
	*out = bv_buf_detach(&b, NULL);
	return 0;
}

/* ---- credentials ---------------------------------------------------------------------- */

static char *docker_config_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG");
	_cleanup_free_ char *home = bv_home_dir();
	if (dir && *dir)
		return bv_path_join(dir, "config.json");
	if (home && *home)
		return bv_path_join(home, ".docker/config.json");
	return NULL;
}

/* The host part of a config key: "https://quay.io/v1/" → "quay.io". */
static char *key_host(const char *key)
{
	if (!strncasecmp(key, "https://", 8))
		key += 8;
	else if (!strncasecmp(key, "http://", 7))
		key += 7;
	return bv_xstrndup(key, strcspn(key, "/"));
}

/* The entry of `obj` for `registry`: an exact key first, then any key naming the same host. */
static json_t *match_registry(json_t *obj, const char *registry, const char **key_out)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	json_object_foreach(obj, key, v)
	{
		if (!strcmp(key, registry)) {
			*key_out = key;
			return v;
		}
	}
	json_object_foreach(obj, key, v)
	{
		_cleanup_free_ char *host = key_host(key);
		if (*host && bv_imageref_same_registry(host, registry)) {
			*key_out = key;
			return v;
		}
	}
	return NULL;
}

/* Moves a sub-lookup's error to the caller's `err`; returns r. */
static int pass_error(struct bv_error **err, struct bv_error *local, int r)
{
	if (err && !*err)
		*err = local;
	else
		bv_error_free(local);
	return r;
}

static bool helper_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* A read end holding `data`, already complete (the pipe buffer holds a server URL easily). */
static int stdin_with(int *fd_out, const char *data, size_t len, const char *prog,
		      struct bv_error **err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return bv_error_set_errno(err, "could not create a pipe for '%s'", prog);
	if (bv_write_all(fds[1], data, len) < 0) {
		int r = bv_error_set_errno(err, "could not write to the pipe for '%s'", prog);
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	close(fds[1]);
	if (fds[0] == 0) {
		/* 0 means "inherit" to bv_proc; only happens when our own stdin was closed. */
		int moved = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
		int saved = errno;
		close(fds[0]);
		errno = saved;
		if (moved < 0)
			return bv_error_set_errno(err, "could not create a pipe for '%s'", prog);
		fds[0] = moved;
	}
	*fd_out = fds[0];
	return 0;
}

static int json_string_field(json_t *obj, const char *name, const char **out)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

/*
 * Runs `docker-credential-<helper> get` with the server URL on stdin.  Its stdout carries the
 * answer (or, on failure, an error text that Docker's helpers also write there); stderr goes
 * to /dev/null, because library code never prints.  The helper's failure text is not quoted
 * in our message: a broken helper could print anything, secrets included.
 */
static int run_helper(struct bv_credential *out, const char *helper, const char *registry,
		      struct bv_error **err)
{
	_cleanup_free_ char *prog = bv_xasprintf("docker-credential-%s", helper);
	_cleanup_free_ char *server = bv_xasprintf(
		"%s\n", bv_imageref_same_registry(registry, BV_IMAGEREF_DOCKER_HUB) ? HUB_SERVER_URL
										    : registry);
	_cleanup_wipe_buf_ struct bv_buf output = BV_BUF_INIT;
	_cleanup_close_ int in = -1, null = -1;
	struct bv_proc p = BV_PROC_INIT;
	const char *user = NULL, *secret = NULL;
	json_error_t je;
	json_t *doc;
	int status = 0, r;

	if (!helper_name_valid(helper))
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"invalid credential helper name '%s' in the Docker configuration", helper);
	r = stdin_with(&in, server, strlen(server), prog, err);
	if (r < 0)
		return r;
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0)
		return bv_error_set_errno(err, "could not open '/dev/null'");
	bv_strv_push(&p.args, prog);
	bv_strv_push(&p.args, "get");
	p.in = in;
	p.err = null;
	r = bv_proc_capture(&output, &status, &p, HELPER_OUTPUT_MAX, err);
	bv_proc_clear(&p);
	if (r < 0)
		return bv_error_wrap(err, BV_ERR, "could not run credential helper '%s'", prog);
	if (status != 0) {
		if (strstr(output.buf, "credentials not found"))
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "credential helper '%s' has no credentials for '%s'",
					     prog, registry);
		return bv_error_set(err, "credential helper '%s' failed for '%s' (exit status %d)",
				    prog, registry, status);
	}
	doc = json_loadb(output.buf, output.len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "credential helper '%s' printed no JSON object for '%s'", prog,
				     registry);
	}
	if (json_string_field(doc, "Username", &user) < 0 ||
	    json_string_field(doc, "Secret", &secret) < 0 || !*secret) {
		json_decref(doc);
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"credential helper '%s' printed no \"Username\" and \"Secret\" "
			"strings for '%s'",
			prog, registry);
	}
	out->username = bv_xstrdup(user);
	out->secret = bv_xstrdup(secret);
	json_decref(doc);
	return 0;
}

/* Decodes base64 "user:password" (the "auth" field); BV_EINVALID when it is not that. */
static int decode_auth(struct bv_credential *out, const char *b64)
{
	size_t len = strlen(b64), pad = 0;
	unsigned char *raw;
	char *colon;
	int n;

	if (len == 0 || len > AUTH_FIELD_MAX || len % 4)
		return BV_EINVALID;
	while (pad < len && b64[len - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		return BV_EINVALID;
	for (size_t i = 0; i < len - pad; i++) {
		char c = b64[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return BV_EINVALID;
	}
	raw = bv_xmalloc(len / 4 * 3 + 1);
	n = bv_base64_decode_block(raw, (const unsigned char *)b64, (int)len);
	if (n < 0 || (size_t)n < pad) {
		explicit_bzero(raw, len / 4 * 3 + 1);
		free(raw);
		return BV_EINVALID;
	}
	n -= (int)pad;
	raw[n] = '\0';
	colon = memchr(raw, ':', (size_t)n);
	if (!colon || colon == (char *)raw || memchr(raw, '\0', (size_t)n)) {
		explicit_bzero(raw, len / 4 * 3 + 1);
		free(raw);
		return BV_EINVALID;
	}
	out->username = bv_xstrndup((char *)raw, (size_t)(colon - (char *)raw));
	out->secret = bv_xstrdup(colon + 1);
	explicit_bzero(raw, len / 4 * 3 + 1);
	free(raw);
	return 0;
}

/* auths[key]: "identitytoken", else "auth", else "username" + "password". */
static int from_auths_entry(struct bv_credential *out, json_t *entry, const char *key,
			    const char *path, struct bv_error **err)
{
	const char *token = NULL, *auth = NULL, *user = NULL, *pass = NULL;

	if (!json_is_object(entry))
		return bv_error_setc(err, BV_EINVALID, 0, "%s: auths entry '%s' is not an object",
				     path, key);
	if (json_string_field(entry, "identitytoken", &token) == 0 && *token) {
		out->username = bv_xstrdup("<token>");
		out->secret = bv_xstrdup(token);
		return 0;
	}
	if (json_string_field(entry, "auth", &auth) == 0 && *auth) {
		if (decode_auth(out, auth) < 0)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "%s: \"auth\" of '%s' is not base64 of "
					     "'username:password'",
					     path, key);
		return 0;
	}
	if (json_string_field(entry, "username", &user) == 0 && *user &&
	    json_string_field(entry, "password", &pass) == 0) {
		out->username = bv_xstrdup(user);
		out->secret = bv_xstrdup(pass);
		return 0;
	}
	return BV_ENOTFOUND; /* "{}": credentials live in credsStore, which had none */
}

static int lookup_in(struct bv_credential *out, json_t *root, const char *registry,
		     const char *path, struct bv_error **err)
{
	json_t *helper, *store, *entry;
	const char *key = NULL;
	int r;

	helper = match_registry(json_object_get(root, "credHelpers"), registry, &key);
	if (helper) {
		struct bv_error *local = NULL;
		if (!json_is_string(helper))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "%s: credHelpers entry '%s' is not a string", path,
					     key);
		r = run_helper(out, json_string_value(helper), registry, &local);
		if (r != BV_ENOTFOUND)
			return pass_error(err, local, r);
		bv_error_free(local);
	}
	store = json_object_get(root, "credsStore");
	if (store && !json_is_string(store))
		return bv_error_setc(err, BV_EINVALID, 0, "%s: credsStore is not a string", path);
	if (store && *json_string_value(store)) {
		struct bv_error *local = NULL;
		r = run_helper(out, json_string_value(store), registry, &local);
		if (r != BV_ENOTFOUND)
			return pass_error(err, local, r);
		bv_error_free(local);
	}
	entry = match_registry(json_object_get(root, "auths"), registry, &key);
	if (entry) {
		r = from_auths_entry(out, entry, key, path, err);
		if (r != BV_ENOTFOUND)
			return r;
	}
	return bv_error_setc(err, BV_ENOTFOUND, 0, "no credentials for '%s' in '%s'", registry,
			     path);
}

int bv_credentials_lookup(struct bv_credential *out, const char *registry, struct bv_error **err)
{
	_cleanup_free_ char *path = docker_config_path();
	_cleanup_wipe_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_credential cred = {0};
	json_error_t je;
	json_t *root;
	int r;

	if (!path)
		return bv_error_setc(
			err, BV_ENOTFOUND, 0,
			"no credentials for '%s': neither DOCKER_CONFIG nor HOME is set", registry);
	r = bv_buf_read_file(&text, path, CONFIG_MAX, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(err ? TAKE_PTR(*err) : NULL);
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "no credentials for '%s' ('%s' does not "
				     "exist)",
				     registry, path);
	}
	if (r < 0)
		return r;
	root = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, &je);
	wipe_buf(&text);
	/* je.text quotes the text near the error, which may be a password: position only. */
	if (!root)
		return bv_error_setc(err, BV_EINVALID, 0, "%s:%d:%d: invalid JSON", path, je.line,
				     je.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "%s: not a JSON object", path);
	}
	r = lookup_in(&cred, root, registry, path, err);
	json_decref(root);
	if (r < 0) {
		bv_credential_release(&cred);
		return r;
	}
	*out = cred;
	return 0;
}

void bv_credential_release(struct bv_credential *c)
{
	wipe_free(c->secret);
	free(c->username);
	*c = (struct bv_credential){0};
}

char *bv_basic_auth_header(const struct bv_credential *c)
{
	_cleanup_wipe_buf_ struct bv_buf plain = BV_BUF_INIT;
	size_t enc_len;
	char *header;

	bv_buf_printf(&plain, "%s:%s", c->username ? c->username : "", c->secret ? c->secret : "");
	enc_len = 4 * ((plain.len + 2) / 3);
	header = bv_xmalloc(strlen("Basic ") + enc_len + 1);
	memcpy(header, "Basic ", 6);
	bv_base64_encode_block((unsigned char *)header + 6, (const unsigned char *)plain.buf,
			       (int)plain.len);
	return header;
}

/* ---- token cache ---------------------------------------------------------------------- */

struct token_entry {
	char *registry;
	char *scope; /* "" for none */
	char *token;
	time_t expires_at;
};

struct bv_token_cache {
	struct token_entry *v;
	size_t n, alloc;
};

struct bv_token_cache *bv_token_cache_new(void)
{
	return bv_xcalloc(1, sizeof(struct bv_token_cache));
}

static struct token_entry *find_entry(struct bv_token_cache *c, const char *registry,
				      const char *scope)
{
	for (size_t i = 0; i < c->n; i++)
		if (bv_imageref_same_registry(c->v[i].registry, registry) &&
		    !strcmp(c->v[i].scope, scope ? scope : ""))
			return &c->v[i];
	return NULL;
}

static void entry_clear(struct token_entry *e)
{
	free(e->registry);
	free(e->scope);
	wipe_free(e->token);
	*e = (struct token_entry){0};
}

const char *bv_token_cache_get(struct bv_token_cache *c, const char *registry, const char *scope)
{
	struct token_entry *e = find_entry(c, registry, scope);
	if (!e)
		return NULL;
	if (time(NULL) + BV_TOKEN_EXPIRY_MARGIN >= e->expires_at) {
		entry_clear(e);
		*e = c->v[--c->n];
		return NULL;
	}
	return e->token;
}

void bv_token_cache_put(struct bv_token_cache *c, const char *registry, const char *scope,
			const char *token, time_t expires_at)
{
	struct token_entry *e = find_entry(c, registry, scope);
	if (e) {
		wipe_free(e->token);
	} else {
		BV_GROW(c->v, c->alloc, c->n + 1);
		e = &c->v[c->n++];
		e->registry = bv_xstrdup(registry);
		e->scope = bv_xstrdup(scope ? scope : "");
	}
	e->token = bv_xstrdup(token);
	e->expires_at = expires_at;
}

time_t bv_token_expires_at(time_t now, int64_t expires_in)
{
	if (expires_in < TOKEN_MIN_LIFE)
		expires_in = TOKEN_MIN_LIFE;
	if (expires_in > TOKEN_MAX_LIFE)
		expires_in = TOKEN_MAX_LIFE;
	return now + (time_t)expires_in;
}

void bv_token_cache_free(struct bv_token_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->v[i]);
	free(c->v);
	free(c);
}
