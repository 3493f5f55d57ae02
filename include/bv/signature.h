/*
 * bv/signature.h - signed images: checking that the images bv.lock pins carry a cosign-style
 * signature by a trusted key (bv add/lock/sync --require-signed, [registry] require_signed in
 * bv.toml), and signing an image that way (bv push --sign-key).
 *
 * Calling sequence:
 *   struct bv_signature_image im[n] = {{.tool_id = "samtools", .manifest = m,
 *                                       .reference = entry->image_reference,
 *                                       .digest = entry->image_digest}, ...};
 *   if (bv_signature_verify(im, n, &err) < 0) ...    nothing may be recorded or reported
 *
 *   char *sig = NULL;
 *   if (bv_signature_sign(&sig, "127.0.0.1:5000/tools/x@sha256:...", "key.pem", &err) < 0) ...
 *   printf("Signed %s\n", sig);                     "127.0.0.1:5000/tools/x:sha256-<hex>.sig"
 *   free(sig);
 *
 * What is signed: the digest bv.lock pins (image_digest), the one a user references: the
 * index of a multi-platform image (as cosign signs it), or the platform's manifest when the
 * lock was made with --platform.  Platform manifests under a signed index are covered by the
 * index's digest, which names them.
 *
 * Where signatures are (cosign's layout, no cosign binary involved): in the image's
 * repository, tag "sha256-<hex>.sig", an image manifest whose layers have media type
 * application/vnd.dev.cosign.simplesigning.v1+json; each layer is the simple-signing JSON
 * payload naming the signed digest (critical.image.docker-manifest-digest) and carries the
 * annotation dev.cosignproject.cosign/signature, the base64 of an ECDSA P-256 SHA-256 DER
 * signature over the payload's bytes.  They are fetched with bv's registry client (mirrors,
 * credentials, retries; every blob verified against its digest, at most 64 KiB each, 64
 * layers).  An image is accepted when ANY layer's signature verifies with ANY trusted key,
 * its payload is well-formed, of type "cosign container image signature", and names exactly
 * the pinned digest.  critical.identity.docker-reference is not compared (an image copied to
 * another registry or served by a mirror keeps its signature), as cosign verify does by
 * default.
 *
 * Trusted keys (PEM, ECDSA P-256): the tool manifest's [tool.signatures] public_keys, and
 * every *.pub file of $XDG_CONFIG_HOME/bv/keys (~/.config/bv/keys), which apply to every tool.
 * As upstream bv, a tool is only accepted when its manifest declares [tool.signatures]
 * image = "sigstore".
 *
 * Signing reads an unencrypted PEM private key (EC P-256: "BEGIN PRIVATE KEY" or "BEGIN EC
 * PRIVATE KEY"; cosign's own encrypted key format is not read), builds the payload for the
 * reference's digest, signs it and pushes the payload blob, a config and the .sig manifest
 * to the reference's repository.  Signatures already there are kept: the new one is added as
 * one more layer.
 *
 * Ownership: inputs are borrowed; bv_signature_sign()'s *out is a new string.
 *
 * Errors: BV_ENOTFOUND "no signature for <ref>@<digest>" when the .sig tag does not exist;
 * BV_EINVALID when no layer is acceptable, with one message for the most telling failure (a
 * trusted signature over another digest, else signatures no trusted key made or a payload
 * changed after signing, else a malformed signature); also for a tool without signature
 * declarations or without any trusted key; BV_ERR for the network.  Nothing prints.
 */
#ifndef BV_SIGNATURE_H
#define BV_SIGNATURE_H

#include <stddef.h>

struct bv_error;
struct bv_manifest;

struct bv_signature_image {
	const char *tool_id;                /* for messages */
	const struct bv_manifest *manifest; /* its [tool.signatures] */
	const char *reference;              /* the image as bv.lock names it (a tag is ignored) */
	const char *digest;                 /* what must be signed: bv.lock's image_digest */
};

/* The directory of trusted key files (a new string; NULL when there is no home). */
char *bv_signature_keys_dir(void);

/* Checks every image (in order, stopping at the first that fails). */
int bv_signature_verify(const struct bv_signature_image *images, size_t n, struct bv_error **err);

/*
 * Signs `image` (a reference with a digest) with the private key in the file `key_path` and
 * pushes the signature; *out gets the .sig reference.
 */
int bv_signature_sign(char **out, const char *image, const char *key_path, struct bv_error **err);

/*
 * Whether `key_path` holds a private key bv_signature_sign() can use (before a push); when
 * `public_pem` is not NULL it gets the key's public half as PEM (a new string), what a
 * manifest's [tool.signatures] public_keys lists.
 */
int bv_signature_check_key(const char *key_path, char **public_pem, struct bv_error **err);

#endif
