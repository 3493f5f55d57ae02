#!/usr/bin/env python3
"""Counts the file-system metadata operations of one traced task that reach the shared cache.

Input: `strace -f -qq -e trace=%file,getdents64,clone,clone3,fork,vfork -o LOG` of `bv run`.
A call counts as shared when
  - its path (or the path of the directory descriptor strace -y printed) is under CACHE, or
  - it was made after its process entered the image (pivot_root), names no system mount
    (/proc, /dev, /sys, /tmp, /workspace), and MODE is "tree": then the image root is the
    shared tree, so the tool's own lookups are the shared file system's work.
Usage: nodelocal_count.py LOG CACHE MODE   ->  prints "<shared> <total>"
"""
import re
import sys

log, cache, mode = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
line_re = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
system = ("/proc", "/dev", "/sys", "/tmp", "/workspace")
inside = set()
shared = total = 0
for raw in open(log, errors="replace"):
    m = line_re.match(raw)
    if not m:
        continue
    pid, call, args, ret = m.group(1), m.group(2), m.group(3), m.group(4)
    if call in ("clone", "clone3", "fork", "vfork"):
        if pid in inside and ret not in ("?",) and int(ret) > 0:
            inside.add(ret)
        continue
    total += 1
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
    fds = re.findall(r"<([^>]*)>", args)
    names = strings + fds
    if any(n.startswith(cache) for n in names):
        shared += 1
    elif pid in inside and mode == "tree":
        absolute = [n for n in strings if n.startswith("/")]
        if not any(n == s or n.startswith(s + "/") for n in absolute for s in system):
            shared += 1
    if call == "pivot_root" and ret == "0":
        inside.add(pid)
print(shared, total)
