#!/bin/sh
# Run the bounded-parsing benchmark (benches/hostile_parse.rs) in release mode and print its
# table: the media and caps parsers on the captured stanzas and on hostile inputs at and
# over their bounds (the XML parse itself is measured by scripts/bench-xml.sh).
set -eu
cd "$(dirname "$0")/.."
cargo bench --bench hostile_parse 2>&1 | grep -v -E '^\s*(Compiling|Finished|Running|Blocking)'
