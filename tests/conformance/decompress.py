#!/usr/bin/env python3
"""usage: decompress.py LAYOUT TAG NEWTAG

Adds NEWTAG to the OCI layout: TAG's image with every layer stored as an uncompressed tar
(media type application/vnd.oci.image.layer.v1.tar).  gzip is undone with the gzip module,
zstd with `zstd -dc` (Debian's zstd).  The config, hence the diff_ids, stays the same.
"""
import gzip
import hashlib
import json
import os
import subprocess
import sys

REF = "org.opencontainers.image.ref.name"


def main():
    layout, tag, newtag = sys.argv[1:4]

    def path(digest):
        return os.path.join(layout, "blobs", *digest.split(":", 1))

    def put(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(path(digest), "wb") as fh:
            fh.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    with open(os.path.join(layout, "index.json")) as fh:
        index = json.load(fh)
    desc = next(d for d in index["manifests"] if d.get("annotations", {}).get(REF) == tag)
    with open(path(desc["digest"])) as fh:
        manifest = json.load(fh)
    for i, layer in enumerate(manifest["layers"]):
        with open(path(layer["digest"]), "rb") as fh:
            raw = fh.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif raw[:4] == b"\x28\xb5\x2f\xfd":
            raw = subprocess.run(["zstd", "-dcq"], input=raw, capture_output=True,
                                 check=True).stdout
        manifest["layers"][i] = put(raw, "application/vnd.oci.image.layer.v1.tar")
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    new = put(json.dumps(manifest, sort_keys=True).encode(), manifest["mediaType"])
    new["annotations"] = {REF: newtag}
    index["manifests"] = [d for d in index["manifests"]
                          if d.get("annotations", {}).get(REF) != newtag] + [new]
    with open(os.path.join(layout, "index.json"), "w") as fh:
        json.dump(index, fh, sort_keys=True)


if __name__ == "__main__":
    main()
