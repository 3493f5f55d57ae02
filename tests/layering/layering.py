#!/usr/bin/env python3
"""The layering test: which part of bv may include which, checked on every #include.

    layering.py <source-root>

bv is built in layers, lowest first:

    util < toml < model < oci < data < engine < runtime < cli

src/util/ knows nothing of bv; src/toml/ reads and writes TOML; src/lib/model/ is bv.toml,
bv.lock, manifests and the index; src/lib/oci/ the registry client, the store and unpacking;
src/lib/data/ reference data (dataset downloads into the cache);
src/lib/engine/ the Docker Engine API and what is built on it (sessions, services);
src/lib/runtime/ the backend interface, run plans and the backends; src/cli/ the commands.
A file may include headers of its own layer and of the layers below it, never above: a back
edge would make the lower layer impossible to test, reuse or reason about alone.

A public header include/bv/<name>.h belongs to the layer of the file that implements it
(src/**/<name>.c); a private header belongs to the layer of its directory.  The test also
refuses include cycles between the modules of one layer (util/buf <-> util/error was one).
A private header <name>-internal.h (what of bv/<name>.h only the library and its tests use,
beside <name>.c) is module <name>, like bv/<name>.h, for that check.

Prints TAP: one case, with one comment line per violation.
"""
import os
import re
import sys

LAYERS = ["util", "toml", "model", "oci", "data", "engine", "runtime", "cli"]

# Public headers whose implementation does not share their name.
HEADER_HOME = {
    "error": "util",
    "toml": "toml",
}

# Back edges still being removed; each entry must disappear, never be added to.
KNOWN = set()

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
INTERNAL = "-internal"


def module_of(path):
    """The module a source or header belongs to: its name, without "-internal"."""
    mod = os.path.splitext(os.path.basename(path))[0]
    return mod[:-len(INTERNAL)] if mod.endswith(INTERNAL) else mod


def layer_of_path(rel):
    parts = rel.split("/")
    if parts[0] == "src" and parts[1] in ("util", "toml", "cli"):
        return parts[1]
    if parts[0] == "src" and parts[1] == "lib" and len(parts) > 3:
        return parts[2]
    return None


def sources(root):
    for top in ("src", "include"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), root)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    files = sorted(sources(root))
    impl = {}  # module name -> path of its .c
    for rel in files:
        if rel.startswith("src/") and rel.endswith(".c"):
            impl.setdefault(os.path.basename(rel)[:-2], rel)

    def header_layer(name, includer):
        """The layer of an included header, or None for system headers."""
        if name.startswith("bv/"):
            mod = name[3:-2]
            if mod in HEADER_HOME:
                return HEADER_HOME[mod], mod
            if mod in impl:
                return layer_of_path(impl[mod]), mod
            return "?", mod
        for base in (os.path.dirname(includer) + "/", "src/"):
            rel = os.path.normpath(base + name)
            if os.path.exists(os.path.join(root, rel)):
                return layer_of_path(rel), module_of(name)
        return None, None

    problems = []
    edges = {}
    for rel in files:
        if rel.startswith("include/bv/"):
            mod = os.path.basename(rel)[:-2]
            layer = HEADER_HOME.get(mod) or (layer_of_path(impl[mod]) if mod in impl else None)
            if layer is None:
                problems.append(f"{rel}: no src/**/{mod}.c implements it; name its layer in HEADER_HOME")
                continue
        else:
            layer = layer_of_path(rel)
            mod = module_of(rel)
        if layer is None:
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            target, tmod = header_layer(name, rel)
            if target is None:
                continue
            if target == "?":
                problems.append(f"{rel}: includes <{name}>, which no source implements")
                continue
            if LAYERS.index(target) > LAYERS.index(layer):
                problems.append(f"{rel} ({layer}) includes {name} ({target}): "
                                f"{layer} may not depend on {target}")
            if target == layer and tmod != mod:
                edges.setdefault((layer, mod), set()).add((target, tmod))

    # Include cycles between modules of one layer.
    seen, stack, on_stack = set(), [], set()

    def visit(node):
        seen.add(node)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in on_stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("include cycle: " + " -> ".join(f"{l}/{m}" for l, m in cycle))
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        on_stack.discard(node)

    for node in sorted(edges):
        if node not in seen:
            visit(node)

    for k in sorted(KNOWN):
        if k in problems:
            problems.remove(k)
            print("# known, to be removed: " + k)
        else:
            problems.append("gone, so remove it from KNOWN: " + k)
    print("1..1")
    for p in problems:
        print("# " + p)
    if problems:
        print(f"not ok 1 - layering: {len(problems)} problem(s); the rules are in {sys.argv[0]}")
        return 1
    print(f"ok 1 - layering: {len(files)} files, no new back edges or cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
