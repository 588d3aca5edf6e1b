//! Every cargo-fuzz target, run in the ordinary test suite (CI has no
//! cargo-fuzz): the target's checking function (`unidma_tests::fuzz_checks`,
//! which the `fuzz_target!` in `fuzz/fuzz_targets/<name>.rs` calls) over
//! (a) the checked-in seeds in `fuzz/seeds/<name>/` and (b) inputs from a
//! seeded xorshift generator: mutations of those seeds and token soups
//! biased toward each parser's grammar, so that parses sometimes succeed.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use unidma_tests::fuzz_checks::{Check, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("dir entry").path();
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// Runs `check` on `data`; on a failure, names the input before re-raising.
fn run(check: Check, what: &str, data: &[u8]) {
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(data))) {
        eprintln!(
            "fuzz check failed on {what}: {:?} (hex {})",
            String::from_utf8_lossy(data),
            data.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        resume_unwind(e);
    }
}

/// xorshift64*: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// The grammar a text target is biased toward: whole tokens and single
/// characters.
struct Grammar {
    tokens: &'static [&'static str],
    chars: &'static [u8],
    max_len: usize,
}

/// A token soup: mostly grammar tokens, some grammar characters, a few
/// arbitrary bytes.
fn soup(rng: &mut Rng, g: &Grammar) -> Vec<u8> {
    let n = rng.below(g.max_len) + 1;
    let mut out = Vec::new();
    for _ in 0..n {
        match rng.below(20) {
            0..=13 => out.extend_from_slice(rng.pick(g.tokens).as_bytes()),
            14..=18 => out.push(*rng.pick(g.chars)),
            _ => out.push(rng.next() as u8),
        }
    }
    out
}

/// A seed with a few edits: byte changes, deletions, insertions of grammar
/// tokens, truncation, splicing with another seed.
fn mutate(rng: &mut Rng, seeds: &[(String, Vec<u8>)], g: &Grammar) -> Vec<u8> {
    let mut d = rng.pick(seeds).1.clone();
    for _ in 0..rng.below(4) + 1 {
        let at = rng.below(d.len() + 1);
        match rng.below(6) {
            0 if at < d.len() => d[at] = rng.next() as u8,
            1 if at < d.len() => d[at] ^= 1 << rng.below(8),
            2 if at < d.len() => {
                let end = (at + rng.below(8) + 1).min(d.len());
                d.drain(at..end);
            }
            3 => {
                let t = rng.pick(g.tokens).as_bytes().to_vec();
                d.splice(at..at, t);
            }
            4 => d.truncate(at),
            _ => {
                let other = &rng.pick(seeds).1;
                let from = rng.below(other.len() + 1);
                d.truncate(at);
                d.extend_from_slice(&other[from..]);
            }
        }
    }
    d
}

const HEX: &[u8] = b"0123456789abcdefABCDEF";

fn grammar(target: &str) -> Grammar {
    match target {
        "bdf_parse" => Grammar {
            tokens: &[
                "0000", ":", "00", "1f", ".", "7", "10000", "e0", "8", " ", "20",
            ],
            chars: b"0123456789abcdefABCDEF:.x -",
            max_len: 8,
        },
        "sysfs_resource" => Grammar {
            tokens: &[
                "0x",
                "0000000000",
                "fb000000",
                "ffffffff",
                " ",
                "\n",
                "0x0000000000040200",
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n",
                "0",
            ],
            chars: b"0123456789abcdefx \n",
            max_len: 24,
        },
        "sysfs_ram" => Grammar {
            tokens: &[
                "0x",
                "-",
                " : ",
                "System RAM",
                "Reserved",
                "\n",
                "\0",
                "  ",
                "1000",
                "fff",
                "00000000",
                "ffffffff",
                "100000000",
            ],
            chars: b"0123456789abcdefx-: \n\0",
            max_len: 24,
        },
        "acs_param" => Grammar {
            tokens: &[
                "config_acs=",
                "disable_acs_redir=",
                "@",
                "pci:",
                "8086",
                "2030",
                "10b5",
                "8747",
                "0",
                ":",
                ";",
                "/",
                "0.0",
                "1.0",
                "00:01.0",
                "0000:02:01.0",
                "02:00.0",
                "03:00.1",
                "x",
                "1",
                "xx1x0x1",
                "1111011",
                ",",
            ],
            chars: b"0123456789abcdefxX@:;/.,pci ",
            max_len: 14,
        },
        "device_path" => Grammar {
            tokens: &[
                "/",
                "sys",
                "devices",
                "pci0000:00",
                "pci10000:e0",
                "pci",
                "0000:00:01.0",
                "0000:01:00.0",
                "02:00.0",
                "10000:e0:06.0",
                ":",
                ".",
                "abcd",
                "0",
                "f",
            ],
            chars: b"0123456789abcdef/:.pci ",
            max_len: 14,
        },
        "pci_ids" => Grammar {
            tokens: &[
                "8086",
                "144d",
                "  ",
                " ",
                "\t",
                "\t\t",
                "\n",
                "\r\n",
                "#",
                "C ",
                "01",
                "a824",
                "1028 0001",
                "Intel Corporation",
                "NVMe",
                "é",
            ],
            chars: b"0123456789abcdefCg \t\n#",
            max_len: 24,
        },
        // Binary and TOML targets: mutations of the seeds only.
        _ => Grammar {
            tokens: &["\0", "\x10", "\x40", "\x0d", "\u{ff}", "=", "\n", "\"", "["],
            chars: b"\x00\x01\x10\x40\xff",
            max_len: 64,
        },
    }
}

