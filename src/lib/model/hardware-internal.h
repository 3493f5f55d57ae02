/*
 * hardware-internal.h - the CPU affinity of this process as a list, for the backends that
 * start a tool outside this process tree (Docker: its daemon forks the container, so the
 * affinity a scheduler set on this process would not reach the tool without CpusetCpus).
 *
 * Internal to the library: only src/lib/ and its tests include it.
 *
 * Calling sequence:
 *   bool restricted;
 *   _cleanup_free_ char *cpus = bv_cpu_affinity_list(&restricted);   "0-3,8" or NULL
 *   if (cpus && restricted) ... HostConfig.CpusetCpus = cpus
 *
 * Ownership: the string is the caller's.  Errors: NULL when the affinity cannot be read
 * (then *restricted is false); never fails otherwise.
 */
#ifndef BV_LIB_MODEL_HARDWARE_INTERNAL_H
#define BV_LIB_MODEL_HARDWARE_INTERNAL_H

#include <stdbool.h>

/* *restricted: fewer CPUs than are online, as under Slurm's task/affinity or taskset. */
char *bv_cpu_affinity_list(bool *restricted);

#endif
