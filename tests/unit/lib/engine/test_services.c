/*
 * Project services: [[services]] read from bv.toml with positioned errors for every bad
 * value, dependency order and cycles, engine names and images, port/volume/duration parsing,
 * .dockerignore matching, the build context tar, and log lines split from engine timestamps
 * in any chunking.  Nothing here needs a daemon; tests/e2e/t0720-services.bats does.
 *
 * Texts are parsed as the project file /p/bv.toml.
 */
#include <bv/error.h>
#include <bv/imageref.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/services.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/store/archive_loader.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#define PATH "/p/bv.toml"
#define HEAD "[project]\nname = \"demo\"\n" /* two lines */

struct parsed {
	struct bv_project *p;
	struct bv_services *s;
};

static struct parsed parse_ok(const char *text)
{
	struct bv_error *err = NULL;
	struct parsed r = {0};
	assert_ok(bv_project_parse(&r.p, text, strlen(text), PATH, &err), &err);
	assert_ok(bv_services_parse(&r.s, r.p, &err), &err);
	return r;
}

static void parsed_free(struct parsed *r)
{
	bv_services_free(r->s);
	bv_project_free(r->p);
}

/* The project parses; its services fail with `want`. */
static void parse_fail(const char *text, const char *want)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	struct bv_services *s = NULL;
	char *msg;
	int r;
	assert_ok(bv_project_parse(&p, text, strlen(text), PATH, &err), &err);
	r = bv_services_parse(&s, p, &err);
	if (r >= 0) {
		print_error("parsed although it should fail with: %s\n", want);
		bv_services_free(s);
		bv_project_free(p);
		fail();
	}
	assert_int_equal(r, BV_EINVALID);
	assert_null(s);
	msg = bv_error_format(err);
	bv_error_free(err);
	if (strcmp(msg, want))
		print_error("text:\n%s\n", text);
	assert_string_equal(msg, want);
	free(msg);
	bv_project_free(p);
}

static const char full[] = HEAD                                                    /* 1-2 */
	"[[services]]\n"                                                           /* 3 */
	"name = \"web\"\n"                                                         /* 4 */
	"build = \"./web/\"\n"                                                     /* 5 */
	"command = [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\"]\n"           /* 6 */
	"env = { GREETING = \"hello world\", EMPTY = \"\" }\n"                     /* 7 */
	"ports = [\"18080:8080\", \"0.0.0.0:9090:9090/udp\", \"[::1]:7070:70\"]\n" /* 8 */
	"volumes = [\"./data:/srv/data\", \"/etc/hosts:/etc/hosts:ro\", \"./c/../d/:/d:rw\"]\n"
	"depends_on = [\"db\"]\n" /* 10 */
	"[services.healthcheck]\n"
	"test = [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8080/\"]\n"
	"interval = \"1s\"\n"
	"timeout = \"500ms\"\n"
	"start_period = \"1m30s\"\n"
	"retries = 5\n"
	"\n"
	"[[services]]\n"
	"name = \"db\"\n"
	"image = \"127.0.0.1:5000/biocontainers/samtools:1.16.1--debian\"\n"
	"\n"
	"[[services]]\n"
	"name = \"tool.x_1-a\"\n"
	"tool = \"samtools\"\n"
	"healthcheck = { test = [\"CMD-SHELL\", \"true\"] }\n";

static void test_services__every_field(void **state)
{
	struct parsed r = parse_ok(full);
	const struct bv_service *web, *db, *tool;
	(void)state;
	assert_int_equal(r.p->warnings.n, 0); /* project.c knows the key */
	assert_int_equal(r.s->warnings.n, 0);
	assert_int_equal(r.s->n, 3);
	assert_string_equal(r.s->project_root, "/p");
	assert_string_equal(r.s->project_name, "demo");
	web = bv_services_find(r.s, "web");
	db = bv_services_find(r.s, "db");
	tool = bv_services_find(r.s, "tool.x_1-a");
	assert_non_null(web);
	assert_non_null(db);
	assert_non_null(tool);
	assert_null(bv_services_find(r.s, "nope"));

	assert_int_equal(web->source, BV_SERVICE_BUILD);
	assert_string_equal(web->context, "/p/web");
	assert_string_equal(web->dockerfile, "Dockerfile");
	assert_int_equal(web->pos.line, 3);
	assert_int_equal(web->source_pos.line, 5);
	assert_int_equal(web->command.n, 5);
	assert_string_equal(web->command.v[1], "httpd");
	assert_int_equal(web->env.n, 2);
	assert_string_equal(web->env.v[0], "GREETING=hello world");
	assert_string_equal(web->env.v[1], "EMPTY=");
	assert_int_equal(web->n_ports, 3);
	assert_string_equal(web->ports[0].host_ip, "127.0.0.1");
	assert_int_equal(web->ports[0].host_port, 18080);
	assert_int_equal(web->ports[0].container_port, 8080);
	assert_string_equal(web->ports[0].proto, "tcp");
	assert_string_equal(web->ports[1].host_ip, "0.0.0.0");
	assert_string_equal(web->ports[1].proto, "udp");
	assert_string_equal(web->ports[2].host_ip, "::1");
	assert_int_equal(web->ports[2].container_port, 70);
	assert_int_equal(web->n_volumes, 3);
	assert_string_equal(web->volumes[0].host, "/p/data");
	assert_string_equal(web->volumes[0].container, "/srv/data");
	assert_false(web->volumes[0].read_only);
	assert_string_equal(web->volumes[1].host, "/etc/hosts");
	assert_true(web->volumes[1].read_only);
	assert_string_equal(web->volumes[2].host, "/p/d");
	assert_false(web->volumes[2].read_only);
	assert_int_equal(web->health.test.n, 5);
	assert_string_equal(web->health.test.v[0], "CMD");
	assert_int_equal(web->health.interval_ns, 1000000000);
	assert_int_equal(web->health.timeout_ns, 500000000);
	assert_int_equal(web->health.start_period_ns, 90 * INT64_C(1000000000));
	assert_int_equal(web->health.retries, 5);
	assert_int_equal(web->depends_on.n, 1);
	assert_int_equal(web->deps[0], (size_t)(db - r.s->v));

	assert_int_equal(db->source, BV_SERVICE_IMAGE);
	assert_string_equal(db->image, "127.0.0.1:5000/biocontainers/samtools:1.16.1--debian");
	assert_int_equal(db->health.test.n, 0);
	assert_int_equal(db->n_ports, 0);
	assert_int_equal(db->command.n, 0);

	assert_int_equal(tool->source, BV_SERVICE_TOOL);
	assert_string_equal(tool->tool, "samtools");
	assert_string_equal(tool->health.test.v[0], "CMD-SHELL");
	assert_int_equal(tool->health.interval_ns, 0);
	assert_int_equal(tool->health.retries, 0);

	/* db before web, which needs it; otherwise the file's order */
	assert_string_equal(r.s->v[r.s->order[0]].name, "db");
	assert_string_equal(r.s->v[r.s->order[1]].name, "web");
	assert_string_equal(r.s->v[r.s->order[2]].name, "tool.x_1-a");
	parsed_free(&r);
}

