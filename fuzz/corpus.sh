#!/usr/bin/env bash
# The minimised fuzz corpus lives in one archive, corpus.tar.gz (<target>/<sha1> entries); the
# seeds (corpus/<target>/seed-*) and any input that ever crashed (corpus/<target>/crash-*) stay
# plain files. cargo fuzz wants directories, so:
#   fuzz/corpus.sh unpack   archive -> corpus/<target>/ (ignored by git beside the seeds)
#   fuzz/corpus.sh pack     corpus/<target>/ minus seeds and crashes -> archive (after cmin)
# The archive is written reproducibly (sorted names, fixed mtime and owner, gzip -n), so packing
# an unchanged corpus gives the same bytes. tests/fuzz_corpus.rs reads it without unpacking.
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
unpack)
    tar -xzf corpus.tar.gz -C corpus
    echo "unpacked $(tar -tzf corpus.tar.gz | grep -vc '/$') inputs into corpus/"
    ;;
pack)
    staging="$(mktemp -d)"
    trap 'rm -rf "$staging"' EXIT
    for dir in corpus/*/; do
        t="$(basename "$dir")"
        mkdir -p "$staging/$t"
        find "$dir" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' -exec cp {} "$staging/$t/" \;
    done
    (cd "$staging" && tar --sort=name --mtime='2026-01-01 00:00Z' --owner=0 --group=0 \
        --numeric-owner --format=gnu -cf - -- *) | gzip -9n >corpus.tar.gz
    echo "packed $(tar -tzf corpus.tar.gz | grep -vc '/$') inputs into corpus.tar.gz"
    ;;
*)
    echo "usage: fuzz/corpus.sh unpack|pack" >&2
    exit 2
    ;;
esac
