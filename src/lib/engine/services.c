/*
 * services.c - [[services]] in bv.toml: reading, dependency order, engine names, the image a
 * service runs, and splitting engine logs into lines (see include/bv/services.h).
 *
 * The engine side (networks, builds, containers, health) is in services_engine.c and the
 * build context (.dockerignore, tar) in dockerignore.c.
 */
#include <arpa/inet.h>
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/services.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/paths-internal.h"
#include "lib/model/schema.h"
#include "lib/model/validate.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define SERVICE_NAME_MAX 63 /* a DNS label: the name is the service's alias on the network */
#define MIN_HEALTH_NS    INT64_C(1000000) /* the Engine API's floor for intervals: 1 ms */

/* ---- paths, names --------------------------------------------------------------------- */

char *bv_services_clean_path(const char *path)
{
	bool absolute = path[0] == '/';
	struct bv_strv parts = BV_STRV_INIT;
	struct bv_buf b = BV_BUF_INIT;
	const char *s = path;
	while (*s) {
		const char *end = strchr(s, '/');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.')) {
			/* nothing */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (parts.n && strcmp(parts.v[parts.n - 1], ".."))
				bv_strv_pop(&parts);
			else if (!absolute)
				bv_strv_push(&parts, ".."); /* "/.." is "/" */
		} else {
			bv_strv_push_take(&parts, bv_xstrndup(s, len));
		}
		s += len;
		if (*s == '/')
			s++;
	}
	if (absolute)
		bv_buf_putc(&b, '/');
	for (size_t i = 0; i < parts.n; i++) {
		if (i)
			bv_buf_putc(&b, '/');
		bv_buf_puts(&b, parts.v[i]);
	}
	if (!b.len)
		bv_buf_putc(&b, '.');
	bv_strv_clear(&parts);
	return bv_buf_detach(&b, NULL);
}

static bool name_valid(const char *name)
{
	size_t len = strlen(name);
	if (!len || len > SERVICE_NAME_MAX ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

/* Lower case; what a container or network name cannot hold becomes '-'. */
static char *engine_project_name(const char *name)
{
	char *out = bv_xstrdup(name);
	for (char *c = out; *c; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_.-", *c))
			*c = '-';
	}
	return out;
}

char *bv_services_network_name(const struct bv_services *s)
{
	return bv_xasprintf("bv-%s-net", s->project_name);
}

char *bv_services_container_name(const struct bv_services *s, const char *service)
{
	return bv_xasprintf("bv-%s-%s", s->project_name, service);
}

/*
 * Image repositories are stricter than container names ('.' and '_' may not repeat or end a
 * component), so every run of other characters becomes one '-'.
 */
char *bv_services_build_tag(const struct bv_services *s, const char *service)
{
	_cleanup_free_ char *raw = bv_xasprintf("bv-%s-%s", s->project_name, service);
	struct bv_buf b = BV_BUF_INIT;
	bool dash = false;
	for (const char *c = raw; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')) {
			if (dash && b.len)
				bv_buf_putc(&b, '-');
			bv_buf_putc(&b, *c);
			dash = false;
		} else {
			dash = true;
		}
	}
	bv_buf_puts(&b, ":latest");
	return bv_buf_detach(&b, NULL);
}

/* ---- leaf parsers --------------------------------------------------------------------- */

static const struct {
	const char *unit;
	int64_t ns;
} duration_units[] = {
	/* longer spellings first, so "ms" is not read as "m" followed by junk */
	{"ns", 1},
	{"us", 1000},
	{"ms", 1000000},
	{"s", INT64_C(1000000000)},
	{"m", 60 * INT64_C(1000000000)},
	{"h", 3600 * INT64_C(1000000000)},
};

int bv_duration_parse(int64_t *ns_out, const char *text)
{
	const char *s = text;
	int64_t total = 0;
	if (!text || !*text)
		return -EINVAL;
	if (!strcmp(text, "0")) {
		*ns_out = 0;
		return 0;
	}
	while (*s) {
		int64_t whole = 0, frac = 0, frac_scale = 1, unit = 0, value;
		size_t digits = 0;
		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			if (whole > (INT64_MAX - 9) / 10)
				return -ERANGE;
			whole = whole * 10 + (*s - '0');
		}
		if (*s == '.') {
			s++;
			for (; *s >= '0' && *s <= '9'; s++, digits++) {
				if (frac_scale < INT64_C(1000000000000000000)) {
					frac = frac * 10 + (*s - '0');
					frac_scale *= 10;
				}
			}
		}
		if (!digits)
			return -EINVAL;
		for (size_t i = 0; i < BV_ARRAY_SIZE(duration_units) && !unit; i++) {
			size_t n = strlen(duration_units[i].unit);
			if (!strncmp(s, duration_units[i].unit, n)) {
				unit = duration_units[i].ns;
				s += n;
			}
		}
		if (!unit)
			return -EINVAL;
		if (whole > INT64_MAX / unit)
			return -ERANGE;
		value = whole * unit;
		/* the fraction: frac / frac_scale of a unit, without overflowing */
		value += (int64_t)((double)frac * (double)unit / (double)frac_scale);
		if (value < 0 || total > INT64_MAX - value)
			return -ERANGE;
		total += value;
	}
	*ns_out = total;
	return 0;
}