static void test_services__none(void **state)
{
	struct parsed r = parse_ok(HEAD);
	bool selected[1] = {true};
	(void)state;
	assert_int_equal(r.s->n, 0);
	assert_int_equal(bv_services_select(selected, r.s, NULL, 0, NULL), 0);
	parsed_free(&r);
}

/* A misspelt option is an error naming the file, line, key and service, in every table. */
static void test_services__unknown_keys_refused(void **state)
{
	(void)state;
	parse_fail(HEAD "[[services]]\nname = \"web\"\nimage = \"busybox\"\n"
			"buld = \"x\"\n",
		   PATH ":6: unknown key 'buld' in [[services]] 'web'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"NONE\"], every = \"1s\" }\n",
		   PATH ":6: unknown key 'every' in [services.healthcheck] of service 'a'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\n"
			"[services.build]\ncontext = \"w\"\ntarge = \"x\"\n",
		   PATH ":7: unknown key 'targe' in [services.build] of service 'a'");
	parse_fail(HEAD "[volumes]\ndata = { driver = \"nfs\" }\n",
		   PATH ":4: unknown key 'driver' in volume 'data' of [volumes]");
}

static void test_services__bad_input(void **state)
{
	(void)state;
	parse_fail(HEAD "[[services]]\nimage = \"busybox\"\n",
		   PATH ":3:1: missing key 'name' in [[services]]");
	parse_fail(HEAD "[[services]]\nname = 7\n",
		   PATH ":4:8: 'name' in [[services]] must be a string, not an integer");
	parse_fail(HEAD "[[services]]\nname = \"Web\"\nimage = \"busybox\"\n",
		   PATH ":4:8: invalid service name 'Web': use lower-case letters, digits, '_', "
			"'.' and '-', starting with a letter or digit, at most 63 characters");
	parse_fail(HEAD "[[services]]\nname = \"-web\"\nimage = \"busybox\"\n",
		   PATH ":4:8: invalid service name '-web': use lower-case letters, digits, '_', "
			"'.' and '-', starting with a letter or digit, at most 63 characters");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nbuild = \"ctx\"\n",
		   PATH ":6:1: service 'a' has both 'image' and 'build'; give only one of tool, "
			"image and build");
	parse_fail(HEAD "[[services]]\nname = \"a\"\ntool = \"x\"\nimage = \"busybox\"\n",
		   PATH ":6:1: service 'a' has both 'tool' and 'image'; give only one of tool, "
			"image and build");
	parse_fail(HEAD "[[services]]\nname = \"a\"\ncommand = [\"x\"]\n",
		   PATH ":3:1: service 'a' needs one of 'tool', 'image' or 'build'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"Busybox\"\n",
		   PATH ":5:9: invalid image reference 'Busybox': repository must be lower case "
			"('Busybox')");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nvolumes = [\"dta:/x\"]\n",
		   PATH ":6:12: volume 'dta' of service 'a' is not declared; add 'dta = {}' to "
			"[volumes] (or write './dta' for a directory of the project)");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ntarget = \"t\"\n",
		   PATH ":6:1: 'target' of service 'a' needs 'build'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nbuild = { context = \"w\", target = \"x\" }\n"
			"target = \"y\"\n",
		   PATH ":6:1: 'target' of service 'a' is also given in its build table");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nworking_dir = \"srv\"\n",
		   PATH ":6:15: 'working_dir' of service 'a' must be an absolute path");
	parse_fail(HEAD "[volumes]\n\"a/b\" = {}\n",
		   PATH ":4:1: invalid volume name 'a/b' in [volumes]: use letters, digits, '_', "
			"'.' and '-', starting with a letter or digit");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ndockerfile = \"D\"\n",
		   PATH ":6:1: 'dockerfile' of service 'a' needs 'build'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ncommand = \"sh\"\n",
		   PATH ":6:11: 'command' in [[services]] must be an array, not a string");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ncommand = [\"sh\", 1]\n",
		   PATH ":6:18: 'command' in [[services]] must be an array of strings");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nenv = { A = 1 }\n",
		   PATH ":6:13: 'A' in [services.env] must be a string, not an integer");
	/* ports */
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nports = [\"80\"]\n",
		   PATH ":6:10: invalid port mapping '80': expected HOST:CONTAINER or "
			"ADDRESS:HOST:CONTAINER");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nports = [\"8080:80\", "
			"\"x:80\"]\n",
		   PATH ":6:21: invalid port mapping 'x:80': the host port must be a number from 1 "
			"to 65535");
	/* durations and the rest of the healthcheck */
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"CMD\", \"true\"], interval = \"1x\" }\n",
		   PATH ":6:52: invalid duration '1x' for 'interval' in [services.healthcheck]: "
			"expected a number and a unit (ms, s, m, h), as in \"500ms\" or \"1m30s\"");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"CMD\", \"true\"], timeout = \"10us\" }\n",
		   PATH ":6:51: 'timeout' in [services.healthcheck] must be at least 1ms, not "
			"'10us'");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"wget\", \"x\"] }\n",
		   PATH ":6:24: 'test' in [services.healthcheck] must start with \"CMD\", "
			"\"CMD-SHELL\" or \"NONE\"");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"CMD\"] }\n",
		   PATH ":6:24: 'test' in [services.healthcheck] needs a command after \"CMD\"");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"CMD-SHELL\", \"a\", \"b\"] }\n",
		   PATH ":6:24: 'test' in [services.healthcheck] needs exactly one command line "
			"after \"CMD-SHELL\"");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { test = [\"CMD\", \"true\"], retries = -1 }\n",
		   PATH ":6:51: 'retries' in [services.healthcheck] must be a whole number from 0, "
			"not -1");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"healthcheck = { interval = \"1s\" }\n",
		   PATH ":6:15: missing key 'test' in [services.healthcheck]");
	/* volumes */
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\nvolumes = [\"d:rel\"]\n",
		   PATH ":6:12: invalid volume 'd:rel': the container path must be absolute");
	parse_fail(HEAD
		   "[[services]]\nname = \"a\"\nimage = \"busybox\"\nvolumes = [\"d:/x:rx\"]\n",
		   PATH ":6:12: invalid volume 'd:/x:rx': the mode must be ro or rw");
	/* names and dependencies */
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"[[services]]\nname = \"a\"\nimage = \"busybox\"\n",
		   PATH ":7:8: service 'a' is declared twice (first on line 3)");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\n"
			"depends_on = [\"b\", \"ghost\"]\n"
			"[[services]]\nname = \"b\"\nimage = \"busybox\"\n",
		   PATH ":6:20: service 'a' depends on 'ghost', which is not a service of this "
			"project");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ndepends_on = [\"a\"]\n",
		   PATH ":6:15: dependency cycle: a -> a");
	parse_fail(HEAD "[[services]]\nname = \"a\"\nimage = \"busybox\"\ndepends_on = [\"b\"]\n"
			"[[services]]\nname = \"b\"\nimage = \"busybox\"\ndepends_on = [\"c\"]\n"
			"[[services]]\nname = \"c\"\nimage = \"busybox\"\ndepends_on = [\"a\"]\n",
		   PATH ":14:15: dependency cycle: a -> b -> c -> a");
	parse_fail("services = [1]\n" HEAD,
		   PATH ":1:13: entries of [[services]] must be tables, not an integer");
}

