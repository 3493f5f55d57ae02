/*
 * publish_pr.c - the pull request of bv publish (bv/publish.h): one POST to GitHub's REST
 * API (/repos/{owner}/{repo}/pulls) for the branch publish pushed to origin.  The token goes
 * in a header only; no message carries it.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/publish.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/registry/curl_loader.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define RESPONSE_MAX (1u << 20)
#define TIMEOUT_S    60L

/* "owner/repo" of a GitHub remote (https://github.com/o/r(.git), git@github.com:o/r.git,
 * ssh://git@github.com/o/r), or NULL. */
static char *github_slug(const char *url)
{
	static const char *const prefixes[] = {"https://github.com/", "http://github.com/",
					       "git@github.com:", "ssh://git@github.com/",
					       "git://github.com/"};
	const char *rest = NULL;
	size_t n, slashes = 0;
	for (size_t i = 0; !rest && i < BV_ARRAY_SIZE(prefixes); i++)
		if (!strncmp(url, prefixes[i], strlen(prefixes[i])))
			rest = url + strlen(prefixes[i]);
	if (!rest)
		return NULL;
	n = strlen(rest);
	while (n && rest[n - 1] == '/')
		n--;
	if (n > 4 && !strncmp(rest + n - 4, ".git", 4))
		n -= 4;
	/* exactly owner/repo, of the characters GitHub allows */
	for (size_t i = 0; i < n; i++)
		slashes += rest[i] == '/';
	if (!n || slashes != 1 || rest[0] == '/' || rest[n - 1] == '/' ||
	    strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./") <
		    n ||
	    strstr(rest, ".."))
		return NULL;
	return bv_xstrndup(rest, n);
}

static size_t collect(char *data, size_t size, size_t n, void *payload)
{
	struct bv_buf *b = payload;
	if (b->len + size * n > RESPONSE_MAX)
		return 0;
	bv_buf_add(b, data, size * n);
	return size * n;
}

int bv_publish_open_pr(char **url_out, const struct bv_publish_repo *r,
		       const struct bv_publish_config *c, const char *token, struct bv_error **err)
{
	const char *remote = bv_publish_repo_remote(r);
	const char *api = getenv("BV_GITHUB_API");
	_cleanup_free_ char *slug = remote ? github_slug(remote) : NULL;
	_cleanup_free_ char *endpoint = NULL, *auth = NULL, *title = NULL, *text = NULL;
	_cleanup_buf_ struct bv_buf resp = BV_BUF_INIT;
	const struct bv_curl *cu;
	struct curl_slist *headers = NULL;
	json_t *body, *answer;
	long status = 0;
	CURLcode rc;
	CURL *h;
	int ret = 0;
	*url_out = NULL;
	if (!bv_publish_repo_pushed(r) || !slug) {
		_cleanup_free_ char *shown = remote ? bv_index_redact_url(remote) : NULL;
		return bv_error_setc(err, BV_EINVALID, 0,
				     "cannot open a pull request: origin%s%s%s is not a GitHub "
				     "repository",
				     shown ? " '" : "", shown ? shown : "", shown ? "'" : "");
	}
	if (!(cu = bv_curl_get(err)))
		return BV_ERR;
	endpoint = bv_xasprintf("%s/repos/%s/pulls", api && *api ? api : "https://api.github.com",
				slug);
	title = bv_xasprintf("Add %s %s", c->name, c->version);
	body = json_pack("{s:s, s:s, s:s, s:s}", "title", title, "head", bv_publish_repo_branch(r),
			 "base", bv_publish_repo_base(r), "body",
			 "Published with bv publish: the manifest pins the image by digest, and "
			 "bv's loader and conformance probe passed before the commit.");
	if (!body)
		bv_oom();
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		bv_oom();
	auth = bv_xasprintf("Authorization: Bearer %s", token);
	headers = cu->slist_append(headers, auth);
	headers = cu->slist_append(headers, "Accept: application/vnd.github+json");
	headers = cu->slist_append(headers, "Content-Type: application/json");
	headers = cu->slist_append(headers, "X-GitHub-Api-Version: 2022-11-28");
	h = cu->easy_init();
	if (!h || !headers)
		bv_oom();
	cu->easy_setopt(h, CURLOPT_URL, endpoint);
	cu->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	cu->easy_setopt(h, CURLOPT_POSTFIELDS, text);
	cu->easy_setopt(h, CURLOPT_USERAGENT, "bv-publish");
	cu->easy_setopt(h, CURLOPT_TIMEOUT, TIMEOUT_S);
	cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	rc = cu->easy_perform(h);
	if (rc == CURLE_OK)
		cu->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	cu->easy_cleanup(h);
	cu->slist_free_all(headers);
	if (rc != CURLE_OK)
		return bv_error_setc(err, BV_ERR, 0, "could not open a pull request on %s: %s",
				     slug, cu->easy_strerror(rc));
	answer = json_loadb(resp.buf ? resp.buf : "", resp.len, 0, NULL);
	if (status != 201 || !json_is_string(json_object_get(answer, "html_url"))) {
		const char *msg = json_string_value(json_object_get(answer, "message"));
		ret = bv_error_setc(err, BV_ERR, 0,
				    "GitHub refused the pull request on %s (HTTP %ld)%s%s", slug,
				    status, msg ? ": " : "", msg ? msg : "");
	} else {
		*url_out = bv_xstrdup(json_string_value(json_object_get(answer, "html_url")));
	}
	json_decref(answer);
	return ret;
}