/// 0 to 4 hex digits.
fn hex_digits(rng: &mut Rng) -> String {
    (0..rng.below(5))
        .map(|_| char::from(*rng.pick(HEX)))
        .collect()
}

/// A device specifier, mostly well formed.
fn spec(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => {
            let v = hex_digits(rng);
            format!("pci:{v}:{}", hex_digits(rng))
        }
        1 => rng
            .pick(&[
                "pci:8086:2030",
                "pci:10b5:8747",
                "pci:0:0",
                "pci:144d:a808:0:0",
            ])
            .to_string(),
        _ => {
            let mut s = rng
                .pick(&[
                    "00:01.0",
                    "0000:00:02.0",
                    "02:01.0",
                    "0000:03:00.1",
                    "01:00.0",
                    "1f:1f.7",
                ])
                .to_string();
            for _ in 0..rng.below(3) {
                s += &format!("/{:x}.{:x}", rng.below(3), rng.below(2));
            }
            s
        }
    }
}

/// Inputs built from the grammar itself (mostly valid, some near misses),
/// for the text parsers where a token soup rarely parses.
fn structured(target: &str, rng: &mut Rng) -> Option<Vec<u8>> {
    let s = match target {
        "acs_param" => {
            let prefix = *rng.pick(&["", "config_acs=", "disable_acs_redir="]);
            let config = prefix == "config_acs=" || (prefix.is_empty() && rng.below(2) == 0);
            let entries: Vec<String> = (0..rng.below(3) + 1)
                .map(|_| {
                    if config {
                        let flags: String = (0..rng.below(9))
                            .map(|_| char::from(*rng.pick(b"01xxX")))
                            .collect();
                        format!("{flags}@{}", spec(rng))
                    } else {
                        spec(rng)
                    }
                })
                .collect();
            // Mostly the real separator; sometimes a trailing one, a comma
            // or an empty entry.
            let sep = *rng.pick(&[";", ";", ";", ";", ",", ";;"]);
            let tail = *rng.pick(&["", "", "", ";"]);
            format!("{prefix}{}{tail}", entries.join(sep))
        }
        "bdf_parse" => {
            let (b, d, f) = (rng.below(300), rng.below(40), rng.below(10));
            match rng.below(3) {
                0 => format!("{b:02x}:{d:02x}.{f:x}"),
                1 => format!("{:x}:{b:02x}:{d:02x}.{f:x}", rng.next() >> rng.below(64)),
                _ => format!("{}:{b:x}:{d:x}.{f:x}", hex_digits(rng)),
            }
        }
        "device_path" => {
            let mut s = String::from(*rng.pick(&["/sys/devices", "", "/sys/devices/LNXSYSTM:00"]));
            let dom = *rng.pick(&[0u32, 0x10000, 0x7870]);
            let bus = rng.below(256);
            if rng.below(4) != 0 {
                s += &format!("/pci{dom:04x}:{bus:02x}");
            }
            for _ in 0..rng.below(4) + 1 {
                let (b, d, f) = (rng.below(256), rng.below(34), rng.below(9));
                if rng.below(3) == 0 {
                    s += &format!("/{b:02x}:{d:02x}.{f:x}");
                } else {
                    s += &format!("/{dom:04x}:{b:02x}:{d:02x}.{f:x}");
                }
            }
            s
        }
        _ => return None,
    };
    Some(s.into_bytes())
}