/* d depends on b and c, both on a; e on nothing: a first, d after b and c, e where written */
static void test_services__order_and_select(void **state)
{
	struct parsed r =
		parse_ok(HEAD "[[services]]\nname = \"d\"\nimage = \"x\"\n"
			      "depends_on = [\"b\", \"c\"]\n"
			      "[[services]]\nname = \"e\"\nimage = \"x\"\n"
			      "[[services]]\nname = \"c\"\nimage = \"x\"\ndepends_on = [\"a\"]\n"
			      "[[services]]\nname = \"b\"\nimage = \"x\"\ndepends_on = [\"a\"]\n"
			      "[[services]]\nname = \"a\"\nimage = \"x\"\n");
	struct bv_error *err = NULL;
	const char *names = "";
	struct bv_buf got = BV_BUF_INIT;
	bool sel[5];
	size_t pos[5];
	const char *only[] = {"c"};
	const char *ghost[] = {"ghost"};
	char *msg;
	(void)state;
	(void)names;
	assert_int_equal(r.s->n, 5);
	for (size_t i = 0; i < r.s->n; i++) {
		bv_buf_puts(&got, r.s->v[r.s->order[i]].name);
		pos[r.s->order[i]] = i;
	}
	/* every dependency comes before its dependent */
	for (size_t i = 0; i < r.s->n; i++)
		for (size_t j = 0; j < r.s->v[i].depends_on.n; j++)
			assert_true(pos[r.s->v[i].deps[j]] < pos[i]);
	assert_string_equal(got.buf, "abcde");
	bv_buf_release(&got);

	assert_ok(bv_services_select(sel, r.s, only, 1, &err), &err);
	for (size_t i = 0; i < r.s->n; i++)
		assert_int_equal(sel[i],
				 !strcmp(r.s->v[i].name, "c") || !strcmp(r.s->v[i].name, "a"));
	assert_ok(bv_services_select(sel, r.s, NULL, 0, &err), &err);
	for (size_t i = 0; i < r.s->n; i++)
		assert_true(sel[i]);
	assert_int_equal(bv_services_select(sel, r.s, ghost, 1, &err), BV_ENOTFOUND);
	msg = bv_error_format(err);
	assert_string_equal(msg, "no service 'ghost' in '" PATH "'");
	free(msg);
	bv_error_free(err);
	parsed_free(&r);
}

static void port_ok(const char *text, const char *ip, unsigned host, unsigned ctr,
		    const char *proto)
{
	struct bv_service_port p;
	struct bv_error *err = NULL;
	assert_ok(bv_service_port_parse(&p, text, &err), &err);
	assert_string_equal(p.host_ip, ip);
	assert_int_equal(p.host_port, host);
	assert_int_equal(p.container_port, ctr);
	assert_string_equal(p.proto, proto);
}

static void port_bad(const char *text, const char *why)
{
	struct bv_service_port p = {.host_port = 42};
	struct bv_error *err = NULL;
	char *msg, *want = bv_xasprintf("invalid port mapping '%s': %s", text, why);
	assert_int_equal(bv_service_port_parse(&p, text, &err), BV_EINVALID);
	assert_int_equal(p.host_port, 42); /* untouched */
	msg = bv_error_format(err);
	assert_string_equal(msg, want);
	free(msg);
	free(want);
	bv_error_free(err);
}

static void test_services__ports(void **state)
{
	static const char *const hp = "the host port must be a number from 1 to 65535";
	static const char *const cp = "the container port must be a number from 1 to 65535";
	static const char *const shape = "expected HOST:CONTAINER or ADDRESS:HOST:CONTAINER";
	(void)state;
	port_ok("8080:80", "127.0.0.1", 8080, 80, "tcp");
	port_ok("8080:80/tcp", "127.0.0.1", 8080, 80, "tcp");
	port_ok("53:53/udp", "127.0.0.1", 53, 53, "udp");
	port_ok("0.0.0.0:1:65535", "0.0.0.0", 1, 65535, "tcp");
	port_ok("192.168.1.10:443:8443/udp", "192.168.1.10", 443, 8443, "udp");
	port_ok("[::1]:80:8080", "::1", 80, 8080, "tcp");
	port_ok("[fe80::1]:80:8080/udp", "fe80::1", 80, 8080, "udp");
	port_bad("80", shape);
	port_bad("", shape);
	port_bad("x:80", hp);
	port_bad(":80", hp);
	port_bad("0:80", hp);
	port_bad("65536:80", hp);
	port_bad("-1:80", hp);
	port_bad("80:", cp);
	port_bad("80:0", cp);
	port_bad("80:80x", cp);
	port_bad("80:80/sctp", "the protocol must be tcp or udp");
	port_bad("80:80/", "the protocol must be tcp or udp");
	port_bad("1.2.3:80:80", "the address is not an IPv4 address");
	port_bad("localhost:80:80", "the address is not an IPv4 address");
	port_bad("::1:80:80", "expected HOST:CONTAINER or ADDRESS:HOST:CONTAINER (IPv6 addresses "
			      "go in brackets)");
	port_bad("[::1]80:80", "expected [ADDRESS]:HOST:CONTAINER");
	port_bad("[::1]:80", "expected [ADDRESS]:HOST:CONTAINER");
	port_bad("[::1", "expected [ADDRESS]:HOST:CONTAINER");
	port_bad("[1.2.3.4]:80:80", "the address is not an IPv6 address");
}

