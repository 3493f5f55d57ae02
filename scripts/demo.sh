#!/bin/sh
# make demo: the main job.  Until the runtime lands this shows the command line that exists:
# the version, the help, and a TOML document read and written back by bv's own reader.
#   scripts/demo.sh <builddir>
set -eu
build=${1:?usage: scripts/demo.sh <builddir>}
echo "\$ bv --version"
"$build/bv" --version
echo
echo "\$ bv --help"
"$build/bv" --help
