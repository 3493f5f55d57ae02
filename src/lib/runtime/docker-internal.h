/*
 * docker-internal.h - the docker backend's warm runs (the internal half of bv/docker.h),
 * behind the runtime's optional `warm` operation.
 *
 * Calling sequence (the backend's warm op; the CLI calls rt->ops->warm):
 *   json_t *image = <the engine's image inspect, checked against the locked digest>;
 *   struct bv_run_result res = {0};
 *   if (bv_docker_warm(&res, engine, &req, image, &err) < 0) ...
 *   exit(res.status);
 *
 * A warm run is one long-lived session per tool image per project, created on first use with
 * the request's mounts, then only exec'd into.  Its session name is "warm-<12 hex of its
 * configuration>": the hash of the image digest, the user, the GPU request and the mounts
 * (also in label bv.warm-config; bv.warm holds the digest).  So a run goes to its container
 * by name straight away: exec create, exec start attached (stdio attached before the
 * command starts), exec inspect for the status, over the engine connection `e` keeps (the
 * start hijacks a second one, which the engine ends with the stream).  Only when the engine
 * has no such container is the full path taken: inspect it by name, check its labels,
 * remove the project's warm containers of this image made for another configuration (one
 * per image per project), create and start it, then exec.  Two bv processes making it at
 * once both end up in the one container.  The image's Entrypoint is put in front of argv and
 * its Cmd used for an empty argv, as for every backend; the environment is the image's plus
 * req->env; the working directory is req->workdir, else /workspace.  With BV_STDIO_INHERIT,
 * stdin is forwarded when it is a pipe, socket or file (not a terminal, not /dev/null), and
 * signals are forwarded.  Warm sessions appear in `bv session ls` and are removed with
 * `bv session rm warm-<12 hex>`.
 *
 * Ownership: `e`, the request and `image` are borrowed.  out->out and out->err
 * (BV_STDIO_CAPTURE) are the caller's, released with bv_run_result_release().
 *
 * Errors: 0 or a negative code with *err set; BV_EINVALID without a project or an image.  A
 * command that runs and fails is not an error: its status is in out->status.
 */
#ifndef BV_DOCKER_INTERNAL_H
#define BV_DOCKER_INTERNAL_H

#include <bv/docker.h>
#include <bv/runtime.h>
#include <jansson.h>

struct bv_engine;
struct bv_error;

int bv_docker_warm(struct bv_run_result *out, struct bv_engine *e, const struct bv_run_request *req,
		   json_t *image, struct bv_error **err);

#endif
