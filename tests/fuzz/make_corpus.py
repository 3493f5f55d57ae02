#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets under tests/fuzz/corpus/<target>/.

usage: tests/fuzz/make_corpus.py [SHARED_DIR]

fuzz_unpack seeds are the layers of tests/data/unpack/make_tars.py (imported, not copied),
each prefixed with the target's flag byte (bits 0-1: 0 raw, 1 gzip, 2 zstd; bits 2-3: media
type; bit 4: two layers, split at the little-endian u16 that follows).  Hostile layers aim at
"../outside/canary" (beside the destination) and at /tmp/bv-fuzz-canary, the absolute canary
of fuzz_unpack.c.  Tars are cut after their two end-of-archive blocks to keep seeds small.
fuzz_model seeds are registry manifests (SHARED_DIR/bv-registry-sample, default ../shared,
and tests/fixtures/bv-registry), tests/data/lock and a few bv.toml/bv.lock written here.
"""
import glob
import os
import shutil
import struct
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests/data/unpack"))
import make_tars  # noqa: E402

ABS_CANARY = "/tmp/bv-fuzz-canary"
CORPUS = os.path.join(TOP, "tests/fuzz/corpus")


def fresh(target):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(data)


def trim(tar):
    """The tar up to its two end-of-archive blocks (tarfile pads to 10 KiB records)."""
    end = len(tar)
    while end >= 512 and tar[end - 512:end] == bytes(512):
        end -= 512
    return tar[:min(len(tar), end + 1024)]


def unpack_seeds():
    d = fresh("fuzz_unpack")
    work = tempfile.mkdtemp()
    try:
        saved, sys.argv = sys.argv, ["make_tars.py", work, ABS_CANARY]
        try:
            make_tars.main()
        finally:
            sys.argv = saved

        def tar(name):
            with open(os.path.join(work, name), "rb") as fh:
                data = fh.read()
            return trim(data) if name.endswith(".tar") else data

        plain = tar("plain.tar")
        put(d, "plain-raw", b"\x00" + plain)
        put(d, "plain-gzip", b"\x01" + plain)
        put(d, "plain-zstd-oci", b"\x06" + plain)
        put(d, "plain-gz-blob", b"\x0c" + tar("plain.tar.gz"))
        put(d, "plain-zst-blob", b"\x00" + tar("plain.tar.zst"))
        for name in ["long-gnu", "long-pax", "symlink-replaced", "devices", "modes", "many",
                     "contained-absolute", "contained-symlink-dotdot", "contained-symlink-abs",
                     "contained-symlink-outside", "contained-symlink-tmp",
                     "contained-symlink-dir", "contained-hardlink-symlink",
                     "compat-root-member", "compat-symlink-parents", "compat-hardlinks",
                     "compat-xattrs", "compat-no-trailer", "compat-no-end-blocks", "torn-data",
                     "torn-header", "compat-sparse-gnu", "compat-sparse-posix", "garbage"]:
            put(d, name, b"\x00" + tar(name + ".tar"))
        put(d, "compat-no-trailer-gz", b"\x00" + tar("compat-no-trailer.tar.gz"))
        put(d, "bzip2", b"\x00" + tar("layer.tar.bz2"))
        for path in sorted(glob.glob(os.path.join(work, "hostile-*.tar"))):
            name = os.path.basename(path)[:-4]
            put(d, name, b"\x00" + tar(name + ".tar"))
        # Two layers and the image built from them: whiteouts, opaque directories, a
        # directory over a lower symlink.
        for a, b in [("layer1", "layer2"), ("layer2", "layer3"), ("plain", "layer2")]:
            first, second = tar(a + ".tar"), tar(b + ".tar")
            put(d, "image-%s-%s" % (a, b),
                b"\x10" + struct.pack("<H", len(first)) + first + second)
        # Hand-made entries the helpers do not cover.
        extra = {
            "dotdot-link-target": [make_tars.sym("up", "../../../../etc"),
                                   make_tars.f("up/passwd", b"x\n")],
            "whiteout-dotdot": [make_tars.f(".wh...", b""), make_tars.f("a/.wh...", b"")],
            "hardlink-to-self": [make_tars.hard("self", "self")],
            "abs-hardlink-canary": [make_tars.hard("evil", ABS_CANARY + "/canary")],
            "deep": [make_tars.f("/".join(["d"] * 130) + "/f", b"deep\n")],
        }
        for name, entries in extra.items():
            put(d, name, b"\x00" + trim(make_tars.tar_bytes(entries)))
    finally:
        shutil.rmtree(work)


LOCK = """version = 1

