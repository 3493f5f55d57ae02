/*
 * The registry client against real registries and a scripted fake one.
 *
 * Real: Debian's docker-registry (distribution 2.8), started on a free 127.0.0.1 port, fed by
 * skopeo from an OCI layout this file builds by hand (a random layer, so gzip cannot shrink
 * it, a config, an amd64 and an arm64 manifest and an index of both), pushed in OCI and in
 * Docker v2 schema 2 form.  A second registry requires htpasswd basic auth.
 * Fake: tests/fixtures/fake_registry.py for what a real registry will not do on demand:
 * wrong bytes, truncated bodies, resets, 5xx, an oversized manifest and a countable bearer
 * token flow.
 *
 * Every daemon is started with bv_proc and killed by PID in teardown, also when a test fails.
 * argv[1] is the sample registry index (unused here; meson passes it to every lib test).
 */
#include "config.h"

#include <arpa/inet.h>
#include <bv/error.h>
#include <bv/store.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/oci/registry/curl_loader.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/registry/registry-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/time.h"

#define MEDIA_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_OCI_LAYER  "application/vnd.oci.image.layer.v1.tar+gzip"

/* A blob of the test image: "sha256:<hex>", its size and its file in the OCI layout. */
struct blobinfo {
	char digest[80];
	size_t size;
};

/* State shared by the whole run: the work dir, the image and the two real registries. */
static struct {
	char *dir;
	char *fixture; /* tests/fixtures/fake_registry.py */
	struct blobinfo layer, config, manifest;
	struct blobinfo arm_layer, arm_config, arm_manifest, index;
	struct blobinfo att_layer, att_config, att_manifest; /* BuildKit's attestation */
	char *manifest_file; /* the OCI manifest as a file, for the fake */
	struct bv_proc reg, auth_reg;
	int port, auth_port;
} g;

/* Per test: a store, a fake registry, a client. */
struct fixture {
	char *dir;
	struct bv_store *store;
	struct bv_proc fake;
	int fake_port;
	char *fake_log;
};

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	struct bv_proc p = BV_PROC_INIT;
	struct bv_error *err = NULL;
	int status = -1;
	va_list ap;
	char *script;

	va_start(ap, fmt);
	script = bv_xvasprintf(fmt, ap);
	va_end(ap);
	bv_strv_push(&p.args, "sh");
	bv_strv_push(&p.args, "-ec");
	bv_strv_push(&p.args, script);
	p.no_stdin = true;
	assert_ok(bv_proc_run(&status, &p, &err), &err);
	if (status != 0)
		print_error("script failed (%d): %s\n", status, script);
	assert_int_equal(status, 0);
	bv_proc_clear(&p);
	free(script);
}

static void write_file(const char *path, const void *data, size_t len)
{
	struct bv_error *err = NULL;
	assert_ok(bv_write_file_atomic(path, data, len, 0644, &err), &err);
}

static char *read_text(const char *path)
{
	struct bv_buf b = BV_BUF_INIT;
	if (bv_buf_read_file(&b, path, 64u << 20, NULL) < 0)
		return bv_xstrdup("");
	return bv_buf_detach(&b, NULL);
}

/* Puts `data` into the OCI layout as a blob and describes it. */
static void add_blob(const void *data, size_t len, struct blobinfo *out)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(hex, data, len);
	snprintf(out->digest, sizeof(out->digest), "sha256:%s", hex);
	out->size = len;
	_cleanup_free_ char *path = bv_xasprintf("%s/oci/blobs/sha256/%s", g.dir, hex);
	write_file(path, data, len);
}

static void add_file_blob(const char *path, struct blobinfo *out)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	assert_ok(bv_buf_read_file(&b, path, 64u << 20, &err), &err);
	add_blob(b.buf, b.len, out);
	bv_buf_release(&b);
}

/* A layer of `kb` KiB of random bytes (gzip cannot shrink them); its diff_id in `diff`. */
static void make_layer(const char *name, int kb, struct blobinfo *out, char diff[80])
{
	char hex[BV_SHA256_HEX_LEN + 1];
	struct bv_buf b = BV_BUF_INIT;
	sh("cd '%s' && mkdir -p %s.root && head -c %dk /dev/urandom > %s.root/data && "
	   "tar -C %s.root -cf %s.tar . && gzip -n -f %s.tar",
	   g.dir, name, kb, name, name, name, name);
	_cleanup_free_ char *gz = bv_xasprintf("%s/%s.tar.gz", g.dir, name);
	sh("cd '%s' && gzip -dc %s.tar.gz > %s.tar", g.dir, name, name);
	_cleanup_free_ char *tar = bv_xasprintf("%s/%s.tar", g.dir, name);
	assert_int_equal(bv_buf_read_file(&b, tar, 64u << 20, NULL), 0);
	bv_sha256_hex(hex, b.buf, b.len);
	snprintf(diff, 80, "sha256:%s", hex);
	bv_buf_release(&b);
	add_file_blob(gz, out);
}

static void make_image(const char *arch, const char *layer_name, struct blobinfo *layer,
		       struct blobinfo *config, struct blobinfo *manifest, char **text_out)
{
	char diff[80];
	make_layer(layer_name, 96, layer, diff);
	char *cfg = bv_xasprintf("{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":"
				 "\"layers\",\"diff_ids\":[\"%s\"]},\"config\":{}}",
				 arch, diff);
	add_blob(cfg, strlen(cfg), config);
	free(cfg);
	char *m =
		bv_xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
			     "\"%s\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
			     "\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
			     BV_MEDIA_OCI_MANIFEST, MEDIA_OCI_CONFIG, config->digest, config->size,
			     MEDIA_OCI_LAYER, layer->digest, layer->size);
	add_blob(m, strlen(m), manifest);
	if (text_out)
		*text_out = m;
	else
		free(m);
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void wait_port(int port)
{
	for (int i = 0; i < 500; i++) {
		if (port_open(port))
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fail_msg("nothing listens on 127.0.0.1:%d after 5 s", port);
}

/* A descriptor for a daemon's stderr: its messages end up next to its data, not in TAP. */
static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	assert_true(fd > 2);
	return fd;
}

