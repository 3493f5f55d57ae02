#!/usr/bin/env python3
"""Writes the conformance images whose layers no image builder makes, into one OCI layout.

usage: mklayers.py LAYOUT BUSYBOX SPARSE_DIR

BUSYBOX is a static busybox binary (Debian's busybox-static).  SPARSE_DIR holds two tar
streams made by GNU tar --sparse beforehand: sparse-gnu.tar (--format=gnu, old GNU sparse
headers) and sparse-pax.tar (--format=posix, PAX sparse 1.0).

Every image here starts from a "scratch" busybox layer written with tarfile: /bin/busybox,
one symlink per applet, /etc/passwd and /etc/group, and nothing else: no /proc, /dev, /sys,
/tmp, so a runtime has to make its own mount points.  The helpers (info, d, f, sym, hard,
tar_bytes, LONG_GNU, LONG_PAX) come from tests/data/unpack/make_tars.py.

Blobs are gzip with mtime 0, so the layout is byte-for-byte reproducible.  The tags and the
case each image exercises are listed in CASES (also printed by `mklayers.py --cases`).
"""
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "data", "unpack"))
from make_tars import LONG_GNU, LONG_PAX, d, f, hard, info, sym, tar_bytes  # noqa: E402

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"

CASES = {
    "t-absolute": "absolute member names (/abs/..., /etc/abs-conf) on a scratch base",
    "t-dotslash": "./ prefixes (./dot/file, ./dot/link, a member ./)",
    "t-dotdot": "a .. component that stays inside the root (dd/../dd/again)",
    "t-slash-notrailer": "a member named / first, and no end-of-archive trailer (stream ends "
                         "right after the last entry's data padding)",
    "t-hardlinks": "hard links across directories (three names, one inode)",
    "t-hardlink-mode": "a hard link whose header mode (0644) differs from its target's (0640): "
                       "Docker chmods the shared inode with the link's mode",
    "t-hardsym": "a hard link to a symlink (link(2) does not follow it: a second symlink)",
    "t-longnames": "long names: GNU longname/longlink layer and a PAX path/linkpath layer",
    "t-symchain": "symlink chains (file and directory), relative and absolute",
    "t-symparent": "symlinked parent inside one layer: var/run -> ../run then var/run/app.pid; "
                   "bin -> usr/bin then bin/c (usrmerge root in a single layer)",
    "t-shadow": "a later layer's directory bin/ shadowing the lower bin -> usr/bin symlink",
    "t-opaque-symlink": "opaque whiteout (.wh..wh..opq) and new files under a directory symlink "
                        "of a lower layer (data/link -> real); a whiteout of a missing name",
    "t-replace": "file -> directory -> file and directory -> file across three layers",
    "t-sparse-gnu": "old GNU sparse file (type S) written by GNU tar --sparse --format=gnu; "
                    "docker 20.10 refuses type S",
    "t-sparse-pax": "PAX 1.0 sparse file written by GNU tar --sparse --format=posix",
    "t-xattr": "security.capability xattr (SCHILY.xattr PAX record, VFS_CAP v2, cap_net_bind_service+ep)",
}


def busybox_entries(busybox, usrmerge=False):
    """The scratch base: busybox and its applet links, passwd and group."""
    with open(busybox, "rb") as fh:
        bb = fh.read()
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    out = []
    if usrmerge:
        out += [d("usr"), d("usr/bin"), d("usr/sbin"), sym("bin", "usr/bin"),
                sym("sbin", "usr/sbin"), f("usr/bin/busybox", bb, 0o755)]
        target = "/usr/bin/busybox"
    else:
        out += [d("bin"), d("sbin"), d("usr"), d("usr/bin"), d("usr/sbin"),
                f("bin/busybox", bb, 0o755)]
        target = "/bin/busybox"
    seen = set()
    for a in applets:
        if usrmerge:
            a = "usr/" + a if a.split("/")[0] in ("bin", "sbin") else a
        if a in seen or a.endswith("/busybox"):
            continue
        seen.add(a)
        out.append(sym(a, target))
    out += [d("etc"), f("etc/passwd", PASSWD), f("etc/group", GROUP)]
    return out