static int parse_port_number(const char *s, size_t len, unsigned *out)
{
	_cleanup_free_ char *copy = bv_xstrndup(s, len);
	unsigned v;
	if (bv_parse_uint(&v, copy) < 0 || v < 1 || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

int bv_service_port_parse(struct bv_service_port *out, const char *text, struct bv_error **err)
{
	struct bv_service_port port = {.host_ip = "127.0.0.1", .proto = "tcp"};
	const char *slash = strchr(text, '/'), *s = text, *colon;
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	const char *why = NULL;

	if (slash) {
		if (!strcmp(slash, "/tcp"))
			port.proto = "tcp";
		else if (!strcmp(slash, "/udp"))
			port.proto = "udp";
		else
			why = "the protocol must be tcp or udp";
	}
	if (!why && len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		unsigned char addr[16];
		char buf[sizeof(port.host_ip)];
		size_t alen = close ? (size_t)(close - s - 1) : 0;
		if (!close || close + 1 >= s + len || close[1] != ':' || alen >= sizeof(buf)) {
			why = "expected [ADDRESS]:HOST:CONTAINER";
		} else {
			memcpy(buf, s + 1, alen);
			buf[alen] = '\0';
			if (inet_pton(AF_INET6, buf, addr) != 1)
				why = "the address is not an IPv6 address";
			else
				memcpy(port.host_ip, buf, alen + 1);
		}
		len -= (size_t)(close + 2 - s);
		s = close + 2;
		colon = why ? NULL : memchr(s, ':', len);
		if (!why && (!colon || memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))))
			why = "expected [ADDRESS]:HOST:CONTAINER";
	} else if (!why) {
		const char *c1 = memchr(s, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - s)) : NULL;
		if (!c1) {
			why = "expected HOST:CONTAINER or ADDRESS:HOST:CONTAINER";
		} else if (c2 && memchr(c2 + 1, ':', len - (size_t)(c2 + 1 - s))) {
			why = "expected HOST:CONTAINER or ADDRESS:HOST:CONTAINER (IPv6 addresses go "
			      "in brackets)";
		} else if (c2) {
			unsigned char addr[4];
			size_t alen = (size_t)(c1 - s);
			char buf[sizeof(port.host_ip)];
			if (alen >= sizeof(buf)) {
				why = "the address is not an IPv4 address";
			} else {
				memcpy(buf, s, alen);
				buf[alen] = '\0';
				if (inet_pton(AF_INET, buf, addr) != 1)
					why = "the address is not an IPv4 address";
				else
					memcpy(port.host_ip, buf, alen + 1);
			}
			len -= alen + 1;
			s = c1 + 1;
		}
	}
	if (!why) {
		colon = memchr(s, ':', len);
		if (parse_port_number(s, (size_t)(colon - s), &port.host_port) < 0)
			why = "the host port must be a number from 1 to 65535";
		else if (parse_port_number(colon + 1, len - (size_t)(colon + 1 - s),
					   &port.container_port) < 0)
			why = "the container port must be a number from 1 to 65535";
	}
	if (why) {
		_cleanup_free_ char *shown = bv_str_shown(text, strlen(text), 80);
		return bv_error_setc(err, BV_EINVALID, 0, "invalid port mapping '%s': %s", shown,
				     why);
	}
	*out = port;
	return 0;
}

/* Compose's rule for a short-syntax source: a path starts with '.', '/' or '~'. */
static bool is_host_path(const char *source)
{
	return source[0] == '.' || source[0] == '/' || source[0] == '~';
}

/* A volume name as the engines take one, [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
static bool volume_name_valid(const char *name)
{
	size_t len = strlen(name);
	static const char alnum[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	if (!len || len > SERVICE_NAME_MAX || !strchr(alnum, name[0]))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       len;
}

int bv_service_volume_parse(struct bv_service_volume *out, const char *text, const char *root,
			    struct bv_error **err)
{
	const char *c1 = strchr(text, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const char *why = NULL;
	enum bv_volume_kind kind = BV_VOLUME_BIND;
	bool ro = false;
	_cleanup_free_ char *host = NULL, *container = NULL, *raw_ctr = NULL, *raw_src = NULL;
	if (!c1) {
		kind = BV_VOLUME_ANON; /* "/path": compose's anonymous volume */
		raw_ctr = bv_xstrdup(text);
	} else if (c1 == text) {
		why = "expected SOURCE:CONTAINER, SOURCE:CONTAINER:ro or CONTAINER";
	} else if (c2 && !strcmp(c2 + 1, "ro")) {
		ro = true;
	} else if (c2 && strcmp(c2 + 1, "rw")) {
		why = "the mode must be ro or rw";
	}
	if (!why && c1) {
		size_t clen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
		raw_src = bv_xstrndup(text, (size_t)(c1 - text));
		raw_ctr = bv_xstrndup(c1 + 1, clen);
		kind = is_host_path(raw_src) ? BV_VOLUME_BIND : BV_VOLUME_NAMED;
	}
	if (!why && (!raw_ctr || raw_ctr[0] != '/'))
		why = "the container path must be absolute";
	if (!why) {
		container = bv_services_clean_path(raw_ctr);
		/* the same rules as every other mount a project file asks for */
		if (!bv_valid_container_path(container, &why))
			why = why ? why : "invalid container path";
	}
	if (!why && kind == BV_VOLUME_NAMED) {
		if (!volume_name_valid(raw_src))
			why = "a volume name is letters, digits, '_', '.' and '-' (a host path starts "
			      "with './', '../', '/' or '~')";
		else
			host = TAKE_PTR(raw_src);
	} else if (!why && kind == BV_VOLUME_BIND) {
		_cleanup_free_ char *home = bv_expand_home("~");
		_cleanup_free_ char *joined = NULL;
		if (raw_src[0] == '~') {
			joined = bv_expand_home(raw_src);
			if (joined[0] != '/')
				why = "'~' is not known here (HOME is not set)";
		} else {
			joined = raw_src[0] == '/' ? bv_xstrdup(raw_src)
						   : bv_path_join(root, raw_src);
		}
		if (!why) {
			host = bv_services_clean_path(joined);
			if (!bv_valid_host_mount(host, home[0] == '/' ? home : NULL, &why))
				why = why ? why : "invalid host path";
		}
	}
	if (why) {
		_cleanup_free_ char *shown = bv_str_shown(text, strlen(text), 80);
		return bv_error_setc(err, BV_EINVALID, 0, "invalid volume '%s': %s", shown, why);
	}
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->host = TAKE_PTR(host);
	out->container = TAKE_PTR(container);
	out->read_only = ro;
	return 0;
}

