#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/oci/registry/auth-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"

/* Every secret any test below puts anywhere; none may appear in an error message. */
static const char *const secrets[] = {
	"s3cret-pw",  "YWxpY2U6czNjcmV0LXB3",
	"hunter2",    "helper-secret-42",
	"fb-pass",    "ZmFsbGJhY2s6ZmItcGFzcw",
	"id-token-9", "bm9jb2xvbg",
	"nocolon",    "c2VjcmV0",
	"hub-secret", "boom",
};

/* Checks that no secret leaks into the message, frees the error, returns nothing. */
static void check_no_secret(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	for (size_t i = 0; i < BV_ARRAY_SIZE(secrets); i++)
		if (strstr(msg, secrets[i]))
			fail_msg("secret '%s' in error message '%s'", secrets[i], msg);
	free(msg);
	bv_error_free(err);
}

/* ---- WWW-Authenticate ----------------------------------------------------------------- */

struct challenge_case {
	const char *header;
	enum bv_auth_scheme scheme; /* 0: must be rejected */
	const char *realm, *service, *scope;
	const char *why;
};

static const struct challenge_case challenge_cases[] = {
	{"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	 "scope=\"repository:library/ubuntu:pull\"",
	 BV_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
	 "repository:library/ubuntu:pull", NULL},
	{"bearer realm=\"https://a/t\"", BV_AUTH_BEARER, "https://a/t", NULL, NULL, NULL},
	{"BEARER Realm=\"https://a/t\", SERVICE=\"svc\"", BV_AUTH_BEARER, "https://a/t", "svc",
	 NULL, NULL},
	/* commas inside quoted strings are not separators */
	{"Bearer realm=\"https://a/t?x=1,2\",scope=\"repository:a/b:pull,push\"", BV_AUTH_BEARER,
	 "https://a/t?x=1,2", NULL, "repository:a/b:pull,push", NULL},
	/* backslash escapes */
	{"Bearer realm=\"https://a/t\",service=\"say \\\"hi\\\" \\\\ ok\"", BV_AUTH_BEARER,
	 "https://a/t", "say \"hi\" \\ ok", NULL, NULL},
	/* token values and blanks around '=' and ',' */
	{"  Bearer   realm = \"https://a/t\" ,  service=registry.docker.io ,scope=x  ",
	 BV_AUTH_BEARER, "https://a/t", "registry.docker.io", "x", NULL},
	{"Bearer realm=\"https://a/t\",,, service=\"s\",", BV_AUTH_BEARER, "https://a/t", "s", NULL,
	 NULL},
	/* unknown parameters are ignored */
	{"Bearer realm=\"https://a/t\",error=\"invalid_token\",error_description=\"x, y\",foo=bar",
	 BV_AUTH_BEARER, "https://a/t", NULL, NULL, NULL},
	{"Basic realm=\"Registry Realm\"", BV_AUTH_BASIC, "Registry Realm", NULL, NULL, NULL},
	{"basic", BV_AUTH_BASIC, NULL, NULL, NULL, NULL},
	/* several challenges: Bearer wins, unknown schemes are skipped */
	{"Basic realm=\"x\", Bearer realm=\"https://a/t\"", BV_AUTH_BEARER, "https://a/t", NULL,
	 NULL, NULL},
	{"Bearer realm=\"https://a/t\", Basic realm=\"x\"", BV_AUTH_BEARER, "https://a/t", NULL,
	 NULL, NULL},
	{"Negotiate YWJj==, Bearer realm=\"https://a/t\"", BV_AUTH_BEARER, "https://a/t", NULL,
	 NULL, NULL},
	{"Digest realm=\"d\", nonce=\"n\", Basic realm=\"b\"", BV_AUTH_BASIC, "b", NULL, NULL,
	 NULL},
	{"Bearer realm=\"https://a/t\" Basic", BV_AUTH_BEARER, "https://a/t", NULL, NULL, NULL},

	/* rejected */
	{"", 0, NULL, NULL, NULL, "no Basic or Bearer challenge"},
	{" , ,", 0, NULL, NULL, NULL, "no Basic or Bearer challenge"},
	{"Digest realm=\"d\"", 0, NULL, NULL, NULL, "no Basic or Bearer challenge"},
	{"Bearer service=\"x\",scope=\"y\"", 0, NULL, NULL, NULL, "without a realm"},
	{"Bearer", 0, NULL, NULL, NULL, "without a realm"},
	{"Bearer realm=", 0, NULL, NULL, NULL, "without a realm"},
	{"Bearer realm=\"https://a/t", 0, NULL, NULL, NULL, "unterminated quoted string"},
	{"Bearer realm=\"https://a/t\\", 0, NULL, NULL, NULL, "unterminated quoted string"},
	{"Bearer realm=\"a\", realm=\"b\"", 0, NULL, NULL, NULL, "'realm' given twice"},
	{"Bearer realm=\"a\x01\"", 0, NULL, NULL, NULL, "control character"},
	{"Bearer=realm", 0, NULL, NULL, NULL, "unexpected character after the scheme"},
	{"\"Bearer\"", 0, NULL, NULL, NULL, "expected an authentication scheme"},
	{"Bearer realm=https://a/t", 0, NULL, NULL, NULL, "expected an authentication scheme"},
	{"Bearer realm=\"x\", =", 0, NULL, NULL, NULL, "expected an authentication scheme"},
	{"Bearer realm=(x)", 0, NULL, NULL, NULL, "invalid parameter value"},
	{"\x1b[2J", 0, NULL, NULL, NULL, "'?[2J'"},
};

