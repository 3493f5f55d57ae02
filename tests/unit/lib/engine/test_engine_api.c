/*
 * The typed Engine API layer (src/lib/engine/engine-internal.h): its success policy per
 * call, escaping and label reading.  The engine is a fake: a forked child serving canned
 * HTTP/1.1 on a real unix socket, one process per connection.  It answers a request only
 * when its request line is exactly what the layer must send, so every case also checks the
 * path, its escaping and its parameters; anything else gets 400 "unexpected request".
 */
#include <bv/engine.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"

#include "util/banned.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER  "sha256:1111111111111111111111111111111111111111111111111111111111111111"

/* ---- The fake engine ---- */

struct canned {
	const char *request; /* the request line up to " HTTP/1.1" */
	int status;
	const char *body;
};

static const struct canned answers[] = {
	/* containers */
	{"DELETE /v1.41/containers/gone?force=1&v=1", 404, "{\"message\":\"No such container\"}"},
	{"DELETE /v1.41/containers/busy?force=1&v=1", 409,
	 "{\"message\":\"removal already in progress\"}"},
	{"DELETE /v1.41/containers/broken?force=1&v=1", 500, "{\"message\":\"driver failed\"}"},
	{"DELETE /v1.41/containers/c1?force=1&v=1", 204, ""},
	{"POST /v1.41/containers/create?name=taken", 409, "{\"message\":\"Conflict\"}"},
	{"POST /v1.41/containers/create?name=bv-a%20b%2Fc%26d", 201, "{\"Id\":\"new1\"}"},
	{"POST /v1.41/containers/create", 201, "{\"Id\":\"anon\"}"},
	{"POST /v1.41/containers/c1/start", 304, ""},
	{"POST /v1.41/containers/gone/start", 404, "{\"message\":\"No such container: gone\"}"},
	{"POST /v1.41/containers/c1/stop?t=10", 304, ""},
	{"POST /v1.41/containers/gone/stop?t=10", 404, "{\"message\":\"No such container\"}"},
	{"POST /v1.41/containers/c1/kill?signal=SIGINT", 409, "{\"message\":\"not running\"}"},
	{"POST /v1.41/containers/c1/restart?t=10", 304, ""},
	{"POST /v1.41/containers/c1/wait", 200, "{\"StatusCode\":7}"},
	{"GET /v1.41/containers/missing/json", 404, "{\"message\":\"No such container\"}"},
	{"GET /v1.41/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"Running\":true}}"},
	{"GET "
	 "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22bv.project%3D%2Fp%20q%22%"
	 "2C%22bv.service%22%5D%7D",
	 200, "[{\"Id\":\"s1\"}]"},
	{"POST /v1.41/containers/stopped/start", 204, ""},
	{"POST /v1.41/exec/e1/start", 200, ""},
	{"GET /v1.41/exec/e1/json", 200, "{\"ExitCode\":3,\"Running\":false}"},
	{"GET /v1.41/libpod/containers/c1/healthcheck", 409, "{\"message\":\"not running\"}"},
	/* images: a reference keeps its '/', ':' and '@' in the path */
	{"GET /v1.41/images/reg.example:5000/x/y@" DIGEST "/json", 200,
	 "{\"Id\":\"sha256:aa\",\"RepoDigests\":[\"reg.example:5000/x/y@" DIGEST "\"]}"},
	{"GET /v1.41/images/reg.example:5000/x/z@" OTHER "/json", 200,
	 "{\"Id\":\"sha256:bb\",\"RepoDigests\":[\"reg.example:5000/x/z@" DIGEST "\"]}"},
	{"GET /v1.41/images/absent:1/json", 404, "{\"message\":\"No such image\"}"},
	{"GET /v1.41/images/noid:1/json", 200, "{}"},
	{"DELETE /v1.41/images/absent:1?force=1", 404, "{\"message\":\"No such image\"}"},
	{"DELETE /v1.41/images/used:1", 409, "{\"message\":\"image is in use\"}"},
	{"GET /v1.41/images/json?filters=%7B%22label%22%3A%5B%22bv.snapshot%3D1%22%5D%7D", 200,
	 "{\"not\":\"an array\"}"},
	/* networks */
	{"GET /v1.41/networks/n1", 404, "{\"message\":\"network n1 not found\"}"},
	{"POST /v1.41/networks/create", 409, "{\"message\":\"network with name n1 exists\"}"},
	{"DELETE /v1.41/networks/n1", 404, "{\"message\":\"network n1 not found\"}"},
	{"POST /v1.41/networks/n1/connect", 200, ""},
	{"POST /v1.41/networks/n1/disconnect", 404, "{\"message\":\"No such container: c1\"}"},
	/* the name filter matches substrings: n10 is listed too */
	{"GET /v1.41/networks?filters=%7B%22name%22%3A%5B%22n1%22%5D%7D", 200,
	 "[{\"Id\":\"i1\",\"Name\":\"n1\"},{\"Id\":\"i10\",\"Name\":\"n10\"},"
	 "{\"Id\":\"i2\",\"Name\":\"n1\"}]"},
	{"GET /v1.41/networks?filters=%7B%22label%22%3A%5B%22bv.project%3D%2Fp%22%5D%7D", 500,
	 "{\"message\":\"boom\"}"},
};

