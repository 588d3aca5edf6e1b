//! The ACS kernel parameters, parsed and applied like drivers/pci/pci.c
//! (`pci=disable_acs_redir=`, `pci=config_acs=`; syntax per
//! Documentation/admin-guide/kernel-parameters.txt).
//!
//! Device specifiers (drivers/pci/pci.c `pci_dev_str_match`):
//! `[<domain>:]<bus>:<dev>.<fn>[/<dev>.<fn>...]` (a path: each `/dev.fn` is a
//! function on the secondary bus of the previous one) or
//! `pci:<vendor>:<device>[:<subvendor>:<subdevice>]` (hex; subsystem IDs are
//! not modelled and must be absent or `0`). Entries are separated by `;`.
//!
//! `pci:<vendor>:<device>` treats `0` as a wildcard (`config_acs=10x@pci:0:0`
//! matches every device). Entries are separated by `;`. A `,` is rejected:
//! `pci_setup` cuts `pci=` at every `,` before these parsers see it (and a
//! BDF path reads up to `;` only, `pci_dev_str_match_path`).
//! For each device only the *first* matching entry applies
//! (`__pci_config_acs` stops at the first match).
//!
//! `config_acs` flags: characters of `0`/`1`/`x`, rightmost = bit 0 (SV),
//! then TB RR CR UF EC DT. `0` forces a bit off, `1` on, `x` leaves it. Any
//! length parses (empty = zero mask, extra `x` are harmless) but a `0`/`1`
//! beyond bit 6 is invalid. The kernel does not check the capability; bits
//! the port does not implement are hardwired to 0, so we drop them and
//! report a warning. Malformed text is rejected as a whole with a typed
//! error (Linux applies the entries before the bad one, then stops).
//!
//! Two ways to apply them:
//! - [`apply_disable_acs_redir`] / [`apply_config_acs`]: at run time, on the
//!   *current* control value: `ctrl = (ctrl & !mask) | (flags & mask)`;
//! - [`apply_at_enumeration`]: Linux-exact `pci_enable_acs`, treating the
//!   current value as the firmware value: kernel defaults
//!   (`pci_std_enable_acs`), then `disable_acs_redir`, then `config_acs`,
//!   both computed from `fw_ctrl` (so `x` means "as firmware left it").
//!
//! Difference of the run-time pair: Linux applies these once at enumeration,
//! from the firmware's control value (`fw_ctrl`); they apply to the current
//! control value at any time, and each change bumps the topology generation.

use super::acs::Acs;
use super::device::DeviceId;
use super::{Topology, TopologyError};
use crate::bdf::Bdf;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One device specifier.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DevSpec {
    /// A BDF, then `(dev, fn)` steps down secondary buses.
    Path {
        /// The first function.
        start: Bdf,
        /// Further `dev.fn` steps.
        steps: Vec<(u8, u8)>,
    },
    /// Every function with this vendor/device ID.
    Id {
        /// Vendor ID.
        vendor: u16,
        /// Device ID.
        device: u16,
    },
}

impl fmt::Display for DevSpec {
    /// The kernel spelling: `0000:02:03.0/00.0` or `pci:10de:22a3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path { start, steps } => {
                write!(f, "{start}")?;
                for (dev, func) in steps {
                    write!(f, "/{dev:02x}.{func:x}")?;
                }
                Ok(())
            }
            Self::Id { vendor, device } => write!(f, "pci:{vendor:04x}:{device:04x}"),
        }
    }
}

/// One `config_acs` entry: force `flags` under `mask`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AcsSetting {
    /// Which devices.
    pub spec: DevSpec,
    /// Bits to change.
    pub mask: Acs,
    /// New values of the changed bits.
    pub flags: Acs,
}

/// A malformed parameter; names the offending text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AcsParamError {
    /// The offending entry.
    pub entry: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for AcsParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad ACS parameter entry {:?}: {}",
            self.entry, self.reason
        )
    }
}

impl core::error::Error for AcsParamError {}

