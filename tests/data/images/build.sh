#!/bin/sh
# Rebuilds the committed reference images and expected dumps from tests/data/upstream/
# with the reference C tools (libcomposefs / mkcomposefs 1.0.8).
# Usage: tests/data/images/build.sh [BINDIR]   (default ~/.cache/composefs-reference/bin)
set -eu
BIN=${1:-$HOME/.cache/composefs-reference/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
UP=$HERE/../upstream
EXP=$HERE/../expected
for name in bigfile-xattr bigfile honggfuzz-bigfile-with-acl honggfuzz-chardev-nonzero-size \
    honggfuzz-long-symlink honggfuzz-longlink-unterminated longlink no-newline special special_v1; do
    dump=$UP/$name.dump
    set --
    if [ -f "$dump.version" ]; then
        v=$(cat "$dump.version")
        set -- --min-version="$v" --max-version="$v"
    fi
    "$BIN/mkcomposefs" "$@" --from-file "$dump" "$HERE/$name.img"
    "$BIN/composefs-info" dump "$HERE/$name.img" > "$EXP/$name.dump"
    gzip -9nf "$HERE/$name.img"
done
# The base image that tests/tests/hostile.rs corrupts.
"$BIN/mkcomposefs" --from-file "$HERE/hostile-base.dump" "$HERE/hostile-base.img"
"$BIN/composefs-info" dump "$HERE/hostile-base.img" > "$EXP/hostile-base.dump"
gzip -9nf "$HERE/hostile-base.img"
