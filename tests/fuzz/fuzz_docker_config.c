/*
 * libFuzzer target for Docker credentials: bv_credentials_lookup() reading config.json.
 *
 * The input is split at its first NUL byte: before it $DOCKER_CONFIG/config.json, after it
 * what the credential helper `docker-credential-fuzz` prints (its first byte, when '1', makes
 * it exit 1).  PATH holds only that helper, so every other helper fails at once.  Each input
 * is looked up for a few registries.  Checked:
 *   - the result is 0 with a username and a secret, or BV_ENOTFOUND / BV_EINVALID / BV_ERR
 *     (a helper that cannot run or fails) with a message, and *out is untouched on failure;
 *   - no secret is ever in an error message: when a message contains the password of an
 *     "auth" field (base64 "user:password") or the helper's "Secret", the lookup is repeated
 *     with that secret replaced, and the message must not change with it (a message that
 *     contains the text for another reason, "config" of config.json say, keeps it).
 * A violation aborts, which libFuzzer reports as a finding.
 */
#include <bv/error.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/registry/auth-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir, *config_path, *helper_out, *helper_status;

static const char *const registries[] = {"quay.io", "docker.io", "127.0.0.1:5000", "ghcr.io"};

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_docker_config: %s: %s\n", what, detail ? detail : "(null)");
	abort();
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || bv_write_all(fd, data, len) < 0 || close(fd) < 0)
		die("cannot write", path);
}

