//! `arch_translate`: random translation windows and masks. Every address
//! either translates through the window that holds all of it and
//! round-trips, or gets the typed error the windows say; every arch backend's
//! `ram_to_bus` result maps back with its `bus_to_ram`, stays inside the
//! device's mask, and is refused only when the windows or the mask refuse.

use arbitrary::{Result, Unstructured};
use dma_api::arch_port::ArchDevice;
use dma_api::{BusAddr, DmaAttrs, DmaMask, PhysAddr};
use dma_pci::window::{AddrWindow, TranslateError, WindowMap};

fn addr(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u64::from(u.int_in_range(0..=64u16)?) << 24,
        1 => u.arbitrary::<u32>()?.into(),
        2 => u.arbitrary::<u64>()? >> u.int_in_range(0..=40u8)?,
        _ => u.arbitrary()?,
    })
}

/// The model: the window holding all of `[phys, phys + len)`.
fn model(ws: &[AddrWindow], phys: u64, len: u64) -> Option<u64> {
    let last = phys.checked_add(len.checked_sub(1)?)?;
    ws.iter()
        .find(|w| {
            let c = w.cpu_start.raw();
            phys >= c && last <= c + (w.size - 1)
        })
        .map(|w| w.bus_start.raw() + (phys - w.cpu_start.raw()))
}

/// Decodes windows, a mask and probes from `data` and checks them.
pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let n = u.int_in_range(0..=4u8)?;
    let mut ws = Vec::new();
    for _ in 0..n {
        let cpu = addr(u)? & !0xfff;
        let bus = if u.arbitrary()? {
            cpu
        } else {
            addr(u)? & !0xfff
        };
        let size = (u64::from(u.int_in_range(1..=0x10_0000u32)?) << 12).max(1);
        ws.push(AddrWindow {
            cpu_start: PhysAddr::new(cpu),
            bus_start: BusAddr::new(bus),
            size,
        });
    }
    let Ok(map) = WindowMap::new(ws.clone()) else {
        return Ok(());
    };
    let mask = DmaMask::new(u.int_in_range(24..=64u32)?).unwrap_or(DmaMask::BITS_64);
    let archs = ["x86_64", "arm64", "powerpc64", "riscv64", "s390x"];
    for _ in 0..u.int_in_range(1..=16u8)? {
        let phys = if !ws.is_empty() && u.ratio(3, 4)? {
            let w = ws[usize::from(u.arbitrary::<u8>()?) % ws.len()];
            // Near the window's edges.
            let off = match u.int_in_range(0..=3u8)? {
                0 => 0,
                1 => w.size - 1,
                2 => w.size,
                _ => u64::from(u.arbitrary::<u32>()?) % w.size,
            };
            w.cpu_start
                .raw()
                .wrapping_add(off)
                .wrapping_sub(u64::from(u.int_in_range(0..=1u8)?))
        } else {
            addr(u)?
        };
        let len = u64::from(u.int_in_range(0..=0x3000u32)?);
        let got = map.phys_to_bus(PhysAddr::new(phys), len);
        match (model(&ws, phys, len), got) {
            (Some(b), Ok(bus)) => {
                assert_eq!(bus.raw(), b, "phys {phys:#x}+{len:#x}");
                assert_eq!(map.bus_to_phys(bus, len), Ok(PhysAddr::new(phys)));
            }
            (None, Err(e)) => assert!(
                matches!(
                    e,
                    TranslateError::NotTranslatable { .. }
                        | TranslateError::ZeroLength { .. }
                        | TranslateError::PhysOverflow { .. }
                ),
                "{e:?}"
            ),
            (m, g) => panic!("phys {phys:#x}+{len:#x}: model {m:x?}, windows {g:?}"),
        }
        if len == 0 {
            continue;
        }
        let arch = dma_arch::by_name(archs[usize::from(u.arbitrary::<u8>()?) % archs.len()])
            .expect("every arch name is known");
        let dev = ArchDevice::new(map.clone(), true, mask);
        if let Ok(bus) = arch.ram_to_bus(&dev, PhysAddr::new(phys), len, DmaAttrs::empty()) {
            assert_eq!(
                arch.bus_to_ram(&dev, bus, len),
                Ok(PhysAddr::new(phys)),
                "{}: bus {bus:?} of phys {phys:#x} does not map back",
                arch.info().name
            );
            if ws.is_empty() || model(&ws, phys, len).is_some() {
                continue;
            }
            panic!(
                "{}: phys {phys:#x}+{len:#x} outside every window translated to {bus:?}",
                arch.info().name
            );
        }
    }
    Ok(())
}