/// How many generated inputs each target gets.
fn budget(target: &str) -> usize {
    match target {
        // A whole machine and up to 64 steps each, the slowest target:
        // tests/tests/fuzz_ops.rs runs 240 more full cases and 2400 short
        // ones (a random machine with its first few steps).
        "dma_ops" => 300,
        _ => 3000,
    }
}

/// The generated inputs of `target`, deterministic.
fn generated(target: &str, seeds: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    let g = grammar(target);
    let text = !matches!(
        target,
        "config_space"
            | "sg_from_pages"
            | "machine_file"
            | "dma_ops"
            | "pgtable_ops"
            | "iova_ops"
            | "arch_translate"
            | "sg_append"
    );
    let mut rng = Rng::new(0x5eed ^ target.len() as u64 ^ (u64::from(target.as_bytes()[0]) << 32));
    (0..budget(target))
        .map(|i| {
            if i % 3 == 1 {
                if let Some(d) = structured(target, &mut rng) {
                    return d;
                }
            }
            if text && i % 3 == 0 {
                soup(&mut rng, &g)
            } else if (target == "sg_from_pages" || !text) && i % 2 == 0 {
                let max = if target == "sg_from_pages" { 96 } else { 800 };
                (0..rng.below(max)).map(|_| rng.next() as u8).collect()
            } else {
                mutate(&mut rng, seeds, &g)
            }
        })
        .collect()
}

fn run_target(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .unwrap_or_else(|| panic!("no fuzz check {target}"))
        .1;
    let seeds = seeds(target);
    for (name, data) in &seeds {
        run(check, name, data);
    }
    for (i, data) in generated(target, &seeds).iter().enumerate() {
        run(check, &format!("generated input #{i}"), data);
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_target(stringify!($name));
            }
        )*

        /// Every check has a test above, a `[[bin]]` in fuzz/Cargo.toml and a
        /// target file that calls it.
        #[test]
        fn every_target_is_wired() {
            let tested = [$(stringify!($name)),*];
            let checks: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(checks, tested);
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
            for n in checks {
                assert!(
                    manifest.contains(&format!("name = \"{n}\"\npath = \"fuzz_targets/{n}.rs\"")),
                    "fuzz/Cargo.toml lacks the [[bin]] {n}"
                );
                let src = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{n}.rs")))
                    .unwrap();
                assert!(
                    src.contains(&format!("fuzz_checks::{n}(")),
                    "fuzz_targets/{n}.rs does not call fuzz_checks::{n}"
                );
            }
        }
    };
}

targets!(
    bdf_parse,
    config_space,
    sysfs_resource,
    machine_file,
    sg_from_pages,
    sysfs_ram,
    acs_param,
    device_path,
    dma_ops,
    pgtable_ops,
    iova_ops,
    arch_translate,
    sg_append,
    pci_ids,
);

/// The generators reach the interesting side of the text parsers: a fair
/// share of generated inputs parse (a check that only ever sees rejected
/// input tests little).
#[test]
fn generated_inputs_sometimes_parse() {
    use dma_pci::topology::acs_param::{parse_config_acs, parse_disable_acs_redir};
    let share = |target: &str, ok: &dyn Fn(&str) -> bool| {
        let inputs = generated(target, &seeds(target));
        let n = inputs
            .iter()
            .filter(|d| std::str::from_utf8(d).is_ok_and(ok))
            .count();
        (n, inputs.len())
    };
    let acs = share("acs_param", &|s| {
        let v = s
            .strip_prefix("config_acs=")
            .or(s.strip_prefix("disable_acs_redir="))
            .unwrap_or(s);
        parse_config_acs(v).is_ok_and(|v| !v.is_empty())
            || parse_disable_acs_redir(v).is_ok_and(|v| !v.is_empty())
    });
    let path = share("device_path", &|s| {
        dma_sim::sysfs::parse_device_path(s)
            .is_some_and(|p| p.parent.is_some() || p.host_bridge.is_some())
    });
    let bdf = share("bdf_parse", &|s| s.parse::<dma_api::Bdf>().is_ok());
    for (what, (n, of)) in [
        ("acs_param", acs),
        ("device_path", path),
        ("bdf_parse", bdf),
    ] {
        eprintln!("{what}: {n} of {of} generated inputs parse");
        assert!(
            n * 20 >= of,
            "{what}: only {n} of {of} generated inputs parse"
        );
    }
}
