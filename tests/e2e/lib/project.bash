# Projects and registries for the end-to-end tests of the project model.

# A copy of the sample registry at $REGISTRY, used in place (a local directory), and
# BV_REGISTRY pointing at it.
use_sample_registry() {
	[ -d "$SHARED_DIR/bv-registry-sample" ] || fail "sample registry not found at $SHARED_DIR/bv-registry-sample"
	REGISTRY="$BATS_TEST_TMPDIR/registry"
	cp -r "$SHARED_DIR/bv-registry-sample" "$REGISTRY"
	export BV_REGISTRY="$REGISTRY"
}

# A project in $PROJECT declaring samtools and bwa, with a bv.lock pinning both.
make_locked_project() {
	PROJECT="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJECT"
	cat >"$PROJECT/bv.toml" <<'TOML'
# alignment project
[project]
name = "align"

[[tools]]
id = "samtools"

# the aligner
[[tools]]
id = "bwa"
version = "^0.7"
TOML
	cat >"$PROJECT/bv.lock" <<'TOML'
version = 1

[metadata]
bv_version = "0.1.29"
generated_at = "2026-05-06T10:00:00Z"

[tools.bwa]
tool_id = "bwa"
declared_version_req = "^0.7"
version = "0.7.18"
spec_kind = "factored_oci"
image_reference = "ghcr.io/tejasprabhune/bv-pkg/bwa:0.7.18"
image_digest = "sha256:b2fb1a972c5d484a2e20e2c6088211418052f18b18eaef1ba1b9f8708713a95b"
manifest_sha256 = ""
image_size_bytes = 20480000
resolved_at = "2026-05-06T10:00:01Z"
binaries = ["bwa"]
layers = []

[tools.bwa.reference_data_pins]

[tools.samtools]
tool_id = "samtools"
version = "1.21.0"
spec_kind = "factored_oci"
image_reference = "ghcr.io/tejasprabhune/bv-pkg/samtools:1.21.0"
image_digest = "sha256:dfe7e8f31d6814b4f76e21af0bc5be7b0c6bcaa774694b188a76c01fb86fa24d"
manifest_sha256 = ""
image_size_bytes = 61234567
resolved_at = "2026-05-06T10:00:01Z"
binaries = ["samtools"]

[tools.samtools.reference_data_pins]

[[tools.samtools.layers]]
digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
size = 1048576
media_type = "application/vnd.oci.image.layer.v1.tar+zstd"

[tools.samtools.layers.conda_package]
name = "htslib"
version = "1.21"
build = "h566b1c6_0"
channel = "https://conda.anaconda.org/bioconda"
sha256 = "2222222222222222222222222222222222222222222222222222222222222222"

[binary_index]
bwa = "bwa"
samtools = "samtools"
TOML
}
