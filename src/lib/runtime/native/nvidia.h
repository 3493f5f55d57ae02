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
 */
#ifndef BV_LIB_RUNTIME_NATIVE_NVIDIA_H
#define BV_LIB_RUNTIME_NATIVE_NVIDIA_H

struct bv_error;
struct bv_strv;

int bv_nvidia_files(struct bv_strv *devices, struct bv_strv *libraries, struct bv_error **err);

#endif