def no_trailer(raw):
    """Cuts a tar stream right after the last member's data (and its padding to 512)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        last = tf.getmembers()[-1]
    end = last.offset_data + ((last.size + 511) // 512) * 512
    assert raw[end:end + 1024] == bytes(1024)
    return raw[:end]


def cap_v2(permitted):
    # struct vfs_cap_data, revision 2, effective flag set
    return struct.pack("<IIIII", 0x02000001, permitted, 0, 0, 0)


# images docker 20.10 cannot pull ("unhandled tar header type 83"): compared with umoci only
NO_DOCKER = {"t-sparse-gnu"}


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as fh:
            json.dump({"imageLayoutVersion": "1.0.0"}, fh)
        self.index = {"schemaVersion": 2, "manifests": []}

    def blob(self, data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as fh:
            fh.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, tag, layers, cmd=("/bin/sh",)):
        descs, diff_ids = [], []
        for raw in layers:
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            descs.append(self.blob(gzip.compress(raw, mtime=0),
                                   "application/vnd.oci.image.layer.v1.tar+gzip"))
        config = {
            "architecture": "amd64", "os": "linux",
            "config": {"Env": [PATH], "Cmd": list(cmd)},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "tests/conformance/mklayers.py " + tag}
                        for _ in layers],
        }
        cdesc = self.blob(json.dumps(config, sort_keys=True).encode(),
                          "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": descs}
        mdesc = self.blob(json.dumps(manifest, sort_keys=True).encode(), manifest["mediaType"])
        mdesc["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index["manifests"].append(mdesc)

    def close(self):
        with open(os.path.join(self.path, "index.json"), "w") as fh:
            json.dump(self.index, fh, sort_keys=True)


def main():
    if sys.argv[1:] == ["--cases"]:
        for k, v in CASES.items():
            print(f"{k}\t{'no' if k in NO_DOCKER else 'yes'}\t{v}")
        return
    layout, busybox, sparse_dir = sys.argv[1:4]
    L = Layout(layout)
    base = tar_bytes(busybox_entries(busybox))

    L.image("t-absolute", [base, tar_bytes([
        d("/abs"), f("/abs/file", b"absolute\n"), sym("/abs/link", "/abs/file"),
        f("/etc/abs-conf", b"x\n", 0o600)])])

    L.image("t-dotslash", [base, tar_bytes([
        d("./"), d("./dot"), f("./dot/file", b"dot\n"), sym("./dot/link", "./file")])])

    L.image("t-dotdot", [base, tar_bytes([
        d("dd"), f("dd/file", b"dd\n"), f("dd/../dd/again", b"dotdot\n")])])

    slash = tar_bytes([d("/", 0o755), d("slash"), f("slash/file", b"after a / member\n"),
                       f("slash/exec", b"#!/bin/sh\necho hi\n", 0o755)])
    L.image("t-slash-notrailer", [base, no_trailer(slash)])

    L.image("t-hardlinks", [base, tar_bytes([
        d("hl"), d("hl/one"), d("hl/two"), d("hl/two/deep"),
        f("hl/one/file", b"shared inode\n", 0o644),
        hard("hl/two/link", "hl/one/file"), hard("hl/two/deep/link2", "hl/one/file")])])

    L.image("t-hardlink-mode", [base, tar_bytes([
        d("hm"), f("hm/file", b"mode 0640\n", 0o640), hard("hm/link", "hm/file")])])

    L.image("t-hardsym", [base, tar_bytes([
        d("hs"), d("hs/one"), d("hs/two"), f("hs/one/file", b"target\n"),
        sym("hs/one/sym", "file"), hard("hs/two/hardsym", "hs/one/sym")])])

    L.image("t-longnames", [base,
                            tar_bytes([d("gnu"), d("gnu/" + "g" * 120), f(LONG_GNU, b"gnu long\n"),
                                       sym("gnu/longlink", "g" * 120 + "/" + "x" * 110)],
                                      tarfile.GNU_FORMAT),
                            tar_bytes([f(LONG_PAX, b"pax long\n"),
                                       sym("paxlink", "/".join(["p" * 90] * 3) + "/" + "q" * 200)],
                                      tarfile.PAX_FORMAT)])

    L.image("t-symchain", [base, tar_bytes([
        d("chain"), d("chain/real"), f("chain/real/file", b"end of chain\n"),
        sym("chain/l1", "l2"), sym("chain/l2", "l3"), sym("chain/l3", "real/file"),
        sym("chain/d1", "d2"), sym("chain/d2", "/chain/real"), sym("chain/dangling", "nowhere"),
        sym("chain/loop1", "loop2"), sym("chain/loop2", "loop1")])])

    merged = busybox_entries(busybox, usrmerge=True)
    L.image("t-symparent", [tar_bytes(merged + [
        d("run"), d("var"), sym("var/run", "../run"), f("var/run/app.pid", b"42\n"),
        f("bin/c", b"through bin -> usr/bin\n", 0o755)])])

    L.image("t-shadow", [tar_bytes(merged), tar_bytes([
        d("bin", 0o750), f("bin/x", b"shadowing directory\n", 0o755)])])

    L.image("t-opaque-symlink", [base, tar_bytes([
        d("data"), d("data/real"), f("data/real/old", b"old\n"), f("data/real/keep", b"k\n"),
        sym("data/link", "real"), d("other"), f("other/gone", b"g\n")]),
        tar_bytes([f("data/link/.wh..wh..opq", b""), f("data/link/new", b"new\n"),
                   f("data/.wh.link2", b"")])])

    L.image("t-replace", [base,
                          tar_bytes([d("swap"), f("swap/a", b"file a\n"), d("swap/b"),
                                     f("swap/b/inner", b"inner\n")]),
                          tar_bytes([d("swap/a", 0o700), f("swap/a/in", b"now a dir\n"),
                                     f("swap/b", b"now a file\n", 0o600)]),
                          tar_bytes([f("swap/a", b"file again\n", 0o755)])])

    for name in ("gnu", "pax"):
        with open(os.path.join(sparse_dir, f"sparse-{name}.tar"), "rb") as fh:
            L.image(f"t-sparse-{name}", [base, fh.read()])

    cap = cap_v2(1 << 10).decode("utf-8", "surrogateescape")
    t, _ = info("capbin/ping", mode=0o755, data=b"#!/bin/sh\necho cap\n",
                pax_headers={"SCHILY.xattr.security.capability": cap})
    L.image("t-xattr", [base, tar_bytes([d("capbin"), (t, b"#!/bin/sh\necho cap\n"),
                                         f("capbin/plain", b"no caps\n")])])
    L.close()


if __name__ == "__main__":
    main()
