//! Fuzz target `conference_request`: a thin wrapper over `jicofo::fuzzing::conference_request` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("conference_request", data);
});