static char *state_dir; /* the fake's memory between connections: files */

static void srv_write(int fd, const char *text)
{
	if (bv_write_all(fd, text, strlen(text)) < 0)
		_exit(2);
}

static void srv_respond(int fd, int status, const char *extra, const char *body)
{
	char *s = bv_xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
			       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			       status, extra, strlen(body), body);
	srv_write(fd, s);
	free(s);
}

/* The request line, without " HTTP/1.1", and the whole head; the body is read and dropped. */
static char *srv_read_request(int fd, struct bv_buf *head)
{
	char chunk[4096];
	char *end, *cl, *sp;
	size_t want = 0, have;
	for (;;) {
		ssize_t n;
		end = memmem(head->buf, head->len, "\r\n\r\n", 4);
		if (end)
			break;
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			_exit(2);
		bv_buf_add(head, chunk, (size_t)n);
	}
	have = head->len - ((size_t)(end - head->buf) + 4);
	cl = strcasestr(head->buf, "Content-Length:");
	if (cl) {
		for (cl += 15; *cl == ' '; cl++)
			;
		while (*cl >= '0' && *cl <= '9')
			want = want * 10 + (size_t)(*cl++ - '0');
	}
	while (have < want) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			_exit(2);
		have += (size_t)n;
	}
	sp = strstr(head->buf, " HTTP/1.1\r\n");
	if (!sp)
		_exit(2);
	return bv_xstrndup(head->buf, (size_t)(sp - head->buf));
}

static void srv_handle(int fd)
{
	struct bv_buf head = BV_BUF_INIT;
	char *line = srv_read_request(fd, &head);
	_cleanup_free_ char *started = bv_path_join(state_dir, "started");
	if (!strcmp(line, "GET /_ping")) {
		srv_write(fd, "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: Docker/99.2 "
			      "(linux)\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
	} else if (!strcmp(line, "POST /v1.41/containers/stopped/exec")) {
		/* 409 until the container was started */
		if (access(started, F_OK) == 0)
			srv_respond(fd, 201, "", "{\"Id\":\"e1\"}");
		else
			srv_respond(fd, 409, "", "{\"message\":\"container is not running\"}");
	} else {
		size_t i;
		if (!strcmp(line, "POST /v1.41/containers/stopped/start")) {
			int f = open(started, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (f >= 0)
				close(f);
		}
		for (i = 0; i < BV_ARRAY_SIZE(answers); i++)
			if (!strcmp(line, answers[i].request))
				break;
		if (i < BV_ARRAY_SIZE(answers))
			srv_respond(fd, answers[i].status, "", answers[i].body);
		else
			srv_respond(fd, 400, "", "{\"message\":\"unexpected request\"}");
	}
	free(line);
	bv_buf_release(&head);
}

struct fake {
	char *dir;
	char *host;
	pid_t pid;
	struct bv_engine *e;
};

static int fake_setup(void **state)
{
	struct fake *f = bv_xcalloc(1, sizeof(*f));
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	_cleanup_free_ char *path = NULL;
	struct bv_error *err = NULL;
	int lfd;
	f->dir = test_mkdtemp("engine-api");
	assert_non_null(f->dir);
	state_dir = f->dir;
	path = bv_path_join(f->dir, "e.sock");
	f->host = bv_xasprintf("unix://%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		/* a failed assertion skips the teardown: the server must not outlive the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			pid_t child;
			if (c < 0)
				_exit(2);
			child = fork();
			if (child == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				close(lfd);
				srv_handle(c);
				_exit(0);
			}
			close(c);
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		}
	}
	close(lfd);
	assert_ok(bv_engine_open(&f->e, f->host, &err), &err);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	bv_engine_free(f->e);
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	bv_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->host);
	free(f);
	return 0;
}