char *bv_services_volume_name(const struct bv_services *s, const char *volume)
{
	return bv_xasprintf("bv-%s_%s", s->project_name, volume);
}

/* ---- paths outside the project -------------------------------------------------------- */

/* Whether `path` is `dir` or below it (both resolved). */
static bool is_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/*
 * One host path of a service: it must exist (bv creates none, and an engine would create it
 * as root), and, resolved, lie in the project unless the service allows otherwise.  The
 * check resolves symlinks, so "data -> /etc" inside the project counts as outside.
 */
static int check_one_path(const struct bv_services *s, const struct bv_service *svc,
			  const char *real_root, const char *path, const char *what,
			  const char *as_written, struct bv_toml_pos pos, struct bv_error **err)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real && (errno == ENOENT || errno == ENOTDIR))
		return bv_error_setc(
			err, BV_ENOTFOUND, 0,
			"%s:%u: %s '%s' of service '%s' does not exist ('%s'); bv does "
			"not create host paths: create it first",
			s->file, pos.line, what, as_written, svc->name, path);
	if (!real)
		return bv_error_set_errno(err, "%s:%u: could not resolve %s '%s' of service '%s'",
					  s->file, pos.line, what, as_written, svc->name);
	if (!svc->allow_outside && !is_below(real, real_root))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s:%u: %s '%s' of service '%s' is outside the project (it is "
				     "'%s'); set allow_outside = true on the service to allow it",
				     s->file, pos.line, what, as_written, svc->name, real);
	return 0;
}