fn perr(entry: &str, reason: &'static str) -> AcsParamError {
    AcsParamError {
        entry: entry.to_string(),
        reason,
    }
}

fn hex16(s: &str, entry: &str) -> Result<u16, AcsParamError> {
    if s.is_empty() || s.len() > 4 {
        return Err(perr(entry, "IDs are 1..4 hex digits"));
    }
    u16::from_str_radix(s, 16).map_err(|_| perr(entry, "IDs are hex"))
}

/// Parses one device specifier.
pub fn parse_dev_spec(s: &str) -> Result<DevSpec, AcsParamError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("pci:") {
        let parts: Vec<&str> = rest.split(':').collect();
        let (v, d) = match parts.as_slice() {
            [v, d] => (v, d),
            [v, d, sv, sd] => {
                if hex16(sv, s)? != 0 || hex16(sd, s)? != 0 {
                    return Err(perr(s, "subsystem IDs are not modelled"));
                }
                (v, d)
            }
            _ => {
                return Err(perr(
                    s,
                    "expected pci:<vendor>:<device>[:<subvendor>:<subdevice>]",
                ))
            }
        };
        return Ok(DevSpec::Id {
            vendor: hex16(v, s)?,
            device: hex16(d, s)?,
        });
    }
    let mut it = s.split('/');
    let first = it.next().unwrap_or("");
    let start: Bdf = first
        .parse()
        .map_err(|_| perr(s, "expected [domain:]bus:dev.fn"))?;
    let mut steps = Vec::new();
    for step in it {
        let b: Bdf = alloc::format!("00:{step}")
            .parse()
            .map_err(|_| perr(s, "path steps are dev.fn"))?;
        steps.push((b.dev(), b.func()));
    }
    Ok(DevSpec::Path { start, steps })
}

/// Splits the next device specifier off `rest` at `;`, returning the
/// specifier text and what follows the separator.
///
/// `__pci_config_acs` would also accept `,` after a `pci:` id, but the value
/// comes from `pci=...`, and drivers/pci/pci.c `pci_setup` cuts the `pci=`
/// string at every `,` first, so a `,` always ends the parameter (the rest
/// becomes an "Unknown option"). A BDF path would not stop at `,` anyway
/// (`pci_dev_str_match_path` reads up to `;`). We reject `,` with a typed
/// error instead of silently truncating.
fn split_spec(rest: &str) -> (&str, &str) {
    match rest.find(';') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    }
}

fn reject_comma(s: &str) -> Result<(), AcsParamError> {
    if s.contains(',') {
        return Err(perr(
            s,
            "',' ends the pci= option (pci_setup splits at ','); separate entries with ';'",
        ));
    }
    Ok(())
}

/// Parses a `disable_acs_redir=` value: specifiers separated by `;`. An
/// empty entry is an error; a trailing `;` is not (`while (*p)` ends there).
pub fn parse_disable_acs_redir(s: &str) -> Result<Vec<DevSpec>, AcsParamError> {
    reject_comma(s)?;
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (spec, next) = split_spec(rest);
        out.push(parse_dev_spec(spec)?);
        rest = next;
    }
    Ok(out)
}

/// Parses the flags before `@` like `__pci_config_acs`: right to left,
/// `0` → mask bit, `1` → mask and flag bit, `x`/`X` → neither; any other
/// character is invalid. Any length is accepted (an empty string is a zero
/// mask); a `0`/`1` beyond bit 6 (DT) is "Invalid ACS flags specified".
fn parse_flags(flags_s: &str, entry: &str) -> Result<(Acs, Acs), AcsParamError> {
    let (mut mask, mut flags) = (0u32, 0u32);
    for (bit, c) in flags_s.bytes().rev().enumerate() {
        let set = match c {
            b'0' => Some(false),
            b'1' => Some(true),
            b'x' | b'X' => None,
            _ => return Err(perr(entry, "flags are characters of 0, 1, x")),
        };
        if let Some(on) = set {
            if bit > 6 {
                return Err(perr(
                    entry,
                    "a 0 or 1 beyond bit 6 (DT) is an invalid ACS flag",
                ));
            }
            mask |= 1 << bit;
            if on {
                flags |= 1 << bit;
            }
        }
    }
    Ok((
        Acs::from_bits_truncate(mask as u16),
        Acs::from_bits_truncate(flags as u16),
    ))
}

