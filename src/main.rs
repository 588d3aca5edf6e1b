//! The `unidma` binary.

fn main() {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = unidma::cli::run_args(std::env::args_os(), &mut out, &mut err);
    std::process::exit(code);
}
