#!/usr/bin/env bash
# Installs the tools the checks need, pinned, into the cache, and prints the
# directory that holds them. Reuses what is already installed.
set -euo pipefail

GOLANGCI_LINT_VERSION=v2.15.0

cache="${XDG_CACHE_HOME:-$HOME/.cache}/registrar"
bin="$cache/bin"
mkdir -p "$bin"

want="golangci-lint-$GOLANGCI_LINT_VERSION"
if [ ! -x "$bin/$want" ]; then
	echo "scripts/tools.sh: installing golangci-lint $GOLANGCI_LINT_VERSION (first run only, a few minutes)" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
	mv "$tmp/golangci-lint" "$bin/$want"
fi
ln -sf "$want" "$bin/golangci-lint"
echo "$bin"
