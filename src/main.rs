//! argv → cli → exit code, nothing else.

fn main() -> std::process::ExitCode {
    migproof::cli::main()
}
