/*
 * bv push <source> <dest-ref>: sends an image from an OCI layout, bv's store or another
 * registry to a registry (bv_push()), and prints what the destination now holds.
 */
#include <bv/error.h>
#include <bv/push.h>
#include <bv/signature.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#include "util/banned.h"

static unsigned arg_jobs;
static const char *arg_sign_key;

static int run_push(int argc, char **argv)
{
	struct bv_push_options o = {.jobs = arg_jobs};
	struct bv_push_result res = {0};
	struct bv_error *err = NULL;
	int first = 0;
	int status = bv_cli_begin(&bv_cmd_push, argc, argv, 2, 2, &first);

	if (status >= 0)
		return status;
	/* a key that cannot sign is found before anything is pushed */
	if (arg_sign_key && bv_signature_check_key(arg_sign_key, NULL, &err) < 0)
		return bv_cli_report(err);
	if (bv_push(&res, argv[first], argv[first + 1], &o, &err) < 0)
		return bv_cli_report(err);
	bv_cli_status("%zu blob%s uploaded (%llu bytes), %zu already there, %zu mounted; %zu "
		      "manifest%s\n",
		      res.blobs_uploaded, res.blobs_uploaded == 1 ? "" : "s",
		      (unsigned long long)res.bytes_uploaded, res.blobs_present, res.blobs_mounted,
		      res.manifests, res.manifests == 1 ? "" : "s");
	printf("Pushed %s\n", bv_cli_text(res.reference));
	if (arg_sign_key) {
		char *sig = NULL;
		if (bv_signature_sign(&sig, res.reference, arg_sign_key, &err) < 0) {
			bv_push_result_release(&res);
			return bv_cli_report(err);
		}
		printf("Signed %s\n", bv_cli_text(sig));
		free(sig);
	}
	bv_push_result_release(&res);
	return BV_EXIT_OK;
}

static const struct bv_cli_option push_options[] = {
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "upload at most N blobs at a time"},
	{"sign-key", 0, BV_OPT_STRING, &arg_sign_key, "FILE",
	 "then sign the pushed digest with this PEM EC P-256 private key (cosign's layout)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_push = {
	.name = "push",
	.usage = "[--sign-key <FILE>] <source> <dest-ref>",
	.summary = "push an image to an OCI registry",
	.description =
		"Pushes an image to the registry <dest-ref> names, keeping its digests.\n<source> is oci:DIR[:TAG] (an OCI image layout, as skopeo writes it),\nstore:NAME (an image of bv's cache, see bv cache list), or an image reference\n(docker://host/repo:tag; copied with every platform, by digest).\nBlobs the registry has are skipped, blobs of the same registry are mounted,\nlarge ones go up in chunks (BV_PUSH_CHUNK_SIZE bytes, default 64 MiB).\nWithout a tag in <dest-ref> the image is pushed by digest only.\nCredentials come from DOCKER_CONFIG as for pulls; mirrors are never pushed to.\n\nWith --sign-key the digest pushed is signed as cosign stores signatures (tag\nsha256-<hex>.sig in the same repository, a simple-signing payload and an ECDSA\nP-256 signature), which bv add/lock/sync --require-signed check.",
	.options = push_options,
	.run = run_push,
};
