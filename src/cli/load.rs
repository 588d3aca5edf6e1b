//! Getting the machine a command describes.

use super::{Failure, MachineArgs};
use crate::providers::{provider_set, Basis, ProviderSet};
use dma_api::topology::acs_param::{apply_config_acs, apply_disable_acs_redir};
use dma_api::topology::DeviceId;
use dma_api::Bdf;
use dma_sim::machine::Machine;

/// One warning of a sysfs scan or import: where, and what.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Note {
    /// The file or directory at fault.
    pub path: String,
    /// What was wrong.
    pub what: String,
}

/// A machine with what loading it had to say.
pub(crate) struct Loaded {
    /// The machine.
    pub machine: Machine,
    /// Scan and import warnings (sysfs only).
    pub warnings: Vec<Note>,
    /// What the source cannot tell and was assumed (sysfs only).
    pub notes: Vec<String>,
    /// Which devices count as P2P providers: the registered p2pmem
    /// providers, or (sysfs, which shows no registrations) the candidates.
    pub basis: Basis,
    /// The ACS overrides in effect, in the order applied, in kernel
    /// spelling (`disable_acs_redir=0000:02:03.0`).
    pub acs_overrides: Vec<String>,
    /// What applying them warned about (an entry that matches no device, a
    /// device without an ACS capability, bits a port does not implement),
    /// each prefixed with its option; printed on stderr by every command.
    pub acs_warnings: Vec<String>,
}

impl Loaded {
    /// The P2P providers every command uses (see [`crate::providers`]).
    pub(crate) fn providers(&self) -> ProviderSet {
        provider_set(&self.machine, self.basis)
    }
}

impl Loaded {
    /// The machine with every displayed string from outside escaped by
    /// [`crate::escape::display`] (machine, device and host-bridge names,
    /// the source, sysfs notes and warnings): for text output, so a name
    /// cannot forge a line. JSON keeps the exact strings (serde escapes).
    pub(crate) fn escaped(mut self) -> Self {
        use crate::escape::display;
        let e = |s: &str| display(s).into_owned();
        let m = &mut self.machine;
        m.name = e(&m.name);
        m.source = e(&m.source);
        m.topology.relabel(&e);
        for n in &mut self.notes {
            *n = e(n);
        }
        for w in &mut self.warnings {
            w.path = e(&w.path);
            w.what = e(&w.what);
        }
        for w in &mut self.acs_warnings {
            *w = e(w);
        }
        for o in &mut self.acs_overrides {
            *o = e(o);
        }
        self
    }
}

/// The machine named by `--machine` / `--sysfs`, else the embedded
/// reference; then the ACS parameters, in kernel order (disable_acs_redir,
/// then config_acs).
pub(crate) fn machine(src: &MachineArgs) -> Result<Loaded, Failure> {
    let mut loaded = if let Some(dir) = &src.sysfs {
        super::sysfs::machine(dir)?
    } else {
        let m = match &src.machine {
            Some(p) => Machine::from_path(p).map_err(|e| Failure::bad_input(e.to_string()))?,
            None => Machine::reference().map_err(|e| Failure::bad_input(e.to_string()))?,
        };
        Loaded {
            machine: m,
            warnings: Vec::new(),
            notes: Vec::new(),
            basis: Basis::Registered,
            acs_overrides: Vec::new(),
            acs_warnings: Vec::new(),
        }
    };
    let m = &mut loaded.machine;
    if let Some(v) = &src.disable_acs_redir {
        let done = apply_disable_acs_redir(&mut m.topology, v)
            .map_err(|e| Failure::bad_input(format!("--disable-acs-redir: {e}")))?;
        loaded.acs_overrides.push(format!("disable_acs_redir={v}"));
        loaded.acs_warnings.extend(
            done.warnings
                .iter()
                .map(|w| format!("--disable-acs-redir: {w}")),
        );
    }
    if let Some(v) = &src.config_acs {
        let done = apply_config_acs(&mut m.topology, v)
            .map_err(|e| Failure::bad_input(format!("--config-acs: {e}")))?;
        loaded.acs_overrides.push(format!("config_acs={v}"));
        loaded
            .acs_warnings
            .extend(done.warnings.iter().map(|w| format!("--config-acs: {w}")));
    }
    Ok(loaded)
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

/// A device that must be an endpoint (a P2P client, a mapping device): a
/// bridge, port or bridge-class function is bad input naming it.
pub(crate) fn endpoint(m: &Machine, spec: &str, role: &str) -> Result<DeviceId, Failure> {
    let id = device(m, spec)?;
    let d = m
        .topology
        .device(id)
        .ok_or_else(|| Failure::bad_input(format!("no device {spec:?} in machine {}", m.name)))?;
    match crate::providers::not_endpoint(d) {
        None => Ok(id),
        Some(what) => Err(Failure::bad_input(format!(
            "{role} {} is {what}, not an endpoint: bridges and ports do not map DMA",
            d.label()
        ))),
    }
}