int bv_services_check_paths(const struct bv_services *s, const bool *selected,
			    struct bv_error **err)
{
	_cleanup_free_ char *real_root = realpath(s->project_root, NULL);
	if (!real_root)
		return bv_error_set_errno(err, "could not resolve the project directory '%s'",
					  s->project_root);
	for (size_t i = 0; i < s->n; i++) {
		const struct bv_service *svc = &s->v[i];
		int r;
		if (selected && !selected[i])
			continue;
		if (svc->source == BV_SERVICE_BUILD) {
			r = check_one_path(s, svc, real_root, svc->context, "build context",
					   svc->context, svc->source_pos, err);
			if (r < 0)
				return r;
		}
		for (size_t j = 0; j < svc->n_volumes; j++) {
			const struct bv_service_volume *v = &svc->volumes[j];
			_cleanup_free_ char *shown = NULL;
			if (v->kind != BV_VOLUME_BIND)
				continue;
			shown = bv_xasprintf("%s:%s", v->host, v->container);
			r = check_one_path(s, svc, real_root, v->host, "volume", shown, v->pos,
					   err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- reading [[services]] ------------------------------------------------------------- */

void bv_services_free(struct bv_services *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct bv_service *svc = &s->v[i];
		free(svc->context);
		bv_strv_clear(&svc->command);
		bv_strv_clear(&svc->env);
		bv_strv_clear(&svc->build_args);
		free(svc->ports);
		for (size_t j = 0; j < svc->n_volumes; j++) {
			free(svc->volumes[j].host);
			free(svc->volumes[j].container);
		}
		free(svc->volumes);
		bv_strv_clear(&svc->health.test);
		bv_strv_clear(&svc->depends_on);
		free(svc->deps);
	}
	free(s->v);
	free(s->order);
	free(s->project_root);
	free(s->project_name);
	free(s->file);
	bv_strv_clear(&s->volumes);
	bv_strv_clear(&s->warnings);
	free(s);
}

const struct bv_service *bv_services_find(const struct bv_services *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

/* What reading needs beyond the model: where things were written. */
struct reader {
	struct bv_schema schema;
	const struct bv_strv *volumes;     /* declared in [volumes] */
	const struct bv_toml_array **deps; /* per service: its depends_on array, or NULL */
};

/* The strings of an optional array, each checked by `check` with its position. */
static int read_string_array(struct reader *rd, const struct bv_schema_table *t, const char *key,
			     const struct bv_toml_array **out)
{
	const struct bv_toml_array *a = NULL;
	int r = bv_schema_array(&rd->schema, t, key, false, &a, NULL);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < a->n; i++) {
		const struct bv_toml_value *v = &a->items[i];
		if (v->type != BV_TOML_STRING || strlen(v->u.string.ptr) != v->u.string.len)
			return bv_schema_fail(&rd->schema, v->pos,
					      "'%s' in %s must be an array of strings", key,
					      t->name);
	}
	*out = a;
	return 1;
}

/*
 * Unknown keys are errors: a misspelt option ("buld", "working-dir") silently dropped would
 * run something else than the file says.  `is_service`: t is the [[services]] entry itself.
 */
static int refuse_unknown(struct reader *rd, const struct bv_service *svc,
			  const struct bv_schema_table *t, bool is_service,
			  const char *const *known)
{
	for (size_t i = 0; i < t->t->n; i++) {
		const struct bv_toml_kv *kv = &t->t->items[i];
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strlen(*k) == kv->key_len && !memcmp(*k, kv->key, kv->key_len);
		if (!ok) {
			/* the key is the file's: shown with its control characters escaped */
			_cleanup_free_ char *shown = bv_str_shown(kv->key, kv->key_len, 80);
			return bv_error_setc(rd->schema.err, BV_EINVALID, 0,
					     "%s:%u: unknown key '%s' in %s%s'%s'", rd->schema.file,
					     kv->pos.line, shown, t->name,
					     is_service ? " " : " of service ", svc->name);
		}
	}
	return 0;
}

/* A table of strings (env, build args) as "KEY=value", in the file's order. */
static int read_string_table(struct reader *rd, struct bv_service *svc,
			     const struct bv_schema_table *t, const char *key, struct bv_strv *out)
{
	struct bv_schema_table env;
	int r = bv_schema_table(&rd->schema, t, key, false, &env);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < env.t->n; i++) {
		const struct bv_toml_kv *kv = &env.t->items[i];
		const char *value = NULL;
		if (!kv->key_len || strlen(kv->key) != kv->key_len || strchr(kv->key, '='))
			return bv_schema_fail(&rd->schema, kv->pos,
					      "invalid variable name '%s' in %s of service '%s'",
					      kv->key, key, svc->name);
		if (bv_schema_string(&rd->schema, &env, kv->key, true, &value) < 0)
			return BV_EINVALID;
		bv_strv_pushf(out, "%s=%s", kv->key, value);
	}
	return 1;
}

/* compose's long form: build = { context = "dir", dockerfile, args = {...}, target } */
static int read_build_table(struct reader *rd, struct bv_service *svc,
			    const struct bv_schema_table *t, const char **context)
{
	static const char *const known[] = {"context", "dockerfile", "args", "target", NULL};
	struct bv_schema_table b;
	if (bv_schema_table(&rd->schema, t, "build", true, &b) < 0 ||
	    bv_schema_string(&rd->schema, &b, "context", true, context) < 0 ||
	    bv_schema_string(&rd->schema, &b, "dockerfile", false, &svc->dockerfile) < 0 ||
	    bv_schema_string(&rd->schema, &b, "target", false, &svc->target) < 0 ||
	    read_string_table(rd, svc, &b, "args", &svc->build_args) < 0)
		return BV_EINVALID;
	return refuse_unknown(rd, svc, &b, false, known);
}

static int read_source(struct reader *rd, struct bv_service *svc, const struct bv_schema_table *t,
		       const char *root)
{
	static const char *const keys[] = {"tool", "image", "build"};
	static const char *const build_only[] = {"dockerfile", "target", "build_args", "buildkit"};
	static const char *const in_table[] = {"dockerfile", "target", "args", NULL};
	const struct bv_toml_kv *first = NULL;
	const char *value = NULL, *df = NULL, *target = NULL;
	struct bv_strv args = BV_STRV_INIT;
	struct bv_schema_table bt = {0};
	for (size_t i = 0; i < BV_ARRAY_SIZE(keys); i++) {
		const struct bv_toml_kv *kv = bv_schema_find(t, keys[i]);
		if (!kv)
			continue;
		if (first)
			return bv_schema_fail(
				&rd->schema, kv->pos,
				"service '%s' has both '%s' and '%s'; give only one of tool, image and build",
				svc->name, first->key, kv->key);
		first = kv;
	}
	if (!first)
		return bv_schema_fail(&rd->schema, t->pos,
				      "service '%s' needs one of 'tool', 'image' or 'build'",
				      svc->name);
	if (!strcmp(first->key, "build") && first->value.type == BV_TOML_TABLE) {
		if (read_build_table(rd, svc, t, &value) < 0)
			return BV_EINVALID;
	} else if (bv_schema_string(&rd->schema, t, first->key, true, &value) < 0) {
		return BV_EINVALID;
	}
	svc->source_pos = first->value.pos;
	if (!value[0])
		return bv_schema_fail(&rd->schema, first->value.pos,
				      "'%s' of service '%s' must not be empty", first->key,
				      svc->name);
	if (!strcmp(first->key, "tool")) {
		svc->source = BV_SERVICE_TOOL;
		svc->tool = value;
	} else if (!strcmp(first->key, "image")) {
		struct bv_imageref ref;
		struct bv_error *ref_err = NULL;
		if (bv_imageref_parse(&ref, value, &ref_err) < 0) {
			_cleanup_free_ char *msg = bv_error_format(ref_err);
			bv_error_free(ref_err);
			return bv_schema_fail(&rd->schema, first->value.pos, "%s", msg);
		}
		bv_imageref_release(&ref);
		svc->source = BV_SERVICE_IMAGE;
		svc->image = value;
	} else {
		/* absolute or "../": allowed with allow_outside, checked by `bv up` */
		_cleanup_free_ char *joined =
			value[0] == '/' ? bv_xstrdup(value) : bv_path_join(root, value);
		svc->source = BV_SERVICE_BUILD;
		svc->context = bv_services_clean_path(joined);
	}
	/* the short form's companions; each may be given once, here or in the build table */
	if (bv_schema_string(&rd->schema, t, "dockerfile", false, &df) < 0 ||
	    bv_schema_string(&rd->schema, t, "target", false, &target) < 0 ||
	    read_string_table(rd, svc, t, "build_args", &args) < 0 ||
	    bv_schema_bool(&rd->schema, t, "buildkit", false, &svc->buildkit) < 0) {
		bv_strv_clear(&args);
		return BV_EINVALID;
	}
	bv_strv_foreach (a, &args)
		bv_strv_push(&svc->build_args, *a);
	bv_strv_clear(&args);
	if (first->value.type == BV_TOML_TABLE)
		bt.t = first->value.u.table;
	for (size_t i = 0; i < BV_ARRAY_SIZE(build_only); i++) {
		const struct bv_toml_kv *kv = bv_schema_find(t, build_only[i]);
		if (kv && svc->source != BV_SERVICE_BUILD)
			return bv_schema_fail(&rd->schema, kv->pos,
					      "'%s' of service '%s' needs 'build'", build_only[i],
					      svc->name);
		if (kv && bt.t && in_table[i] && bv_schema_find(&bt, in_table[i]))
			return bv_schema_fail(
				&rd->schema, kv->pos,
				"'%s' of service '%s' is also given in its build table",
				build_only[i], svc->name);
	}
	if (df)
		svc->dockerfile = df;
	if (target)
		svc->target = target;
	if (svc->source == BV_SERVICE_BUILD && !svc->dockerfile)
		svc->dockerfile = "Dockerfile";
	if (svc->dockerfile && (!svc->dockerfile[0] || svc->dockerfile[0] == '/'))
		return bv_schema_fail(
			&rd->schema, svc->source_pos,
			"'dockerfile' of service '%s' must be a path relative to its build context",
			svc->name);
	if (svc->target && !svc->target[0])
		return bv_schema_fail(&rd->schema, svc->source_pos,
				      "'target' of service '%s' must not be empty", svc->name);
	return 0;
}

static int read_ports_and_volumes(struct reader *rd, struct bv_service *svc,
				  const struct bv_schema_table *t, const char *root)
{
	const struct bv_toml_array *a = NULL;
	int r = read_string_array(rd, t, "ports", &a);
	if (r < 0)
		return r;
	if (r > 0 && a) {
		svc->ports = bv_xcalloc(a->n + 1, sizeof(*svc->ports));
		for (size_t i = 0; i < a->n; i++) {
			struct bv_error *perr = NULL;
			if (bv_service_port_parse(&svc->ports[i], a->items[i].u.string.ptr, &perr) <
			    0) {
				_cleanup_free_ char *msg = bv_error_format(perr);
				bv_error_free(perr);
				return bv_schema_fail(&rd->schema, a->items[i].pos, "%s", msg);
			}
			svc->n_ports++;
		}
	}
	a = NULL;
	r = read_string_array(rd, t, "volumes", &a);
	if (r <= 0 || !a)
		return r;
	svc->volumes = bv_xcalloc(a->n + 1, sizeof(*svc->volumes));
	for (size_t i = 0; i < a->n; i++) {
		struct bv_service_volume *v = &svc->volumes[i];
		struct bv_error *verr = NULL;
		if (bv_service_volume_parse(v, a->items[i].u.string.ptr, root, &verr) < 0) {
			_cleanup_free_ char *msg = bv_error_format(verr);
			bv_error_free(verr);
			return bv_schema_fail(&rd->schema, a->items[i].pos, "%s", msg);
		}
		svc->n_volumes++;
		v->pos = a->items[i].pos;
		/* compose refuses an undeclared volume: a typo must not make a new, empty one */
		if (v->kind == BV_VOLUME_NAMED && !bv_strv_contains(rd->volumes, v->host))
			return bv_schema_fail(&rd->schema, a->items[i].pos,
					      "volume '%s' of service '%s' is not declared; add "
					      "'%s = {}' to [volumes] (or write './%s' for a "
					      "directory of the project)",
					      v->host, svc->name, v->host, v->host);
	}
	return 0;
}

static int read_duration(struct reader *rd, const struct bv_schema_table *t, const char *key,
			 bool zero_ok, int64_t *out)
{
	const char *text = NULL;
	int r = bv_schema_string(&rd->schema, t, key, false, &text);
	if (r <= 0)
		return r;
	r = bv_duration_parse(out, text);
	if (r == -ERANGE)
		return bv_schema_fail(&rd->schema, bv_schema_find(t, key)->value.pos,
				      "'%s' in %s is too long: '%s'", key, t->name, text);
	if (r < 0)
		return bv_schema_fail(
			&rd->schema, bv_schema_find(t, key)->value.pos,
			"invalid duration '%s' for '%s' in %s: expected a number and a unit (ms, s, m, h), as in \"500ms\" or \"1m30s\"",
			text, key, t->name);
	if (*out < MIN_HEALTH_NS && !(zero_ok && *out == 0))
		return bv_schema_fail(&rd->schema, bv_schema_find(t, key)->value.pos,
				      "'%s' in %s must be at least 1ms, not '%s'", key, t->name,
				      text);
	return 1;
}

static int read_healthcheck(struct reader *rd, struct bv_service *svc,
			    const struct bv_schema_table *t)
{
	static const char *const known[] = {"test",         "interval", "timeout",
					    "start_period", "retries",  NULL};
	struct bv_schema_table h;
	struct bv_healthcheck *hc = &svc->health;
	struct bv_toml_pos pos;
	const char *kind;
	int r = bv_schema_table(&rd->schema, t, "healthcheck", false, &h);
	if (r <= 0)
		return r;
	if (bv_schema_strings(&rd->schema, &h, "test", true, &hc->test) < 0)
		return BV_EINVALID;
	pos = bv_schema_find(&h, "test")->value.pos;
	kind = hc->test.n ? hc->test.v[0] : "";
	if (!strcmp(kind, "CMD")) {
		if (hc->test.n < 2)
			return bv_schema_fail(&rd->schema, pos,
					      "'test' in %s needs a command after \"CMD\"", h.name);
	} else if (!strcmp(kind, "CMD-SHELL")) {
		if (hc->test.n != 2)
			return bv_schema_fail(&rd->schema, pos,
					      "'test' in %s needs exactly one command line after "
					      "\"CMD-SHELL\"",
					      h.name);
	} else if (!strcmp(kind, "NONE")) {
		if (hc->test.n != 1)
			return bv_schema_fail(&rd->schema, pos,
					      "'test' in %s takes nothing after \"NONE\"", h.name);
	} else {
		return bv_schema_fail(&rd->schema, pos,
				      "'test' in %s must start with \"CMD\", \"CMD-SHELL\" or "
				      "\"NONE\"",
				      h.name);
	}
	if (read_duration(rd, &h, "interval", false, &hc->interval_ns) < 0 ||
	    read_duration(rd, &h, "timeout", false, &hc->timeout_ns) < 0 ||
	    read_duration(rd, &h, "start_period", true, &hc->start_period_ns) < 0 ||
	    bv_schema_integer(&rd->schema, &h, "retries", false, &hc->retries) < 0)
		return BV_EINVALID;
	if (hc->retries < 0 || hc->retries > INT32_MAX)
		return bv_schema_fail(&rd->schema, bv_schema_find(&h, "retries")->value.pos,
				      "'retries' in %s must be a whole number from 0, not %lld",
				      h.name, (long long)hc->retries);
	return refuse_unknown(rd, svc, &h, false, known);
}

static int read_service(struct reader *rd, struct bv_services *s, const struct bv_toml_array *a,
			size_t i, const char *root)
{
	static const char *const known[] = {
		"name",   "tool",     "image",         "build",       "dockerfile",  "build_args",
		"target", "buildkit", "command",       "env",         "working_dir", "user",
		"ports",  "volumes",  "allow_outside", "healthcheck", "depends_on",  NULL};
	struct bv_service *svc = &s->v[i];
	struct bv_schema_table t;
	const struct bv_toml_array *cmd = NULL;
	if (bv_schema_table_at(&rd->schema, a, i, "[[services]]", &t) < 0 ||
	    bv_schema_string(&rd->schema, &t, "name", true, &svc->name) < 0)
		return BV_EINVALID;
	svc->pos = t.pos;
	if (!name_valid(svc->name))
		return bv_schema_fail(
			&rd->schema, bv_schema_find(&t, "name")->value.pos,
			"invalid service name '%s': use lower-case letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters",
			svc->name);
	for (size_t j = 0; j < i; j++)
		if (!strcmp(s->v[j].name, svc->name))
			return bv_schema_fail(&rd->schema, bv_schema_find(&t, "name")->value.pos,
					      "service '%s' is declared twice (first on line %u)",
					      svc->name, s->v[j].pos.line);
	if (refuse_unknown(rd, svc, &t, true, known) < 0 || read_source(rd, svc, &t, root) < 0 ||
	    read_string_array(rd, &t, "command", &cmd) < 0 ||
	    read_string_table(rd, svc, &t, "env", &svc->env) < 0 ||
	    bv_schema_string(&rd->schema, &t, "working_dir", false, &svc->working_dir) < 0 ||
	    bv_schema_string(&rd->schema, &t, "user", false, &svc->user) < 0 ||
	    bv_schema_bool(&rd->schema, &t, "allow_outside", false, &svc->allow_outside) < 0 ||
	    read_ports_and_volumes(rd, svc, &t, root) < 0 || read_healthcheck(rd, svc, &t) < 0 ||
	    read_string_array(rd, &t, "depends_on", &rd->deps[i]) < 0)
		return BV_EINVALID;
	if (svc->working_dir && svc->working_dir[0] != '/')
		return bv_schema_fail(&rd->schema, bv_schema_find(&t, "working_dir")->value.pos,
				      "'working_dir' of service '%s' must be an absolute path",
				      svc->name);
	if (svc->user && !svc->user[0])
		return bv_schema_fail(&rd->schema, bv_schema_find(&t, "user")->value.pos,
				      "'user' of service '%s' must not be empty", svc->name);
	for (size_t j = 0; cmd && j < cmd->n; j++)
		bv_strv_push(&svc->command, cmd->items[j].u.string.ptr);
	for (size_t j = 0; rd->deps[i] && j < rd->deps[i]->n; j++)
		bv_strv_push(&svc->depends_on, rd->deps[i]->items[j].u.string.ptr);
	return 0;
}

/* [volumes]: compose's top-level volumes, each an empty table (no driver options yet). */
static int read_volumes(struct reader *rd, struct bv_services *s, struct bv_schema_table *root)
{
	struct bv_schema_table vt;
	int r = bv_schema_table(&rd->schema, root, "volumes", false, &vt);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < vt.t->n; i++) {
		const struct bv_toml_kv *kv = &vt.t->items[i];
		struct bv_schema_table one;
		if (strlen(kv->key) != kv->key_len || !volume_name_valid(kv->key)) {
			_cleanup_free_ char *shown = bv_str_shown(kv->key, kv->key_len, 80);
			return bv_schema_fail(&rd->schema, kv->pos,
					      "invalid volume name '%s' in [volumes]: use letters, "
					      "digits, '_', '.' and '-', starting with a letter or "
					      "digit",
					      shown);
		}
		if (bv_schema_table(&rd->schema, &vt, kv->key, true, &one) < 0)
			return BV_EINVALID;
		if (one.t->n) {
			_cleanup_free_ char *shown =
				bv_str_shown(one.t->items[0].key, one.t->items[0].key_len, 80);
			return bv_error_setc(rd->schema.err, BV_EINVALID, 0,
					     "%s:%u: unknown key '%s' in volume '%s' of [volumes]",
					     rd->schema.file, one.t->items[0].pos.line, shown,
					     kv->key);
		}
		bv_strv_push(&s->volumes, kv->key);
	}
	return 0;
}

static int resolve_deps(struct reader *rd, struct bv_services *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct bv_service *svc = &s->v[i];
		svc->deps = bv_xcalloc(svc->depends_on.n + 1, sizeof(*svc->deps));
		for (size_t j = 0; j < svc->depends_on.n; j++) {
			const struct bv_service *dep = bv_services_find(s, svc->depends_on.v[j]);
			if (!dep)
				return bv_schema_fail(&rd->schema, rd->deps[i]->items[j].pos,
						      "service '%s' depends on '%s', which is not "
						      "a service of this project",
						      svc->name, svc->depends_on.v[j]);
			svc->deps[j] = (size_t)(dep - s->v);
		}
	}
	return 0;
}