/// Parses a `config_acs=` value: `<flags>@<dev>` entries separated by `;`.
pub fn parse_config_acs(s: &str) -> Result<Vec<AcsSetting>, AcsParamError> {
    reject_comma(s)?;
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (flags_s, dev) = rest
            .split_once('@')
            .ok_or(perr(rest, "expected <flags>@<device> (ACS Flags missing)"))?;
        let (spec, next) = split_spec(dev);
        let entry = &rest[..rest.len() - next.len()];
        let (mask, flags) = parse_flags(flags_s, entry)?;
        out.push(AcsSetting {
            spec: parse_dev_spec(spec)?,
            mask,
            flags,
        });
        rest = next;
    }
    Ok(out)
}

/// The devices a specifier names in `topo` (possibly none).
pub fn resolve(topo: &Topology, spec: &DevSpec) -> Vec<DeviceId> {
    match spec {
        DevSpec::Id { vendor, device } => topo
            .devices()
            .filter(|(_, d)| {
                (*vendor == 0 || d.vendor == *vendor) && (*device == 0 || d.device == *device)
            })
            .map(|(id, _)| id)
            .collect(),
        DevSpec::Path { start, steps } => {
            let Some(mut cur) = topo.lookup(*start) else {
                return Vec::new();
            };
            for &(dev, func) in steps {
                let next = topo.device(cur).and_then(|d| {
                    d.children.iter().copied().find(|c| {
                        topo.device(*c)
                            .is_some_and(|cd| cd.bdf.dev() == dev && cd.bdf.func() == func)
                    })
                });
                match next {
                    Some(n) => cur = n,
                    None => return Vec::new(),
                }
            }
            alloc::vec![cur]
        }
    }
}

/// What applying a parameter did.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AcsApplied {
    /// (device, old control, new control) for every device changed.
    pub changed: Vec<(Bdf, Acs, Acs)>,
    /// Specifiers that matched nothing, or devices without an ACS
    /// capability (Linux warns and continues).
    pub warnings: Vec<String>,
}

/// Applies `(spec, mask, flags)` entries; per device the first matching
/// entry wins.
fn apply_entries(
    topo: &mut Topology,
    entries: &[(DevSpec, Acs, Acs)],
) -> Result<AcsApplied, TopologyError> {
    let mut out = AcsApplied::default();
    let mut done: BTreeSet<DeviceId> = BTreeSet::new();
    for (spec, mask, flags) in entries {
        let ids = resolve(topo, spec);
        if ids.is_empty() {
            out.warnings
                .push(alloc::format!("{spec} matches no device"));
        }
        for id in ids {
            if !done.insert(id) {
                continue;
            }
            let Some(d) = topo.device(id) else { continue };
            let bdf = d.bdf;
            let Some(acs) = d.acs else {
                out.warnings.push(alloc::format!(
                    "{bdf}: no ACS capability, parameter ignored"
                ));
                continue;
            };
            let mut new = (acs.ctrl - *mask) | (*flags & *mask);
            let absent = new - acs.cap;
            if !absent.is_empty() {
                out.warnings.push(alloc::format!(
                    "{bdf}: ACS {absent} not implemented by the port, left off"
                ));
                new &= acs.cap;
            }
            if new != acs.ctrl {
                let old = topo.set_acs_ctrl(id, new)?;
                out.changed.push((bdf, old, new));
            }
        }
    }
    Ok(out)
}

