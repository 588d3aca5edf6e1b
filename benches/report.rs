//! `unidma report` on the embedded default machine, end to end (parse the
//! TOML, build the topology, groups, matrix, render), text and JSON; and
//! `report --sysfs /sys` on this machine when it has PCI.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

/// The directory of this run's generated machine files (regenerated every
/// run, not a cache), removed when the bench ends, even by a panic.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("unidma-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        RunDir(p)
    }

    /// Writes `text` to `name` in the directory; its path as a string.
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p.to_str().unwrap().to_string()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench(c: &mut Criterion) {
    let dir = RunDir::new();
    c.bench_function("cli/report_default_text", |b| {
        b.iter(|| {
            let (mut out, mut err) = (Vec::with_capacity(16 << 10), Vec::new());
            assert_eq!(
                unidma::cli::run_args(["unidma", "report"], &mut out, &mut err),
                0
            );
            out
        })
    });
    c.bench_function("cli/report_default_json", |b| {
        b.iter(|| {
            let (mut out, mut err) = (Vec::with_capacity(64 << 10), Vec::new());
            assert_eq!(
                unidma::cli::run_args(["unidma", "report", "--json"], &mut out, &mut err),
                0
            );
            out
        })
    });
    // Scale (`unidma gen`): the cost per P2P pair of `report --json` must
    // stay flat as the machine grows; compare the per-pair times of the
    // small and the 4x larger machine (16x the pairs) in one run.
    for n in [250usize, 1000] {
        let spec = unidma::gen::GenSpec {
            functions: n,
            shape: unidma::gen::Shape::Switch,
            providers: Some(n / 4),
        };
        let p = dir.write(
            &format!("gen-{n}.toml"),
            &unidma::gen::machine_toml(&spec).unwrap(),
        );
        let args = ["unidma", "report", "--json", "--machine", p.as_str()];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(unidma::cli::run_args(args, &mut out, &mut err), 0);
        c.bench_function(&format!("cli/report_json_gen_switch_{n}"), |b| {
            b.iter(|| {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                unidma::cli::run_args(args, &mut out, &mut err)
            })
        });
    }
    // Scale (`unidma gen`), per function: `check` (parse, validate, three
    // assemblies) and `scenarios` (sixteen assemblies and the pair searches)
    // on N and 4N functions of both shapes; time(4N) / time(N) should stay
    // near 4 (linear). Each command is asserted once before timing.
    let mut g = c.benchmark_group("cli/scale");
    g.sample_size(10);
    for shape in [unidma::gen::Shape::Switch, unidma::gen::Shape::Flat] {
        for n in [1024usize, 4096] {
            let spec = unidma::gen::GenSpec {
                functions: n,
                shape,
                providers: None,
            };
            let p = dir.write(
                &format!("scale-{}-{n}.toml", shape.name()),
                &unidma::gen::machine_toml(&spec).unwrap(),
            );
            let check = ["unidma", "check", p.as_str()];
            let scenarios = ["unidma", "scenarios", "--machine", p.as_str()];
            for args in [&check[..], &scenarios[..]] {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                assert_eq!(
                    unidma::cli::run_args(args.iter().copied(), &mut out, &mut err),
                    0,
                    "{args:?}: {}",
                    String::from_utf8_lossy(&err)
                );
            }
            g.bench_function(format!("check_{}_{n}", shape.name()), |b| {
                b.iter(|| {
                    let (mut out, mut err) = (Vec::new(), Vec::new());
                    unidma::cli::run_args(check, &mut out, &mut err)
                })
            });
            g.bench_function(format!("scenarios_{}_{n}", shape.name()), |b| {
                b.iter(|| {
                    let (mut out, mut err) = (Vec::new(), Vec::new());
                    unidma::cli::run_args(scenarios, &mut out, &mut err)
                })
            });
        }
    }
    g.finish();
    c.bench_function("machine/parse_reference", |b| {
        b.iter(|| dma_sim::machine::Machine::reference().unwrap())
    });
    if std::path::Path::new("/sys/bus/pci/devices").is_dir() {
        // `unidma report --sysfs /sys`: read every function, import, render.
        c.bench_function("cli/report_sysfs_live_text", |b| {
            b.iter(|| {
                let (mut out, mut err) = (Vec::with_capacity(16 << 10), Vec::new());
                assert_eq!(
                    unidma::cli::run_args(
                        ["unidma", "report", "--sysfs", "/sys"],
                        &mut out,
                        &mut err
                    ),
                    0
                );
                out
            })
        });
        // The import alone, from a scan read once.
        let scan = dma_sim::sysfs::read_tree(std::path::Path::new("/sys"));
        let opts = dma_sim::sysfs::import::ImportOptions {
            name: "bench".into(),
            source: "/sys".into(),
            arch: dma_sim::machine::ArchName::X86_64,
            cpu: Default::default(),
            default_coherent: true,
        };
        c.bench_function("machine/import_sysfs_live", |b| {
            b.iter(|| dma_sim::sysfs::import::import(&scan, &opts))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
