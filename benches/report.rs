//! `unidma report` on the embedded default machine, end to end (parse the
//! TOML, build the topology, groups, matrix, render), text and JSON.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
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
    c.bench_function("machine/parse_reference", |b| {
        b.iter(|| dma_api::machine::Machine::reference().unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
