#!/usr/bin/env python3
"""Writes the layer tarballs of tests/unit/lib/oci/store/test_unpack.c into a directory.

usage: make_tars.py OUTDIR [OUTSIDE]

OUTSIDE is the absolute directory that the hostile layers try to reach through absolute
symlinks (default: OUTDIR/../outside).  Relative attacks assume the layer is unpacked into
a directory that sits next to OUTSIDE ("../outside" from the layer root).

Besides the tarballs, NAME.diffid holds "sha256:<hex>" of the uncompressed tar stream of each
compressed layer, computed here with gzip.decompress / `zstd -dc`, independently of bv.
"""
import gzip
import hashlib
import io
import shutil
import os
import subprocess
import sys
import tempfile
import tarfile

MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **kw):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = mode
    t.mtime = MTIME
    t.uid = t.gid = 0
    t.uname = t.gname = "root"
    for k, v in kw.items():
        setattr(t, k, v)
    if kind == tarfile.REGTYPE:
        t.size = len(data)
    return t, data


def d(name, mode=0o755):
    return info(name, tarfile.DIRTYPE, mode)


def f(name, data, mode=0o644):
    return info(name, tarfile.REGTYPE, mode, data)


def sym(name, target):
    return info(name, tarfile.SYMTYPE, 0o777, linkname=target)


