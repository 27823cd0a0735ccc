//! Fuzz target `incoming`: a thin wrapper over `jicofo::fuzzing::incoming` (see there for the
//! input format and the properties checked: the typed fast path and the tree path agree).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("incoming", data);
});