static void stop_proc(struct bv_proc *p)
{
	int status;
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		bv_proc_finish(&status, p, NULL);
	}
	bv_proc_clear(p);
}

/* Starts docker-registry on a free port in `name`/ under the work dir. */
static void start_registry(struct bv_proc *p, int *port_out, const char *name, bool basic)
{
	struct bv_error *err = NULL;
	int port = free_port();
	_cleanup_free_ char *d = bv_xasprintf("%s/%s", g.dir, name);
	_cleanup_free_ char *cfg = bv_xasprintf("%s/config.yml", d);
	_cleanup_free_ char *auth = NULL;

	assert_int_equal(bv_mkdir_p(d, 0755, NULL), 0);
	if (basic) {
		sh("htpasswd -Bbn testuser testpass > '%s/htpasswd'", d);
		auth = bv_xasprintf("auth: {htpasswd: {realm: test-realm, path: %s/htpasswd}}\n",
				    d);
	}
	char *yml = bv_xasprintf("version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: "
				 "{rootdirectory: %s/data}\nhttp:\n  addr: 127.0.0.1:%d\n  secret: "
				 "test\n%s",
				 d, port, auth ? auth : "");
	write_file(cfg, yml, strlen(yml));
	free(yml);
	*p = (struct bv_proc)BV_PROC_INIT;
	bv_strv_push(&p->args, "/usr/bin/docker-registry");
	bv_strv_push(&p->args, "serve");
	bv_strv_push(&p->args, cfg);
	p->no_stdin = true;
	_cleanup_free_ char *logpath = bv_xasprintf("%s/registry.log", d);
	_cleanup_close_ int logfd = open_log(logpath);
	p->out = p->err = logfd;
	assert_ok(bv_proc_start(p, &err), &err);
	wait_port(port);
	*port_out = port;
}

