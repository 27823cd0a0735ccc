//! Fuzz target `gateways`: a thin wrapper over `jicofo::fuzzing::gateways` (see there for the
//! input format and the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jicofo::fuzzing::run("gateways", data);
});