static struct bv_engine *engine_of(void **state)
{
	return ((struct fake *)*state)->e;
}

/* `r` is the negative `code` and *errp says `message`; *errp is freed and reset. */
static void expect_error(int r, struct bv_error **errp, int code, const char *message)
{
	assert_int_equal(r, code);
	assert_non_null(*errp);
	assert_int_equal((*errp)->code, code);
	assert_string_equal((*errp)->message, message);
	bv_error_free(*errp);
	*errp = NULL;
}

/* ---- Containers ---- */

static void test_engine_api__remove_gone_or_busy_is_success(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	assert_ok(bv_engine_container_remove(e, "gone", "container 'gone'", &err), &err);
	assert_ok(bv_engine_container_remove(e, "busy", "container 'busy'", &err), &err);
	assert_ok(bv_engine_container_remove(e, "c1", "container 'c1'", &err), &err);
	expect_error(bv_engine_container_remove(e, "broken", "container 'broken'", &err), &err,
		     BV_ERR, "could not remove container 'broken': driver failed");
}

static void test_engine_api__create_taken_name_is_eexists(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	json_t *body = json_pack("{s:s}", "Image", "x");
	char *id = NULL;
	expect_error(bv_engine_container_create(&id, e, "taken", body, "session 'taken'", &err),
		     &err, BV_EEXISTS, "session 'taken' exists already");
	assert_null(id);
	/* the name is a query value: '/', ' ' and '&' are escaped */
	assert_ok(bv_engine_container_create(&id, e, "bv-a b/c&d", body, "x", &err), &err);
	assert_string_equal(id, "new1");
	free(id);
	assert_ok(bv_engine_container_create(&id, e, NULL, body, "x", &err), &err);
	assert_string_equal(id, "anon");
	free(id);
	json_decref(body);
}

static void test_engine_api__start_stop_kill_policies(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	int code = 0;
	assert_ok(bv_engine_container_start(e, "c1", "the container", &err), &err); /* 304 */
	expect_error(bv_engine_container_start(e, "gone", "the container", &err), &err,
		     BV_ENOTFOUND, "could not start the container: No such container: gone");
	assert_ok(bv_engine_container_stop(e, "c1", 10, "x", &err), &err);       /* 304 */
	assert_ok(bv_engine_container_stop(e, "gone", 10, "x", &err), &err);     /* 404 */
	assert_ok(bv_engine_container_kill(e, "c1", "SIGINT", "x", &err), &err); /* 409 */
	/* restart has no "already" answer: 304 is not what it promises */
	expect_error(bv_engine_container_restart(e, "c1", 10, "service 'db'", &err), &err, BV_ERR,
		     "could not restart service 'db': unexpected response (HTTP 304)");
	assert_ok(bv_engine_container_wait(&code, e, "c1", "x", &err), &err);
	assert_int_equal(code, 7);
}

static void test_engine_api__inspect_absent_is_null(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	json_t *c = (json_t *)1;
	assert_ok(bv_engine_container_inspect(&c, e, "missing", &err), &err);
	assert_null(c);
	assert_ok(bv_engine_container_inspect(&c, e, "c1", &err), &err);
	assert_non_null(c);
	assert_true(json_is_true(json_object_get(json_object_get(c, "State"), "Running")));
	json_decref(c);
}

static void test_engine_api__list_escapes_label_filters(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	const char *labels[] = {"bv.project=/p q", "bv.service", NULL};
	static const char *const snapshots[] = {"bv.snapshot=1", NULL};
	json_t *list = NULL;
	assert_ok(bv_engine_container_list(&list, e, labels, "the containers", &err), &err);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	/* a 200 that is not an array is the engine's error, not an empty list */
	expect_error(bv_engine_image_list(&list, e, snapshots, "the snapshots", &err), &err, BV_ERR,
		     "could not list the snapshots: the engine's answer is not a list");
}

static void test_engine_api__exec_create_starts_a_stopped_container_once(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	json_t *body = json_pack("{s:[s]}", "Cmd", "true");
	json_t *x = NULL;
	char *id = NULL;
	assert_ok(bv_engine_exec_create(&id, e, "stopped", body, "session 'w'", &err), &err);
	assert_string_equal(id, "e1");
	assert_ok(bv_engine_exec_inspect(&x, e, id, &err), &err);
	assert_int_equal(json_integer_value(json_object_get(x, "ExitCode")), 3);
	json_decref(x);
	free(id);
	json_decref(body);
	/* Podman's healthcheck: 409 (not running) is an answer, not a failure */
	assert_ok(bv_engine_container_healthcheck(e, "c1", &err), &err);
}