static void check_field(const char *header, const char *name, const char *got, const char *want)
{
	if (!want && got)
		fail_msg("'%s': %s should be absent, is '%s'", header, name, got);
	if (want && (!got || strcmp(got, want)))
		fail_msg("'%s': %s is '%s', not '%s'", header, name, got ? got : "(null)", want);
}

static void test_auth__www_authenticate_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(challenge_cases); i++) {
		const struct challenge_case *c = &challenge_cases[i];
		struct bv_www_auth a = {0};
		struct bv_error *err = NULL;
		int r = bv_www_authenticate_parse(&a, c->header, &err);

		if (!c->scheme) {
			char *msg;
			if (r != BV_EINVALID)
				fail_msg("'%s' was accepted (r=%d)", c->header, r);
			assert_int_equal(a.scheme, 0);
			assert_null(a.realm);
			msg = bv_error_format(err);
			if (!strstr(msg, c->why) ||
			    !bv_str_has_prefix(msg, "invalid WWW-Authenticate"))
				fail_msg("'%s': message '%s' lacks '%s'", c->header, msg, c->why);
			free(msg);
			bv_error_free(err);
			continue;
		}
		if (r < 0) {
			char *msg = bv_error_format(err);
			fail_msg("'%s' rejected: %s", c->header, msg);
		}
		assert_int_equal(a.scheme, c->scheme);
		check_field(c->header, "realm", a.realm, c->realm);
		check_field(c->header, "service", a.service, c->service);
		check_field(c->header, "scope", a.scope, c->scope);
		bv_www_auth_release(&a);
		assert_null(a.realm);
	}
}

static void test_auth__www_authenticate_too_long(void **state)
{
	(void)state;
	struct bv_buf b = BV_BUF_INIT;
	struct bv_www_auth a = {0};
	struct bv_error *err = NULL;
	char *msg;

	bv_buf_puts(&b, "Bearer realm=\"https://a/t\",x=\"");
	while (b.len < BV_WWW_AUTH_MAX_LEN - 1)
		bv_buf_putc(&b, 'y');
	bv_buf_putc(&b, '"');
	assert_int_equal(b.len, BV_WWW_AUTH_MAX_LEN);
	assert_ok(bv_www_authenticate_parse(&a, b.buf, &err), &err);
	assert_string_equal(a.realm, "https://a/t");
	bv_www_auth_release(&a);

	bv_buf_putc(&b, ' ');
	assert_int_equal(bv_www_authenticate_parse(&a, b.buf, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "longer than 8192 bytes"));
	free(msg);
	bv_error_free(err);
	bv_buf_release(&b);
}

