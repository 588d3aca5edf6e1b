//! Getting the machine a command describes.

use super::{Failure, MachineArgs};
use dma_api::machine::Machine;
use dma_api::topology::acs_param::{apply_config_acs, apply_disable_acs_redir};
use dma_api::topology::DeviceId;
use dma_api::Bdf;

/// The machine named by `--machine` / `--sysfs`, else the embedded
/// reference; then the ACS parameters, in kernel order (disable_acs_redir,
/// then config_acs).
pub(crate) fn machine(src: &MachineArgs) -> Result<Machine, Failure> {
    let mut m = if let Some(dir) = &src.sysfs {
        from_sysfs(dir)?
    } else {
        match &src.machine {
            Some(p) => Machine::from_path(p).map_err(|e| Failure::bad_input(e.to_string()))?,
            None => Machine::reference().map_err(|e| Failure::bad_input(e.to_string()))?,
        }
    };
    if let Some(v) = &src.disable_acs_redir {
        apply_disable_acs_redir(&mut m.topology, v)
            .map_err(|e| Failure::bad_input(format!("--disable-acs-redir: {e}")))?;
    }
    if let Some(v) = &src.config_acs {
        apply_config_acs(&mut m.topology, v)
            .map_err(|e| Failure::bad_input(format!("--config-acs: {e}")))?;
    }
    Ok(m)
}

/// `--sysfs DIR`: to be wired to dma_api's sysfs scanner, which produces
/// `DeviceRecord`s for `Topology::build` (see NOTES-machine.md).
fn from_sysfs(dir: &std::path::Path) -> Result<Machine, Failure> {
    Err(Failure::bad_input(format!(
        "--sysfs {}: reading a machine from sysfs is not wired in yet",
        dir.display()
    )))
}

/// A device by BDF (`0000:03:00.0`, `03:00.0`) or by name (`nvme0`).
pub(crate) fn device(m: &Machine, spec: &str) -> Result<DeviceId, Failure> {
    if let Ok(b) = spec.parse::<Bdf>() {
        if let Some(id) = m.topology.lookup(b) {
            return Ok(id);
        }
    }
    m.topology
        .devices()
        .find(|(_, d)| d.name.as_deref() == Some(spec))
        .map(|(id, _)| id)
        .ok_or_else(|| Failure::bad_input(format!("no device {spec:?} in machine {}", m.name)))
}