[metadata]
bv_version = "0.1.29"
generated_at = "2026-05-06T10:00:00Z"

[tools.samtools]
tool_id = "samtools"
declared_version_req = ">=1.16"
version = "1.16.1"
spec_kind = "legacy_image"
image_reference = "quay.io/biocontainers/samtools:1.16.1--h6899075_1"
image_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
manifest_sha256 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
image_size_bytes = 12345
resolved_at = "2026-05-06T10:00:00Z"
binaries = ["samtools"]

[[tools.samtools.layers]]
digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
size = 42
media_type = "application/vnd.oci.image.layer.v1.tar+gzip"

[tools.samtools.layers.conda_package]
name = "samtools"
version = "1.16.1"
build = "h6899075_1"
channel = "bioconda"
sha256 = "sha256:4444444444444444444444444444444444444444444444444444444444444444"

[tools.samtools.reference_data_pins.ref]
id = "pfam"
version = "36.0"
sha256 = "sha256:5555555555555555555555555555555555555555555555555555555555555555"

[binary_index]
samtools = "samtools"
"""

HOSTILE_LOCK = """version = 1

[metadata]
bv_version = "0.1.29"
generated_at = "2026-05-06T10:00:00Z"

[tools."../../evil"]
tool_id = "../../evil"
version = "1.0"
image_reference = "quay.io/x/evil:1"
image_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
resolved_at = "2026-05-06T10:00:00Z"
"""

PROJECT = """[project]
name = "demo"
description = "a project"

[registry]
url = "https://github.com/mlberkeley/bv-registry"

[runtime]
backend = "native"

[hardware]
gpu = false
cpu_cores = 4
ram_gb = 8.5

[[tools]]
id = "samtools"
version = ">=1.16, <2"

[[tools]]
id = "bwa"

[binary_overrides]
sudo = "samtools"

[[cache]]
match = "*"
container_path = "/cache"
host_path = "~/.cache/bv-models/{tool}"

[data.ref]
id = "pfam"
version = "36.0"
"""

HOSTILE_PROJECT = """[[tools]]
id = "../x"

[[cache]]
container_path = "/proc/x,rw"
host_path = "~/.ssh"
"""

HOSTILE_MANIFEST_TAIL = """
[tool.reference_data.db]
id = "db"
version = "../../../.ssh"
mount_path = "/data/../etc"

[tool.subcommands]
"../../evil" = ["samtools"]

