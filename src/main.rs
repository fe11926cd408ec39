//! The `ctrace` binary: parses arguments and dispatches to the library (`ctrace::cli`).

fn main() {
    std::process::exit(ctrace::cli::main());
}
