#!/usr/bin/env bash
# Makes sure a headless Chromium is installed for the status page's browser
# test (Debian's chromium package; a test tool's own browser download cannot
# reach the network here), and prints the path of its executable.
# REGISTRAR_CHROMIUM overrides the path.
set -euo pipefail

if [ -n "${REGISTRAR_CHROMIUM:-}" ]; then
	echo "$REGISTRAR_CHROMIUM"
	exit 0
fi

find_browser() {
	for b in chromium chromium-browser google-chrome; do
		if p=$(command -v "$b" 2>/dev/null); then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if ! find_browser >/dev/null; then
	echo "scripts/browser.sh: installing Debian's chromium (first run only, a minute or two)" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi
find_browser || { echo "scripts/browser.sh: no chromium after installing it" >&2; exit 1; }
