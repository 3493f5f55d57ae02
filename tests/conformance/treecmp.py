#!/usr/bin/env python3
"""Compares two root filesystems entry by entry.

usage: treecmp.py [options] A B

A and B are each a directory or a tar stream (a file, or "-" for stdin; `docker export`
output).  Every path present on either side is compared on these fields:

  type      file, dir, symlink, char, block, fifo, socket (a tar hard link counts as the
            type of what it links to, as it does on disk)
  mode      permission bits; see --rootless-a/--rootless-b for the special bits
  size      regular files
  sha256    content of regular files
  target    symlink target, byte for byte
  cap       the security.capability xattr (tar: SCHILY.xattr.security.capability)
  uid, gid  only with --owner (when the side under test applied ownership)

Any difference prints "PATH: FIELD: A-VALUE != B-VALUE" (or "only in A/B") and the exit
status is 1; 0 when the trees agree, 2 on usage errors.  Hard-link identity (which paths
share an inode) and timestamps are not compared: bv's root file systems are hard-linked
from per-layer trees, so link counts say nothing about the image.

Ignore rules: each one is switched on by an option and applies to one side only.  A rule
never hides a difference in an entry it does not name.

  --docker-b    B is `docker export` of a created (never started) container.  Docker adds to
                every container, whatever the image has:
                D1 /.dockerenv (empty file)
                D2 /etc/hosts, /etc/hostname, /etc/resolv.conf: empty mount-point files;
                   the image's own copies are shadowed by these in a container
                D3 /proc, /sys, /dev (the mount points) and everything below /dev
                   (console, pts, shm): type and mode of these mount points are not compared
                D4 /etc itself when the image has no /etc (D2 needed a parent)
                D5 /etc/mtab -> /proc/mounts, a symlink docker's init layer adds when the
                   image has no /etc/mtab (its target is checked)
  --bv-a        A is bv's unpacked root file system:
                B1 /workspace, the empty directory where every run mounts the project
                   (bv_install adds it)
  --rootless-a  A was unpacked without privileges (bv's default, see
                src/lib/oci/store/unpack-internal.h):
                R1 setuid, setgid and sticky bits are cleared: A's mode must equal
                   B's mode & 0777 (checked, not skipped: A may not keep any of 07000)
                R3 file capabilities (security.capability) are dropped, for the same reason
                   as setuid bits (src/lib/oci/store/unpack-internal.h): A may not have one
                   (checked)
  --readonly-a  A is one of bv's read-only trees (layers are shared by hard links, so
                nothing in them may be writable; include/bv/unpack.h):
                R2 write bits are cleared and directories keep u+rx: A's mode must equal
                   (B's mode & ~0222), plus 0500 for a directory (checked)
  --umoci-b     B is `umoci unpack --rootless`:
                U1 umoci --rootless cannot chown, so uid/gid are never compared (as without
                   --owner)
                U2 umoci --rootless keeps setuid/setgid/sticky bits: B's 07000 bits are
                   dropped before comparing with a rootless A (R1 still checks A)
                U3 umoci --rootless drops security.* xattrs it cannot set as an unprivileged
                   user: B's cap is compared only when B has one
  --owner       compare uid and gid as well
"""
import argparse
import hashlib
import os
import stat
import sys
import tarfile