enum { WHITE, GREY, BLACK };

/* Depth-first: emits dependencies before dependents; a grey node reached again is a cycle. */
static int visit(struct reader *rd, struct bv_services *s, size_t i, unsigned char *color,
		 size_t *stack, size_t depth, size_t *n_order)
{
	const struct bv_service *svc = &s->v[i];
	color[i] = GREY;
	stack[depth] = i;
	for (size_t j = 0; j < svc->depends_on.n; j++) {
		size_t d = svc->deps[j];
		if (color[d] == GREY) {
			struct bv_buf path = BV_BUF_INIT;
			int r;
			size_t from = depth;
			while (stack[from] != d)
				from--;
			for (size_t k = from; k <= depth; k++)
				bv_buf_printf(&path, "%s -> ", s->v[stack[k]].name);
			bv_buf_puts(&path, s->v[d].name);
			r = bv_schema_fail(&rd->schema, rd->deps[i]->items[j].pos,
					   "dependency cycle: %s", path.buf);
			bv_buf_release(&path);
			return r;
		}
		if (color[d] == WHITE) {
			int r = visit(rd, s, d, color, stack, depth + 1, n_order);
			if (r < 0)
				return r;
		}
	}
	color[i] = BLACK;
	s->order[(*n_order)++] = i;
	return 0;
}