static void test_services__durations(void **state)
{
	static const struct {
		const char *text;
		int64_t ns;
	} good[] = {
		{"0", 0},
		{"1s", 1000000000},
		{"500ms", 500000000},
		{"2m", 120 * INT64_C(1000000000)},
		{"1h", 3600 * INT64_C(1000000000)},
		{"1m30s", 90 * INT64_C(1000000000)},
		{"1.5s", 1500000000},
		{"250us", 250000},
		{"7ns", 7},
		{"1h1m1s1ms", 3661001000000},
		{"0.25m", 15 * INT64_C(1000000000)},
	};
	static const char *const bad[] = {"",    "1",   "s",    "1x", "-1s", "1s2",
					  " 1s", "1 s", "1.s5", ".s", "1S",  "1d"};
	int64_t v = -7;
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(good); i++) {
		v = -1;
		assert_int_equal(bv_duration_parse(&v, good[i].text), 0);
		assert_int_equal(v, good[i].ns);
	}
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		v = -7;
		if (bv_duration_parse(&v, bad[i]) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(v, -7);
	}
	assert_int_equal(bv_duration_parse(&v, "99999999999h"), -ERANGE);
	assert_int_equal(bv_duration_parse(&v, "9223372036s"), 0);
	assert_int_equal(bv_duration_parse(&v, "9223372037s"), -ERANGE);
	assert_int_equal(bv_duration_parse(&v, "5000000h5000000h"), -ERANGE);
	assert_int_equal(bv_duration_parse(&v, NULL), -EINVAL);
}

static void test_services__volumes_and_paths(void **state)
{
	static const struct {
		const char *in, *out;
	} clean[] = {
		{"", "."},          {".", "."},
		{"/", "/"},         {"a//b/", "a/b"},
		{"./a/./b", "a/b"}, {"a/../b", "b"},
		{"../a", "../a"},   {"/../a", "/a"},
		{"a/b/../..", "."}, {"../../x", "../../x"},
	};
	struct bv_service_volume v = {0};
	struct bv_error *err = NULL;
	char *msg;
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(clean); i++) {
		char *got = bv_services_clean_path(clean[i].in);
		assert_string_equal(got, clean[i].out);
		free(got);
	}
	assert_ok(bv_service_volume_parse(&v, "./cache/x:/var/cache:ro", "/proj", &err), &err);
	assert_int_equal(v.kind, BV_VOLUME_BIND);
	assert_string_equal(v.host, "/proj/cache/x");
	assert_string_equal(v.container, "/var/cache");
	assert_true(v.read_only);
	free(v.host);
	free(v.container);
	assert_ok(bv_service_volume_parse(&v, "../shared:/s/", "/proj", &err), &err);
	assert_string_equal(v.host, "/shared");
	assert_string_equal(v.container, "/s");
	assert_false(v.read_only);
	free(v.host);
	free(v.container);
	/* compose's rule: a source not starting with '.', '/' or '~' is a volume name */
	assert_ok(bv_service_volume_parse(&v, "data:/var/lib/x:ro", "/proj", &err), &err);
	assert_int_equal(v.kind, BV_VOLUME_NAMED);
	assert_string_equal(v.host, "data");
	assert_string_equal(v.container, "/var/lib/x");
	assert_true(v.read_only);
	free(v.host);
	free(v.container);
	assert_ok(bv_service_volume_parse(&v, "/scratch/", "/proj", &err), &err);
	assert_int_equal(v.kind, BV_VOLUME_ANON);
	assert_null(v.host);
	assert_string_equal(v.container, "/scratch");
	free(v.container);
	assert_int_equal(bv_service_volume_parse(&v, ":/x", "/proj", &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "invalid volume ':/x': expected SOURCE:CONTAINER, "
				 "SOURCE:CONTAINER:ro or CONTAINER");
	free(msg);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_service_volume_parse(&v, "cache/x:/x", "/proj", &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "invalid volume 'cache/x:/x': a volume name is letters, digits, "
				 "'_', '.' and '-' (a host path starts with './', '../', '/' or "
				 "'~')");
	free(msg);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_service_volume_parse(&v, "anon", "/proj", &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "invalid volume 'anon': the container path must be absolute");
	free(msg);
	bv_error_free(err);
}