static void cleanup(void)
{
	(void)bv_rm_rf(dir, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* tmpfs when there is one: every lookup rewrites three files */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	char *templ =
		bv_xasprintf("%s/bv-fuzz-docker-config.XXXXXX", base && *base ? base : "/tmp");
	_cleanup_free_ char *bin = NULL, *helper = NULL, *script = NULL;
	(void)argc;
	(void)argv;
	if (!mkdtemp(templ))
		die("cannot create the private directory", templ);
	dir = templ;
	atexit(cleanup);
	config_path = bv_path_join(dir, "config.json");
	helper_out = bv_path_join(dir, "helper-out");
	helper_status = bv_path_join(dir, "helper-status");
	bin = bv_path_join(dir, "bin");
	if (mkdir(bin, 0755) < 0)
		die("cannot create", bin);
	helper = bv_path_join(bin, "docker-credential-fuzz");
	script = bv_xasprintf(
		"#!/bin/sh\n/bin/cat >/dev/null\n/bin/cat '%s'\nexit $(/bin/cat '%s')\n",
		helper_out, helper_status);
	write_file(helper, script, strlen(script), 0755);
	setenv("DOCKER_CONFIG", dir, 1);
	setenv("HOME", dir, 1);
	setenv("PATH", bin, 1);
	return 0;
}

/*
 * Decodes base64 as strictly as auth.c does (length a multiple of 4, at most two '=' at the
 * end, the standard alphabet); NULL when it is not that or decodes to a NUL byte.
 */
static char *unbase64(const char *s, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out;
	size_t n = 0, pad = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (!len || len % 4)
		return NULL;
	while (pad < len && s[len - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		return NULL;
	out = bv_xmalloc(len / 4 * 3 + 4);
	for (size_t i = 0; i < len - pad; i++) {
		const char *p = s[i] ? memchr(alphabet, s[i], 64) : NULL;
		if (!p) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	out[n] = '\0';
	if (strlen(out) != n) {
		free(out);
		return NULL;
	}
	return out;
}

static char *base64(const char *s, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct bv_buf b = BV_BUF_INIT;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)s[i + 2];
		bv_buf_putc(&b, alphabet[v >> 18 & 63]);
		bv_buf_putc(&b, alphabet[v >> 12 & 63]);
		bv_buf_putc(&b, i + 1 < len ? alphabet[v >> 6 & 63] : '=');
		bv_buf_putc(&b, i + 2 < len ? alphabet[v & 63] : '=');
	}
	return bv_buf_detach(&b, NULL);
}

/* Runs one lookup on `config` and `helper`; returns the code, *message the error's text. */
static int lookup(const char *registry, const char *config, size_t config_len, const char *helper,
		  size_t helper_len, char **message)
{
	struct bv_credential cred = {0};
	struct bv_error *err = NULL;
	int r;

	write_file(config_path, config, config_len, 0600);
	write_file(helper_out, helper_len > 1 ? helper + 1 : "",
		   helper_len > 1 ? helper_len - 1 : 0, 0600);
	write_file(helper_status, helper_len && helper[0] == '1' ? "1\n" : "0\n", 2, 0600);
	r = bv_credentials_lookup(&cred, registry, &err);
	*message = NULL;
	if (r == 0) {
		if (err || !cred.username || !cred.secret)
			die("success without a credential", registry);
		{
			char *hdr = bv_basic_auth_header(&cred);
			explicit_bzero(hdr, strlen(hdr));
			free(hdr);
		}
		bv_credential_release(&cred);
		return 0;
	}
	if (r != BV_ENOTFOUND && r != BV_EINVALID && r != BV_ERR)
		die("an unexpected error code", err ? err->message : NULL);
	if (!err || err->code != r || !err->message || !*err->message)
		die("a failure without a message", registry);
	if (cred.username || cred.secret)
		die("a failure wrote its output", err->message);
	*message = bv_xstrdup(err->message);
	bv_error_free(err);
	return r;
}

/* The string value after `"<key>"\s*:\s*"`, as offsets into text; false when none is left. */
static bool next_value(const char *text, size_t len, const char *key, size_t *from, size_t *start,
		       size_t *end)
{
	size_t klen = strlen(key);
	for (size_t i = *from; i + klen + 2 <= len; i++) {
		size_t j;
		if (text[i] != '"' || memcmp(text + i + 1, key, klen) || text[i + 1 + klen] != '"')
			continue;
		j = i + klen + 2;
		while (j < len && isspace((unsigned char)text[j]))
			j++;
		if (j >= len || text[j++] != ':')
			continue;
		while (j < len && isspace((unsigned char)text[j]))
			j++;
		if (j >= len || text[j++] != '"')
			continue;
		*start = j;
		while (j < len && text[j] != '"' && text[j] != '\\')
			j++;
		if (j >= len || text[j] != '"')
			continue; /* escapes: not worth decoding here */
		*end = j;
		*from = j + 1;
		return true;
	}
	return false;
}

/* `text` with [start, end) replaced by `with`. */
static char *replaced(const char *text, size_t len, size_t start, size_t end, const char *with,
		      size_t *out_len)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_add(&b, text, start);
	bv_buf_puts(&b, with);
	bv_buf_add(&b, text + end, len - end);
	return bv_buf_detach(&b, out_len);
}

/* `secret` with every character changed, the same length. */
static char *other_secret(const char *secret)
{
	char *s = bv_xstrdup(secret);
	for (char *p = s; *p; p++)
		*p = *p == 'Z' ? 'Y' : 'Z';
	return s;
}

/* Printable ASCII without quotes or backslashes: changing it keeps the JSON and UTF-8 valid. */
static bool plain(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return false;
	return true;
}

/*
 * A message that contains `secret` must not lose it when the secret changes: the lookup is
 * repeated on `config` and `helper`, where the secret has been replaced.  The same code is
 * required first; a different one would mean the replacement took another path.
 */
static void check_secret(const char *registry, int code, const char *message, const char *secret,
			 const char *config, size_t config_len, const char *helper,
			 size_t helper_len)
{
	_cleanup_free_ char *again = NULL;
	if (lookup(registry, config, config_len, helper, helper_len, &again) != code)
		return;
	if (!again || !strstr(again, secret)) {
		fprintf(stderr, "fuzz_docker_config: message: %s\nsecret: %s\n", message, secret);
		die("an error message quotes a secret", registry);
	}
}

static void check_auth_secrets(const char *registry, int code, const char *message,
			       const char *config, size_t config_len, const char *helper,
			       size_t helper_len)
{
	size_t from = 0, start, end;
	while (next_value(config, config_len, "auth", &from, &start, &end)) {
		_cleanup_free_ char *raw = unbase64(config + start, end - start);
		_cleanup_free_ char *swapped = NULL, *encoded = NULL, *changed = NULL;
		char *colon;
		size_t changed_len;
		if (!raw || !(colon = strchr(raw, ':')))
			continue;
		if (strlen(colon + 1) < 4 || !plain(colon + 1) || !strstr(message, colon + 1))
			continue;
		swapped = other_secret(colon + 1);
		*colon = '\0';
		{
			_cleanup_free_ char *pair = bv_xasprintf("%s:%s", raw, swapped);
			encoded = base64(pair, strlen(pair));
		}
		*colon = ':';
		changed = replaced(config, config_len, start, end, encoded, &changed_len);
		check_secret(registry, code, message, colon + 1, changed, changed_len, helper,
			     helper_len);
	}
}

static void check_helper_secrets(const char *registry, int code, const char *message,
				 const char *config, size_t config_len, const char *helper,
				 size_t helper_len)
{
	size_t from = 0, start, end;
	while (helper_len > 1 &&
	       next_value(helper + 1, helper_len - 1, "Secret", &from, &start, &end)) {
		_cleanup_free_ char *secret = bv_xstrndup(helper + 1 + start, end - start);
		_cleanup_free_ char *swapped = other_secret(secret), *changed = NULL;
		size_t changed_len;
		if (strlen(secret) < 4 || !plain(secret) || !strstr(message, secret))
			continue;
		changed = replaced(helper, helper_len, start + 1, end + 1, swapped, &changed_len);
		check_secret(registry, code, message, secret, config, config_len, changed,
			     changed_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *config = (const char *)data;
	const char *nul = memchr(data, '\0', size);
	size_t config_len = nul ? (size_t)(nul - config) : size;
	const char *helper = nul ? nul + 1 : "";
	size_t helper_len = nul ? size - config_len - 1 : 0;

	for (size_t i = 0; i < sizeof(registries) / sizeof(*registries); i++) {
		_cleanup_free_ char *message = NULL;
		int code = lookup(registries[i], config, config_len, helper, helper_len, &message);
		if (!message)
			continue;
		check_auth_secrets(registries[i], code, message, config, config_len, helper,
				   helper_len);
		check_helper_secrets(registries[i], code, message, config, config_len, helper,
				     helper_len);
	}
	return 0;
}
