//! Fuzz target `json_sources`: a thin wrapper over `jicofo::fuzzing::json_sources` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("json_sources", data);
});
