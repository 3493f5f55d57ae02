#!/usr/bin/env python3
"""The header test: every public header compiles alone, and twice in one file.

    headers.py <source-root> <build-root> <compiler> [compiler args...]

A public header that needs another header included first, or that lacks an include guard,
breaks whoever includes it next; this compiles a one-line file per include/bv/*.h with the
project's compiler and -Werror.  The library's internal headers (src/lib/**/*-internal.h,
what of a public header only the library and its tests use) are compiled alone the same way.
Prints TAP, one case per header.
"""
import os
import subprocess
import sys
import tempfile


def main():
    root, build, cc = sys.argv[1], sys.argv[2], sys.argv[3:]
    headers = sorted("bv/" + h for h in os.listdir(os.path.join(root, "include", "bv"))
                     if h.endswith(".h"))
    internal = []
    for d, _, files in os.walk(os.path.join(root, "src", "lib")):
        internal += [os.path.relpath(os.path.join(d, f), os.path.join(root, "src"))
                     for f in files if f.endswith("-internal.h")]
    headers += sorted(internal)
    print(f"1..{len(headers)}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, h in enumerate(headers, 1):
            src = os.path.join(tmp, "one.c")
            with open(src, "w", encoding="utf-8") as f:
                line = f"#include <{h}>" if h.startswith("bv/") else f'#include "{h}"'
                f.write(f"{line}\n{line}\n")
            cmd = cc + ["-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                        "-fsyntax-only", "-I", os.path.join(root, "include"),
                        "-I", os.path.join(root, "src"), "-I", build, src]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode == 0:
                print(f"ok {i} - {h} compiles alone")
            else:
                failed += 1
                print(f"not ok {i} - {h} compiles alone")
                for line in r.stderr.splitlines()[:20]:
                    print("# " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
