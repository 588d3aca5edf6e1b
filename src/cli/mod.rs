//! The `unidma` command line.
//!
//! Exit codes: 0 success; 1 a `p2p` verdict that refuses the asked access,
//! a failed scenario, a broken invariant in a `replay` (or an output error, JSON serialisation included); 2 bad input (unparsable arguments, a bad machine
//! file, an unknown device, a `p2p` provider outside the provider set, a `p2p` client or `map`
//! device that is not an endpoint), with the message on stderr.
//!
//! Every command takes its P2P providers from one place,
//! [`crate::providers`]: the registered p2pmem providers, or candidates
//! for `--sysfs`.

mod arch;
mod attach;
mod check;
mod gen;
mod load;
mod map;
mod matrix;
mod names;
pub use names::{EMBEDDED as PCI_IDS_EMBEDDED, PCI_IDS_ENV};
mod p2p;
mod render;
mod replay;
mod report;
mod scenarios;
mod svg;
mod sysfs;
mod topo;

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Command-line arguments of `unidma`.
#[derive(Parser, Debug)]
#[command(
    name = "unidma",
    version,
    about = "Unified DMA mapping layer: reports, P2P verdicts, mappings"
)]
pub struct Cli {
    /// Print JSON instead of text (every command).
    #[arg(long, global = true)]
    pub json: bool,
    /// PCI ID database for vendor and device names (`report`, `p2p`,
    /// `topo`); default: `UNIDMA_PCI_IDS`, else the system's `pci.ids`, else
    /// a small embedded table.
    #[arg(long, global = true, value_name = "FILE")]
    pub pci_ids: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the machine comes from (commands that describe a machine).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MachineArgs {
    /// A machine file (TOML, docs/machine-format.md); default: the embedded
    /// reference server.
    #[arg(long, value_name = "FILE")]
    pub machine: Option<PathBuf>,
    /// Read the machine from a sysfs tree (`/sys` or a copy of it).
    #[arg(long, value_name = "DIR", conflicts_with = "machine")]
    pub sysfs: Option<PathBuf>,
    /// Apply `pci=disable_acs_redir=` to the machine first (devices
    /// separated by `;`).
    #[arg(long, value_name = "DEVICES")]
    pub disable_acs_redir: Option<String>,
    /// Apply `pci=config_acs=` to the machine first (`<flags>@<device>;...`).
    #[arg(long, value_name = "FLAGS@DEVICES")]
    pub config_acs: Option<String>,
}

/// Which P2P access to judge.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessArg {
    /// The client reads the provider's memory.
    Read,
    /// The client writes the provider's memory.
    Write,
    /// Both.
    #[default]
    Rw,
}

/// `--oracle`: which P2P oracle judges the pairs.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OracleArg {
    /// Exactly the kernel (drivers/pci/p2pdma.c `calc_map_type_and_dist`):
    /// ACS redirect anywhere below the common bridge, either side, sends
    /// both accesses through the host bridge. What mapping follows.
    #[default]
    Linux,
    /// What PCIe routing does: request redirect at each request's ingress
    /// port, completion redirect at the completer's port, per access
    /// (analysis only: mapping still follows Linux).
    Hardware,
}

impl OracleArg {
    /// The oracle mode.
    pub fn oracle(self) -> dma_api::p2p::Oracle {
        match self {
            Self::Linux => dma_api::p2p::Oracle::Linux,
            Self::Hardware => dma_api::p2p::Oracle::Hardware,
        }
    }
}

/// `--iommu`: how devices behind an IOMMU are mapped.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IommuArg {
    /// No IOMMU: direct mapping, no translation at the root complex.
    Off,
    /// Translating domains, strict invalidation.
    #[default]
    Strict,
    /// Translating domains, flush-queue invalidation.
    Lazy,
}

impl IommuArg {
    /// The assembly mode.
    pub fn mode(self) -> dma_sim::assembly::IommuMode {
        match self {
            Self::Off => dma_sim::assembly::IommuMode::Off,
            Self::Strict => dma_sim::assembly::IommuMode::Strict,
            Self::Lazy => dma_sim::assembly::IommuMode::Lazy,
        }
    }
}

/// `--shape` of `unidma gen`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShapeArg {
    /// Root ports, switches, downstream ports and 8-function endpoints.
    #[default]
    Switch,
    /// 8-function root-complex integrated endpoints, 256 per root bus.
    Flat,
}

impl From<ShapeArg> for crate::gen::Shape {
    fn from(s: ShapeArg) -> Self {
        match s {
            ShapeArg::Switch => Self::Switch,
            ShapeArg::Flat => Self::Flat,
        }
    }
}

