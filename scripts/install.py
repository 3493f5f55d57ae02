#!/usr/bin/env python3
"""make install and make uninstall: what the Meson build installs, under any PREFIX.

    scripts/install.py BUILD PREFIX DESTDIR             install
    scripts/install.py --uninstall BUILD PREFIX DESTDIR remove exactly those files

Meson fixes the prefix when a build directory is set up and compiles it in; changing it would
rebuild everything.  bv needs no compiled-in prefix (it finds share/bv/types.toml beside its
own executable first), so the build's own `meson install` runs into a staging directory and
its files are moved from the configured prefix to PREFIX.  The file list is Meson's, so a
new installed file needs no change here.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def meson_json(build, what):
    out = subprocess.run(["meson", "introspect", build, what], check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out)


def configured_prefix(build):
    for opt in meson_json(build, "--buildoptions"):
        if opt["name"] == "prefix":
            return opt["value"]
    sys.exit("install.py: no prefix in %s" % build)


def target(path, old_prefix, prefix, destdir):
    rel = os.path.relpath(path, old_prefix)
    if rel.startswith(".."):
        sys.exit("install.py: '%s' is outside the prefix '%s'" % (path, old_prefix))
    return os.path.normpath(destdir + os.path.join(prefix, rel))


def install(build, prefix, destdir):
    old = configured_prefix(build)
    with tempfile.TemporaryDirectory(prefix="bv-install.") as stage:
        subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
                        "--destdir", stage], check=True, stdout=subprocess.DEVNULL)
        root = os.path.normpath(stage + old)
        for dirpath, _, names in os.walk(root):
            for name in names:
                src = os.path.join(dirpath, name)
                dst = target(os.path.join(old, os.path.relpath(src, root)), old, prefix, destdir)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                # a new file renamed over the old one: a running bv keeps its executable
                tmp = dst + ".tmp-install"
                shutil.copy2(src, tmp)
                os.replace(tmp, dst)
                print("Installing %s" % dst)


def uninstall(build, prefix, destdir):
    old = configured_prefix(build)
    for dst in meson_json(build, "--installed").values():
        path = target(dst, old, prefix, destdir)
        if os.path.lexists(path):
            os.unlink(path)
            print("Removing %s" % path)
    # only the directory that is bv's alone
    try:
        os.rmdir(os.path.normpath(destdir + os.path.join(prefix, "share/bv")))
    except OSError:
        pass


def main(argv):
    undo = argv[:1] == ["--uninstall"]
    if undo:
        argv = argv[1:]
    if len(argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    build, prefix, destdir = argv
    if not os.path.isabs(prefix):
        sys.exit("install.py: PREFIX must be an absolute path, not '%s'" % prefix)
    destdir = os.path.abspath(destdir) if destdir else ""
    (uninstall if undo else install)(build, prefix, destdir)


if __name__ == "__main__":
    main(sys.argv[1:])
