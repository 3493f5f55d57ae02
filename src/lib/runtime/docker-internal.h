/*
 * docker-internal.h - the docker backend's warm runs (the internal half of bv/docker.h),
 * behind the runtime's optional `warm` operation.
 *
 * Calling sequence (the backend's warm op; the CLI calls rt->ops->warm):
 *   struct bv_run_result res = {0};
 *   if (bv_docker_warm(&res, engine, &req, &err) < 0) ...
 *   exit(res.status);
 *
 * A warm run is one long-lived session per tool image per project, named as the session
 * "warm-<12 hex of the image digest>" and labelled bv.warm=<digest>, created on first use
 * with the request's mounts, then only exec'd into.  It is recreated when the mounts, GPU
 * request or user differ from those it was created with (label bv.warm-config).  The
 * image's Entrypoint is put in front of argv and its Cmd used for an empty argv, as for
 * every backend; the environment is the image's plus req->env; the working directory is
 * req->workdir, else /workspace.  With BV_STDIO_INHERIT, stdin is forwarded when it is a
 * pipe, socket or file (not a terminal, not /dev/null), and signals are forwarded.  Warm
 * sessions appear in `bv session ls` and are removed with `bv session rm warm-<digest12>`.
 *
 * Ownership: `e` and the request are borrowed; `e` NULL opens the engine at DOCKER_HOST for
 * the call.  out->out and out->err (BV_STDIO_CAPTURE) are the caller's, released with
 * bv_run_result_release().
 *
 * Errors: 0 or a negative code with *err set; BV_EINVALID without a project or an image.  A
 * command that runs and fails is not an error: its status is in out->status.
 */
#ifndef BV_DOCKER_INTERNAL_H
#define BV_DOCKER_INTERNAL_H

#include <bv/docker.h>
#include <bv/runtime.h>

struct bv_engine;
struct bv_error;

int bv_docker_warm(struct bv_run_result *out, struct bv_engine *e, const struct bv_run_request *req,
		   struct bv_error **err);

#endif