/// `--dir` of `unidma map`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirArg {
    /// `DMA_TO_DEVICE`: the device reads.
    ToDevice,
    /// `DMA_FROM_DEVICE`: the device writes.
    FromDevice,
    /// `DMA_BIDIRECTIONAL`.
    Bidirectional,
}

impl From<DirArg> for dma_api::Direction {
    fn from(d: DirArg) -> Self {
        match d {
            DirArg::ToDevice => Self::ToDevice,
            DirArg::FromDevice => Self::FromDevice,
            DirArg::Bidirectional => Self::Bidirectional,
        }
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The main job: PCI tree, IOMMU groups, p2pmem providers and the P2P
    /// matrix of the machine.
    Report {
        /// P2P oracle of the matrix.
        #[arg(long, value_enum, default_value_t = OracleArg::Linux)]
        oracle: OracleArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// The P2P matrix as a compact grid (like `nvidia-smi topo -m`): rows
    /// providers, columns clients, one short code per cell, a legend.
    Matrix {
        /// Only this provider's row (BDF or name of a provider).
        #[arg(long, value_name = "NAME|BDF")]
        provider: Option<String>,
        /// Only this client's column (BDF or name of an endpoint).
        #[arg(long, value_name = "NAME|BDF")]
        client: Option<String>,
        /// Only refused cells (and the rows and columns holding one).
        #[arg(long)]
        refused: bool,
        /// P2P oracle.
        #[arg(long, value_enum, default_value_t = OracleArg::Linux)]
        oracle: OracleArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// One P2P verdict (provider → clients) with its reason chain.
    P2p {
        /// Provider: BDF or device name of a registered p2pmem provider (a
        /// candidate, an endpoint with a memory BAR, for `--sysfs`).
        provider: String,
        /// Clients: BDFs or device names of endpoints.
        #[arg(required = true)]
        clients: Vec<String>,
        /// Access to judge.
        #[arg(long, value_enum, default_value_t = AccessArg::Rw)]
        access: AccessArg,
        /// P2P oracle.
        #[arg(long, value_enum, default_value_t = OracleArg::Linux)]
        oracle: OracleArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// Validate a machine file, then assemble it in every IOMMU mode
    /// (strict, lazy, off).
    Check {
        /// The files, each checked and reported on its own; `-` is standard
        /// input (reported as `<stdin>`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Assemble the machine and explain one mapping of `[phys, phys + len)`
    /// for a device: kind, policy, P2P verdict, arch or IOMMU step, DMA
    /// address.
    Map {
        /// The mapping device: BDF or name.
        device: String,
        /// CPU physical start (`0x…`, decimal, `K`/`M`/`G` suffixes).
        #[arg(long, value_parser = map::parse_u64)]
        phys: u64,
        /// Length in bytes.
        #[arg(long, value_parser = map::parse_u64)]
        len: u64,
        /// DMA direction.
        #[arg(long, value_enum)]
        dir: DirArg,
        /// IOMMU mode for devices behind an IOMMU host bridge.
        #[arg(long, value_enum, default_value_t = IommuArg::Strict)]
        iommu: IommuArg,
        /// `swiotlb=force`: direct mappings of RAM bounce.
        #[arg(long)]
        force_bounce: bool,
        /// P2P oracle shown for peer memory (the mapping itself always
        /// follows the Linux oracle, as the dispatcher does).
        #[arg(long, value_enum, default_value_t = OracleArg::Linux)]
        oracle: OracleArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// Run the end-to-end scenarios: map, move real bytes on the fabric,
    /// verify, and report bytes, root-complex and RAM bytes, faults, routes.
    Scenarios {
        /// Default IOMMU mode (the swiotlb and unmap scenarios pick theirs).
        #[arg(long, value_enum, default_value_t = IommuArg::Strict)]
        iommu: IommuArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// Share a buffer: export the first `--len` bytes of EXPORTER's
    /// registered p2pmem, attach IMPORTER, print the negotiation with its
    /// reasons and the mapped segments.
    Attach {
        /// The exporting device: BDF or name of a p2pmem provider.
        exporter: String,
        /// The importing device: BDF or name of an endpoint.
        importer: String,
        /// The importer's access.
        #[arg(long, value_enum, default_value_t = AccessArg::Rw)]
        access: AccessArg,
        /// Bytes to export (a multiple of 4096).
        #[arg(long, value_parser = map::parse_u64, default_value = "0x4000")]
        len: u64,
        /// IOMMU mode for devices behind an IOMMU host bridge.
        #[arg(long, value_enum, default_value_t = IommuArg::Strict)]
        iommu: IommuArg,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
    /// Print a synthetic machine file of N functions (switch trees or flat
    /// RC-integrated endpoints), to measure how the commands scale.
    Gen {
        /// Total PCI functions, ports included (1 to 65536).
        #[arg(long, value_name = "N")]
        functions: usize,
        /// Topology shape.
        #[arg(long, value_enum, default_value_t = ShapeArg::Switch)]
        shape: ShapeArg,
        /// Registered p2pmem providers, spread evenly over the endpoints
        /// (default: a quarter of the endpoint functions).
        #[arg(long, value_name = "K")]
        providers: Option<usize>,
        /// NUMA nodes the host bridges are spread over, round-robin (1 to
        /// 1024; 1 writes no node).
        #[arg(long, value_name = "K", default_value_t = 1)]
        numa_nodes: usize,
    },
    /// Re-run a saved fuzz input (raw bytes, as a fuzz target gets them)
    /// step by step: each step, the decision chain of each mapping, the
    /// invariant result. Exit 1 on a broken invariant.
    Replay {
        /// The input file.
        file: PathBuf,
    },
    /// The topology as a tree, as Graphviz, or as an SVG picture, with P2P
    /// routes highlighted.
    Topo {
        /// Emit Graphviz `dot`.
        #[arg(long, conflicts_with = "svg")]
        dot: bool,
        /// Emit a standalone SVG picture (no external program needed).
        #[arg(long)]
        svg: bool,
        /// Machine source.
        #[command(flatten)]
        src: MachineArgs,
    },
}

/// A failed command: exit code and message for stderr.
pub(crate) struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for Failure {
    /// An output error exits 1 with its message, except a broken pipe (the
    /// reader, `head` say, has what it wanted): that ends quietly with
    /// success, as `lspci | head` does.
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Self {
                code: 0,
                message: String::new(),
            };
        }
        Self {
            code: 1,
            message: format!("output error: {e}"),
        }
    }
}

/// The output of a command whose exit code is a verdict decided before it
/// writes (`p2p`, `map`, `attach`): a reader that leaves early
/// (`unidma p2p a b | head -1`) does not change the verdict. After a broken
/// pipe the rest of the output is dropped; any other error passes through.
/// The binary's buffered stdout behaves the same way (`main` keeps the
/// exit code when the final flush meets a broken pipe), so the exit code no
/// longer depends on how much was written before the pipe closed.
struct KeepVerdict<'a> {
    inner: &'a mut dyn Write,
    closed: bool,
}

impl<'a> KeepVerdict<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            closed: false,
        }
    }

    fn closed<T>(&mut self, r: std::io::Result<T>, done: T) -> std::io::Result<T> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            r => r,
        }
    }
}

