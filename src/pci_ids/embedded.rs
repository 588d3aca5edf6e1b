//! The embedded excerpt of the PCI ID database.

/// An excerpt of the PCI ID database (<https://pci-ids.ucw.cz/>, the
/// `pci.ids` file of pciutils) in its own format: the vendors and devices of
/// the example machines in `examples/machines/`. A device whose entry is not
/// certain is left out, so it prints as `<vendor> Device <dddd>`, as
/// `lspci` prints an ID the database lacks; a vendor the database lacks
/// (`1234` of `arm64-soc`) is left out too and prints as
/// `Device <vvvv>:<dddd>`. Every line was checked against `pci.ids`
/// version 2026.05.24. The database is distributed
/// under the GNU GPL v2+ or the 3-clause BSD licence; these lines are facts
/// (ID, name) from it.
pub const EMBEDDED_PCI_IDS: &str = "\
# unidma: embedded excerpt of the PCI ID database (pci-ids.ucw.cz)
1000  Broadcom / LSI
\tc010  PEX880xx PCIe Gen 4 Switch
1002  Advanced Micro Devices, Inc. [AMD/ATI]
\t164e  Raphael
\t744c  Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]
1014  IBM
\t04ed  Internal Shared Memory (ISM) virtual PCI device
1022  Advanced Micro Devices, Inc. [AMD]
\t14d8  Raphael/Granite Ridge Root Complex
\t14db  Raphael/Granite Ridge GPP Bridge
104c  Texas Instruments
\t8240  XIO2001 PCI Express-to-PCI Bridge
10b5  PLX Technology, Inc.
\t8747  PEX 8747 48-Lane, 5-Port PCI Express Gen 3 (8.0 GT/s) Switch
10de  NVIDIA Corporation
\t22a3  GH100 [H100 NVSwitch]
\t2330  GH100 [H100 SXM5 80GB]
144d  Samsung Electronics Co Ltd
\ta80a  NVMe SSD Controller PM9A1/PM9A3/980PRO
\ta824  NVMe SSD Controller PM173X
15b3  Mellanox Technologies
\t1016  MT27710 Family [ConnectX-4 Lx Virtual Function]
\t101b  MT28908 Family [ConnectX-6]
1b96  Western Digital
\t2500  Ultrastar DC SN840 NVMe SSD
1d87  Rockchip Electronics Co., Ltd
\t0100  RK3399 PCI Express Root Port
8086  Intel Corporation
\t2020  Sky Lake-E DMI3 Registers
\t2030  Sky Lake-E PCI Express Root Port A
\t2031  Sky Lake-E PCI Express Root Port B
";
