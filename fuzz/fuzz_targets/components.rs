//! Fuzz target `components`: a thin wrapper over `jicofo::fuzzing::components` (see there
//! for the input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("components", data);
});
