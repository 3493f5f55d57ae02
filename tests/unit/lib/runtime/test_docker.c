/*
 * The docker backend: image naming through mirrors, RepoDigests matching, the container
 * create body and pull progress (pure functions, always run); and the backend itself against
 * a real engine when BV_TEST_DOCKER_SOCK is set (tests/e2e/t0700-docker.bats sets it, with
 * BV_TEST_REFERENCE, BV_TEST_DIGEST and BV_MIRRORS for an image of the fixture registry).
 * Without an engine those cases report SKIP.
 */
#include <bv/docker.h>
#include <bv/engine.h>
#include <bv/imageref.h>
#include <bv/runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include "util/banned.h"

#define DIGEST "sha256:258b9a7c5c78baec8ee79fc24393d12768f4b17d8391a038a6949268daac56a4"
#define OTHER  "sha256:0000000000000000000000000000000000000000000000000000000000000000"

static void test_docker__image_name_with_and_without_mirror(void **state)
{
	struct bv_mirrors *m = NULL;
	struct bv_error *err = NULL;
	char *repo = NULL, *pinned = NULL;
	(void)state;
	assert_ok(bv_docker_image_name(&repo, &pinned, "quay.io/biocontainers/samtools:1.16",
				       DIGEST, NULL, &err),
		  &err);
	assert_string_equal(repo, "quay.io/biocontainers/samtools");
	assert_string_equal(pinned, "quay.io/biocontainers/samtools@" DIGEST);
	free(repo);
	free(pinned);

	_cleanup_free_ char *saved = getenv("BV_MIRRORS") ? bv_xstrdup(getenv("BV_MIRRORS")) : NULL;
	setenv("BV_MIRRORS", "quay.io=127.0.0.1:5000", 1);
	setenv("XDG_CONFIG_HOME", "/nonexistent-bv-test", 1);
	assert_ok(bv_mirrors_load(&m, &err), &err);
	assert_ok(bv_docker_image_name(&repo, &pinned, "quay.io/biocontainers/samtools:1.16",
				       DIGEST, m, &err),
		  &err);
	assert_string_equal(repo, "127.0.0.1:5000/biocontainers/samtools");
	assert_string_equal(pinned, "127.0.0.1:5000/biocontainers/samtools@" DIGEST);
	free(repo);
	free(pinned);
	/* Docker Hub's short names are written out */
	assert_ok(bv_docker_image_name(&repo, &pinned, "ubuntu:22.04", DIGEST, m, &err), &err);
	assert_string_equal(pinned, "docker.io/library/ubuntu@" DIGEST);
	free(repo);
	free(pinned);
	bv_mirrors_free(m);
	if (saved)
		setenv("BV_MIRRORS", saved, 1);
	else
		unsetenv("BV_MIRRORS");

	/* a reference pinning another digest than the lock, or a bad digest, is refused */
	repo = pinned = NULL;
	assert_int_equal(
		bv_docker_image_name(&repo, &pinned, "quay.io/x/y:1@" OTHER, DIGEST, NULL, &err),
		BV_EINVALID);
	assert_null(repo);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(
		bv_docker_image_name(&repo, &pinned, "quay.io/x/y:1", "sha256:abc", NULL, &err),
		BV_EINVALID);
	bv_error_free(err);
}

static void test_docker__repo_digests_match_the_digest(void **state)
{
	json_t *rd = json_pack("[s, s, s]", "ubuntu@" DIGEST, "127.0.0.1:5000/x/y@" OTHER,
			       "not a reference");
	json_t *other = json_pack("[s]", "quay.io/x/y@sha256:1" DIGEST + 8);
	(void)state;
	assert_true(bv_docker_repo_digests_match(rd, DIGEST));
	assert_true(bv_docker_repo_digests_match(rd, OTHER));
	/* a digest that merely starts or ends like one listed is another digest */
	assert_false(bv_docker_repo_digests_match(other, DIGEST));
	assert_false(bv_docker_repo_digests_match(rd, "sha256:1234"));
	assert_false(bv_docker_repo_digests_match(NULL, DIGEST));
	json_decref(rd);
	json_decref(other);
}

static json_t *get(json_t *j, const char *path)
{
	/* "HostConfig.Binds" */
	_cleanup_free_ char *copy = bv_xstrdup(path);
	for (char *p = copy, *dot; p; p = dot) {
		dot = strchr(p, '.');
		if (dot)
			*dot++ = '\0';
		j = json_object_get(j, p);
	}
	return j;
}

static void assert_json(json_t *j, const char *path, const char *want)
{
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
	json_t *got = get(j, path);
	char *shown = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	assert_non_null(w);
	if (!json_equal(got, w))
		fail_msg("%s: got %s, want %s", path, shown ? shown : "(none)", want);
	free(shown);
	json_decref(w);
}