CAP = "security.capability"
TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
         tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.CHRTYPE: "char",
         tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def norm(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def mode_type(m):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")):
        if test(m):
            return name
    return "unknown"


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_dir(root):
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            e = {"type": mode_type(st.st_mode), "mode": st.st_mode & 0o7777,
                 "uid": st.st_uid, "gid": st.st_gid}
            if e["type"] == "file":
                e["size"] = st.st_size
                e["sha256"] = sha_file(full)
            elif e["type"] == "symlink":
                e["target"] = os.fsencode(os.readlink(full))
            if e["type"] in ("file", "dir"):
                try:
                    e["cap"] = os.getxattr(full, CAP, follow_symlinks=False).hex()
                except OSError:
                    pass
            entries[norm(os.path.relpath(full, root))] = e
    return entries


def read_tar(src):
    entries = {}
    fh = sys.stdin.buffer if src == "-" else open(src, "rb")
    with tarfile.open(fileobj=fh, mode="r|*") as tf:
        for m in tf:
            path = norm(m.name)
            if path == "/":
                continue
            if m.type == tarfile.LNKTYPE:
                e = dict(entries[norm(m.linkname)])
            else:
                e = {"type": TYPES.get(m.type, "unknown"), "mode": m.mode & 0o7777}
                if e["type"] == "file":
                    h = hashlib.sha256()
                    data = tf.extractfile(m)
                    for chunk in iter(lambda: data.read(1 << 20), b""):
                        h.update(chunk)
                    e["size"] = m.size
                    e["sha256"] = h.hexdigest()
                elif e["type"] == "symlink":
                    e["target"] = os.fsencode(m.linkname)
                raw = m.pax_headers.get("SCHILY.xattr." + CAP)
                if raw is not None:
                    e["cap"] = raw.encode("utf-8", "surrogateescape").hex()
            e["uid"], e["gid"] = m.uid, m.gid
            entries[path] = e
    return entries


def load(src):
    return read_dir(src) if os.path.isdir(src) else read_tar(src)


def docker_ignored(path, b, a):
    if path == "/.dockerenv":
        return "D1"
    if path in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        return "D2"
    if path in ("/proc", "/sys", "/dev") or path.startswith("/dev/"):
        return "D3"
    if path == "/etc/mtab" and path not in a and b[path].get("target") == b"/proc/mounts":
        return "D5"
    if path == "/etc" and "/etc" not in a:
        others = [p for p in b if p.startswith("/etc/")
                  and p not in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")]
        if not others:
            return "D4"
    return None


def main():
    ap = argparse.ArgumentParser(description="compare two root filesystems")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--docker-b", action="store_true")
    ap.add_argument("--umoci-b", action="store_true")
    ap.add_argument("--bv-a", action="store_true")
    ap.add_argument("--rootless-a", action="store_true")
    ap.add_argument("--readonly-a", action="store_true")
    ap.add_argument("--owner", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no summary line")
    args = ap.parse_args()
    if args.owner and args.umoci_b:
        ap.error("--owner cannot be used with --umoci-b (rule U1)")
    A, B = load(args.a), load(args.b)
    diffs = []

    for path in sorted(set(A) | set(B)):
        if args.docker_b and docker_ignored(path, B, A):
            # D3 ignores the mount points' type and mode, but A must still not hold files
            # below /dev that docker would hide: those are reported.
            if not (path.startswith("/dev/") and path in A and path not in B):
                continue
        if args.bv_a and (path == "/workspace") and path not in B:
            continue  # B1
        if path not in A:
            diffs.append(f"{path}: only in B ({B[path]['type']})")
            continue
        if path not in B:
            diffs.append(f"{path}: only in A ({A[path]['type']})")
            continue
        a, b = A[path], B[path]
        if a["type"] != b["type"]:
            diffs.append(f"{path}: type: {a['type']} != {b['type']}")
            continue
        fields = ["size", "sha256", "target", "cap"]
        if a["type"] != "symlink":
            am, bm = a["mode"], b["mode"]
            if args.umoci_b and args.rootless_a:
                bm &= 0o777  # U2
            if args.rootless_a:
                if am & 0o7000:
                    diffs.append(f"{path}: mode: {am:04o} keeps special bits (rule R1)")
                bm &= 0o777  # R1
            if args.readonly_a:
                if am & 0o222:
                    diffs.append(f"{path}: mode: {am:04o} is writable (rule R2)")
                bm &= ~0o222  # R2
                if a["type"] == "dir":
                    bm |= 0o500
            if am != bm:
                diffs.append(f"{path}: mode: {am:04o} != {bm:04o}")
        for fld in fields:
            av, bv = a.get(fld), b.get(fld)
            if fld == "cap" and args.rootless_a:
                # R3: rootless unpacking drops file capabilities like setuid bits
                if av is not None:
                    diffs.append(f"{path}: cap: {av!r} kept (rule R3)")
                continue
            if fld == "cap" and args.umoci_b and bv is None:
                continue  # U3
            if av != bv:
                diffs.append(f"{path}: {fld}: {av!r} != {bv!r}")
        if args.owner and not args.umoci_b:
            for fld in ("uid", "gid"):
                if a[fld] != b[fld]:
                    diffs.append(f"{path}: {fld}: {a[fld]} != {b[fld]}")
    for line in diffs:
        print(line)
    if not args.quiet:
        print(f"treecmp: {len(A)} entries in A, {len(B)} in B, {len(diffs)} differences",
              file=sys.stderr)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