/// Applies `pci=disable_acs_redir=`: clears RR, CR and EC on every listed
/// device. Bumps the topology generation per device changed.
pub fn apply_disable_acs_redir(topo: &mut Topology, value: &str) -> Result<AcsApplied, ApplyError> {
    let entries: Vec<(DevSpec, Acs, Acs)> = parse_disable_acs_redir(value)
        .map_err(ApplyError::Param)?
        .into_iter()
        .map(|s| (s, Acs::REDIRECT, Acs::empty()))
        .collect();
    apply_entries(topo, &entries).map_err(ApplyError::Topology)
}

/// Applies `pci=config_acs=`.
pub fn apply_config_acs(topo: &mut Topology, value: &str) -> Result<AcsApplied, ApplyError> {
    let entries: Vec<(DevSpec, Acs, Acs)> = parse_config_acs(value)
        .map_err(ApplyError::Param)?
        .into_iter()
        .map(|s| (s.spec, s.mask, s.flags))
        .collect();
    apply_entries(topo, &entries).map_err(ApplyError::Topology)
}

/// The inputs of drivers/pci/pci.c `pci_enable_acs` for a Linux-exact
/// enumeration-time computation ([`apply_at_enumeration`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AcsEnumeration<'a> {
    /// `pci_acs_enable`: an IOMMU driver called `pci_request_acs()`, so the
    /// kernel defaults of `pci_std_enable_acs` are applied first.
    pub acs_enable: bool,
    /// `pci_ats_disabled()` (`pci=noats`): Translation Blocking is enabled on
    /// every port that implements it (otherwise only on untrusted ones).
    pub ats_disabled: bool,
    /// The `pci=disable_acs_redir=` value, if given.
    pub disable_acs_redir: Option<&'a str>,
    /// The `pci=config_acs=` value, if given.
    pub config_acs: Option<&'a str>,
}

/// The first entry of `entries` that names `id`, like the scan in
/// `__pci_config_acs` (which stops at the first match).
fn first_match(
    topo: &Topology,
    id: DeviceId,
    entries: &[(DevSpec, Acs, Acs)],
) -> Option<(Acs, Acs)> {
    entries
        .iter()
        .find(|(spec, _, _)| resolve(topo, spec).contains(&id))
        .map(|(_, m, f)| (*m, *f))
}