def hard(name, target, mode=0o644):
    """A hard link; real tar writers give it the mode of its target, and Docker applies it."""
    return info(name, tarfile.LNKTYPE, mode, linkname=target)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for t, data in entries:
            tf.addfile(t, io.BytesIO(data) if t.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def write(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as fh:
        fh.write(data)


def write_diffid(outdir, name, raw):
    write(outdir, name + ".diffid", ("sha256:" + hashlib.sha256(raw).hexdigest()).encode())


LONG_GNU = "gnu/" + "g" * 120 + "/file-with-a-long-name.txt"  # > 100 bytes: GNU longname
LONG_PAX = "/".join(["p" * 90] * 3) + "/" + "q" * 200  # > 255 bytes: pax path


def main():
    outdir = sys.argv[1]
    outside = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(outdir)), "outside")
    os.makedirs(outdir, exist_ok=True)

    # A layer with the usual kinds of entries.
    plain = tar_bytes([
        d("./"),
        d("bin/"),
        f("bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
        hard("bin/tool-again", "bin/tool", 0o755),
        d("etc/"),
        f("etc/config", b"key = value\n"),
        sym("etc/passwd-link", "/etc/passwd"),
        sym("etc/config-link", "config"),
        d("private/", 0o700),
        f("private/secret", b"s\n", 0o600),
        # no entry for "implicit/": its parent must be created
        f("implicit/deep/file", b"deep\n"),
    ])
    write(outdir, "plain.tar", plain)
    write(outdir, "plain.tar.gz", gzip.compress(plain, mtime=0))
    write_diffid(outdir, "plain.tar.gz", gzip.decompress(gzip.compress(plain, mtime=0)))
    subprocess.run(["zstd", "-q", "-f", "-o", os.path.join(outdir, "plain.tar.zst"),
                    os.path.join(outdir, "plain.tar")], check=True)
    raw = subprocess.run(["zstd", "-q", "-dc", os.path.join(outdir, "plain.tar.zst")],
                         check=True, capture_output=True).stdout
    write_diffid(outdir, "plain.tar.zst", raw)

    # Whiteouts over three layers.
    write(outdir, "layer1.tar", tar_bytes([
        d("etc/"),
        f("etc/a", b"a1\n"),
        f("etc/b", b"b1\n"),
        d("opt/"),
        d("opt/x/"),
        f("opt/x/old", b"old1\n"),
        f("opt/x/keep", b"keep1\n"),
        d("opt/x/sub/"),
        f("opt/x/sub/f", b"f1\n"),
        d("usr/"),
        d("usr/share/"),
        f("usr/share/doc", b"doc1\n"),
        f("bin-tool", b"v1\n", 0o755),
        sym("lib", "usr/lib"),
    ]))
    write(outdir, "layer2.tar", tar_bytes([
        d("etc/"),
        f("etc/.wh.a", b""),
        d("opt/x/"),
        f("opt/x/.wh..wh..opq", b""),
        f("opt/x/new", b"new2\n"),
        f(".wh.usr", b""),
        f("bin-tool", b"v2\n", 0o755),
        # a directory replaces the lower symlink instead of being written through it
        d("lib/"),
        f("lib/libz.so", b"z2\n"),
    ]))
    write(outdir, "layer3.tar", tar_bytes([
        d("etc/"),
        f("etc/a", b"a3\n"),
        d("opt/x/"),
        f("opt/x/old", b"old3\n"),
        d("usr/"),
        f("usr/fresh", b"fresh3\n"),
        # a whiteout hides only lower layers, never its own layer's file
        f("etc/.wh.c", b""),
        f("etc/c", b"c3\n"),
    ]))

    # Long names: GNU longname/longlink (> 100 bytes) and pax path/linkpath (> 255 bytes).
    write(outdir, "long-gnu.tar", tar_bytes([
        f(LONG_GNU, b"gnu\n"),
        hard(LONG_GNU + ".link", LONG_GNU),
    ], tarfile.GNU_FORMAT))
    write(outdir, "long-pax.tar", tar_bytes([
        f(LONG_PAX, b"pax\n"),
        hard(LONG_PAX + ".link", LONG_PAX),
        sym("pax-symlink", LONG_PAX),
    ]))
    write(outdir, "long-names.txt", (LONG_GNU + "\n" + LONG_PAX + "\n").encode())

    # A symlink that a later entry of the same name replaces: the file must not go through it.
    write(outdir, "symlink-replaced.tar", tar_bytes([
        sym("s", outside + "/canary"),
        f("s", b"replaced\n"),
        sym("dangling", "/nonexistent/target"),
    ]))

    # Special files and modes.
    write(outdir, "devices.tar", tar_bytes([
        d("dev/"),
        info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
        info("dev/sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0),
        info("run/fifo", tarfile.FIFOTYPE, 0o644),
        hard("dev/null-again", "dev/null"),
        f("dev/regular", b"kept\n"),
    ]))
    write(outdir, "modes.tar", tar_bytes([
        d("bin/"),
        f("bin/su", b"su\n", 0o4755),
        f("bin/wall", b"wall\n", 0o2755),
        d("tmp/", 0o1777),
        f("bin/locked", b"locked\n", 0o000),
    ]))

    # Tar bombs: many entries, and a big file (sparse on disk once extracted).
    write(outdir, "many.tar", tar_bytes([f("f%03d" % i, b"x") for i in range(50)]))
    write(outdir, "big.tar", tar_bytes([f("big", b"\0" * (1 << 20))]))

    # Hostile layers: NAME -> entries; the entry to be named in the error is in hostile.txt.
    hostile = {
        "dotdot": ("../evil", [f("../evil", b"pwned\n")]),
        "inner-dotdot": ("a/../../evil", [d("a/"), f("a/../../evil", b"pwned\n")]),
        "symlink-loop": ("a/evil", [sym("a", "b"), sym("b", "a"), f("a/evil", b"pwned\n")]),
        "file-parent": ("f/evil", [f("f", b"file\n"), f("f/evil", b"pwned\n")]),
        "hardlink-dir": ("evil", [d("d/"), hard("evil", "d")]),
        "hardlink-outside": ("evil", [hard("evil", "../outside/canary"),
                                      f("evil", b"pwned\n")]),
        "hardlink-outside2": ("evil", [hard("evil", "../../outside/canary"),
                                       f("evil", b"pwned\n")]),
        "hardlink-through-symlink": ("evil", [sym("dir", outside), hard("evil", "dir/canary"),
                                              f("evil", b"pwned\n")]),
        # "p" resolves through q/r, which "p/r" then replaces: "p/evil" must not land where
        # "p" led before (the unpacker keeps the last parent open, and must let go of it)
        "replaced-parent": ("p/evil", [d("q/"), d("q/r/"), sym("p", "q/r/.."),
                                       f("p/r", b"file\n"), f("p/evil", b"pwned\n")]),
    }
    lines = []
    for name, (entry, entries) in hostile.items():
        write(outdir, "hostile-%s.tar" % name, tar_bytes(entries))
        lines.append("%s\t%s" % (name, entry))
    write(outdir, "hostile.txt", ("\n".join(lines) + "\n").encode())

    # Layers that look hostile but stay inside the root under Docker's rules (names relative
    # to the root, symlinks resolved in it): they must unpack, and write only what they say.
    write(outdir, "contained-absolute.tar", tar_bytes([f("/abs/evil", b"pwned\n")]))
    write(outdir, "contained-symlink-dotdot.tar", tar_bytes([
        sym("link", ".."), f("link/evil", b"pwned\n")]))
    write(outdir, "contained-symlink-abs.tar", tar_bytes([
        d("tmp/"), sym("link", "/tmp"), f("link/evil", b"pwned\n")]))
    # Symlinks to nothing: Docker refuses to write below them; bv creates their target inside
    # the root, which is as safe and lets `var/run -> ../run` work before `run/` exists.
    write(outdir, "contained-symlink-outside.tar", tar_bytes([
        sym("link", outside), f("link/evil", b"pwned\n")]))
    write(outdir, "contained-symlink-tmp.tar", tar_bytes([
        sym("link", "/tmp"), f("link/evil", b"pwned\n")]))
    write(outdir, "contained-symlink-dir.tar", tar_bytes([
        sym("link", outside), d("link/sub/"), f("link/sub/evil", b"pwned\n")]))
    # The same with a symlink for q/r: "p" now resolves to the root, and so "p/y" is "y".
    write(outdir, "contained-replaced-parent.tar", tar_bytes([
        d("q/"), d("q/r/"), sym("p", "q/r/.."), sym("p/r", "/q"), f("p/y", b"y\n")]))
    write(outdir, "contained-hardlink-symlink.tar", tar_bytes([
        sym("sl", outside + "/canary"), hard("evil", "sl"), f("evil", b"pwned\n")]))

    # What other image builders write (see src/lib/oci/store/unpack-internal.h for the rules).
    write(outdir, "compat-root-member.tar", tar_bytes([
        d("/"), d("/etc/"), f("/etc/os-release", b"ID=test\n"), d("./usr/"),
        f("./usr/x", b"x\n")], tarfile.USTAR_FORMAT))
    write(outdir, "compat-symlink-parents.tar", tar_bytes([
        d("var/"), sym("var/run", "../run"), f("var/run/app.pid", b"42\n"),
        sym("bin", "usr/bin"), f("bin/c", b"c\n", 0o755),
        d("usr/lib/"), sym("lib", "/usr/lib"), f("lib/x.so", b"so\n"),
        sym("chain1", "chain2"), sym("chain2", "/opt/real"), d("opt/real/"),
        f("chain1/deep/file", b"deep\n")]))
    write(outdir, "compat-hardlinks.tar", tar_bytes([
        sym("s", "target"), hard("h", "s", 0o777),
        d("bin/"), f("bin/t", b"t\n", 0o755), d("other/"), hard("other/t2", "/bin/t", 0o700)]))
    caps = (0x02000001).to_bytes(4, "little") + (1 << 13).to_bytes(4, "little") + bytes(12)
    xt, _ = f("bin/ping", b"ping\n", 0o755)
    xt.pax_headers = {"SCHILY.xattr.security.capability": caps.decode("latin-1"),
                      "SCHILY.xattr.user.note": "hello"}
    write(outdir, "compat-xattrs.tar", tar_bytes([(xt, b"ping\n")]))
    # A stream without the end-of-archive blocks, with and without the last padding, and
    # streams cut inside an entry's data and inside a header.
    two = tar_bytes([d("a/"), f("a/x", b"hello")], tarfile.USTAR_FORMAT)
    write(outdir, "compat-no-trailer.tar", two[:1024 + 5])
    write(outdir, "compat-no-trailer.tar.gz", gzip.compress(two[:1024 + 5], mtime=0))
    write(outdir, "compat-no-end-blocks.tar", two[:1536])
    write(outdir, "torn-data.tar", two[:1024 + 3])
    three = tar_bytes([d("a/"), f("a/x", b"hello"), f("a/y", b"y")], tarfile.USTAR_FORMAT)
    write(outdir, "torn-header.tar", three[:1536 + 300])
    # Sparse files as GNU tar writes them, old GNU and pax 1.0.
    sparse_dir = tempfile.mkdtemp()
    with open(os.path.join(sparse_dir, "holes"), "wb") as fh:
        fh.write(b"head")
        fh.seek(1 << 20)
        fh.write(b"middle")
        fh.truncate(3 << 20)
    for fmt in ("gnu", "posix"):
        subprocess.run(["tar", "--sparse", "--format=" + fmt, "-C", sparse_dir, "-cf",
                        os.path.join(outdir, "compat-sparse-%s.tar" % fmt), "holes"],
                       check=True)
    shutil.rmtree(sparse_dir)

    write(outdir, "garbage.tar", b"this is not a tar archive at all\n" * 40)
    write(outdir, "layer.tar.bz2", b"BZh91AY&SY" + b"\0" * 100)


if __name__ == "__main__":
    main()
