#!/bin/sh
# Builds Ory Hydra v2.3.0 (with SQLite, so `dsn: memory` works) from the tools
# module beside this script, once per machine. The binary lives in a per-user
# cache outside the repository; the build is skipped while the tools go.mod,
# go.sum and the Go version it was built with are unchanged.
#
# Usage: samples/hydra/build.sh      prints the binary's path on stdout
# Env:   CLAIMSMITH_HYDRA_CACHE      cache folder (default
#        ${XDG_CACHE_HOME:-$HOME/.cache}/claimsmith/hydra-v2.3.0)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tools="$here/tools"
cache=${CLAIMSMITH_HYDRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/claimsmith/hydra-v2.3.0}
bin="$cache/hydra"
stamp="$cache/hydra.stamp"

# The stamp names everything that changes the binary: the module graph, the
# build tags and the toolchain.
want=$( (cat "$tools/go.mod" "$tools/go.sum"; echo "tags=sqlite,json1"; go env GOVERSION GOOS GOARCH) | sha256sum | cut -d' ' -f1)

if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
# Build to a temporary name and rename, so a concurrent or interrupted build
# never leaves a half-written binary that looks current.
tmp="$cache/hydra.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "building Ory Hydra v2.3.0 into $bin (first build takes several minutes)" >&2
start=$(date +%s)
(cd "$tools" && CGO_ENABLED=1 go build -tags sqlite,json1 -o "$tmp" github.com/ory/hydra/v2)
mv -f "$tmp" "$bin"
echo "$want" >"$stamp"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