/// drivers/pci/pci.c `pci_enable_acs` for every function with an ACS
/// capability, treating its current control value as the firmware value
/// (`fw_ctrl`):
///
/// 1. `ctrl = fw_ctrl`; with `acs_enable`, `pci_std_enable_acs` adds
///    `cap & (SV|RR|CR|UF)`, and `cap & TB` when ATS is disabled or the
///    device is untrusted (`external_facing` is not modelled);
/// 2. a `disable_acs_redir` match sets `ctrl = fw_ctrl & !(RR|CR|EC)`
///    (`__pci_config_acs` with mask RR|CR|EC and flags `~mask`);
/// 3. a `config_acs` match sets `ctrl = (fw_ctrl & !mask) | (flags & mask)`,
///    so `x` bits take the *firmware* value (dropping kernel defaults) and
///    an earlier `disable_acs_redir` on the same device is overridden.
///
/// Use it on a topology whose control values are the *firmware* state (a
/// hand-written machine file); a sysfs import already holds the values
/// Linux wrote at enumeration, defaults and parameters included.
///
/// Per parameter the first matching entry wins. Bits the port does not
/// implement are dropped with a warning (hardware hardwires them to 0).
/// Device-specific quirks (`pci_dev_specific_enable_acs`,
/// `pci_dev_specific_disable_acs_redir`) are not modelled. Bumps the
/// generation once per device changed.
pub fn apply_at_enumeration(
    topo: &mut Topology,
    e: &AcsEnumeration<'_>,
) -> Result<AcsApplied, ApplyError> {
    let disable: Vec<(DevSpec, Acs, Acs)> = match e.disable_acs_redir {
        Some(v) => parse_disable_acs_redir(v)
            .map_err(ApplyError::Param)?
            .into_iter()
            .map(|s| (s, Acs::REDIRECT, Acs::empty()))
            .collect(),
        None => Vec::new(),
    };
    let config: Vec<(DevSpec, Acs, Acs)> = match e.config_acs {
        Some(v) => parse_config_acs(v)
            .map_err(ApplyError::Param)?
            .into_iter()
            .map(|s| (s.spec, s.mask, s.flags))
            .collect(),
        None => Vec::new(),
    };
    let mut out = AcsApplied::default();
    for (spec, _, _) in disable.iter().chain(config.iter()) {
        if resolve(topo, spec).is_empty() {
            out.warnings
                .push(alloc::format!("{spec} matches no device"));
        }
    }
    let ids: Vec<DeviceId> = topo.devices().map(|(id, _)| id).collect();
    for id in ids {
        let Some(d) = topo.device(id) else { continue };
        let (bdf, untrusted) = (d.bdf, d.untrusted);
        let Some(acs) = d.acs else {
            if first_match(topo, id, &disable).is_some() || first_match(topo, id, &config).is_some()
            {
                out.warnings.push(alloc::format!(
                    "{bdf}: no ACS capability, parameter ignored"
                ));
            }
            continue;
        };
        let fw = acs.ctrl;
        let mut ctrl = fw;
        if e.acs_enable {
            ctrl |= acs.cap & Acs::REQ_ISOLATION;
            if e.ats_disabled || untrusted {
                ctrl |= acs.cap & Acs::TB;
            }
        }
        if first_match(topo, id, &disable).is_some() {
            ctrl = fw - Acs::REDIRECT;
        }
        if let Some((mask, flags)) = first_match(topo, id, &config) {
            ctrl = (fw - mask) | (flags & mask);
        }
        let absent = ctrl - acs.cap;
        if !absent.is_empty() {
            out.warnings.push(alloc::format!(
                "{bdf}: ACS {absent} not implemented by the port, left off"
            ));
            ctrl &= acs.cap;
        }
        if ctrl != fw {
            let old = topo.set_acs_ctrl(id, ctrl).map_err(ApplyError::Topology)?;
            out.changed.push((bdf, old, ctrl));
        }
    }
    Ok(out)
}

/// Failure applying an ACS parameter.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ApplyError {
    /// The text did not parse.
    Param(AcsParamError),
    /// A device refused the setting.
    Topology(TopologyError),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Param(e) => e.fmt(f),
            ApplyError::Topology(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ApplyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_acs_example_from_kernel_log() {
        let v = parse_config_acs("1111011@0020:02:00.0;101xxxx@0039:00:00.0").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].mask.bits(), 0x7f);
        assert_eq!(v[0].flags.bits(), 0x7b);
        assert_eq!(v[1].mask.bits(), 0x70);
        assert_eq!(v[1].flags.bits(), 0x50);
        assert_eq!(
            v[1].spec,
            DevSpec::Path {
                start: "0039:00:00.0".parse().unwrap(),
                steps: Vec::new()
            }
        );
        assert!(parse_config_acs("11111111@00:01.0").is_err());
        assert!(parse_config_acs("x1111111@00:01.0").is_ok());
        assert!(parse_config_acs("1121@00:01.0").is_err());
        assert!(parse_config_acs("111").is_err());
    }

    #[test]
    fn dev_specs() {
        assert_eq!(
            parse_dev_spec("pci:10b5:8747").unwrap(),
            DevSpec::Id {
                vendor: 0x10b5,
                device: 0x8747
            }
        );
        assert_eq!(
            parse_dev_spec("00:1c.0/0.0/3.0").unwrap(),
            DevSpec::Path {
                start: "0000:00:1c.0".parse().unwrap(),
                steps: alloc::vec![(0, 0), (3, 0)]
            }
        );
        assert!(parse_dev_spec("pci:zz:1").is_err());
        assert!(parse_dev_spec("00:1c").is_err());
        let l = parse_disable_acs_redir("0000:01:00.0;0000:02:01.0").unwrap();
        assert_eq!(l.len(), 2);
    }
}
