//! Reading one function's directory into a [`RawPciDevice`].

use super::attr::{link_name, read_dec, read_hex, read_text};
use super::path::parse_device_path;
use super::record::{RawBar, RawPciDevice};
use super::resource::parse_resource;
use super::warning::{Problem, Warning};
use dma_pci::bdf::Bdf;
use dma_pci::config::{parse_config, ParsedConfig};
use std::path::{Path, PathBuf};

struct Ctx<'a> {
    dir: &'a Path,
    warnings: &'a mut Vec<Warning>,
}

impl Ctx<'_> {
    fn warn(&mut self, path: PathBuf, what: Problem) {
        self.warnings.push(Warning { path, what });
    }

    /// Runs `f` on `dir/name`; a problem becomes a warning and `None`.
    fn get<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<Option<T>, Problem>,
    ) -> Option<T> {
        let path = self.dir.join(name);
        match f(&path) {
            Ok(v) => v,
            Err(p) => {
                self.warn(path, p);
                None
            }
        }
    }

    /// Like `get`, but a missing file is also a warning (always present on Linux).
    fn need<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<Option<T>, Problem>,
    ) -> Option<T> {
        let path = self.dir.join(name);
        match f(&path) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.warn(
                    path,
                    Problem::Io {
                        kind: std::io::ErrorKind::NotFound,
                        message: "missing".into(),
                    },
                );
                None
            }
            Err(p) => {
                self.warn(path, p);
                None
            }
        }
    }
}

fn read_config(ctx: &mut Ctx<'_>) -> Option<ParsedConfig> {
    let path = ctx.dir.join("config");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            ctx.warn(path, Problem::io(&e));
            return None;
        }
    };
    match parse_config(&bytes) {
        Ok(p) => {
            for issue in &p.issues {
                ctx.warn(path.clone(), Problem::Config(*issue));
            }
            Some(p)
        }
        Err(e) => {
            ctx.warn(path, Problem::Config(e));
            None
        }
    }
}

/// Reads the function directory `entry` (named `bdf`). Problems go to
/// `warnings`; `None` only when the function has no readable IDs at all.
pub fn read_device(entry: &Path, bdf: Bdf, warnings: &mut Vec<Warning>) -> Option<RawPciDevice> {
    let mut ctx = Ctx {
        dir: entry,
        warnings,
    };
    let (sysfs_path, parent, host_bridge) = match std::fs::canonicalize(entry) {
        Ok(canon) => {
            let text = canon.to_string_lossy().into_owned();
            match parse_device_path(&text) {
                Some(p) if p.bdf == bdf => {
                    if p.host_bridge.is_none() {
                        ctx.warn(canon.clone(), Problem::NoHostBridge);
                    }
                    (canon, p.parent, p.host_bridge)
                }
                _ => {
                    let last = canon
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    ctx.warn(
                        canon.clone(),
                        Problem::NameMismatch {
                            entry: bdf,
                            path: last,
                        },
                    );
                    (canon, None, None)
                }
            }
        }
        Err(e) => {
            ctx.warn(entry.to_path_buf(), Problem::io(&e));
            (PathBuf::new(), None, None)
        }
    };

    let cfg = read_config(&mut ctx);
    let vendor = ctx
        .need("vendor", |p| read_hex(p, 0xffff, "a 16-bit hex vendor ID"))
        .map(|v| v as u16)
        .or(cfg.as_ref().map(|c| c.header.vendor));
    let device = ctx
        .need("device", |p| read_hex(p, 0xffff, "a 16-bit hex device ID"))
        .map(|v| v as u16)
        .or(cfg.as_ref().map(|c| c.header.device));
    let class = ctx
        .need("class", |p| {
            read_hex(p, 0xff_ffff, "a 24-bit hex class code")
        })
        .map(|v| v as u32)
        .or(cfg.as_ref().map(|c| c.header.class));
    let revision = ctx
        .get("revision", |p| read_hex(p, 0xff, "an 8-bit hex revision"))
        .map(|v| v as u8)
        .or(cfg.as_ref().map(|c| c.header.revision));

    let bars = ctx
        .need("resource", |p| {
            let Some(text) = read_text(p)? else {
                return Ok(None);
            };
            parse_resource(&text).map(Some).map_err(Problem::Resource)
        })
        .unwrap_or_default()
        .into_iter()
        .map(|r| RawBar {
            index: r.index,
            start: r.start,
            size: r.size,
            is_mem: r.is_mem(),
            is_io: r.is_io(),
            is_64: r.is_64(),
            prefetch: r.prefetch(),
        })
        .collect();

    let numa_node = ctx.get("numa_node", |p| {
        Ok(match read_dec(p, "a NUMA node number or -1")? {
            None | Some(-1) => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| Problem::BadNumber {
                text: n.to_string(),
                expected: "a NUMA node number or -1",
            })?),
        })
    });
    let iommu_group = ctx.get("iommu_group", |p| {
        let Some(name) = link_name(p)? else {
            return Ok(None);
        };
        name.parse::<u32>()
            .map(Some)
            .map_err(|_| Problem::BadNumber {
                text: name,
                expected: "a numeric IOMMU group",
            })
    });
    let driver = ctx.get("driver", link_name);
    let dma_mask_bits = ctx.get("dma_mask_bits", |p| {
        let Some(n) = read_dec(p, "a DMA mask width")? else {
            return Ok(None);
        };
        match u32::try_from(n) {
            Ok(b) if b <= 64 => Ok(Some(b)),
            _ => Err(Problem::BadNumber {
                text: n.to_string(),
                expected: "a DMA mask width 0..=64",
            }),
        }
    });

    let (Some(vendor), Some(device), Some(class)) = (vendor, device, class) else {
        ctx.warn(entry.to_path_buf(), Problem::NoIds);
        return None;
    };
    Some(RawPciDevice {
        bdf,
        parent,
        host_bridge,
        sysfs_path,
        vendor,
        device,
        class,
        revision,
        header_type: cfg.as_ref().and_then(|c| c.header.header_type),
        multifunction: cfg.as_ref().map(|c| c.header.multifunction),
        bridge_buses: cfg.as_ref().and_then(|c| c.header.bridge_buses),
        pcie_type: cfg.as_ref().and_then(|c| c.pcie_type()),
        acs: cfg.as_ref().and_then(|c| c.acs),
        config_len: cfg.as_ref().map_or(0, |c| c.len),
        bars,
        numa_node,
        iommu_group,
        driver,
        dma_mask_bits,
    })
}