/* ---- token URL ------------------------------------------------------------------------ */

static void test_auth__token_url(void **state)
{
	(void)state;
	static const struct {
		const char *realm, *service, *scope, *fallback, *want;
	} cases[] = {
		{"https://auth.docker.io/token", "registry.docker.io", NULL,
		 "repository:library/ubuntu:pull",
		 "https://auth.docker.io/token?service=registry.docker.io"
		 "&scope=repository%3Alibrary%2Fubuntu%3Apull"},
		/* the challenge's scope wins over the fallback */
		{"https://q/t", "quay.io", "repository:a/b:pull", "repository:other:pull",
		 "https://q/t?service=quay.io&scope=repository%3Aa%2Fb%3Apull"},
		/* a realm with a query gets '&' */
		{"https://q/t?account=x", "svc", NULL, NULL, "https://q/t?account=x&service=svc"},
		{"https://q/t", NULL, NULL, "s", "https://q/t?scope=s"},
		{"HTTP://127.0.0.1:5001/auth", NULL, NULL, NULL, "HTTP://127.0.0.1:5001/auth"},
		/* everything outside the unreserved set is escaped, bytes as UTF-8 */
		{"https://q/t", "a b&c=d/e+f~g_h.i-j", "\xc3\xa9%?#", NULL,
		 "https://q/t?service=a%20b%26c%3Dd%2Fe%2Bf~g_h.i-j&scope=%C3%A9%25%3F%23"},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_www_auth a = {.scheme = BV_AUTH_BEARER};
		struct bv_error *err = NULL;
		char *url = NULL;
		/* the struct holds char *; the test only reads through it */
		a.realm = bv_xstrdup(cases[i].realm);
		a.service = cases[i].service ? bv_xstrdup(cases[i].service) : NULL;
		a.scope = cases[i].scope ? bv_xstrdup(cases[i].scope) : NULL;
		assert_ok(bv_auth_token_url(&url, &a, cases[i].fallback, &err), &err);
		assert_string_equal(url, cases[i].want);
		free(url);
		bv_www_auth_release(&a);
	}
}

static void test_auth__token_url_refuses_realms(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"ftp://a/t",
		"file:///etc/passwd",
		"https://",
		"https:///path",
		"//a/t",
		"a/t",
		"https://a b",
		"https://a/t#frag",
		"https://a/t\r\nX:",
		"javascript:alert",
		"",
	};
	static char untouched[] = "untouched";
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		struct bv_www_auth a = {.scheme = BV_AUTH_BEARER};
		struct bv_error *err = NULL;
		char *url = untouched, *msg;
		a.realm = bv_xstrdup(bad[i]);
		if (bv_auth_token_url(&url, &a, "s", &err) != BV_EINVALID)
			fail_msg("realm '%s' was accepted", bad[i]);
		assert_ptr_equal(url, untouched);
		msg = bv_error_format(err);
		assert_true(bv_str_has_prefix(msg, "refusing token realm '"));
		assert_null(strchr(msg, '\r'));
		free(msg);
		bv_error_free(err);
		bv_www_auth_release(&a);
	}
	/* Basic challenges have no token endpoint. */
	struct bv_www_auth basic = {.scheme = BV_AUTH_BASIC};
	char *url = NULL;
	assert_int_equal(bv_auth_token_url(&url, &basic, "s", NULL), BV_EINVALID);
	assert_null(url);
}

/* ---- credentials ---------------------------------------------------------------------- */

struct docker_env {
	char *dir;
	char *old_path;
};

static void docker_env_setup(struct docker_env *e, const char *config_json)
{
	char *path;
	e->dir = test_mkdtemp("auth");
	assert_non_null(e->dir);
	e->old_path = bv_xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	assert_int_equal(setenv("DOCKER_CONFIG", e->dir, 1), 0);
	path = bv_path_join(e->dir, "config.json");
	if (config_json)
		assert_int_equal(
			bv_write_file_atomic(path, config_json, strlen(config_json), 0600, NULL),
			0);
	free(path);
}

