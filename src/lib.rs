//! unidma: the `unidma` CLI and the end-to-end scenarios, over machines the
//! simulator (`dma-sim`) assembles.
//!
//! Who depends on it: nobody but its binary and the end-to-end tests; it
//! depends on everything it shows (the PCI model, the DMA API, the arch and
//! IOMMU backends, the simulator). [`cli::run_args`] is the whole CLI as a
//! function, so tests run it in process.
//!
//! # Example: the main job, in process
//!
//! ```
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = unidma::cli::run_args(["unidma", "report", "--json"], &mut out, &mut err);
//! assert_eq!(code, 0);
//! let report: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!(report["machine"]["name"], "reference-server");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod escape;
pub mod gen;
mod names;
pub mod pci_ids;
pub mod providers;
pub mod scenarios;
