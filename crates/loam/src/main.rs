//! The `loam` binary: hands its command line to the library (`loam::cli::main`).

fn main() -> std::process::ExitCode {
    loam::cli::main(std::env::args_os())
}
