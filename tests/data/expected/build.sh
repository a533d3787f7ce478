#!/bin/sh
# Generates the expected `composefs-info` outputs of the upstream assets with the reference
# C tools (libcomposefs / composefs-info 1.0.8), for composefs-tools/tests/info_parity.rs.
# Usage: tests/data/expected/build.sh [BINDIR]   (default ~/.cache/composefs-reference/bin)
#
# - `<asset>.ls` and `<asset>.objects` for the small assets (their `<asset>.dump` is made by
#   ../images/build.sh);
# - `<asset>.{dump,ls,objects}.sha256` for the four large assets, whose outputs run to
#   megabytes (their dump is also byte for byte the input dump).
# No upstream asset has a backing path that triggers the reference's redirect over-read,
# so these are the correct outputs as printed.
set -eu
BIN=${1:-$HOME/.cache/composefs-reference/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
UP=$HERE/../upstream
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for dump in "$UP"/*.dump "$UP"/*.dump.gz; do
    name=$(basename "$dump")
    # should-fail: no image. The two bigfile assets: the reference writes an out-of-line
    # chunk map, which we refuse to read (SPEC.md section 10), so there is nothing to
    # compare with (../images/build.sh keeps their reference dump for the reader tests).
    case $name in should-fail-* | bigfile-xattr.dump | honggfuzz-bigfile-with-acl.dump) continue ;; esac
    stem=${name%.gz}
    stem=${stem%.dump}
    case $name in
        *.gz) gzip -dc "$dump" > "$TMP/in.dump" ;;
        *) cp "$dump" "$TMP/in.dump" ;;
    esac
    set --
    if [ -f "$UP/$stem.dump.version" ]; then
        v=$(cat "$UP/$stem.dump.version")
        set -- --min-version="$v" --max-version="$v"
    fi
    "$BIN/mkcomposefs" "$@" --from-file "$TMP/in.dump" "$TMP/img"
    for cmd in dump ls objects; do
        "$BIN/composefs-info" "$cmd" "$TMP/img" > "$TMP/out" || exit 1
        case $name in
            *.gz) sha256sum < "$TMP/out" | cut -d' ' -f1 > "$HERE/$stem.$cmd.sha256" ;;
            *) [ "$cmd" = dump ] || cp "$TMP/out" "$HERE/$stem.$cmd" ;;
        esac
    done
done