static void test_docker__create_body(void **state)
{
	static const char *const argv[] = {"samtools", "view", "-", NULL};
	static const char *const env[] = {"A=1", "PATH=/usr/bin", NULL};
	const struct bv_run_mount mounts[] = {
		{"/home/u/proj", "/workspace", false, BV_MOUNT_WORKSPACE},
		{"/data/ref", "/ref", true, BV_MOUNT_DATA},
		{"/odd:path", "/cache", false, BV_MOUNT_CACHE},
	};
	struct bv_run_request req = {.image = {.tool_id = "samtools",
					       .reference = "quay.io/b/samtools:1",
					       .digest = DIGEST},
				     .argv = argv,
				     .env = env,
				     .mounts = mounts,
				     .n_mounts = 3,
				     .stdio = BV_STDIO_INHERIT,
				     .project_root = "/home/u/proj"};
	json_t *cfg = json_pack("{s:[s]}", "Env", "PATH=/bin");
	json_t *b = bv_docker_create_body(&req, "q/b/samtools@" DIGEST, cfg, 1000, 100, "0,1", NULL,
					  true);
	(void)state;
	assert_json(b, "Image", "\"q/b/samtools@" DIGEST "\"");
	assert_json(b, "Cmd", "[\"samtools\", \"view\", \"-\"]");
	assert_null(get(b, "Entrypoint")); /* the image's stays */
	/* HOME added (neither image nor request has it); no GPU, so no NVIDIA variable */
	assert_json(b, "Env", "[\"A=1\", \"PATH=/usr/bin\", \"HOME=/tmp\"]");
	assert_json(b, "User", "\"1000:100\"");
	assert_json(b, "WorkingDir", "\"/workspace\"");
	assert_json(b, "HostConfig.Binds",
		    "[\"/home/u/proj:/workspace:rw\", \"/data/ref:/ref:ro\"]");
	assert_json(b, "HostConfig.Mounts",
		    "[{\"Type\":\"bind\",\"Source\":\"/odd:path\",\"Target\":\"/cache\","
		    "\"ReadOnly\":false}]");
	assert_json(b, "HostConfig.AutoRemove", "false");
	assert_json(b, "HostConfig.Init", "true");
	assert_null(get(b, "HostConfig.DeviceRequests"));
	assert_null(get(b, "HostConfig.CpusetCpus"));
	assert_json(b, "OpenStdin", "true");
	assert_json(b, "StdinOnce", "true");
	assert_json(b, "AttachStdin", "true");
	assert_json(b, "Tty", "false");
	assert_json(b, "Labels", "{\"bv.tool\":\"samtools\",\"bv.project\":\"/home/u/proj\"}");
	json_decref(b);

	/* capture, GPU, explicit workdir, HOME from the image, no argv, no init */
	req.stdio = BV_STDIO_CAPTURE;
	req.gpu = true;
	req.workdir = "/workspace/sub";
	req.argv = NULL;
	req.n_mounts = 0;
	json_decref(cfg);
	cfg = json_pack("{s:[s]}", "Env", "HOME=/root");
	b = bv_docker_create_body(&req, "x@" DIGEST, cfg, 0, 0, "0,1", "2-3,6", false);
	assert_null(get(b, "Cmd"));
	assert_json(b, "Env", "[\"A=1\", \"PATH=/usr/bin\", \"NVIDIA_VISIBLE_DEVICES=0,1\"]");
	assert_json(b, "WorkingDir", "\"/workspace/sub\"");
	assert_json(b, "OpenStdin", "false");
	assert_json(b, "AttachStdin", "false");
	assert_json(b, "User", "\"0:0\"");
	assert_null(get(b, "HostConfig.Init"));
	assert_json(b, "HostConfig.CpusetCpus", "\"2-3,6\"");
	assert_json(b, "HostConfig.Binds", "[]");
	assert_json(b, "HostConfig.DeviceRequests",
		    "[{\"Driver\":\"nvidia\",\"Count\":-1,\"Capabilities\":[[\"gpu\"]]}]");
	json_decref(b);

	/* no workspace, no workdir: the image's own WorkingDir (none in the body) */
	req.workdir = NULL;
	req.env = NULL;
	b = bv_docker_create_body(&req, "x@" DIGEST, NULL, 0, 0, NULL, NULL, false);
	assert_null(get(b, "WorkingDir"));
	assert_json(b, "Env", "[\"HOME=/tmp\"]");
	json_decref(b);
	json_decref(cfg);
}

