#!/usr/bin/env bash
# The README's example is examples/counter.cc, verbatim, and it runs: one member founds a group
# in a fresh folder, sends ten messages and delivers them.
set -euo pipefail
readme=$1 source=$2 binary=$3
python3 - "$readme" "$source" <<'PY'
import sys
readme, source = open(sys.argv[1]).read(), open(sys.argv[2]).read()
if source.strip() not in readme:
    sys.exit("README.md does not show examples/counter.cc verbatim; copy it into the README")
PY
dir=$(mktemp -d /tmp/cohort-readme-XXXXXX)
trap 'rm -rf "$dir"' EXIT
out=$(timeout 30 "$binary" "$dir/shm")
echo "$out"
grep -q "^delivered 10 messages in view 1$" <<<"$out"
