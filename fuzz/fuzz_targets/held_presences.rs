//! Fuzz target `held_presences`: a thin wrapper over `jicofo::fuzzing::held_presences` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("held_presences", data);
});
