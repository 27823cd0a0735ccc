//! Fuzz target `muc_presence`: a thin wrapper over `jicofo::fuzzing::muc_presence` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("muc_presence", data);
});