impl Write for KeepVerdict<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.closed(r, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.closed(r, ())
    }
}

/// Writes `v` as pretty JSON and a newline; a value that does not
/// serialise is a failure (exit 1, the message on stderr), with nothing
/// written.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    v: &T,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure {
        code: 1,
        message: format!("JSON output failed: {e}"),
    })?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// Writes `v` as pretty JSON and a newline as it serialises, for outputs
/// too large to hold (a P2P matrix of a million pairs): nothing is built
/// in memory, so a failure may leave part of the output written.
pub(crate) fn stream_json<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    v: &T,
) -> Result<(), Failure> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(|e| match e.io_error_kind() {
        Some(kind) => Failure::from(std::io::Error::from(kind)),
        None => Failure {
            code: 1,
            message: format!("JSON output failed: {e}"),
        },
    })?;
    writeln!(out)?;
    Ok(())
}

/// Runs a parsed command line; returns the exit code. Output goes to `out`,
/// diagnostics to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_with_input(cli, &mut std::io::stdin().lock(), out, err)
}

/// [`run`] with `input` as standard input (`unidma check -`).
pub fn run_with_input(
    cli: Cli,
    input: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let json = cli.json;
    // Text output prints names from outside escaped (`crate::escape`);
    // JSON keeps them exact, serde escapes them.
    let load = |src: &MachineArgs, text: bool| {
        load::machine(src).map(|l| if text { l.escaped() } else { l })
    };
    let pci_ids = cli.pci_ids;
    let names = |err: &mut dyn Write| names::load(pci_ids.as_deref(), err);
    let r = match cli.command {
        Command::Report { oracle, src } => load(&src, !json).and_then(|l| {
            acs_warnings(&l, err);
            let ids = names(err)?;
            report::run(&l, &ids, oracle.oracle(), json, out)
        }),
        Command::Matrix {
            provider,
            client,
            refused,
            oracle,
            src,
        } => load::machine(&src).and_then(|l| {
            mention_warnings(&l, err);
            let filter = matrix::Filter {
                provider,
                client,
                refused,
            };
            matrix::run(&l, &filter, oracle.oracle(), json, out)
        }),
        Command::P2p {
            provider,
            clients,
            access,
            oracle,
            src,
        } => load(&src, !json).and_then(|l| {
            mention_warnings(&l, err);
            let ids = names(err)?;
            let q = p2p::Query {
                provider: &provider,
                clients: &clients,
                access,
                oracle: oracle.oracle(),
            };
            p2p::run(&l, &ids, &q, json, &mut KeepVerdict::new(out))
        }),
        Command::Map {
            device,
            phys,
            len,
            dir,
            iommu,
            force_bounce,
            oracle,
            src,
        } => load(&src, !json).and_then(|l| {
            mention_warnings(&l, err);
            map::run(
                l.machine,
                &device,
                phys,
                len,
                dir.into(),
                iommu,
                force_bounce,
                oracle.oracle(),
                json,
                &mut KeepVerdict::new(out),
            )
        }),
        Command::Check { files } => check::run(&files, input, json, out, err),
        Command::Replay { file } => replay::run(&file, json, out),
        Command::Gen {
            functions,
            shape,
            providers,
            numa_nodes,
        } => gen::run(functions, shape, providers, numa_nodes, json, out),
        Command::Scenarios { iommu, src } => load(&src, !json).and_then(|l| {
            mention_warnings(&l, err);
            scenarios::run(&l.machine, iommu, json, out)
        }),
        Command::Attach {
            exporter,
            importer,
            access,
            len,
            iommu,
            src,
        } => load(&src, !json).and_then(|l| {
            mention_warnings(&l, err);
            attach::run(
                l.machine,
                &exporter,
                &importer,
                access,
                len,
                iommu,
                json,
                &mut KeepVerdict::new(out),
            )
        }),
        // DOT is a display format, in a JSON string too.
        Command::Topo { dot, svg, src } => load(&src, !json || dot).and_then(|l| {
            mention_warnings(&l, err);
            let ids = names(err)?;
            let form = match (dot, svg) {
                (true, _) => topo::Form::Dot,
                (_, true) => topo::Form::Svg,
                _ => topo::Form::Tree,
            };
            topo::run(&l, &ids, form, json, out)
        }),
    };
    match r {
        Ok(code) => code,
        Err(f) if f.code == 0 && f.message.is_empty() => 0,
        Err(f) => {
            let _ = writeln!(err, "unidma: {}", crate::escape::display(&f.message));
            f.code
        }
    }
}

