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

/// Cases of the full length (up to 64 steps) on every `cargo test`
/// (`UNIDMA_FUZZ_CASES` for more).
const FULL_CASES: usize = 240;
/// Short cases: a random machine, assembled and checked at its start and
/// end, with its first few steps (most of a case's cost is its steps).
const SHORT_CASES: usize = 2400;
/// Steps a short case keeps.
const SHORT_STEPS: usize = 4;

#[test]
fn random_sequences_keep_every_invariant() {
    let n: usize = std::env::var("UNIDMA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(FULL_CASES);
    let total = run_all(0xd1a_5eed, n, None);
    assert!(total.mapped > n, "too few mappings succeeded: {total:?}");
    assert!(total.windows > 0 && total.probes > 0);
}

#[test]
fn many_short_sequences_keep_every_invariant() {
    let total = run_all(0x5407_5eed, SHORT_CASES, Some(SHORT_STEPS));
    assert!(
        total.mapped > SHORT_CASES / 2,
        "too few mappings succeeded: {total:?}"
    );
    assert!(total.windows > 0 && total.probes > 0);
}

/// Runs `n` seeded cases (their steps cut to `steps`), summing the stats;
/// a failing case panics with its replay form and the path of its saved
/// input.
fn run_all(seed: u64, n: usize, steps: Option<usize>) -> dma_sim::fuzzing::RunStats {
    let mut total = dma_sim::fuzzing::RunStats::default();
    let mut cases = 0;
    for (i, data) in inputs(seed, n).iter().enumerate() {
        let Ok(mut case) = FuzzCase::from_bytes(data) else {
            continue;
        };
        if let Some(k) = steps {
            case.ops.truncate(k);
        }
        cases += 1;
        match run_case(&case, &StandardBackends) {
            Ok(s) => {
                total.steps += s.steps;
                total.mapped += s.mapped;
                total.refused += s.refused;
                total.windows += s.windows;
                total.probes += s.probes;
            }
            Err(v) => {
                let out = std::env::temp_dir().join(format!("unidma-fuzz-case-{seed:x}-{i}.bin"));
                let _ = std::fs::write(&out, data);
                let cut = match steps {
                    Some(k) => format!(", its first {k} steps"),
                    None => String::new(),
                };
                panic!("case #{i} (input saved to {}{cut}): {v}", out.display())
            }
        }
    }
    eprintln!("{cases} cases: {total:?}");
    total
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
