//! berth-shim: one per container; see `berth::shim`.

fn main() {
    // Nothing may run before the shim forks: no runtime, no threads.
    std::process::exit(berth::shim::main(std::env::args().collect()));
}
