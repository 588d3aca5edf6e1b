//! The whole-machine operation fuzzing (`dma_sim::fuzzing`) in the ordinary
//! test suite: a deterministic run of random cases from a fixed seed.

use dma_sim::fuzzing::{run_case, FuzzCase, StandardBackends};

/// xorshift64*: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }
}

/// `n` random inputs from `seed` (the raw bytes a fuzzer would hand over).
fn inputs(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|_| {
            let len = 200 + (rng.next() % 600) as usize;
            rng.bytes(len)
        })
        .collect()
}

#[test]
fn random_sequences_keep_every_invariant() {
    let n: usize = std::env::var("UNIDMA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(80);
    let mut total = dma_sim::fuzzing::RunStats::default();
    for (i, data) in inputs(0xd1a_5eed, n).iter().enumerate() {
        let Ok(case) = FuzzCase::from_bytes(data) else {
            continue;
        };
        match run_case(&case, &StandardBackends) {
            Ok(s) => {
                total.steps += s.steps;
                total.mapped += s.mapped;
                total.refused += s.refused;
                total.windows += s.windows;
                total.probes += s.probes;
            }
            Err(v) => {
                let out = std::env::temp_dir().join(format!("unidma-fuzz-case-{i}.bin"));
                let _ = std::fs::write(&out, data);
                panic!("case #{i} (input saved to {}): {v}", out.display())
            }
        }
    }
    eprintln!("{total:?}");
    assert!(total.mapped > n, "too few mappings succeeded: {total:?}");
    assert!(total.windows > 0 && total.probes > 0);
}

/// Replays one input file (a libFuzzer crash artifact, a seed, or what a
/// failing run above saved) step by step:
/// `UNIDMA_FUZZ_REPLAY=FILE UNIDMA_FUZZ_TRACE=1 cargo test -p unidma-tests --test fuzz_ops replay -- --nocapture`.
#[test]
fn replay() {
    let Some(path) = std::env::var_os("UNIDMA_FUZZ_REPLAY") else {
        return;
    };
    let data = std::fs::read(&path).expect("replay input");
    let case = FuzzCase::from_bytes(&data).expect("decodes");
    eprintln!("{case}");
    if let Err(v) = run_case(&case, &StandardBackends) {
        panic!("{v}");
    }
}