/* ---- Images ---- */

static void test_engine_api__image_paths_keep_references(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	json_t *img = NULL;
	assert_ok(bv_engine_image_inspect(&img, e, "reg.example:5000/x/y@" DIGEST, &err), &err);
	assert_string_equal(json_string_value(json_object_get(img, "Id")), "sha256:aa");
	json_decref(img);
	assert_ok(bv_engine_image_inspect(&img, e, "absent:1", &err), &err);
	assert_null(img);
	expect_error(bv_engine_image_inspect(&img, e, "noid:1", &err), &err, BV_ERR,
		     "the engine described image 'noid:1' without an Id");
	assert_ok(bv_engine_image_remove(e, "absent:1", true, &err), &err); /* 404 */
	expect_error(bv_engine_image_remove(e, "used:1", false, &err), &err, BV_EEXISTS,
		     "could not remove image 'used:1': image is in use");
}

static void test_engine_api__find_checks_the_digest(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	const char *good[] = {"absent:1", "reg.example:5000/x/y@" DIGEST, NULL};
	const char *bad[] = {"reg.example:5000/x/z@" OTHER, NULL};
	const char *none[] = {"absent:1", NULL};
	struct bv_engine_image_want w = {.names = good, .digest = DIGEST, .subject = "y"};
	json_t *img = NULL;
	assert_ok(bv_engine_image_find(&img, e, &w, &err), &err);
	assert_non_null(img); /* the second name */
	json_decref(img);
	w.names = none;
	assert_ok(bv_engine_image_find(&img, e, &w, &err), &err);
	assert_null(img);
	w.names = bad;
	w.digest = OTHER;
	w.subject = "z";
	expect_error(bv_engine_image_find(&img, e, &w, &err), &err, BV_ERR,
		     "digest mismatch for 'z': the engine's copy of 'reg.example:5000/x/z@" OTHER
		     "' does not carry the locked digest " OTHER);
}

/* ---- Networks ---- */

static void test_engine_api__network_policies(void **state)
{
	struct bv_engine *e = engine_of(state);
	struct bv_error *err = NULL;
	json_t *labels = json_pack("{s:s}", "bv.project", "/p");
	const char *aliases[] = {"db", NULL};
	const char *project[] = {"bv.project=/p", NULL};
	json_t *n = (json_t *)1;
	assert_ok(bv_engine_network_inspect(&n, e, "n1", &err), &err);
	assert_null(n);
	expect_error(bv_engine_network_create(NULL, e, "n1", labels, &err), &err, BV_EEXISTS,
		     "could not create network 'n1': network with name n1 exists");
	assert_ok(bv_engine_network_remove(e, "n1", &err), &err); /* 404 */
	assert_ok(bv_engine_network_connect(e, "n1", "c1", aliases, &err), &err);
	assert_ok(bv_engine_network_disconnect(e, "n1", "c1", &err), &err); /* 404 */
	/* exactly the name asked for: dockerd lets two networks share it */
	assert_ok(bv_engine_network_list(&n, e, "n1", NULL, &err), &err);
	assert_int_equal(json_array_size(n), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(n, 1), "Id")), "i2");
	json_decref(n);
	expect_error(bv_engine_network_list(&n, e, NULL, project, &err), &err, BV_ERR,
		     "could not list networks: boom");
	json_decref(labels);
}

/* ---- Labels ---- */

static void test_engine_api__labels_read_the_old_namespace(void **state)
{
	json_t *labels = json_pack("{s:s, s:s, s:s}", "bv.project", "/new", "io.bv.project", "/old",
				   "io.bv.tool", "samtools");
	(void)state;
	assert_string_equal(bv_engine_label(labels, BV_LABEL_PROJECT), "/new");
	assert_string_equal(bv_engine_label(labels, BV_LABEL_TOOL), "samtools");
	assert_null(bv_engine_label(labels, BV_LABEL_SESSION));
	assert_null(bv_engine_label(NULL, BV_LABEL_SESSION));
	json_decref(labels);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_engine_api__remove_gone_or_busy_is_success,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__create_taken_name_is_eexists,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__start_stop_kill_policies,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__inspect_absent_is_null, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__list_escapes_label_filters,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(
			test_engine_api__exec_create_starts_a_stopped_container_once, fake_setup,
			fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__image_paths_keep_references,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__find_checks_the_digest, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_engine_api__network_policies, fake_setup,
						fake_teardown),
		cmocka_unit_test(test_engine_api__labels_read_the_old_namespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
