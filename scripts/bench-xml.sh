#!/bin/sh
# Run the XML layer benchmark (benches/xml.rs) in release mode and print its table.
set -eu
cd "$(dirname "$0")/.."
cargo bench --bench xml 2>&1 | grep -v -E '^\s*(Compiling|Finished|Running|Blocking)'
