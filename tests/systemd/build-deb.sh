#!/bin/sh
# Build rftpd's Debian package into OUTDIR, for tests/systemd.rs and tests/packaging.rs.
# Installs cargo-deb first when it is missing (cargo install cargo-deb --locked).
# Usage: build-deb.sh OUTDIR [--no-build]   (--no-build: package target/release/rftpd as is)
set -eu
out=$1
shift
cd "$(dirname "$0")/../.."
cargo=${CARGO:-cargo}
if ! "$cargo" deb --version >/dev/null 2>&1; then
    echo "build-deb.sh: installing cargo-deb" >&2
    "$cargo" install cargo-deb --locked --quiet
fi
mkdir -p "$out"
"$cargo" deb --quiet --output "$out" "$@" -- --locked >&2
ls "$out"/rftpd_*.deb