static void test_services__names_and_images(void **state)
{
	struct parsed r = parse_ok("[project]\nname = \"My Proj\"\n"
				   "[[services]]\nname = \"web..x_\"\nbuild = \"w\"\n"
				   "[[services]]\nname = \"hub\"\nimage = \"busybox:1.36\"\n"
				   "[[services]]\nname = \"quay\"\n"
				   "image = \"quay.io/biocontainers/bwa:0.7.17\"\n"
				   "[[services]]\nname = \"sam\"\ntool = \"samtools\"\n");
	struct bv_lockfile *lock = bv_lockfile_new("0.1.0", 0);
	struct bv_lock_tool *t;
	struct bv_mirrors *mirrors = NULL;
	struct bv_error *err = NULL;
	char *s, *msg;
	(void)state;
	s = bv_services_network_name(r.s);
	assert_string_equal(s, "bv-my-proj-net");
	free(s);
	s = bv_services_container_name(r.s, "web..x_");
	assert_string_equal(s, "bv-my-proj-web..x_");
	free(s);
	s = bv_services_build_tag(r.s, "web..x_");
	assert_string_equal(s, "bv-my-proj-web-x:latest");
	free(s);

	assert_ok(bv_service_image(&s, r.s, &r.s->v[0], NULL, NULL, &err), &err);
	assert_string_equal(s, "bv-my-proj-web-x:latest");
	free(s);
	assert_ok(bv_service_image(&s, r.s, &r.s->v[1], NULL, NULL, &err), &err);
	assert_string_equal(s, "busybox:1.36"); /* as written: the engine normalises it */
	free(s);

	/* a tool that is not locked */
	assert_int_equal(bv_service_image(&s, r.s, &r.s->v[3], lock, NULL, &err), BV_ENOTFOUND);
	msg = bv_error_format(err);
	assert_string_equal(msg, PATH ":14:8: tool 'samtools' of service 'sam' is not in bv.lock; "
				      "run 'bv add samtools' or 'bv lock'");
	free(msg);
	bv_error_free(err);
	err = NULL;
	t = bv_lockfile_upsert(lock, "samtools");
	bv_lock_set_string(&t->image_reference, "quay.io/biocontainers/samtools:1.16.1--debian");
	assert_int_equal(bv_service_image(&s, r.s, &r.s->v[3], lock, NULL, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	bv_lock_set_string(&t->image_digest,
			   "sha256:"
			   "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
			   "89abcdef");
	assert_ok(bv_service_image(&s, r.s, &r.s->v[3], lock, NULL, &err), &err);
	assert_string_equal(s, "quay.io/biocontainers/samtools@sha256:"
			       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	free(s);

	/* through a mirror, like every pull bv makes */
	setenv("BV_MIRRORS", "quay.io=127.0.0.1:5000", 1);
	setenv("XDG_CONFIG_HOME", "/nonexistent-bv-test", 1);
	assert_ok(bv_mirrors_load(&mirrors, &err), &err);
	assert_ok(bv_service_image(&s, r.s, &r.s->v[3], lock, mirrors, &err), &err);
	assert_string_equal(s, "127.0.0.1:5000/biocontainers/samtools@sha256:"
			       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	free(s);
	assert_ok(bv_service_image(&s, r.s, &r.s->v[2], lock, mirrors, &err), &err);
	assert_string_equal(s, "127.0.0.1:5000/biocontainers/bwa:0.7.17");
	free(s);
	assert_ok(bv_service_image(&s, r.s, &r.s->v[1], lock, mirrors, &err), &err);
	assert_string_equal(s, "busybox:1.36");
	free(s);
	unsetenv("BV_MIRRORS");
	bv_mirrors_free(mirrors);
	bv_lockfile_free(lock);
	parsed_free(&r);
}

static struct bv_dockerignore *ignore_ok(const char *text)
{
	struct bv_dockerignore *d = NULL;
	struct bv_error *err = NULL;
	assert_ok(bv_dockerignore_parse(&d, text, strlen(text), "ctx/.dockerignore", &err), &err);
	return d;
}

static void test_services__dockerignore(void **state)
{
	struct bv_dockerignore *d;
	struct bv_error *err = NULL;
	char *msg;
	(void)state;

	d = ignore_ok("# a comment\n"
		      "\n"
		      "  secret.txt  \n"
		      "*.log\n"
		      "!keep.log\n"
		      "/build\n"
		      "./tmp//\n"
		      "docs/*.md\n"
		      "!docs/README.md\n"
		      "**/*.o\n"
		      "cache/**\n"
		      "a/**/z\n"
		      " # not a comment: leading space\n"
		      "\\#hash\n");
	assert_true(bv_dockerignore_excluded(d, "secret.txt"));
	assert_false(bv_dockerignore_excluded(d, "sub/secret.txt")); /* anchored at the root */
	assert_true(bv_dockerignore_excluded(d, "x.log"));
	assert_false(bv_dockerignore_excluded(d, "sub/x.log")); /* '*' does not cross '/' */
	assert_false(bv_dockerignore_excluded(d, "keep.log"));  /* the later exception wins */
	assert_true(bv_dockerignore_excluded(d, "build"));
	assert_true(bv_dockerignore_excluded(d, "build/out/a.txt")); /* below an excluded dir */
	assert_false(bv_dockerignore_excluded(d, "src/build"));
	assert_true(bv_dockerignore_excluded(d, "tmp/x"));
	assert_true(bv_dockerignore_excluded(d, "docs/guide.md"));
	assert_false(bv_dockerignore_excluded(d, "docs/README.md"));
	assert_false(bv_dockerignore_excluded(d, "docs/sub/guide.md"));
	assert_true(bv_dockerignore_excluded(d, "main.o"));
	assert_true(bv_dockerignore_excluded(d, "src/deep/er/main.o"));
	assert_false(bv_dockerignore_excluded(d, "src/main.c"));
	assert_false(bv_dockerignore_excluded(d, "cache")); /* "**" after cache/ needs something */
	assert_true(bv_dockerignore_excluded(d, "cache/x/y"));
	assert_true(bv_dockerignore_excluded(d, "a/z"));
	assert_true(bv_dockerignore_excluded(d, "a/b/c/z"));
	assert_false(bv_dockerignore_excluded(d, "a/b/c/zz"));
	assert_true(bv_dockerignore_excluded(d, "# not a comment: leading space"));
	assert_true(bv_dockerignore_excluded(d, "#hash"));
	assert_false(bv_dockerignore_excluded(d, "Dockerfile"));
	assert_false(bv_dockerignore_may_include_below(d, "build"));
	assert_true(bv_dockerignore_may_include_below(d, "docs"));
	bv_dockerignore_free(d);

	/* an exception inside an excluded directory, and everything-but */
	d = ignore_ok("data\n!data/keep\n*\n!Dockerfile\n!app\n");
	assert_true(bv_dockerignore_excluded(d, "data"));
	assert_true(bv_dockerignore_excluded(d, "data/other"));
	assert_true(bv_dockerignore_excluded(d, "data/keep")); /* '*' comes later and wins */
	assert_false(bv_dockerignore_excluded(d, "Dockerfile"));
	assert_false(bv_dockerignore_excluded(d, "app"));
	assert_false(bv_dockerignore_excluded(d, "app/main.c"));
	assert_true(bv_dockerignore_excluded(d, "README"));
	assert_true(bv_dockerignore_may_include_below(d, "data"));
	assert_false(bv_dockerignore_may_include_below(d, "other"));
	bv_dockerignore_free(d);

	d = ignore_ok("data\n!data/keep\n!**/*.keep\n");
	assert_false(bv_dockerignore_excluded(d, "data/keep"));
	assert_false(bv_dockerignore_excluded(d, "data/sub/x.keep"));
	assert_true(bv_dockerignore_excluded(d, "data/x"));
	/* Docker walks into an excluded directory only for an exception whose text starts with
	 * the directory's path, never for one that starts with two stars */
	assert_false(bv_dockerignore_may_include_below(d, "anything/at/all"));
	assert_true(bv_dockerignore_may_include_below(d, "data"));
	bv_dockerignore_free(d);

	/* no patterns at all */
	d = ignore_ok("# nothing\n\n   \n");
	assert_false(bv_dockerignore_excluded(d, "x"));
	assert_false(bv_dockerignore_excluded(NULL, "x"));
	bv_dockerignore_free(d);

	/* a lone '!' fails Docker's build; so it does bv's */
	assert_int_equal(bv_dockerignore_parse(&d, "a\n ! \n", 6, "ctx/.dockerignore", &err),
			 BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "ctx/.dockerignore:2:1: illegal exclusion pattern: \"!\"");
	free(msg);
	bv_error_free(err);
	err = NULL;

	assert_int_equal(bv_dockerignore_parse(&d, "ok\n[abc\n", 8, "ctx/.dockerignore", &err),
			 BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "ctx/.dockerignore:2:1: invalid pattern '[abc'");
	free(msg);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_dockerignore_parse(&d, "trailing\\", 9, "f", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;

	/* what docker's RE2 refuses, and glibc would turn into an automaton without bound */
	{
		static const char *const refused[] = {
			"o+++++++++++++++++++++", "a{2}{3}", "x*+", "+a", "a{1001}", "a{2", "b|+c"};
		static const char *const accepted[] = {"a+",     "a{2,3}b", "(x|y)+z", "**/*.so",
						       "lib/**", "[+]+",    "a\\++"};
		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			assert_int_equal(bv_dockerignore_parse(&d, refused[i], strlen(refused[i]),
							       "f", &err),
					 BV_EINVALID);
			bv_error_free(err);
			err = NULL;
		}
		for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
			assert_ok(bv_dockerignore_parse(&d, accepted[i], strlen(accepted[i]), "f",
							&err),
				  &err);
			bv_dockerignore_free(d);
			d = NULL;
		}
	}
}

static void write_file(const char *dir, const char *rel, const char *text)
{
	char *path = bv_path_join(dir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(bv_mkdir_p(path, 0755, NULL), 0);
	*slash = '/';
	assert_int_equal(bv_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
	free(path);
}

static void tar_entries(int fd, struct bv_strv *out);

/*
 * The rows of tests/e2e/fixtures/dockerignore/table.py with what Docker's own client left
 * out of the build context for each (docker.io 20.10's `docker build`, legacy builder, read
 * back from the image; t0721 compares bv with it live).  Row 07 is the case bv once got
 * wrong; 16 and 17 are where Docker's regular expressions and its parent rule differ from a
 * per-component fnmatch(3).
 */
static const char *const di_tree[] = {
	"a.txt",
	"a.log",
	"keep.log",
	"b.txt",
	"#hash",
	"b/a.txt",
	"b/c/a.txt",
	"lib/a.so",
	"lib/x/b.so",
	"lib/x/c.txt",
	"build/out.o",
	"build/keep.txt",
	"build/sub/deep.txt",
	"docs/README.md",
	"docs/guide.md",
	"docs/sub/guide.md",
	"a/b/foo/keep",
	"a/b/foo/y",
	"foo/bar/baz",
	"foo/bar/qux",
};

static const struct {
	const char *patterns;
	const char *excluded; /* of di_tree, in its order, separated by ' ' */
} di_rows[] = {
	/* 01 */ {"a.txt\n", "a.txt"},
	/* 02 */
	{"*.log\n"
	 "!keep.log\n",
	 "a.log"},
	/* 03 */ {"/b/a.txt\n", "b/a.txt"},
	/* 04 */ {"./build/\n", "build/out.o build/keep.txt build/sub/deep.txt"},
	/* 05 */ {"**/a.txt\n", "a.txt b/a.txt b/c/a.txt"},
	/* 06 */ {"lib/**\n", "lib/a.so lib/x/b.so lib/x/c.txt"},
	/* 07 */
	{"lib/**\n"
	 "!lib/**/*.so\n",
	 "lib/x/b.so lib/x/c.txt"},
	/* 08 */
	{"build\n"
	 "!build/keep.txt\n",
	 "build/out.o build/sub/deep.txt"},
	/* 09 */
	{"build\n"
	 "!build/sub/deep.txt\n",
	 "build/out.o build/keep.txt"},
	/* 10 */
	{"*\n"
	 "!docs\n",
	 "a.txt a.log keep.log b.txt #hash b/a.txt b/c/a.txt lib/a.so lib/x/b.so lib/x/c.txt build/out.o build/keep.txt build/sub/deep.txt a/b/foo/keep a/b/foo/y foo/bar/baz foo/bar/qux"},
	/* 11 */
	{"docs/*.md\n"
	 "!docs/README.md\n",
	 "docs/guide.md"},
	/* 12 */
	{"# a comment\n"
	 "\n"
	 "   a.log   \n"
	 " # not a comment\n",
	 "a.log"},
	/* 13 */ {"\\#hash\n", "#hash"},
	/* 14 */ {"?.txt\n", "a.txt b.txt"},
	/* 15 */
	{"[ab].log\n"
	 "[!a].txt\n",
	 "a.txt a.log"},
	/* 16 */ {"lib/x/**.txt\n", ""},
	/* 17 */
	{"**/foo\n"
	 "!a/b/foo/keep\n",
	 "foo/bar/baz foo/bar/qux"},
	/* 18 */
	{"b\n"
	 "!b/c\n"
	 "b/c/a.txt\n",
	 "b/a.txt b/c/a.txt"},
	/* 19 */ {"**/c\n", "b/c/a.txt"},
	/* 20 */
	{"foo/bar\n"
	 "!foo/bar/baz\n",
	 "foo/bar/qux"},
	/* 21 */
	{"**\n"
	 "!**/*.md\n"
	 "docs/sub\n",
	 "a.txt a.log keep.log b.txt #hash b/a.txt b/c/a.txt lib/a.so lib/x/b.so lib/x/c.txt build/out.o build/keep.txt build/sub/deep.txt docs/README.md docs/guide.md docs/sub/guide.md a/b/foo/keep a/b/foo/y foo/bar/baz foo/bar/qux"},
	/* 22 */
	{"*/a.txt\n"
	 "lib/*/\n"
	 "!lib/x/b.so\n",
	 "b/a.txt lib/a.so lib/x/c.txt"},
};

static void test_services__dockerignore_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(di_rows); i++) {
		char *dir = test_mkdtemp("ditable");
		struct bv_error *err = NULL;
		struct bv_strv got = BV_STRV_INIT;
		struct bv_buf excluded = BV_BUF_INIT;
		char tmpl[] = "/tmp/bv-test-ditable-XXXXXX";
		int fd = mkstemp(tmpl);
		assert_true(fd >= 0);
		unlink(tmpl);
		for (size_t k = 0; k < BV_ARRAY_SIZE(di_tree); k++)
			write_file(dir, di_tree[k], "x");
		write_file(dir, ".dockerignore", di_rows[i].patterns);
		assert_ok(bv_build_context_write(fd, dir, "Dockerfile", &err), &err);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		tar_entries(fd, &got);
		close(fd);
		for (size_t k = 0; k < BV_ARRAY_SIZE(di_tree); k++) {
			_cleanup_free_ char *entry = bv_xasprintf("%s=x", di_tree[k]);
			if (bv_strv_contains(&got, entry))
				continue;
			if (excluded.len)
				bv_buf_putc(&excluded, ' ');
			bv_buf_puts(&excluded, di_tree[k]);
		}
		if (strcmp(excluded.len ? excluded.buf : "", di_rows[i].excluded))
			print_error("row %02zu:\n%s", i + 1, di_rows[i].patterns);
		assert_string_equal(excluded.len ? excluded.buf : "", di_rows[i].excluded);
		bv_buf_release(&excluded);
		bv_strv_clear(&got);
		assert_int_equal(bv_rm_rf(dir, NULL), 0);
		free(dir);
	}
}

/* The entries of a tar stream as "path" lines ("path -> target" for symlinks, "path/" for
 * directories, "path=contents" for small regular files). */
static void tar_entries(int fd, struct bv_strv *out)
{
	const struct bv_archive_api *api = bv_archive_get(NULL);
	struct archive *a;
	struct archive_entry *e;
	assert_non_null(api);
	a = api->archive_read_new();
	assert_int_equal(api->archive_read_support_format_tar(a), ARCHIVE_OK);
	assert_int_equal(api->archive_read_support_filter_none(a), ARCHIVE_OK);
	assert_int_equal(api->archive_read_open_fd(a, fd, 10240), ARCHIVE_OK);
	while (api->archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *path = api->archive_entry_pathname(e);
		struct bv_buf b = BV_BUF_INIT;
		assert_int_equal(api->archive_entry_uid(e), 0);
		assert_int_equal(api->archive_entry_gid(e), 0);
		if (api->archive_entry_filetype(e) == AE_IFDIR) {
			bv_buf_printf(&b, "%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/");
		} else if (api->archive_entry_filetype(e) == AE_IFLNK) {
			bv_buf_printf(&b, "%s -> %s", path, api->archive_entry_symlink(e));
		} else {
			const void *data;
			size_t len;
			int64_t off;
			bv_buf_printf(&b, "%s=", path);
			while (api->archive_read_data_block(a, &data, &len, &off) == ARCHIVE_OK)
				bv_buf_add(&b, data, len);
		}
		bv_strv_push_take(out, bv_buf_detach(&b, NULL));
	}
	api->archive_read_free(a);
}

static void check_context(const char *dir, const char *dockerfile, const char *want)
{
	struct bv_error *err = NULL;
	struct bv_strv got = BV_STRV_INIT;
	struct bv_buf joined = BV_BUF_INIT;
	char tmpl[] = "/tmp/bv-test-ctx-XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_ok(bv_build_context_write(fd, dir, dockerfile, &err), &err);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	tar_entries(fd, &got);
	close(fd);
	bv_strv_foreach (g, &got) {
		bv_buf_puts(&joined, *g);
		bv_buf_putc(&joined, '\n');
	}
	assert_string_equal(joined.buf, want);
	bv_buf_release(&joined);
	bv_strv_clear(&got);
}

/* check_paths on a real tree: missing, outside (lexically and by symlink), allowed. */
static void check_paths_fails(const char *dir, const char *volume, const char *extra, int want_code,
			      const char *want_part)
{
	struct bv_error *err = NULL;
	struct bv_project *p = NULL;
	struct bv_services *s = NULL;
	char *path = bv_path_join(dir, "bv.toml");
	char *text = bv_xasprintf("[project]\nname = \"x\"\n[[services]]\nname = \"s\"\n"
				  "image = \"busybox\"\nvolumes = [\"%s\"]\n%s",
				  volume, extra);
	char *msg;
	int r;
	assert_ok(bv_project_parse(&p, text, strlen(text), path, &err), &err);
	assert_ok(bv_services_parse(&s, p, &err), &err);
	r = bv_services_check_paths(s, NULL, &err);
	if (!want_part) {
		assert_ok(r, &err);
	} else {
		assert_int_equal(r, want_code);
		msg = bv_error_format(err);
		if (!strstr(msg, want_part))
			fail_msg("'%s' does not hold '%s'", msg, want_part);
		free(msg);
		bv_error_free(err);
	}
	bv_services_free(s);
	bv_project_free(p);
	free(text);
	free(path);
}

static void test_services__check_paths(void **state)
{
	char *root = test_mkdtemp("paths");
	char *proj = bv_path_join(root, "proj");
	char *out = bv_path_join(root, "out");
	char *link = bv_path_join(proj, "link");
	(void)state;
	write_file(proj, "data/f", "x");
	write_file(out, "f", "x");
	assert_int_equal(symlink(out, link), 0);
	check_paths_fails(proj, "./data:/d", "", 0, NULL);
	check_paths_fails(proj, "./missing:/d", "", BV_ENOTFOUND, "bv.toml:6: volume '");
	check_paths_fails(proj, "./missing:/d", "allow_outside = true\n", BV_ENOTFOUND,
			  "does not exist");
	check_paths_fails(proj, "../out:/d", "", BV_EINVALID,
			  "of service 's' is outside the project");
	check_paths_fails(proj, "./link/f:/d", "", BV_EINVALID, "is outside the project");
	check_paths_fails(proj, "../out:/d", "allow_outside = true\n", 0, NULL);
	free(link);
	free(out);
	free(proj);
	assert_int_equal(bv_rm_rf(root, NULL), 0);
	free(root);
}

static void test_services__build_context(void **state)
{
	char *dir = test_mkdtemp("ctx");
	char *link;
	(void)state;
	assert_non_null(dir);
	write_file(dir, "Dockerfile", "FROM scratch\n");
	write_file(dir, ".dockerignore",
		   "secret.txt\n*.log\nDockerfile\n.dockerignore\n"
		   "data\n!data/keep\nnested/**/*.tmp\ndocker\n");
	write_file(dir, "secret.txt", "no");
	write_file(dir, "app.log", "no");
	write_file(dir, "app/main.c", "int main;");
	write_file(dir, "app/debug.log", "no");
	write_file(dir, "data/keep", "yes");
	write_file(dir, "data/drop", "no");
	write_file(dir, "nested/a/b/x.tmp", "no");
	write_file(dir, "nested/a/y.txt", "yes");
	write_file(dir, "docker/Dockerfile.web", "FROM scratch\n");
	link = bv_path_join(dir, "link");
	assert_int_equal(symlink("app/main.c", link), 0);
	free(link);

	/* the Dockerfile and .dockerignore are sent even though they are ignored */
	check_context(dir, "Dockerfile",
		      ".dockerignore=secret.txt\n*.log\nDockerfile\n.dockerignore\ndata\n"
		      "!data/keep\nnested/**/*.tmp\ndocker\n\n"
		      "Dockerfile=FROM scratch\n\n"
		      "app/\n"
		      "app/debug.log=no\n" /* '*.log' is anchored at the root */
		      "app/main.c=int main;\n"
		      "data/keep=yes\n"
		      "link -> app/main.c\n"
		      "nested/\n"
		      "nested/a/\n"
		      "nested/a/b/\n"
		      "nested/a/y.txt=yes\n");
	/* a Dockerfile in an excluded directory is still sent, on its own (not its directory) */
	check_context(dir, "./docker/Dockerfile.web",
		      ".dockerignore=secret.txt\n*.log\nDockerfile\n.dockerignore\ndata\n"
		      "!data/keep\nnested/**/*.tmp\ndocker\n\n"
		      "app/\n"
		      "app/debug.log=no\n" /* '*.log' is anchored at the root */
		      "app/main.c=int main;\n"
		      "data/keep=yes\n"
		      "docker/Dockerfile.web=FROM scratch\n\n"
		      "link -> app/main.c\n"
		      "nested/\n"
		      "nested/a/\n"
		      "nested/a/b/\n"
		      "nested/a/y.txt=yes\n");
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

static void test_services__build_context_errors(void **state)
{
	struct bv_error *err = NULL;
	char *dir = test_mkdtemp("ctx");
	char *msg;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	(void)state;
	assert_int_equal(bv_build_context_write(fd, "/nonexistent/ctx", "Dockerfile", &err),
			 BV_ERR);
	msg = bv_error_format(err);
	assert_string_equal(msg, "could not open build context '/nonexistent/ctx': No such file "
				 "or directory");
	free(msg);
	bv_error_free(err);
	err = NULL;
	write_file(dir, ".dockerignore", "[\n");
	assert_int_equal(bv_build_context_write(fd, dir, "Dockerfile", &err), BV_EINVALID);
	bv_error_free(err);
	close(fd);
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

struct lines {
	struct bv_buf out;
};

static int collect_line(int stream, const char *timestamp, const char *line, void *payload)
{
	struct lines *l = payload;
	bv_buf_printf(&l->out, "%d|%s|%s\n", stream, timestamp ? timestamp : "-", line);
	return 0;
}

static int stop_line(int stream, const char *timestamp, const char *line, void *payload)
{
	(void)stream;
	(void)timestamp;
	(void)line;
	(*(int *)payload)++;
	return -42;
}

/* Feeds `text` to stream 1 in pieces of `chunk` bytes, interleaving `err_text` on stream 2. */
static char *split(bool timestamps, const char *text, const char *err_text, size_t chunk)
{
	struct lines l = {.out = BV_BUF_INIT};
	struct bv_log_splitter ls = {
		.timestamps = timestamps, .on_line = collect_line, .payload = &l};
	size_t n = strlen(text), m = err_text ? strlen(err_text) : 0;
	for (size_t i = 0; i < n || i < m; i += chunk) {
		if (i < n)
			assert_int_equal(bv_log_splitter_feed(&ls, 1, text + i,
							      i + chunk > n ? n - i : chunk),
					 0);
		if (i < m)
			assert_int_equal(bv_log_splitter_feed(&ls, 2, err_text + i,
							      i + chunk > m ? m - i : chunk),
					 0);
	}
	assert_int_equal(bv_log_splitter_finish(&ls), 0);
	return bv_buf_detach(&l.out, NULL);
}

static void test_services__log_timestamps(void **state)
{
	static const char out[] = "2026-11-22T08:39:36.537897016Z hello world\n"
				  "2026-11-22T08:39:37Z \n"
				  "2026-11-22T08:39:38.5Z windows\r\n"
				  "not-a-time but a line\n"
				  "2026-11-22T08:39:39.000000001Z";
	static const char err_text[] = "2026-11-22T08:39:36.6Z oops\n";
	(void)state;
	/* the same lines whatever the chunking, down to one byte at a time */
	for (size_t chunk = 1; chunk <= sizeof(out); chunk++) {
		char *got = split(true, out, err_text, chunk);
		struct bv_buf want = BV_BUF_INIT;
		/* stdout lines in order; the stderr line wherever it completed */
		assert_non_null(strstr(got, "2|2026-11-22T08:39:36.6Z|oops\n"));
		bv_buf_puts(&want, "1|2026-11-22T08:39:36.537897016Z|hello world\n"
				   "1|2026-11-22T08:39:37Z|\n"
				   "1|2026-11-22T08:39:38.5Z|windows\n"
				   "1|-|not-a-time but a line\n"
				   "1|2026-11-22T08:39:39.000000001Z|\n");
		{
			/* drop the stderr line to compare the stdout ones */
			char *e = strstr(got, "2|2026-11-22T08:39:36.6Z|oops\n");
			memmove(e, e + strlen("2|2026-11-22T08:39:36.6Z|oops\n"),
				strlen(e + strlen("2|2026-11-22T08:39:36.6Z|oops\n")) + 1);
		}
		assert_string_equal(got, want.buf);
		bv_buf_release(&want);
		free(got);
	}
	/* without timestamps the line is left alone */
	{
		char *got = split(false, "2026-11-22T08:39:37Z x\nlast", NULL, 3);
		assert_string_equal(got, "1|-|2026-11-22T08:39:37Z x\n1|-|last\n");
		free(got);
	}
	/* a callback's failure stops the feed and is returned */
	{
		int calls = 0;
		struct bv_log_splitter ls = {
			.timestamps = true, .on_line = stop_line, .payload = &calls};
		assert_int_equal(bv_log_splitter_feed(&ls, 1, "a\nb\n", 4), -42);
		assert_int_equal(calls, 1);
		assert_int_equal(bv_log_splitter_finish(&ls), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services__every_field),
		cmocka_unit_test(test_services__none),
		cmocka_unit_test(test_services__unknown_keys_refused),
		cmocka_unit_test(test_services__bad_input),
		cmocka_unit_test(test_services__order_and_select),
		cmocka_unit_test(test_services__ports),
		cmocka_unit_test(test_services__durations),
		cmocka_unit_test(test_services__volumes_and_paths),
		cmocka_unit_test(test_services__dockerignore_table),
		cmocka_unit_test(test_services__check_paths),
		cmocka_unit_test(test_services__names_and_images),
		cmocka_unit_test(test_services__dockerignore),
		cmocka_unit_test(test_services__build_context),
		cmocka_unit_test(test_services__build_context_errors),
		cmocka_unit_test(test_services__log_timestamps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
