//! The `jicofo` binary.
fn main() {}