static void feed(struct bv_docker_progress *dp, const char *event)
{
	json_t *j = json_loads(event, 0, NULL);
	assert_non_null(j);
	bv_docker_progress_feed(dp, j, 2.0);
	json_decref(j);
}

static void test_docker__progress_from_dockerd_events(void **state)
{
	struct bv_docker_progress dp = {0};
	(void)state;
	feed(&dp,
	     "{\"status\":\"Pulling from b/samtools\",\"id\":\"127.0.0.1:5000/b/samtools@x\"}");
	feed(&dp, "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"aaa\"}");
	feed(&dp, "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"bbb\"}");
	feed(&dp, "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"ccc\"}");
	feed(&dp, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":100,\"total\":1000},"
		  "\"id\":\"bbb\"}");
	feed(&dp, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":50,\"total\":500},"
		  "\"id\":\"ccc\"}");
	/* two layers and a config; none done yet (the existing one counts as done) */
	assert_int_equal(dp.p.layers_total, 4);
	assert_int_equal(dp.p.layers_done, 1);
	assert_int_equal(dp.p.bytes_total, 1500);
	assert_int_equal(dp.p.bytes_done, 150);
	assert_true(dp.p.rate > 74.9 && dp.p.rate < 75.1);
	/* extraction progress is not download progress */
	feed(&dp, "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":7,\"total\":9},"
		  "\"id\":\"bbb\"}");
	assert_int_equal(dp.p.bytes_done, 150);
	feed(&dp, "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"bbb\"}");
	assert_int_equal(dp.p.layers_done, 2);
	assert_int_equal(dp.p.bytes_done, 1050);
	feed(&dp, "{\"status\":\"Digest: sha256:00\"}");
	assert_false(dp.p.finished);
	bv_docker_progress_finish(&dp, 2.0);
	assert_true(dp.p.finished);
	assert_int_equal(dp.p.layers_done, 4);
	assert_int_equal(dp.p.bytes_done, 1500);
	bv_docker_progress_release(&dp);
}

static void test_docker__progress_from_podman_events(void **state)
{
	struct bv_docker_progress dp = {.podman = true};
	(void)state;
	feed(&dp, "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"l1\"}");
	feed(&dp, "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"l2\"}");
	feed(&dp, "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"l2\"}");
	feed(&dp, "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"cfg\"}");
	/* Podman names the config blob itself: nothing is added for it */
	assert_int_equal(dp.p.layers_total, 3);
	assert_int_equal(dp.p.layers_done, 1);
	bv_docker_progress_finish(&dp, 1.0);
	assert_int_equal(dp.p.layers_done, 3);
	bv_docker_progress_release(&dp);
}

/* ---------------------------------------------------------------------------------- */
/* Against a real engine */

static bool have_engine(void)
{
	const char *s = getenv("BV_TEST_DOCKER_SOCK");
	if (!s || !s[0])
		return false;
	setenv("DOCKER_HOST", s, 1);
	return true;
}