static int group_setup(void **state)
{
	(void)state;
	char *real;
	_cleanup_free_ char *layout = NULL;
	char *amd_text = NULL, *arm_text = NULL;

	g.dir = test_mkdtemp("registry");
	assert_non_null(g.dir);
	real = realpath(g.dir, NULL);
	free(g.dir);
	g.dir = real;
	g.reg = (struct bv_proc)BV_PROC_INIT;
	g.auth_reg = (struct bv_proc)BV_PROC_INIT;
	layout = bv_xasprintf("%s/oci/blobs/sha256", g.dir);
	assert_int_equal(bv_mkdir_p(layout, 0755, NULL), 0);

	make_image("amd64", "amd", &g.layer, &g.config, &g.manifest, &amd_text);
	make_image("arm64", "arm", &g.arm_layer, &g.arm_config, &g.arm_manifest, &arm_text);
	make_image("unknown", "att", &g.att_layer, &g.att_config, &g.att_manifest, NULL);
	g.manifest_file = bv_xasprintf("%s/manifest.json", g.dir);
	write_file(g.manifest_file, amd_text, strlen(amd_text));
	char *idx = bv_xasprintf(
		"{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":"
		"\"unknown\",\"architecture\":\"unknown\"},\"annotations\":{"
		"\"vnd.docker.reference.digest\":\"%s\","
		"\"vnd.docker.reference.type\":\"attestation-manifest\"}},"
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":"
		"\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":"
		"\"linux\",\"architecture\":\"amd64\"}}]}",
		BV_MEDIA_OCI_INDEX, BV_MEDIA_OCI_MANIFEST, g.att_manifest.digest,
		g.att_manifest.size, g.manifest.digest, BV_MEDIA_OCI_MANIFEST,
		g.arm_manifest.digest, g.arm_manifest.size, BV_MEDIA_OCI_MANIFEST,
		g.manifest.digest, g.manifest.size);
	add_blob(idx, strlen(idx), &g.index);
	free(idx);
	free(amd_text);
	free(arm_text);

	_cleanup_free_ char *p = bv_xasprintf("%s/oci/oci-layout", g.dir);
	write_file(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	char *index_json =
		bv_xasprintf("{\"schemaVersion\":2,\"manifests\":["
			     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":"
			     "{\"org.opencontainers.image.ref.name\":\"t\"}},"
			     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":"
			     "{\"org.opencontainers.image.ref.name\":\"multi\"}}]}",
			     BV_MEDIA_OCI_MANIFEST, g.manifest.digest, g.manifest.size,
			     BV_MEDIA_OCI_INDEX, g.index.digest, g.index.size);
	_cleanup_free_ char *ij = bv_xasprintf("%s/oci/index.json", g.dir);
	write_file(ij, index_json, strlen(index_json));
	free(index_json);

	start_registry(&g.reg, &g.port, "reg", false);
	start_registry(&g.auth_reg, &g.auth_port, "authreg", true);
	sh("cd '%s' && skopeo copy -q --dest-tls-verify=false --preserve-digests oci:oci:t "
	   "docker://127.0.0.1:%d/test/img:1 && "
	   "skopeo copy -q --dest-tls-verify=false --format v2s2 oci:oci:t "
	   "docker://127.0.0.1:%d/test/img:v2s2 && "
	   "skopeo copy -q --all --dest-tls-verify=false --preserve-digests oci:oci:multi "
	   "docker://127.0.0.1:%d/test/multi:1 && "
	   "skopeo copy -q --dest-tls-verify=false --dest-creds testuser:testpass "
	   "--preserve-digests oci:oci:t docker://127.0.0.1:%d/test/private:1",
	   g.dir, g.port, g.port, g.port, g.auth_port);

	/* config.h knows the source tree: BV_SOURCE_TYPES is <source>/data/types.toml */
	_cleanup_free_ char *src = bv_xstrdup(BV_SOURCE_TYPES);
	assert_true(bv_str_has_suffix(src, "/data/types.toml"));
	src[strlen(src) - strlen("/data/types.toml")] = '\0';
	g.fixture = bv_xasprintf("%s/tests/fixtures/fake_registry.py", src);
	assert_true(bv_path_exists(g.fixture));
	/* credentials come from here; tests that need some write it */
	_cleanup_free_ char *dc = bv_xasprintf("%s/docker", g.dir);
	assert_int_equal(bv_mkdir_p(dc, 0700, NULL), 0);
	setenv("DOCKER_CONFIG", dc, 1);
	unsetenv("BV_MIRRORS");
	unsetenv("BV_JOBS");
	_cleanup_free_ char *xdg = bv_xasprintf("%s/xdg", g.dir);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	stop_proc(&g.reg);
	stop_proc(&g.auth_reg);
	if (g.dir)
		bv_rm_rf(g.dir, NULL);
	free(g.dir);
	free(g.fixture);
	free(g.manifest_file);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = bv_xcalloc(1, sizeof(*f));
	struct bv_error *err = NULL;
	f->dir = test_mkdtemp("registry-case");
	assert_non_null(f->dir);
	f->fake = (struct bv_proc)BV_PROC_INIT;
	_cleanup_free_ char *s = bv_xasprintf("%s/store", f->dir);
	assert_ok(bv_store_open(&f->store, s, &err), &err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	stop_proc(&f->fake);
	bv_store_free(f->store);
	bv_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->fake_log);
	free(f);
	return 0;
}

static struct bv_registry_client *client(struct fixture *f, int retries)
{
	struct bv_registry_options o = {0};
	struct bv_registry_client *c = NULL;
	struct bv_error *err = NULL;
	o.store = f->store;
	o.retries = retries;
	o.backoff_ms = 10;
	o.jobs = 4;
	assert_ok(bv_registry_client_new(&c, &o, &err), &err);
	return c;
}

static void parse_ref(struct bv_imageref *ref, const char *fmt, ...)
{
	struct bv_error *err = NULL;
	va_list ap;
	va_start(ap, fmt);
	char *text = bv_xvasprintf(fmt, ap);
	va_end(ap);
	assert_ok(bv_imageref_parse(ref, text, &err), &err);
	free(text);
}

static char *error_text(struct bv_error *err)
{
	char *s = bv_error_format(err);
	bv_error_free(err);
	return s;
}

static bool image_recorded(struct bv_store *s, const char *manifest_digest)
{
	struct bv_store_image *images = NULL;
	size_t n = 0;
	bool found = false;
	assert_int_equal(bv_store_list_images(&images, &n, s, NULL), 0);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(images[i].digest, manifest_digest))
			found = true;
	bv_store_images_free(images, n);
	return found;
}

/* ---- real registry ---------------------------------------------------------------------- */

