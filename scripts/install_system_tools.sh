#!/usr/bin/env bash
# System tools, used where they are installed and skipped with a logged reason
# where they are not: cjxl/djxl (the encode benchmark's baseline, Debian libjxl-tools) and
# butteraugli_main (measured distortion, Debian libjxl-devtools), and headless Chromium (the
# dashboard test, Debian chromium). Never fails the install: a machine without apt or root
# simply goes without them, and what needs them is skipped with its reason.
set -uo pipefail

missing=()
command -v cjxl >/dev/null 2>&1 || missing+=(libjxl-tools)
command -v butteraugli_main >/dev/null 2>&1 || missing+=(libjxl-devtools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} not installed (no apt-get here); what needs them is skipped" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif sudo -n true >/dev/null 2>&1; then
    sudo=(sudo -n)
else
    echo "note: ${missing[*]} not installed (needs root: sudo apt-get install ${missing[*]}); what needs them is skipped" >&2
    exit 0
fi
echo "installing ${missing[*]} (Debian packages of libjxl's tools)"
if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    # The package lists may be missing on a fresh machine.
    "${sudo[@]}" apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || echo "note: apt-get could not install ${missing[*]}; what needs them is skipped" >&2
fi
exit 0
