"""The Python side of scripts/bench-scale.sh: python3 + tomllib doing the reading work of a
bv command on the generated 1000-tool project (bench_project gen), one process per run.

    scale_peer.py list|binaries|check|sync|shim [name]

Run in the project directory with BV_CACHE_DIR set.  Each mode reads what bv reads and prints
a comparable answer; none of them checks as much as bv does, so the comparison favours Python.
"""
import json
import os
import sys
import tomllib


def load(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def kept_manifest(cache, tool):
    digest = tool.get("manifest_sha256", "")
    try:
        return load(f"{cache}/manifests/{digest[7:]}.toml")
    except OSError:
        return None


def main() -> int:
    mode = sys.argv[1]
    cache = os.environ["BV_CACHE_DIR"]
    lock = load("bv.lock")
    tools = list(lock.get("tools", {}).values())
    if mode == "list":
        load("bv.toml")
        out = []
        for t in tools:
            m = kept_manifest(cache, t)
            out.append({"id": t["tool_id"], "version": t["version"],
                        "tier": m["tool"].get("tier") if m else None,
                        "image_digest": t.get("image_digest"),
                        "binaries": t.get("binaries", [])})
        json.dump(out, sys.stdout, indent=2)
    elif mode == "binaries":
        for name, tool in sorted(lock.get("binary_index", {}).items()):
            print(f"{name:<15} {tool}")
    elif mode == "check":
        declared = {t["id"]: t.get("version") for t in load("bv.toml").get("tools", [])}
        locked = {t["tool_id"]: t.get("declared_version_req") for t in tools}
        print("bv.lock is up to date" if declared == locked else "bv.lock is stale")
    elif mode == "sync":
        load("bv.toml")
        slug = "linux-amd64"
        missing = [t["tool_id"] for t in tools
                   if not os.path.exists(f"{cache}/rootfs/{t['image_digest'][7:]}-{slug}.seal")]
        exe = os.path.realpath(sys.executable)
        shims = os.listdir(".bv/bin")
        current = len(shims) == len(lock.get("binary_index", {})) and all(
            os.readlink(f".bv/bin/{b}") for b in lock.get("binary_index", {}))
        print(f"missing={len(missing)} shims_current={current} {exe != ''}")
    elif mode == "shim":
        name = sys.argv[2]
        tool_id = lock["binary_index"][name]
        tool = lock["tools"][tool_id]
        m = kept_manifest(cache, tool)
        print(tool["image_digest"], m["tool"]["entrypoint"]["command"] if m else name)
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
