//! Fuzz target `stanza_errors`: a thin wrapper over `jicofo::fuzzing::stanza_errors` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("stanza_errors", data);
});
