//! The `unidma` binary.

use std::io::Write;

/// The process allocator. Loading a large machine file and assembling it is
/// dominated by many small allocations and their frees; mimalloc cuts the
/// user time of `check` at 65 536 functions by a fifth to a quarter against
/// glibc's malloc (RFC 5.7.4). Built without transparent huge pages (`no_thp`): with them its
/// arenas were zeroed 2 MiB at a time again after every purge, which cost
/// up to half a second of system time. Libraries never choose an
/// allocator; only this binary does.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Buffered: a report of a million P2P pairs is written in large
    // blocks, not one system call per line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut err = std::io::stderr().lock();
    let mut code = unidma::cli::run_args(std::env::args_os(), &mut out, &mut err);
    if let Err(e) = out.flush().or_else(|e| match e.kind() {
        // The reader stopped reading (`unidma report | head`): quiet success.
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    }) {
        let _ = writeln!(err, "unidma: output error: {e}");
        code = code.max(1);
    }
    std::process::exit(code);
}
