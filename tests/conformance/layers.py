#!/usr/bin/env python3
"""usage: layers.py LAYOUT

Prints the hex digests of the layers of the first image in the OCI layout, lowest first.
"""
import json
import os
import sys


def main():
    layout = sys.argv[1]
    with open(os.path.join(layout, "index.json")) as fh:
        digest = json.load(fh)["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", *digest.split(":", 1))) as fh:
        for layer in json.load(fh)["layers"]:
            print(layer["digest"].split(":", 1)[1])


if __name__ == "__main__":
    main()
