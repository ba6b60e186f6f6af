#!/usr/bin/env bash
# Prints the path of the consul binary the integration tests run, building it
# from tools/consul (its own module, pinned to Consul v1.14.11) when it is not
# cached yet. The build takes several minutes; the binary is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/registrar/consul-v1.14.11/ and reused.
# REGISTRAR_CONSUL_BIN, if set, names a binary to use instead.
set -euo pipefail

version=v1.14.11

if [ -n "${REGISTRAR_CONSUL_BIN:-}" ]; then
	if [ ! -x "$REGISTRAR_CONSUL_BIN" ]; then
		echo "scripts/consul.sh: REGISTRAR_CONSUL_BIN=$REGISTRAR_CONSUL_BIN is not an executable file" >&2
		exit 1
	fi
	echo "$REGISTRAR_CONSUL_BIN"
	exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/registrar/consul-$version"
bin="$dir/consul"

if [ ! -x "$bin" ]; then
	mkdir -p "$dir"
	# Build beside the final path, then rename: a concurrent or interrupted
	# run never leaves a partial binary at $bin.
	tmp=$(mktemp -d "$dir/build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "scripts/consul.sh: building Consul $version into $bin (takes several minutes, once)" >&2
	start=$SECONDS
	(cd "$root/tools/consul" && go build -o "$tmp/consul" github.com/hashicorp/consul) >&2
	"$tmp/consul" version >/dev/null
	mv -f "$tmp/consul" "$bin"
	echo "scripts/consul.sh: built Consul $version in $((SECONDS - start))s" >&2
fi
echo "$bin"