/// The warnings of the ACS overrides, one `unidma: warning:` line each on
/// stderr (RFC §5.2: entries that match no device and bits a port does not
/// implement are not silently dropped).
fn acs_warnings(l: &load::Loaded, err: &mut dyn Write) {
    for w in &l.acs_warnings {
        let _ = writeln!(err, "unidma: warning: {}", crate::escape::display(w));
    }
}

/// Commands other than `report` print the ACS warnings and only count the
/// sysfs warnings (on stderr).
fn mention_warnings(l: &load::Loaded, err: &mut dyn Write) {
    acs_warnings(l, err);
    if !l.warnings.is_empty() {
        let _ = writeln!(
            err,
            "unidma: {} warning(s) reading the machine; `unidma report` lists them",
            l.warnings.len()
        );
    }
}

/// Parses `args` (including the program name) and runs; usage errors exit 2,
/// `--help`/`--version` print to `out` and exit 0.
pub fn run_args<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_args_with_input(args, &mut std::io::stdin().lock(), out, err)
}

/// [`run_args`] with `input` as standard input (`unidma check -`).
pub fn run_args_with_input<I, T>(
    args: I,
    input: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => run_with_input(cli, input, out, err),
        Err(e) => {
            use clap::error::ErrorKind as K;
            match e.kind() {
                K::DisplayHelp
                | K::DisplayVersion
                | K::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = write!(out, "{}", e.render());
                    if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    }
                }
                _ => {
                    let _ = write!(err, "{}", e.render());
                    2
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value whose serialisation fails.
    struct Unserialisable;

    impl serde::Serialize for Unserialisable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("deliberately unserialisable"))
        }
    }

    /// Bug: a JSON serialisation failure printed nothing (an empty line) and
    /// the command exited 0. It must exit non-zero with a message.
    #[test]
    fn a_json_serialisation_failure_exits_nonzero_with_a_message() {
        let mut out = Vec::new();
        match write_json(&mut out, &Unserialisable) {
            Ok(()) => panic!(
                "serialisation failure swallowed; printed {:?}",
                String::from_utf8_lossy(&out)
            ),
            Err(f) => {
                assert_eq!(f.code, 1);
                assert!(
                    f.message.contains("JSON") && f.message.contains("deliberately unserialisable"),
                    "{}",
                    f.message
                );
            }
        }
        assert!(out.is_empty(), "half-written output");
    }
}
