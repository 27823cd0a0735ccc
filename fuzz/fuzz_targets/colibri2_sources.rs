//! Fuzz target `colibri2_sources`: a thin wrapper over `jicofo::fuzzing::colibri2_sources` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("colibri2_sources", data);
});
