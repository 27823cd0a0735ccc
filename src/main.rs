//! The `jicofo` binary: parse the command line, start the event loop with the focus
//! router, wait for SIGTERM/SIGINT, shut down cleanly.

fn main() {
    std::process::exit(jicofo::app::main());
}
