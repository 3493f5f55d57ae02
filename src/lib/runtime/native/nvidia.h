/*
 * nvidia.h - the NVIDIA devices and driver libraries of this host, for the native backend.
 *
 * Calling sequence (native/backend.c, for a tool with gpu = true):
 *   _cleanup_strv_ struct bv_strv devices = BV_STRV_INIT, libraries = BV_STRV_INIT;
 *   if (bv_nvidia_files(&devices, &libraries, err) < 0) ...
 *   bind each library in read-only; the devices come with the host's /dev
 *
 * Only the native backend needs this list: Docker's DeviceRequests and Apptainer's --nv find
 * the driver themselves.  The search looks at /dev/nvidia* and at the driver libraries
 * (libcuda, libnvidia-ml, ...) in the usual library directories, like Apptainer's --nv list;
 * BV_NVIDIA_ROOT moves it under another root, so tests run without a GPU.
 *
 * Ownership: both lists are the caller's; new strings are appended, sorted, without
 * duplicates.
 *
 * Errors: none so far (an unreadable directory counts as empty); returns 0.  With no device
 * both lists stay empty, whatever libraries exist.
 *
 * Granted GPUs: the native backend shares the host's /dev, so under a scheduler that granted
 * some GPUs (Slurm's SLURM_STEP_GPUS, else SLURM_JOB_GPUS: "0,2" or "0-1,3", the indices
 * gres.conf gives the /dev/nvidia<N> files) bv_nvidia_hidden() lists the GPU device nodes of
 * `devices` the job was not granted, which the run covers with /dev/null.  The control
 * nodes (nvidiactl, nvidia-uvm, ...) stay.  A grant that is not such a list is BV_EINVALID.
 */
#ifndef BV_LIB_RUNTIME_NATIVE_NVIDIA_H
#define BV_LIB_RUNTIME_NATIVE_NVIDIA_H

struct bv_error;
struct bv_strv;

int bv_nvidia_files(struct bv_strv *devices, struct bv_strv *libraries, struct bv_error **err);

/* Appends to `hidden` the paths of `devices` that `granted` (NULL: no grant) leaves out. */
int bv_nvidia_hidden(struct bv_strv *hidden, const struct bv_strv *devices, const char *granted,
		     struct bv_error **err);

#endif
