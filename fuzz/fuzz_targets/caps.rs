//! Fuzz target `caps`: a thin wrapper over `jicofo::fuzzing::caps` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("caps", data);
});
