//! The `unidma` command line.

use clap::{Parser, Subcommand};
use std::io::Write;

/// Command-line arguments of `unidma`.
#[derive(Parser, Debug)]
#[command(
    name = "unidma",
    version,
    about = "Unified DMA mapping layer: reports, P2P verdicts, mappings"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The main job: describe the machine and its DMA capabilities.
    Report {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the CLI; returns the process exit code (0 ok, 2 bad input).
pub fn run(cli: Cli, out: &mut dyn Write) -> std::io::Result<i32> {
    match cli.command {
        Command::Report { json } => {
            let layers = [
                (
                    "scatterlist",
                    "scatter-gather tables, Linux lib/scatterlist.c semantics",
                ),
                (
                    "dma-api",
                    "address types, errors, windows, masks, directions, attrs",
                ),
                ("dma-arch", "per-arch backends (pending)"),
                ("dma-iommu", "IOVA allocator, page tables (pending)"),
                ("dma-consumers", "drivers on the dma-api traits (pending)"),
            ];
            if json {
                let v: Vec<_> = layers
                    .iter()
                    .map(|(n, d)| serde_json::json!({"crate": n, "what": d}))
                    .collect();
                writeln!(out, "{}", serde_json::json!({ "layers": v }))?;
            } else {
                writeln!(out, "unidma {}", env!("CARGO_PKG_VERSION"))?;
                for (n, d) in layers {
                    writeln!(out, "  {n:<14} {d}")?;
                }
            }
            Ok(0)
        }
    }
}