static void test_registry__resolve_by_tag(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;

	parse_ref(&ref, "127.0.0.1:%d/test/img:1", g.port);
	assert_ok(bv_registry_resolve(&r, c, &ref, "linux/amd64", &err), &err);
	assert_string_equal(r.top_digest, g.manifest.digest);
	assert_string_equal(r.manifest_digest, g.manifest.digest);
	assert_string_equal(r.media_type, BV_MEDIA_OCI_MANIFEST);
	assert_int_equal(r.manifest_size, g.manifest.size);
	assert_string_equal(r.config.digest, g.config.digest);
	assert_int_equal(r.n_layers, 1);
	assert_string_equal(r.layers[0].digest, g.layer.digest);
	assert_string_equal(r.layers[0].media_type, MEDIA_OCI_LAYER);
	assert_int_equal(r.total_size, g.layer.size + g.config.size);
	/* the manifest is in the store now */
	assert_true(bv_store_has_blob(f->store, g.manifest.digest));

	char *d = NULL;
	assert_ok(bv_registry_head_digest(&d, c, &ref, &err), &err);
	assert_string_equal(d, g.manifest.digest);
	free(d);
	bv_resolved_release(&r);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

static void test_registry__resolve_by_digest(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;
	struct bv_registry_stats st;

	parse_ref(&ref, "127.0.0.1:%d/test/img@%s", g.port, g.manifest.digest);
	assert_ok(bv_registry_resolve(&r, c, &ref, NULL, &err), &err);
	assert_string_equal(r.top_digest, g.manifest.digest);
	assert_string_equal(r.layers[0].digest, g.layer.digest);
	bv_resolved_release(&r);

	/* again: the pinned manifest now comes from the store, without a request */
	bv_registry_client_stats(&st, c);
	uint64_t before = st.requests;
	assert_ok(bv_registry_resolve(&r, c, &ref, NULL, &err), &err);
	bv_registry_client_stats(&st, c);
	assert_int_equal(st.requests, before);
	assert_string_equal(r.config.digest, g.config.digest);
	bv_resolved_release(&r);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

static void pull_one(struct bv_registry_client *c, const char *text, struct bv_resolved *r)
{
	struct bv_imageref ref;
	struct bv_error *err = NULL;
	parse_ref(&ref, "%s", text);
	assert_ok(bv_registry_resolve(r, c, &ref, "linux/amd64", &err), &err);
	struct bv_pull_request req = {.ref = &ref, .resolved = r};
	assert_ok(bv_registry_pull(c, &req, 1, &err), &err);
	bv_imageref_release(&ref);
}

struct progress_log {
	unsigned calls;
	bool finished;
	uint64_t last_done, last_total;
};

static void on_progress(const struct bv_pull_progress *p, void *payload)
{
	struct progress_log *l = payload;
	l->calls++;
	l->last_done = p->bytes_done;
	l->last_total = p->bytes_total;
	l->finished |= p->finished;
	assert_true(p->layers_done <= p->layers_total);
}

static void test_registry__pull_and_pull_again(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_options o = {0};
	struct bv_registry_client *c = NULL;
	struct bv_error *err = NULL;
	struct bv_registry_stats st;
	struct progress_log log = {0};
	struct bv_resolved r;

	o.store = f->store;
	o.progress = on_progress;
	o.progress_payload = &log;
	assert_ok(bv_registry_client_new(&c, &o, &err), &err);
	_cleanup_free_ char *name = bv_xasprintf("127.0.0.1:%d/test/img:1", g.port);
	pull_one(c, name, &r);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_true(bv_store_has_blob(f->store, g.config.digest));
	assert_true(image_recorded(f->store, g.manifest.digest));
	bv_registry_client_stats(&st, c);
	assert_int_equal(st.blobs_fetched, 2);
	assert_int_equal(st.blob_bytes, g.layer.size + g.config.size);
	assert_true(log.finished);
	assert_int_equal(log.last_done, log.last_total);
	assert_int_equal(log.last_total, g.layer.size + g.config.size);
	bv_resolved_release(&r);

	/* the second pull downloads nothing */
	pull_one(c, name, &r);
	bv_registry_client_stats(&st, c);
	assert_int_equal(st.blobs_fetched, 2);
	assert_int_equal(st.blob_bytes, g.layer.size + g.config.size);
	bv_resolved_release(&r);
	bv_registry_client_free(c);
}

static void test_registry__docker_v2s2(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_resolved r;
	_cleanup_free_ char *name = bv_xasprintf("127.0.0.1:%d/test/img:v2s2", g.port);

	pull_one(c, name, &r);
	assert_string_equal(r.media_type, BV_MEDIA_DOCKER_V2);
	assert_string_equal(r.layers[0].media_type,
			    "application/vnd.docker.image.rootfs.diff.tar.gzip");
	assert_true(bv_store_has_blob(f->store, r.layers[0].digest));
	assert_true(bv_store_has_blob(f->store, r.config.digest));
	/* the registry's manifest stays, and the image is recorded under an OCI view of it */
	assert_true(bv_store_has_blob(f->store, r.manifest_digest));
	assert_false(image_recorded(f->store, r.manifest_digest));
	{
		struct bv_store_image *images = NULL;
		struct bv_buf text = BV_BUF_INIT;
		size_t n = 0;
		assert_int_equal(bv_store_list_images(&images, &n, f->store, NULL), 0);
		assert_int_equal(n, 1);
		assert_string_equal(images[0].media_type, BV_MEDIA_OCI_MANIFEST);
		assert_int_equal(
			bv_store_read_blob(&text, f->store, images[0].digest, 1 << 20, NULL), 0);
		assert_non_null(strstr(text.buf, r.layers[0].digest));
		assert_non_null(strstr(text.buf, "application/vnd.oci.image.layer.v1.tar+gzip"));
		assert_non_null(strstr(text.buf, "application/vnd.oci.image.config.v1+json"));
		assert_null(strstr(text.buf, "vnd.docker"));
		bv_buf_release(&text);
		bv_store_images_free(images, n);
	}
	bv_resolved_release(&r);
	bv_registry_client_free(c);
}

static void test_registry__index_picks_platform(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;

	parse_ref(&ref, "127.0.0.1:%d/test/multi:1", g.port);
	assert_ok(bv_registry_resolve(&r, c, &ref, "linux/arm64", &err), &err);
	assert_string_equal(r.top_digest, g.index.digest);
	assert_string_equal(r.top_media_type, BV_MEDIA_OCI_INDEX);
	assert_string_equal(r.manifest_digest, g.arm_manifest.digest);
	assert_string_equal(r.layers[0].digest, g.arm_layer.digest);
	assert_string_equal(r.platform, "linux/arm64/v8");
	bv_resolved_release(&r);

	assert_ok(bv_registry_resolve(&r, c, &ref, "linux/amd64", &err), &err);
	assert_string_equal(r.top_digest, g.index.digest);
	assert_string_equal(r.manifest_digest, g.manifest.digest);
	assert_string_equal(r.layers[0].digest, g.layer.digest);
	assert_true(bv_store_has_blob(f->store, g.index.digest));
	assert_true(bv_store_has_blob(f->store, g.manifest.digest));
	struct bv_pull_request req = {.ref = &ref, .resolved = &r};
	assert_ok(bv_registry_pull(c, &req, 1, &err), &err);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_false(bv_store_has_blob(f->store, g.arm_layer.digest));
	bv_resolved_release(&r);

	assert_int_equal(bv_registry_resolve(&r, c, &ref, "linux/s390x", &err), BV_ENOTFOUND);
	char *msg = error_text(err);
	assert_non_null(strstr(msg, "no image for platform 'linux/s390x'"));
	/* the attestation is not a platform the image has */
	assert_non_null(strstr(msg, "(it has linux/arm64/v8, linux/amd64)"));
	assert_null(strstr(msg, "unknown"));
	free(msg);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

/* BuildKit's index: an attestation manifest first, then the images; variants normalised. */
static void test_registry__index_skips_attestations(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;
	static const char *const arm64[] = {"linux/arm64", "linux/arm64/v8", "linux/aarch64"};

	parse_ref(&ref, "127.0.0.1:%d/test/multi:1", g.port);
	for (size_t i = 0; i < sizeof(arm64) / sizeof(*arm64); i++) {
		assert_ok(bv_registry_resolve(&r, c, &ref, arm64[i], &err), &err);
		assert_string_equal(r.manifest_digest, g.arm_manifest.digest);
		bv_resolved_release(&r);
	}
	assert_ok(bv_registry_resolve(&r, c, &ref, "linux/x86_64", &err), &err);
	assert_string_equal(r.manifest_digest, g.manifest.digest);
	assert_string_equal(r.platform, "linux/amd64");
	bv_resolved_release(&r);
	/* asking for the attestation's own platform still finds no image */
	assert_int_equal(bv_registry_resolve(&r, c, &ref, "unknown/unknown", &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	/* arm64/v8 is not arm/v7, nor is an arm64 image another arm64 variant */
	assert_int_equal(bv_registry_resolve(&r, c, &ref, "linux/arm/v7", &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_registry_resolve(&r, c, &ref, "linux/arm64/v9", &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	/* the host's platform, whatever it is here, resolves and is never the attestation */
	assert_ok(bv_registry_resolve(&r, c, &ref, NULL, &err), &err);
	assert_string_not_equal(r.manifest_digest, g.att_manifest.digest);
	assert_true(bv_platform_matches(bv_registry_default_platform(), r.platform));
	bv_resolved_release(&r);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

static void test_registry__platform_rules(void **state)
{
	struct bv_error *err = NULL;
	char *p = NULL;
	static const struct {
		const char *in, *out;
	} norm[] = {
		{"linux/amd64", "linux/amd64"},       {"linux/x86_64", "linux/amd64"},
		{"linux/arm64", "linux/arm64/v8"},    {"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm", "linux/arm/v7"},        {"linux/arm/v6", "linux/arm/v6"},
		{"linux/arm64/v8", "linux/arm64/v8"}, {"windows/amd64", "windows/amd64"},
	};
	static const char *const bad[] = {"",          "linux",      "linux/",  "/amd64",
					  "linux//v7", "linux/arm/", "a/b/c/d", "linux/amd64/v2/x"};
	(void)state;
	for (size_t i = 0; i < sizeof(norm) / sizeof(*norm); i++) {
		assert_ok(bv_platform_normalize(&p, norm[i].in, &err), &err);
		assert_string_equal(p, norm[i].out);
		free(p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		p = NULL;
		assert_int_equal(bv_platform_normalize(&p, bad[i], &err), BV_EINVALID);
		assert_null(p);
		char *msg = error_text(err);
		assert_non_null(strstr(msg, "invalid platform"));
		free(msg);
		err = NULL;
	}
	assert_true(bv_platform_matches("linux/arm64", "linux/arm64/v8"));
	assert_true(bv_platform_matches("linux/arm64/v8", "linux/arm64"));
	assert_true(bv_platform_matches("linux/arm/v7", "linux/arm"));
	assert_false(bv_platform_matches("linux/arm/v7", "linux/arm/v6"));
	assert_false(bv_platform_matches("linux/arm/v6", "linux/arm/v7"));
	assert_false(bv_platform_matches("linux/arm64", "linux/arm/v8"));
	assert_false(bv_platform_matches("linux/amd64", "linux/arm64"));
	assert_false(bv_platform_matches("linux/amd64", "windows/amd64"));
	assert_true(bv_platform_matches("linux/amd64", "linux/amd64/v2"));
	assert_false(bv_platform_matches("linux/amd64", "unknown/unknown"));
	assert_false(bv_platform_matches("linux", "linux/amd64"));
}

static void test_registry__several_images_share_blobs(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref refs[2];
	struct bv_resolved r[2];
	struct bv_error *err = NULL;
	struct bv_registry_stats st;

	parse_ref(&refs[0], "127.0.0.1:%d/test/img:1", g.port);
	parse_ref(&refs[1], "127.0.0.1:%d/test/multi:1", g.port);
	assert_ok(bv_registry_resolve(&r[0], c, &refs[0], "linux/amd64", &err), &err);
	assert_ok(bv_registry_resolve(&r[1], c, &refs[1], "linux/amd64", &err), &err);
	struct bv_pull_request reqs[2] = {{&refs[0], &r[0]}, {&refs[1], &r[1]}};
	assert_ok(bv_registry_pull(c, reqs, 2, &err), &err);
	bv_registry_client_stats(&st, c);
	assert_int_equal(st.blobs_fetched, 2); /* same config and layer: downloaded once */
	assert_true(image_recorded(f->store, g.manifest.digest));
	for (int i = 0; i < 2; i++) {
		bv_resolved_release(&r[i]);
		bv_imageref_release(&refs[i]);
	}
	bv_registry_client_free(c);
}

static void test_registry__missing_image(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;

	parse_ref(&ref, "127.0.0.1:%d/test/nothing:1", g.port);
	assert_int_equal(bv_registry_resolve(&r, c, &ref, NULL, &err), BV_ENOTFOUND);
	char *msg = error_text(err);
	assert_non_null(strstr(msg, "test/nothing:1"));
	assert_non_null(strstr(msg, "not found"));
	free(msg);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

static void test_registry__basic_auth(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c = client(f, 0);
	struct bv_imageref ref;
	struct bv_resolved r;
	struct bv_error *err = NULL;
	_cleanup_free_ char *cfg = bv_xasprintf("%s/docker/config.json", g.dir);

	/* no credentials: a clear error */
	write_file(cfg, "{}", 2);
	parse_ref(&ref, "127.0.0.1:%d/test/private:1", g.auth_port);
	assert_true(bv_registry_resolve(&r, c, &ref, NULL, &err) < 0);
	char *msg = error_text(err);
	err = NULL;
	assert_non_null(strstr(msg, "requires authentication"));
	free(msg);
	bv_registry_client_free(c);

	/* "testuser:testpass" */
	char *json = bv_xasprintf("{\"auths\":{\"127.0.0.1:%d\":{\"auth\":"
				  "\"dGVzdHVzZXI6dGVzdHBhc3M=\"}}}",
				  g.auth_port);
	write_file(cfg, json, strlen(json));
	free(json);
	c = client(f, 0);
	assert_ok(bv_registry_resolve(&r, c, &ref, NULL, &err), &err);
	assert_string_equal(r.manifest_digest, g.manifest.digest);
	struct bv_pull_request req = {.ref = &ref, .resolved = &r};
	assert_ok(bv_registry_pull(c, &req, 1, &err), &err);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	bv_resolved_release(&r);
	bv_registry_client_free(c);

	/* wrong password: rejected, and the message holds no secret */
	json = bv_xasprintf("{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"dGVzdHVzZXI6d3Jvbmc=\"}}}",
			    g.auth_port); /* testuser:wrong */
	write_file(cfg, json, strlen(json));
	free(json);
	c = client(f, 0);
	assert_true(bv_registry_resolve(&r, c, &ref, NULL, &err) < 0);
	msg = error_text(err);
	assert_non_null(strstr(msg, "rejected"));
	assert_null(strstr(msg, "wrong"));
	assert_null(strstr(msg, "dGVzdHVzZXI6"));
	free(msg);
	write_file(cfg, "{}", 2);
	bv_imageref_release(&ref);
	bv_registry_client_free(c);
}

/* ---- fake registry ---------------------------------------------------------------------- */

/* Starts the fake with `plan_extra` (JSON members after the fixed ones) and returns its port. */
__attribute__((format(printf, 2, 3))) static void start_fake(struct fixture *f,
							     const char *plan_extra, ...)
{
	struct bv_error *err = NULL;
	va_list ap;
	va_start(ap, plan_extra);
	_cleanup_free_ char *extra = bv_xvasprintf(plan_extra, ap);
	va_end(ap);
	_cleanup_free_ char *port_file = bv_xasprintf("%s/fake.port", f->dir);
	_cleanup_free_ char *plan_file = bv_xasprintf("%s/plan.json", f->dir);
	_cleanup_free_ char *errlog = bv_xasprintf("%s/fake.stderr", f->dir);
	f->fake_log = bv_xasprintf("%s/fake.log", f->dir);
	char *plan = bv_xasprintf("{\"port_file\":\"%s\",\"log\":\"%s\",\"blob_dir\":"
				  "\"%s/oci/blobs/sha256\",\"manifests\":{\"test/img:1\":{\"file\":"
				  "\"%s\",\"media_type\":\"%s\"}}%s%s}",
				  port_file, f->fake_log, g.dir, g.manifest_file,
				  BV_MEDIA_OCI_MANIFEST, *extra ? "," : "", extra);
	write_file(plan_file, plan, strlen(plan));
	free(plan);

	bv_strv_push(&f->fake.args, "python3");
	bv_strv_push(&f->fake.args, g.fixture);
	bv_strv_push(&f->fake.args, plan_file);
	f->fake.no_stdin = true;
	_cleanup_close_ int logfd = open_log(errlog);
	f->fake.out = f->fake.err = logfd;
	assert_ok(bv_proc_start(&f->fake, &err), &err);
	for (int i = 0; i < 500 && !bv_path_exists(port_file); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	char *text = read_text(port_file);
	text[strcspn(text, "\n")] = '\0';
	assert_int_equal(bv_parse_int(&f->fake_port, text), 0);
	free(text);
	assert_true(f->fake_port > 0);
}

static int count_lines(const char *path, const char *needle)
{
	char *text = read_text(path);
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Resolves and pulls test/img:1 from the fake; returns the pull's result, error in *msg. */
static int fake_pull(struct fixture *f, struct bv_registry_client *c, char **msg)
{
	struct bv_imageref ref;
	struct bv_resolved r = {0};
	struct bv_error *err = NULL;
	int ret;

	parse_ref(&ref, "127.0.0.1:%d/test/img:1", f->fake_port);
	ret = bv_registry_resolve(&r, c, &ref, NULL, &err);
	if (ret == 0) {
		struct bv_pull_request req = {.ref = &ref, .resolved = &r};
		ret = bv_registry_pull(c, &req, 1, &err);
	}
	*msg = ret < 0 ? error_text(err) : NULL;
	bv_resolved_release(&r);
	bv_imageref_release(&ref);
	return ret;
}

static void assert_pull_ok(struct fixture *f, struct bv_registry_client *c)
{
	char *msg = NULL;
	if (fake_pull(f, c, &msg) < 0) {
		print_error("pull failed: %s\n", msg);
		free(msg);
		fail();
	}
}

static void test_registry__wrong_digest(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	char *msg;

	start_fake(f, "\"faults\":[{\"match\":\"%s\",\"times\":-1,\"action\":\"corrupt\"}]",
		   g.layer.digest);
	c = client(f, 0);
	assert_true(fake_pull(f, c, &msg) < 0);
	assert_non_null(strstr(msg, "could not pull 127.0.0.1:"));
	assert_non_null(strstr(msg, "layer sha256:"));
	assert_non_null(strstr(msg, "digest mismatch"));
	free(msg);
	assert_false(bv_store_has_blob(f->store, g.layer.digest));
	assert_false(image_recorded(f->store, g.manifest.digest));
	bv_registry_client_free(c);
}

static void test_registry__truncated_blob_resumes(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;

	start_fake(f,
		   "\"faults\":[{\"match\":\"%s\",\"times\":1,\"action\":\"truncate\","
		   "\"after\":40000}]",
		   g.layer.digest);
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_true(image_recorded(f->store, g.manifest.digest));
	/* the second request continued where the first stopped */
	assert_int_equal(count_lines(f->fake_log, "range=bytes=40000-"), 1);
	bv_registry_client_free(c);
}

static void test_registry__reset_mid_blob_resumes(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;

	start_fake(f,
		   "\"faults\":[{\"match\":\"%s\",\"times\":1,\"action\":\"reset\","
		   "\"after\":30000}]",
		   g.layer.digest);
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_int_equal(count_lines(f->fake_log, "/blobs/sha256"), 3); /* config + 2 layer */
	bv_registry_client_free(c);
}

static void test_registry__range_ignored(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;

	start_fake(f,
		   "\"ignore_range\":true,\"faults\":[{\"match\":\"%s\",\"times\":1,"
		   "\"action\":\"truncate\",\"after\":20000}]",
		   g.layer.digest);
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_int_equal(count_lines(f->fake_log, "range=bytes=20000-"), 1);
	bv_registry_client_free(c);
}

static void test_registry__500_then_success(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;

	start_fake(f, "\"faults\":[{\"match\":\"/blobs/\",\"times\":2,\"action\":\"status\","
		      "\"status\":500},{\"match\":\"/manifests/\",\"times\":1,\"action\":"
		      "\"status\",\"status\":503}]");
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_true(bv_store_has_blob(f->store, g.config.digest));
	bv_registry_client_free(c);
}

static void test_registry__persistent_500(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	char *msg = NULL;

	start_fake(f,
		   "\"faults\":[{\"match\":\"%s\",\"times\":-1,\"action\":\"status\","
		   "\"status\":500}]",
		   g.layer.digest);
	c = client(f, 0);
	assert_true(fake_pull(f, c, &msg) < 0);
	_cleanup_free_ char *expect =
		bv_xasprintf("could not pull 127.0.0.1:%d/test/img:1: layer %.19s: registry "
			     "returned 500 after 4 attempts",
			     f->fake_port, g.layer.digest);
	assert_string_equal(msg, expect);
	free(msg);
	assert_int_equal(count_lines(f->fake_log, g.layer.digest), 4);
	assert_false(image_recorded(f->store, g.manifest.digest));
	bv_registry_client_free(c);
}

static void test_registry__persistent_reset(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	char *msg = NULL;

	start_fake(f,
		   "\"faults\":[{\"match\":\"%s\",\"times\":-1,\"action\":\"reset\","
		   "\"after\":0}]",
		   g.config.digest);
	c = client(f, 2);
	assert_true(fake_pull(f, c, &msg) < 0);
	_cleanup_free_ char *expect = bv_xasprintf(
		"could not pull 127.0.0.1:%d/test/img:1: config %.19s: connection reset after 3 "
		"attempts",
		f->fake_port, g.config.digest);
	assert_string_equal(msg, expect);
	free(msg);
	bv_registry_client_free(c);
}

static void test_registry__slow_blob_retried(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_options o = {0};
	struct bv_registry_client *c = NULL;
	struct bv_error *err = NULL;
	uint64_t t0 = bv_time_monotonic_ns();

	/* 1 KiB every 0.3 s is below 50 KB/s: abandoned after 1 s, then resumed at full speed */
	start_fake(f,
		   "\"faults\":[{\"match\":\"%s\",\"times\":1,\"action\":\"slow\","
		   "\"delay\":0.3}]",
		   g.layer.digest);
	o.store = f->store;
	o.backoff_ms = 10;
	o.low_speed_limit = 50000;
	o.low_speed_time_s = 1;
	assert_ok(bv_registry_client_new(&c, &o, &err), &err);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	assert_int_equal(count_lines(f->fake_log, g.layer.digest), 2);
	assert_true(bv_time_monotonic_ns() - t0 < 4000000000ull);
	bv_registry_client_free(c);
}

static void test_registry__oversized_manifest(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	char *msg = NULL;
	_cleanup_free_ char *big = bv_xasprintf("%s/big.json", f->dir);

	sh("{ printf '{\"pad\":\"'; head -c 4200000 /dev/zero | tr '\\0' a; printf '\"}'; } > '%s'",
	   big);
	start_fake(f, "\"manifests\":{\"test/img:1\":{\"file\":\"%s\",\"media_type\":\"%s\"}}", big,
		   BV_MEDIA_OCI_MANIFEST);
	c = client(f, 0);
	assert_true(fake_pull(f, c, &msg) < 0);
	assert_non_null(strstr(msg, "test/img:1' is larger than 4 MiB"));
	free(msg);
	bv_registry_client_free(c);
}

static void test_registry__bearer_token_reused(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	struct bv_registry_stats st;

	start_fake(f, "\"bearer\":{\"token\":\"s3cr3t-t0ken\",\"expires_in\":300}");
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	/* one token for the manifest requests and both blobs */
	assert_int_equal(count_lines(f->fake_log, "GET /token"), 1);
	assert_int_equal(count_lines(f->fake_log, "/blobs/sha256"), 2);
	assert_int_equal(count_lines(f->fake_log, "auth=Bearer"), 4); /* HEAD, GET, 2 blobs */
	bv_registry_client_stats(&st, c);
	assert_int_equal(st.token_requests, 1);
	bv_registry_client_free(c);
}

static void test_registry__redirect_drops_authorization(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;

	start_fake(f, "\"bearer\":{\"token\":\"s3cr3t-t0ken\"},\"faults\":[{\"match\":"
		      "\"/blobs/\",\"times\":-1,\"action\":\"redirect\"}]");
	c = client(f, 0);
	assert_pull_ok(f, c);
	assert_true(bv_store_has_blob(f->store, g.layer.digest));
	/* both blobs came from the other host, and the token stayed behind */
	assert_int_equal(count_lines(f->fake_log, "GET /external/"), 2);
	/* first HEAD, the anonymous token request and the 2 external GETs */
	assert_int_equal(count_lines(f->fake_log, "auth=none"), 4);
	/* retried HEAD, manifest GET and the 2 blob requests to the registry itself */
	assert_int_equal(count_lines(f->fake_log, "auth=Bearer"), 4);
	bv_registry_client_free(c);
}

static void test_registry__manifest_digest_mismatch(void **state)
{
	struct fixture *f = *state;
	struct bv_registry_client *c;
	char *msg = NULL;

	start_fake(f, "\"faults\":[{\"match\":\"/manifests/sha256\",\"times\":-1,\"action\":"
		      "\"corrupt\"}]");
	c = client(f, 0);
	assert_int_equal(fake_pull(f, c, &msg), BV_EINVALID);
	assert_non_null(strstr(msg, "does not match its digest"));
	free(msg);
	assert_false(bv_store_has_blob(f->store, g.manifest.digest));
	bv_registry_client_free(c);
}

static void test_registry__missing_libcurl(void **state)
{
	(void)state;
	struct bv_curl t;
	struct bv_error *err = NULL;
	assert_int_equal(bv_curl_load(&t, "libcurl-does-not-exist.so.4", &err), BV_ERR);
	char *msg = error_text(err);
	assert_true(
		bv_str_has_prefix(msg, "could not load libcurl (libcurl-does-not-exist.so.4): "));
	assert_non_null(strstr(msg, "; install libcurl4"));
	free(msg);
}

/* The parsers behind resolve, without a network: documents and token responses. */
static void test_registry__parse_offline(void **state)
{
	static const char index[] =
		"{\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":1,"
		"\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"},\"annotations\":{"
		"\"vnd.docker.reference.type\":\"attestation-manifest\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		"2222222222222222222222222222222222222222222222222222222222222222\",\"size\":2,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}";
	static const char manifest[] =
		"{\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
		"\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
		"\"size\":3},\"layers\":[{\"mediaType\":"
		"\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:"
		"4444444444444444444444444444444444444444444444444444444444444444\",\"size\":4}]}";
	struct bv_resolved r = {0};
	struct bv_error *err = NULL;
	char *token = NULL;
	int64_t expires = 0;
	(void)state;

	assert_ok(bv_registry_parse_document(&r, index, strlen(index), "linux/arm64/v8", &err),
		  &err);
	assert_string_equal(r.manifest_digest,
			    "sha256:"
			    "2222222222222222222222222222222222222222222222222222222222222222");
	bv_resolved_release(&r);
	assert_int_equal(bv_registry_parse_document(&r, index, strlen(index), "linux/amd64", &err),
			 BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_ok(bv_registry_parse_document(&r, manifest, strlen(manifest), NULL, &err), &err);
	assert_int_equal(r.n_layers, 1);
	assert_int_equal(r.total_size, 7);
	bv_resolved_release(&r);
	assert_int_equal(bv_registry_parse_document(&r, "[]", 2, NULL, &err), BV_EINVALID);
	bv_error_free(err);

	assert_int_equal(bv_registry_parse_token(&token, &expires,
						 "{\"token\":\"t1\",\"expires_in\":60}", 30),
			 0);
	assert_string_equal(token, "t1");
	assert_int_equal(expires, 60);
	free(token);
	assert_int_equal(bv_registry_parse_token(&token, &expires, "{\"access_token\":\"t2\"}", 21),
			 0);
	assert_string_equal(token, "t2");
	free(token);
	assert_int_equal(
		bv_registry_parse_token(&token, &expires, "{\"token\":\"a\\r\\nX: y\"}", 21),
		BV_EINVALID);
	assert_null(token);
	assert_int_equal(bv_registry_parse_token(&token, &expires, "{}", 2), BV_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registry__resolve_by_tag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__resolve_by_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__pull_and_pull_again, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__docker_v2s2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__index_picks_platform, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__index_skips_attestations, setup,
						teardown),
		cmocka_unit_test(test_registry__platform_rules),
		cmocka_unit_test_setup_teardown(test_registry__several_images_share_blobs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__missing_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__basic_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__wrong_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__truncated_blob_resumes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__reset_mid_blob_resumes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__range_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__500_then_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__persistent_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__persistent_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__slow_blob_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__oversized_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry__bearer_token_reused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__redirect_drops_authorization, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_registry__manifest_digest_mismatch, setup,
						teardown),
		cmocka_unit_test(test_registry__missing_libcurl),
		cmocka_unit_test(test_registry__parse_offline),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
