//! PCIe Access Control Services bits, with the spec's bit positions
//! (PCIe r6.0 §7.7.8; Linux include/uapi/linux/pci_regs.h `PCI_ACS_*`).

use core::fmt;

bitflags::bitflags! {
    /// ACS capability or control bits. Bit positions are the PCIe spec's
    /// (SV=0 TB=1 RR=2 CR=3 UF=4 EC=5 DT=6), so a raw register value converts
    /// with [`Acs::from_bits_truncate`].
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
    pub struct Acs: u16 {
        /// Source Validation.
        const SV = 1 << 0;
        /// Translation Blocking.
        const TB = 1 << 1;
        /// P2P Request Redirect.
        const RR = 1 << 2;
        /// P2P Completion Redirect.
        const CR = 1 << 3;
        /// Upstream Forwarding.
        const UF = 1 << 4;
        /// P2P Egress Control.
        const EC = 1 << 5;
        /// Direct Translated P2P.
        const DT = 1 << 6;
    }
}

impl Acs {
    /// The bits that make P2P TLPs go upstream: drivers/pci/p2pdma.c
    /// `pci_bridge_has_acs_redir` tests `RR | CR | EC`.
    pub const REDIRECT: Acs = Acs::RR.union(Acs::CR).union(Acs::EC);

    /// drivers/iommu/iommu.c `REQ_ACS_FLAGS`: what isolation requires.
    pub const REQ_ISOLATION: Acs = Acs::SV.union(Acs::RR).union(Acs::CR).union(Acs::UF);

    /// Names in bit order, for printing and parsing.
    pub const NAMES: [(&'static str, Acs); 7] = [
        ("SV", Acs::SV),
        ("TB", Acs::TB),
        ("RR", Acs::RR),
        ("CR", Acs::CR),
        ("UF", Acs::UF),
        ("EC", Acs::EC),
        ("DT", Acs::DT),
    ];

    /// Parses `"SV|RR|CR"` (also `,`, `+` or space separated, any case);
    /// `""` or `"none"` is empty. Returns the offending word on error.
    pub fn parse_names(s: &str) -> Result<Acs, &str> {
        let mut acc = Acs::empty();
        for word in s.split(['|', ',', '+', ' ']).filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("none") {
                continue;
            }
            let bit = Acs::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(word))
                .map(|(_, b)| *b)
                .ok_or(word)?;
            acc |= bit;
        }
        Ok(acc)
    }
}

impl fmt::Display for Acs {
    /// `lspci`-like: `SV+ TB- RR+ ...` is long; we print set names joined by `|`,
    /// or `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (n, b) in Acs::NAMES {
            if self.contains(b) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A port's ACS extended capability: what it can do and what is enabled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct AcsCap {
    /// ACS Capability register bits.
    pub cap: Acs,
    /// ACS Control register bits.
    pub ctrl: Acs,
}

impl AcsCap {
    /// drivers/pci/p2pdma.c `pci_bridge_has_acs_redir`: any of RR, CR, EC on.
    pub fn redirects(&self) -> bool {
        self.ctrl.intersects(Acs::REDIRECT)
    }

    /// drivers/pci/pci.c `pci_acs_flags_enabled`: bits missing from the
    /// capability count as hard-wired enabled (except EC), the rest must be
    /// set in control.
    pub fn flags_enabled(&self, want: Acs) -> bool {
        let want = want & (self.cap | Acs::EC);
        self.ctrl.contains(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_names() {
        assert_eq!(Acs::SV.bits(), 1);
        assert_eq!(Acs::DT.bits(), 0x40);
        assert_eq!(
            Acs::parse_names("sv|RR, cr").unwrap(),
            Acs::SV | Acs::RR | Acs::CR
        );
        assert_eq!(Acs::parse_names("XX"), Err("XX"));
        assert_eq!(alloc::format!("{}", Acs::RR | Acs::UF), "RR|UF");
    }

    #[test]
    fn flags_enabled_assumes_missing_caps() {
        // Cap lacks UF: UF is treated as hard-wired on.
        let a = AcsCap {
            cap: Acs::SV | Acs::RR | Acs::CR,
            ctrl: Acs::SV | Acs::RR | Acs::CR,
        };
        assert!(a.flags_enabled(Acs::REQ_ISOLATION));
        let b = AcsCap {
            cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
            ctrl: Acs::SV | Acs::CR | Acs::UF,
        };
        assert!(!b.flags_enabled(Acs::REQ_ISOLATION));
        assert!(!b.redirects() || b.ctrl.contains(Acs::CR));
        assert!(b.redirects());
    }
}