/*
 * docker-credential-testhelper in <dir>/bin, first on PATH.  It answers by the server URL it
 * reads on stdin, like Docker's helpers: JSON on success, "credentials not found..." and
 * status 1 when it has nothing.
 */
static void install_helper(struct docker_env *e)
{
	static const char script[] =
		"#!/bin/sh\n"
		"[ \"$1\" = get ] || exit 2\n"
		"read -r url\n"
		"case \"$url\" in\n"
		"quay.io) printf '{\"ServerURL\":\"%s\",\"Username\":\"helperuser\","
		"\"Secret\":\"helper-secret-42\"}\\n' \"$url\" ;;\n"
		"https://index.docker.io/v1/) printf '{\"Username\":\"hubuser\","
		"\"Secret\":\"hub-secret\"}' ;;\n"
		"broken.io) echo 'boom helper-secret-42'; echo oops >&2; exit 3 ;;\n"
		"badjson.io) echo '{\"Username\":\"u\",\"Secret\":helper-secret-42'; exit 0 ;;\n"
		"nosecret.io) echo '{\"Username\":\"u\"}'; exit 0 ;;\n"
		"*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
		"esac\n";
	char *bin = bv_path_join(e->dir, "bin");
	char *helper = bv_path_join(bin, "docker-credential-testhelper");
	char *path = bv_xasprintf("%s:%s", bin, e->old_path);
	assert_int_equal(bv_mkdir_p(bin, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(helper, script, strlen(script), 0755, NULL), 0);
	assert_int_equal(setenv("PATH", path, 1), 0);
	free(path);
	free(helper);
	free(bin);
}

static void docker_env_teardown(struct docker_env *e)
{
	assert_int_equal(setenv("PATH", e->old_path, 1), 0);
	unsetenv("DOCKER_CONFIG");
	assert_int_equal(bv_rm_rf(e->dir, NULL), 0);
	free(e->dir);
	free(e->old_path);
}

static void expect_cred(const char *registry, const char *user, const char *secret)
{
	struct bv_credential c = {0};
	struct bv_error *err = NULL;
	int r = bv_credentials_lookup(&c, registry, &err);
	if (r < 0) {
		char *msg = bv_error_format(err);
		fail_msg("lookup of '%s' failed: %s", registry, msg);
	}
	if (strcmp(c.username, user) || strcmp(c.secret, secret))
		fail_msg("'%s': got user '%s', wanted '%s' (secret %s)", registry, c.username, user,
			 strcmp(c.secret, secret) ? "differs" : "matches");
	bv_credential_release(&c);
	assert_null(c.username);
	assert_null(c.secret);
}

/* The lookup fails with `code`, leaves the output alone and says `why` without secrets. */
static void expect_fail(const char *registry, int code, const char *why)
{
	struct bv_credential c = {0};
	struct bv_error *err = NULL;
	char *msg;
	int r = bv_credentials_lookup(&c, registry, &err);
	if (r != code)
		fail_msg("lookup of '%s' returned %d, not %d", registry, r, code);
	assert_null(c.username);
	assert_null(c.secret);
	msg = bv_error_format(err);
	if (!strstr(msg, why))
		fail_msg("'%s': message '%s' lacks '%s'", registry, msg, why);
	free(msg);
	check_no_secret(err);
}

static void test_auth__credentials_from_auths(void **state)
{
	(void)state;
	struct docker_env e;
	docker_env_setup(&e,
			 "{\"auths\": {\n"
			 "  \"quay.io\": {\"auth\": \"YWxpY2U6czNjcmV0LXB3\"},\n"
			 "  \"https://ghcr.io\": {\"username\": \"bob\", \"password\": "
			 "\"hunter2\"},\n"
			 "  \"https://index.docker.io/v1/\": {\"auth\": \"Ym9iOmh1bnRlcjI=\"},\n"
			 "  \"https://reg.example.org/v1/\": {\"auth\": \"aHViOnBhOnNz\"},\n"
			 "  \"token.io\": {\"auth\": \"Ym9iOmh1bnRlcjI=\", \"identitytoken\": "
			 "\"id-token-9\"},\n"
			 "  \"empty.io\": {},\n"
			 "  \"nosep.io\": {\"auth\": \"bm9jb2xvbg==\"},\n"
			 "  \"nouser.io\": {\"auth\": \"Om5vdXNlcg==\"},\n"
			 "  \"badchar.io\": {\"auth\": \"YWxp!2U6czNjcmV0LXB3\"},\n"
			 "  \"badpad.io\": {\"auth\": \"Y===\"},\n"
			 "  \"badlen.io\": {\"auth\": \"ZmFsbGJhY2s6ZmItcGFzcw\"},\n"
			 "  \"midpad.io\": {\"auth\": \"YW=pY2U6czNjcmV0LXB3\"},\n"
			 "  \"notobj.io\": \"fb-pass\"\n"
			 "}}\n");
	expect_cred("quay.io", "alice", "s3cret-pw");
	expect_cred("QUAY.io", "alice", "s3cret-pw");
	expect_cred("ghcr.io", "bob", "hunter2");
	expect_cred("docker.io", "bob", "hunter2");
	expect_cred("registry-1.docker.io", "bob", "hunter2");
	expect_cred("reg.example.org", "hub", "pa:ss"); /* the first ':' separates */
	expect_cred("token.io", "<token>", "id-token-9");

	expect_fail("elsewhere.io", BV_ENOTFOUND, "no credentials for 'elsewhere.io'");
	expect_fail("empty.io", BV_ENOTFOUND, "no credentials for 'empty.io'");
	expect_fail("quay.io.evil", BV_ENOTFOUND, "no credentials");
	expect_fail("nosep.io", BV_EINVALID, "\"auth\" of 'nosep.io' is not base64");
	expect_fail("nouser.io", BV_EINVALID, "is not base64");
	expect_fail("badchar.io", BV_EINVALID, "is not base64");
	expect_fail("badpad.io", BV_EINVALID, "is not base64");
	expect_fail("badlen.io", BV_EINVALID, "is not base64");
	expect_fail("midpad.io", BV_EINVALID, "is not base64");
	expect_fail("notobj.io", BV_EINVALID, "auths entry 'notobj.io' is not an object");
	docker_env_teardown(&e);
}

static void test_auth__credentials_missing_or_malformed_config(void **state)
{
	(void)state;
	struct docker_env e;

	docker_env_setup(&e, NULL);
	expect_fail("quay.io", BV_ENOTFOUND, "does not exist");
	docker_env_teardown(&e);

	/* jansson would quote the text near the error: here, a secret. */
	docker_env_setup(&e, "{\"auths\":{\"quay.io\":{\"auth\":\"c2VjcmV0\"} c2VjcmV0 }}");
	expect_fail("quay.io", BV_EINVALID, "config.json:1:");
	docker_env_teardown(&e);

	docker_env_setup(&e, "[\"c2VjcmV0\"]");
	expect_fail("quay.io", BV_EINVALID, "not a JSON object");
	docker_env_teardown(&e);

	docker_env_setup(&e, "{\"credsStore\": 3}");
	expect_fail("quay.io", BV_EINVALID, "credsStore is not a string");
	docker_env_teardown(&e);
}

static void test_auth__credentials_from_helpers(void **state)
{
	(void)state;
	struct docker_env e;
	docker_env_setup(
		&e, "{\"credHelpers\": {\n"
		    "  \"quay.io\": \"testhelper\",\n"
		    "  \"docker.io\": \"testhelper\",\n"
		    "  \"https://fallback.io\": \"testhelper\",\n"
		    "  \"gone.io\": \"testhelper\",\n"
		    "  \"broken.io\": \"testhelper\",\n"
		    "  \"badjson.io\": \"testhelper\",\n"
		    "  \"nosecret.io\": \"testhelper\",\n"
		    "  \"missing.io\": \"nosuchhelper-bv\",\n"
		    "  \"evil.io\": \"../../bin/sh\",\n"
		    "  \"number.io\": 7\n"
		    "},\n"
		    "\"auths\": {\"fallback.io\": {\"auth\": \"ZmFsbGJhY2s6ZmItcGFzcw==\"}}}\n");
	install_helper(&e);

	expect_cred("quay.io", "helperuser", "helper-secret-42");
	/* Docker Hub's server URL on the helper's stdin is the legacy v1 one */
	expect_cred("registry-1.docker.io", "hubuser", "hub-secret");
	/* "credentials not found": the next source answers */
	expect_cred("fallback.io", "fallback", "fb-pass");
	expect_fail("gone.io", BV_ENOTFOUND, "no credentials for 'gone.io'");

	expect_fail("broken.io", BV_ERR,
		    "credential helper 'docker-credential-testhelper' failed for 'broken.io' "
		    "(exit status 3)");
	expect_fail("badjson.io", BV_EINVALID, "'docker-credential-testhelper' printed no JSON");
	expect_fail("nosecret.io", BV_EINVALID, "no \"Username\" and \"Secret\"");
	/* a helper that is not installed is an error, not "no credentials" */
	expect_fail("missing.io", BV_ERR,
		    "could not run credential helper 'docker-credential-nosuchhelper-bv'");
	expect_fail("evil.io", BV_EINVALID, "invalid credential helper name '../../bin/sh'");
	expect_fail("number.io", BV_EINVALID, "credHelpers entry 'number.io' is not a string");
	docker_env_teardown(&e);
}

static void test_auth__credentials_from_store(void **state)
{
	(void)state;
	struct docker_env e;
	docker_env_setup(&e, "{\"credsStore\": \"testhelper\",\n"
			     " \"auths\": {\"quay.io\": {}, \"https://index.docker.io/v1/\": {},"
			     " \"fallback.io\": {\"username\": \"fallback\", \"password\": "
			     "\"fb-pass\"}}}\n");
	install_helper(&e);
	expect_cred("quay.io", "helperuser", "helper-secret-42");
	expect_cred("docker.io", "hubuser", "hub-secret");
	expect_cred("fallback.io", "fallback", "fb-pass");
	expect_fail("unknown.io", BV_ENOTFOUND, "no credentials for 'unknown.io'");
	expect_fail("broken.io", BV_ERR, "'docker-credential-testhelper' failed");
	docker_env_teardown(&e);
}

static void test_auth__basic_header(void **state)
{
	(void)state;
	static const struct {
		const char *user, *secret, *want;
	} cases[] = {
		{"alice", "s3cret-pw", "Basic YWxpY2U6czNjcmV0LXB3"},
		{"bob", "hunter2", "Basic Ym9iOmh1bnRlcjI="},
		{"fallback", "fb-pass", "Basic ZmFsbGJhY2s6ZmItcGFzcw=="},
		{"", "", "Basic Og=="},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_credential c = {.username = bv_xstrdup(cases[i].user),
					  .secret = bv_xstrdup(cases[i].secret)};
		char *h = bv_basic_auth_header(&c);
		assert_string_equal(h, cases[i].want);
		free(h);
		bv_credential_release(&c);
	}
}

/* ---- token cache ---------------------------------------------------------------------- */

static void test_auth__token_cache_reuse(void **state)
{
	(void)state;
	struct bv_token_cache *tc = bv_token_cache_new();
	time_t later = time(NULL) + 3600;
	const char *pull_a = "repository:biocontainers/samtools:pull";
	const char *pull_b = "repository:biocontainers/bwa:pull";

	assert_null(bv_token_cache_get(tc, "quay.io", pull_a));
	bv_token_cache_put(tc, "quay.io", pull_a, "tok-a", later);
	bv_token_cache_put(tc, "quay.io", pull_b, "tok-b", later);
	bv_token_cache_put(tc, "docker.io", pull_a, "tok-hub", later);
	bv_token_cache_put(tc, "ghcr.io", NULL, "tok-anon", later);

	/* every blob of a repository gets the same token back */
	for (int i = 0; i < 3; i++)
		assert_string_equal(bv_token_cache_get(tc, "quay.io", pull_a), "tok-a");
	assert_string_equal(bv_token_cache_get(tc, "QUAY.IO", pull_a), "tok-a");
	assert_string_equal(bv_token_cache_get(tc, "quay.io", pull_b), "tok-b");
	assert_string_equal(bv_token_cache_get(tc, "registry-1.docker.io", pull_a), "tok-hub");
	assert_null(bv_token_cache_get(tc, "quay.io", "repository:other:pull"));
	assert_null(bv_token_cache_get(tc, "ghcr.io", pull_a));
	assert_string_equal(bv_token_cache_get(tc, "ghcr.io", NULL), "tok-anon");
	assert_string_equal(bv_token_cache_get(tc, "ghcr.io", ""), "tok-anon");

	/* a new token for the same key replaces the old one */
	bv_token_cache_put(tc, "quay.io", pull_a, "tok-a2", later);
	assert_string_equal(bv_token_cache_get(tc, "quay.io", pull_a), "tok-a2");
	assert_string_equal(bv_token_cache_get(tc, "quay.io", pull_b), "tok-b");
	bv_token_cache_free(tc);
	bv_token_cache_free(NULL);
}

static void test_auth__token_cache_expiry(void **state)
{
	(void)state;
	struct bv_token_cache *tc = bv_token_cache_new();
	time_t now = time(NULL);

	bv_token_cache_put(tc, "quay.io", "expired", "t1", now - 1);
	bv_token_cache_put(tc, "quay.io", "almost", "t2", now + BV_TOKEN_EXPIRY_MARGIN - 2);
	bv_token_cache_put(tc, "quay.io", "fresh", "t3", now + BV_TOKEN_EXPIRY_MARGIN + 120);
	assert_null(bv_token_cache_get(tc, "quay.io", "expired"));
	assert_null(bv_token_cache_get(tc, "quay.io", "almost"));
	assert_string_equal(bv_token_cache_get(tc, "quay.io", "fresh"), "t3");
	/* an expired entry is dropped, and a new token takes its place */
	assert_null(bv_token_cache_get(tc, "quay.io", "expired"));
	bv_token_cache_put(tc, "quay.io", "expired", "t4", now + 3600);
	assert_string_equal(bv_token_cache_get(tc, "quay.io", "expired"), "t4");
	assert_string_equal(bv_token_cache_get(tc, "quay.io", "fresh"), "t3");
	bv_token_cache_free(tc);

	/* expires_in: missing or under 60 s means 60 s; huge values are capped */
	assert_int_equal(bv_token_expires_at(1000, 0), 1060);
	assert_int_equal(bv_token_expires_at(1000, -5), 1060);
	assert_int_equal(bv_token_expires_at(1000, 30), 1060);
	assert_int_equal(bv_token_expires_at(1000, 300), 1300);
	assert_int_equal(bv_token_expires_at(1000, INT64_MAX), 1000 + 366 * 24 * 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth__www_authenticate_table),
		cmocka_unit_test(test_auth__www_authenticate_too_long),
		cmocka_unit_test(test_auth__token_url),
		cmocka_unit_test(test_auth__token_url_refuses_realms),
		cmocka_unit_test(test_auth__credentials_from_auths),
		cmocka_unit_test(test_auth__credentials_missing_or_malformed_config),
		cmocka_unit_test(test_auth__credentials_from_helpers),
		cmocka_unit_test(test_auth__credentials_from_store),
		cmocka_unit_test(test_auth__basic_header),
		cmocka_unit_test(test_auth__token_cache_reuse),
		cmocka_unit_test(test_auth__token_cache_expiry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
