//! The `loam` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    let (cli, matches) = loam_config::parse_with_matches::<loam::cli::Cli>();
    loam::logging::init(cli.verbose);
    // TLS (for S3 over https) needs its crypto provider installed before any HTTP client is built.
    loam_ufs::install_process_defaults();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(loam::cli::run(cli, Some(&matches))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Settings that cannot be used exit 2, as a bad command line does (nothing was started).
            let config = e.chain().any(|c| c.is::<loam_config::ConfigError>());
            std::process::ExitCode::from(if config { 2 } else { 1 })
        }
    }
}
