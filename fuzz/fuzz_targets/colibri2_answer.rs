//! Fuzz target `colibri2_answer`: a thin wrapper over `jicofo::fuzzing::colibri2_answer` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("colibri2_answer", data);
});
