//! The `unidma` binary.

use clap::Parser;

fn main() {
    let cli = unidma::cli::Cli::parse();
    let mut out = std::io::stdout().lock();
    match unidma::cli::run(cli, &mut out) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("unidma: {e}");
            std::process::exit(1);
        }
    }
}
