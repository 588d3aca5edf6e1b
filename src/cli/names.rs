//! Where the PCI names of `report`, `p2p` and `topo` come from, first match
//! wins:
//!
//! 1. `--pci-ids FILE`: that file; unreadable or malformed is bad input
//!    (exit 2, the message names line and column);
//! 2. the environment variable `UNIDMA_PCI_IDS`: a file as above, or
//!    `embedded` for the embedded excerpt (the golden tests set it, so their
//!    output does not depend on the host's database);
//! 3. the system database, `/usr/share/misc/pci.ids` then
//!    `/usr/share/hwdata/pci.ids` (where pciutils and hwdata install it); one
//!    that exists but does not parse is a warning on stderr, then
//! 4. the embedded excerpt ([`crate::pci_ids::EMBEDDED_PCI_IDS`]).

use super::Failure;
use crate::pci_ids::PciIds;
use std::io::Write;
use std::path::Path;

/// The environment variable naming the database (a path, or `embedded`).
pub const PCI_IDS_ENV: &str = "UNIDMA_PCI_IDS";

/// The value of [`PCI_IDS_ENV`] that selects the embedded excerpt.
pub const EMBEDDED: &str = "embedded";

/// Where distributions install the database, in the order pciutils looks.
const SYSTEM_PATHS: [&str; 2] = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

fn read(path: &Path) -> Result<PciIds, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PciIds::parse_bytes(&bytes).map_err(|e| format!("{}:{e}", path.display()))
}

fn embedded() -> Result<PciIds, Failure> {
    PciIds::embedded().map_err(|e| Failure {
        code: 1,
        message: format!("embedded PCI ID table: {e}"),
    })
}

/// The database for this run (see the module docs); warnings go to `err`.
pub(crate) fn load(option: Option<&Path>, err: &mut dyn Write) -> Result<PciIds, Failure> {
    if let Some(p) = option {
        return read(p).map_err(|m| Failure::bad_input(format!("--pci-ids {m}")));
    }
    if let Some(v) = std::env::var_os(PCI_IDS_ENV) {
        if v == EMBEDDED {
            return embedded();
        }
        return read(Path::new(&v)).map_err(|m| Failure::bad_input(format!("{PCI_IDS_ENV}: {m}")));
    }
    for p in SYSTEM_PATHS.iter().map(Path::new) {
        if !p.exists() {
            continue;
        }
        match read(p) {
            Ok(ids) => return Ok(ids),
            Err(m) => {
                let _ = writeln!(
                    err,
                    "unidma: warning: PCI ID database {m}; using the embedded table"
                );
                break;
            }
        }
    }
    embedded()
}