/* Whether the engine at BV_TEST_DOCKER_SOCK is Podman's service. */
static bool engine_is_podman(void)
{
	struct bv_engine *e = NULL;
	struct bv_error *err = NULL;
	bool podman = false;
	if (bv_engine_open(&e, NULL, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	podman = bv_engine_is_podman(e);
	bv_engine_free(e);
	return podman;
}

struct seen {
	int calls;
	bool finished;
};

static void on_progress(const struct bv_pull_progress *p, void *payload)
{
	struct seen *s = payload;
	s->calls++;
	s->finished = s->finished || p->finished;
}

static void test_docker__real_backend(void **state)
{
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	struct bv_runtime_info info = {0};
	struct bv_image_info ii = {0};
	struct seen seen = {0};
	struct bv_ensure_options o = {.progress = on_progress, .progress_payload = &seen};
	bool available = true;
	(void)state;
	if (!have_engine())
		skip();
	struct bv_image_spec img = {.tool_id = "samtools",
				    .reference = getenv("BV_TEST_REFERENCE"),
				    .digest = getenv("BV_TEST_DIGEST")};
	assert_non_null(img.reference);
	assert_non_null(img.digest);
	assert_ok(bv_runtime_docker_new(&rt, &err), &err);
	assert_true(rt->ops->is_usable(rt));
	assert_ok(rt->ops->health(rt, &info, &err), &err);
	assert_string_equal(info.name, "docker");
	assert_non_null(strstr(info.detail, "API 1.41"));
	bv_runtime_info_release(&info);

	/* remove, then ensure pulls (with progress), then it is there and has a size */
	assert_ok(rt->ops->remove(rt, &img, &err), &err);
	assert_ok(rt->ops->remove(rt, &img, &err), &err); /* absent: not an error */
	assert_ok(rt->ops->is_available(rt, &img, &available, &err), &err);
	assert_false(available);
	assert_int_equal(rt->ops->inspect(rt, &img, &ii, &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_ok(rt->ops->ensure(rt, &img, 1, &o, &err), &err);
	/* (layer events only when the engine lacked the layers: another name may keep them) */
	assert_true(seen.calls >= 1);
	assert_true(seen.finished);
	assert_ok(rt->ops->is_available(rt, &img, &available, &err), &err);
	assert_true(available);
	assert_ok(rt->ops->inspect(rt, &img, &ii, &err), &err);
	assert_true(ii.size > 1000000);
	/* a second ensure finds it and reports nothing */
	seen.calls = 0;
	assert_ok(rt->ops->ensure(rt, &img, 1, &o, &err), &err);
	assert_int_equal(seen.calls, 0);

	/* a digest the registry does not have is an error naming the image */
	struct bv_image_spec bad = img;
	bad.digest = OTHER;
	assert_true(rt->ops->ensure(rt, &bad, 1, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "could not pull"));
	bv_error_free(err);
	bv_runtime_free(rt);
}

static void test_docker__real_run_capture(void **state)
{
	static const char *const argv[] = {
		"sh", "-c", "echo out; echo err >&2; pwd; echo $HOME $BV_X; ls -n /ro; exit 4",
		NULL};
	static const char *const env[] = {"BV_X=from-request", NULL};
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	struct bv_run_result res = {0};
	_cleanup_free_ char *dir = NULL, *file = NULL;
	(void)state;
	if (!have_engine())
		skip();
	dir = test_mkdtemp("docker");
	assert_non_null(dir);
	assert_int_equal(chmod(dir, 0755), 0);
	file = bv_path_join(dir, "f");
	assert_int_equal(bv_write_file_atomic(file, "x", 1, 0644, NULL), 0);
	struct bv_run_mount m = {dir, "/ro", true, BV_MOUNT_DATA};
	struct bv_run_request req = {.image = {.tool_id = "samtools",
					       .reference = getenv("BV_TEST_REFERENCE"),
					       .digest = getenv("BV_TEST_DIGEST")},
				     .argv = argv,
				     .env = env,
				     .mounts = &m,
				     .n_mounts = 1,
				     .stdio = BV_STDIO_CAPTURE};
	assert_ok(bv_runtime_docker_new(&rt, &err), &err);
	assert_ok(rt->ops->run(rt, &req, &res, &err), &err);
	assert_int_equal(res.status, 4);
	assert_non_null(strstr(res.out, "out\n/\n/tmp from-request\n"));
	assert_non_null(strstr(res.out, " f\n"));
	assert_string_equal(res.err, "err\n");
	assert_int_equal(res.err_len, 4);
	bv_run_result_release(&res);

	/* A command the image does not have: with an init as PID 1 the init fails (docker-init
	 * names the command and says 127, as a shell would; Podman's catatonit says "failed to
	 * exec pid1" and 1); without an init, starting fails, which is an error. */
	static const char *const missing[] = {"no-such-binary", NULL};
	req.argv = missing;
	if (rt->ops->run(rt, &req, &res, &err) < 0) {
		if (!strstr(err->message, "could not start the container"))
			fail_msg("unexpected error: %s", err->message);
		bv_error_free(err);
	} else {
		if (engine_is_podman()) {
			assert_int_equal(res.status, 1);
			assert_non_null(strstr(res.err, "failed to exec"));
		} else {
			assert_int_equal(res.status, 127);
			assert_non_null(strstr(res.err, "no-such-binary"));
		}
		bv_run_result_release(&res);
	}
	bv_runtime_free(rt);
	bv_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker__image_name_with_and_without_mirror),
		cmocka_unit_test(test_docker__repo_digests_match_the_digest),
		cmocka_unit_test(test_docker__create_body),
		cmocka_unit_test(test_docker__progress_from_dockerd_events),
		cmocka_unit_test(test_docker__progress_from_podman_events),
		cmocka_unit_test(test_docker__real_backend),
		cmocka_unit_test(test_docker__real_run_capture),
	};
	size_t n = BV_ARRAY_SIZE(tests);
	/* The last 2 cases need a real engine, which the e2e tests give them; without one
	 * they are not run at all rather than reported as passing or skipped. */
	if (!getenv("BV_TEST_DOCKER_SOCK") || !getenv("BV_TEST_DOCKER_SOCK")[0]) {
		n -= 2;
		printf("# real-engine cases not run: BV_TEST_DOCKER_SOCK is not set "
		       "(tests/e2e/t0700-docker.bats sets it)\n");
	}
	return _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
}
