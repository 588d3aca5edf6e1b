//! Executions per second of a fuzz target's check over seeded random
//! inputs, without cargo-fuzz or sanitizers: where a target's time goes
//! (run it under a profiler) and how a change moves its rate.
//!
//! `cargo run --release -p unidma-tests --example fuzz_rate -- TARGET [N] [MAX_LEN] [DIR]`
//! (N random inputs of 1..=MAX_LEN bytes; with DIR, its files instead,
//! repeated to N inputs).

use std::time::Instant;
use unidma_tests::fuzz_checks::TARGETS;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().map_or("dma_ops", String::as_str);
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let max_len: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let Some(&(_, check)) = TARGETS.iter().find(|(t, _)| *t == target) else {
        eprintln!("unknown target {target}");
        std::process::exit(2);
    };
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let files: Vec<Vec<u8>> = match args.get(3) {
        Some(dir) => {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .map(|e| e.expect("dir entry").path())
                .collect();
            v.sort();
            v.iter().map(|p| std::fs::read(p).expect("input")).collect()
        }
        None => Vec::new(),
    };
    let inputs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            if !files.is_empty() {
                return files[i % files.len()].clone();
            }
            let len = (next() as usize) % max_len + 1;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect();
    let t = Instant::now();
    for d in &inputs {
        check(d);
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{target}: {n} inputs (up to {max_len} bytes) in {dt:.3} s, {:.0} per second",
        n as f64 / dt
    );
}