static int order_services(struct reader *rd, struct bv_services *s)
{
	_cleanup_free_ unsigned char *color = bv_xcalloc(s->n + 1, 1);
	_cleanup_free_ size_t *stack = bv_xcalloc(s->n + 1, sizeof(*stack));
	size_t n_order = 0;
	s->order = bv_xcalloc(s->n + 1, sizeof(*s->order));
	for (size_t i = 0; i < s->n; i++) {
		if (color[i] == WHITE) {
			int r = visit(rd, s, i, color, stack, 0, &n_order);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int bv_services_parse(struct bv_services **out, const struct bv_project *p, struct bv_error **err)
{
	struct bv_services *s = bv_xcalloc(1, sizeof(*s));
	struct reader rd = {.schema = {.file = p->path, .err = err}};
	struct bv_schema_table root;
	const struct bv_toml_array *a = NULL;
	int r;

	bv_strv_init(&s->warnings);
	bv_strv_init(&rd.schema.names);
	rd.schema.warnings = &s->warnings;
	s->project_root = bv_xstrdup(p->root);
	s->project_name = engine_project_name(bv_project_display_name(p));
	s->file = bv_xstrdup(p->path);
	root = bv_schema_root(&rd.schema, bv_toml_doc_root(p->doc));
	bv_strv_init(&s->volumes);
	rd.volumes = &s->volumes;
	r = read_volumes(&rd, s, &root);
	if (r >= 0)
		r = bv_schema_array(&rd.schema, &root, "services", false, &a, NULL);
	if (r > 0) {
		s->v = bv_xcalloc(a->n + 1, sizeof(*s->v));
		rd.deps = bv_xcalloc(a->n + 1, sizeof(*rd.deps));
		for (size_t i = 0; i < a->n && r >= 0; i++) {
			bv_strv_init(&s->v[i].command);
			bv_strv_init(&s->v[i].env);
			bv_strv_init(&s->v[i].build_args);
			bv_strv_init(&s->v[i].health.test);
			bv_strv_init(&s->v[i].depends_on);
			s->n++;
			r = read_service(&rd, s, a, i, p->root);
		}
		if (r >= 0)
			r = resolve_deps(&rd, s);
	}
	if (r >= 0)
		r = order_services(&rd, s);
	free(rd.deps);
	bv_schema_release(&rd.schema);
	if (r < 0) {
		bv_services_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int bv_services_select(bool *selected, const struct bv_services *s, const char *const *names,
		       size_t n_names, struct bv_error **err)
{
	_cleanup_free_ size_t *queue = bv_xcalloc(s->n + 1, sizeof(*queue));
	size_t head = 0, tail = 0;
	for (size_t i = 0; i < s->n; i++)
		selected[i] = n_names == 0;
	for (size_t i = 0; i < n_names; i++) {
		const struct bv_service *svc = bv_services_find(s, names[i]);
		size_t k;
		if (!svc)
			return bv_error_setc(err, BV_ENOTFOUND, 0, "no service '%s' in '%s'",
					     names[i], s->file);
		k = (size_t)(svc - s->v);
		if (!selected[k]) {
			selected[k] = true;
			queue[tail++] = k;
		}
	}
	while (head < tail) {
		const struct bv_service *svc = &s->v[queue[head++]];
		for (size_t j = 0; j < svc->depends_on.n; j++) {
			if (!selected[svc->deps[j]]) {
				selected[svc->deps[j]] = true;
				queue[tail++] = svc->deps[j];
			}
		}
	}
	return 0;
}

/* ---- images --------------------------------------------------------------------------- */

/* `ref` with its registry replaced by the mirror's, when there is one; new string or NULL. */
static char *through_mirror(struct bv_imageref *ref, const char *digest,
			    const struct bv_mirrors *mirrors)
{
	const char *host = mirrors ? bv_mirrors_lookup(mirrors, ref->registry) : NULL;
	if (host) {
		free(ref->registry);
		ref->registry = bv_xstrdup(host);
	}
	if (digest)
		return bv_imageref_pinned(ref, digest);
	return host ? bv_imageref_format(ref) : NULL;
}

int bv_service_image(char **out, const struct bv_services *s, const struct bv_service *svc,
		     const struct bv_lockfile *lock, const struct bv_mirrors *mirrors,
		     struct bv_error **err)
{
	struct bv_imageref ref = {0};
	const struct bv_lock_tool *t;
	char *image;
	int r;
	switch (svc->source) {
	case BV_SERVICE_BUILD:
		*out = bv_services_build_tag(s, svc->name);
		return 0;
	case BV_SERVICE_IMAGE:
		r = bv_imageref_parse(&ref, svc->image, err);
		if (r < 0)
			return r;
		image = through_mirror(&ref, NULL, mirrors);
		bv_imageref_release(&ref);
		*out = image ? image : bv_xstrdup(svc->image);
		return 0;
	case BV_SERVICE_TOOL:
		break;
	}
	t = lock ? bv_lockfile_find(lock, svc->tool) : NULL;
	if (!t)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "%s:%u:%u: tool '%s' of service '%s' is not in bv.lock; run "
				     "'bv add %s' or 'bv lock'",
				     s->file, svc->source_pos.line, svc->source_pos.column,
				     svc->tool, svc->name, svc->tool);
	if (!t->image_digest[0] || !t->image_reference[0])
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s:%u:%u: bv.lock pins no image digest for tool '%s' of "
				     "service '%s'; run 'bv lock'",
				     s->file, svc->source_pos.line, svc->source_pos.column,
				     svc->tool, svc->name);
	r = bv_imageref_parse(&ref, t->image_reference, err);
	if (r < 0)
		return bv_error_wrap(err, r, "bv.lock records a bad image for tool '%s'",
				     svc->tool);
	image = through_mirror(&ref, t->image_digest, mirrors);
	bv_imageref_release(&ref);
	*out = image;
	return 0;
}

/* ---- log lines ------------------------------------------------------------------------ */

static int emit_line(struct bv_log_splitter *ls, int stream, char *line)
{
	const char *timestamp = NULL;
	if (ls->timestamps) {
		char *space = strchr(line, ' ');
		int64_t secs;
		if (space) {
			*space = '\0';
			if (bv_time_parse_rfc3339(&secs, NULL, line) == 0) {
				timestamp = line;
				line = space + 1;
			} else {
				*space = ' ';
			}
		} else if (bv_time_parse_rfc3339(&secs, NULL, line) == 0) {
			/* an empty line: the engine wrote the timestamp and nothing else */
			timestamp = line;
			line = line + strlen(line);
		}
	}
	return ls->on_line(stream, timestamp, line, ls->payload);
}

int bv_log_splitter_feed(struct bv_log_splitter *ls, int stream, const char *data, size_t len)
{
	int k = stream == 2 ? 2 : 1;
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		BV_GROW(ls->partial[k], ls->partial_alloc[k], ls->partial_len[k] + take + 1);
		memcpy(ls->partial[k] + ls->partial_len[k], data, take);
		ls->partial_len[k] += take;
		ls->partial[k][ls->partial_len[k]] = '\0';
		data += take;
		len -= take;
		if (nl) {
			int r;
			data++;
			len--;
			if (ls->partial_len[k] && ls->partial[k][ls->partial_len[k] - 1] == '\r')
				ls->partial[k][--ls->partial_len[k]] = '\0';
			ls->partial_len[k] = 0;
			r = emit_line(ls, k, ls->partial[k]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int bv_log_splitter_finish(struct bv_log_splitter *ls)
{
	int r = 0;
	for (int k = 1; k <= 2; k++) {
		if (r >= 0 && ls->partial_len[k]) {
			ls->partial_len[k] = 0;
			r = emit_line(ls, k, ls->partial[k]);
		}
	}
	for (int k = 0; k < 3; k++) {
		free(ls->partial[k]);
		ls->partial[k] = NULL;
		ls->partial_len[k] = ls->partial_alloc[k] = 0;
	}
	return r;
}