[tool.entrypoint.env]
"LD_PRELOAD=/x;A" = "1"
"""


def model_seeds(shared):
    d = fresh("fuzz_model")
    files = sorted(glob.glob(os.path.join(shared, "bv-registry-sample/tools/*/*.toml")))[:12]
    files += sorted(glob.glob(os.path.join(shared, "bv-registry-sample/data/*/*.toml")))
    files += sorted(glob.glob(os.path.join(TOP, "tests/fixtures/bv-registry/tools/*/*.toml")))
    files += sorted(glob.glob(os.path.join(TOP, "tests/data/lock/*.lock")))
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        put(d, "%s-%s" % (os.path.basename(os.path.dirname(path)), os.path.basename(path)), data)
    sam = os.path.join(TOP, "tests/fixtures/bv-registry/tools/samtools/1.16.1.toml")
    with open(sam) as fh:
        manifest = fh.read()
    put(d, "hostile-manifest.toml", manifest + HOSTILE_MANIFEST_TAIL)
    # no [tool.binaries]: the binary is the entrypoint's basename, here ".."
    lines, skip = [], False
    for line in manifest.splitlines(keepends=True):
        if line.startswith("["):
            skip = line.strip() == "[tool.binaries]"
        if not skip:
            lines.append(line.replace('command = "samtools"', 'command = "/usr/bin/.."'))
    put(d, "entrypoint-dotdot.toml", "".join(lines))
    put(d, "bv.lock", LOCK)
    put(d, "hostile.lock", HOSTILE_LOCK)
    put(d, "bv.toml", PROJECT)
    put(d, "hostile-bv.toml", HOSTILE_PROJECT)
    put(d, "minimal-bv.toml", "[project]\nname = \"x\"\n")


def dockerignore_seeds():
    d = fresh("fuzz_dockerignore")
    seeds = {
        "basic": "# comment\n*.log\nbuild/\n!build/keep.txt\n\0app.log\nbuild/x.o\nbuild/keep.txt\nsrc/main.c\n",
        "doublestar": "**/*.pyc\n**/__pycache__\ncache/**\n!cache/**/keep\n\0a/b/c.pyc\ncache/x/keep\ncache\n",
        "exceptions": "*\n!src\n!src/**\nsrc/tmp\n\0src/tmp/a\nsrc/a\nREADME\n",
        "classes": "[a-c]?.txt\n[!x]*.md\n\\#lit\n\0ab.txt\nxy.md\n#lit\n",
        "clean": "./a//b/\n/c/../d\n  spaced  \n!\n\0a/b\nd\nspaced\n",
        "bom": "\xef\xbb\xbfnode_modules\n\0node_modules/x/y\n",
        "invalid": "[abc\n\0x\n",
    }
    for name, text in seeds.items():
        put(d, name, text.encode("latin-1") if name == "bom" else text)


def docker_config_seeds():
    import base64
    d = fresh("fuzz_docker_config")

    def auth(user, password):
        return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    seeds = {
        "auths": '{"auths":{"quay.io":{"auth":"%s"}}}' % auth("alice", "hunter2-secret"),
        "hub": '{"auths":{"https://index.docker.io/v1/":{"auth":"%s"}}}' % auth("bob", "pw-bob-1234"),
        "userpass": '{"auths":{"127.0.0.1:5000":{"username":"u","password":"p4ssw0rd"}}}',
        "token": '{"auths":{"https://ghcr.io":{"identitytoken":"tok-abcdef"}}}',
        "bad-auth": '{"auths":{"quay.io":{"auth":"not base64!"}}}',
        "not-object": '{"auths":{"quay.io":"x"}}',
        "invalid": '{"auths":{"quay.io":{"auth":"%s"}' % auth("carol", "very-secret-pw"),
        "helper-missing": '{"credHelpers":{"quay.io":"ecr-login"}}',
        "helper": '{"credHelpers":{"quay.io":"fuzz"},"auths":{"quay.io":{}}}\0'
                  '0{"ServerURL":"quay.io","Username":"h","Secret":"helper-secret-42"}',
        "helper-fails": '{"credsStore":"fuzz"}\0' '1credentials not found in native keychain',
        "helper-garbage": '{"credsStore":"fuzz"}\0' '0no json here helper-secret-42',
        "helper-bad-name": '{"credsStore":"../../bin/sh"}',
    }
    for name, text in seeds.items():
        put(d, name, text)


def signature_seeds():
    """Flag byte 0: a simple-signing payload; 1: a .sig manifest; 2: a base64 annotation."""
    d = fresh("fuzz_signature")
    digest = "sha256:" + "ab" * 32
    payload = ('{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/t/x"},'
               '"image":{"docker-manifest-digest":"%s"},'
               '"type":"cosign container image signature"},"optional":null}' % digest)
    layer = ('{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":%d,'
             '"digest":"%s","annotations":{"dev.cosignproject.cosign/signature":"%s"}}')
    sig = "MEUCIQDx" + "A" * 84 + "=="
    seeds = {
        "payload": "\0" + payload,
        "payload-type": "\0" + payload.replace("cosign container", "other"),
        "manifest": "\1" + '{"schemaVersion":2,"config":{"mediaType":"x","size":2,"digest":"%s"},'
                    '"layers":[%s,%s]}' % (digest, layer % (len(payload), digest, sig),
                                            layer % (1, digest, "Zm9v")),
        "manifest-other": "\1" + '{"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",'
                          '"size":1,"digest":"%s"}]}' % digest,
        "base64": "\2" + sig,
        "base64-short": "\2Zg==",
    }
    for name, text in seeds.items():
        put(d, name, text)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "..", "shared")
    unpack_seeds()
    model_seeds(shared)
    dockerignore_seeds()
    docker_config_seeds()
    signature_seeds()


if __name__ == "__main__":
    main()
