//! `unidma replay FILE`: re-run a saved fuzz input step by step.
//!
//! The file holds the raw bytes a fuzz target was handed (a libFuzzer crash
//! artifact, a corpus seed, or the file tests/tests/fuzz_ops.rs saves for
//! a failing case); it decodes into a `dma_sim::fuzzing::FuzzCase` exactly
//! as the target decodes it. The verdict is the harness's own
//! (`run_case` over the standard backends, every invariant after every
//! step), so a replay agrees with the fuzzer and the test suite.
//!
//! The harness keeps its per-step state private, so the steps are shown
//! from outside it: every endpoint's backend is wrapped in a recorder that
//! notes each mapping the dispatcher hands down and explains it
//! (`DmaDevice::explain_map` over a side-effect-free copy of the device,
//! so a lazy flush queue or a bounce pool never sees the explanation), and
//! the case runs once more with an observer that marks where each step's
//! records end (two runs in all, however many steps).
//! A refused mapping never reaches a backend: its step reports "refused".
//! A single mapping a policy redirected is explained at the address the
//! backend got (the RAM it was redirected to).

use super::Failure;
use dma_api::device::{DmaConstraints, DmaDevice};
use dma_api::middleware::{Layered, Middleware};
use dma_api::port::{CoherentRequest, DmaBackend, IovaOps, IovaState, MapRequest, SegPlan};
use dma_api::{Bdf, Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use dma_sim::fuzzing::{
    run_case, run_case_observed, BackendFactory, FactoryEnv, FuzzCase, RunStats, StandardBackends,
};
use scatterlist::SgTable;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What one prefix run recorded: one text block per mapping handed to a
/// backend, in call order.
type Log = Arc<Mutex<Vec<String>>>;

/// Runs the replay; exit 0 when every invariant holds, 1 on a violation.
pub fn run(file: &Path, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
    run_over(file, json, out, &StandardBackends)
}

/// [`run`] over the backends of `base` (the tests plant a bug there).
fn run_over(
    file: &Path,
    json: bool,
    out: &mut dyn Write,
    base: &dyn BackendFactory,
) -> Result<i32, Failure> {
    let data = std::fs::read(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let case = FuzzCase::from_bytes(&data).map_err(|e| {
        Failure::bad_input(format!(
            "{} is not a fuzz input (decoding failed: {e})",
            file.display()
        ))
    })?;
    let verdict = run_case(&case, base);
    let last = match &verdict {
        Err(v) => v.step.map_or(case.ops.len(), |s| s + 1),
        Ok(_) => case.ops.len(),
    };
    // The machine names the ids in the mapping chains (an input whose
    // machine does not build leaves them as they are).
    let named_machine = case.machine.machine().ok();
    // One recorded run; after each step the observer notes how far the
    // log and the counters had got, which attributes every mapping to its
    // step.
    let log: Log = Arc::default();
    let mut marks: Vec<(usize, RunStats)> = Vec::with_capacity(last);
    let _ = run_case_observed(&case, &recorder(base, log.clone()), &mut |_, stats| {
        let len = log.lock().unwrap_or_else(|p| p.into_inner()).len();
        marks.push((len, *stats));
    });
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()));
    let mut steps = Vec::new();
    let (mut seen, mut before) = (0usize, RunStats::default());
    for (k, &(len, stats)) in marks.iter().enumerate().take(last) {
        let maps: Vec<String> = log
            .get(seen..len)
            .unwrap_or_default()
            .iter()
            .map(|s| match &named_machine {
                Some(m) => crate::names::named(s, m),
                None => s.clone(),
            })
            .collect();
        seen = len;
        let outcome = if stats.mapped > before.mapped {
            "mapped"
        } else if stats.refused > before.refused {
            "refused"
        } else {
            ""
        };
        before = stats;
        let broken = match &verdict {
            Err(v) if v.step == Some(k) => Some(v.message.clone()),
            _ => None,
        };
        steps.push((k, format!("{:?}", case.ops[k]), outcome, maps, broken));
    }
    let (code, end) = match &verdict {
        Ok(s) => (
            0,
            format!(
                "all invariants hold: {} steps, {} mapped, {} refused, {} windows compared, {} addresses probed",
                s.steps, s.mapped, s.refused, s.windows, s.probes
            ),
        ),
        Err(v) => match v.step {
            Some(s) => (1, format!("invariant broken after step {s}: {}", v.message)),
            None => (1, format!("invariant broken (assembly or final teardown): {}", v.message)),
        },
    };
    if json {
        let steps: Vec<_> = steps
            .iter()
            .map(|(k, op, outcome, maps, broken)| {
                json!({
                    "step": k,
                    "op": op,
                    "outcome": outcome,
                    "mappings": maps,
                    "invariants": broken.as_deref().unwrap_or("ok"),
                })
            })
            .collect();
        let v = json!({
            "iommu": case.mode.name(),
            "debug": case.debug,
            "force_bounce": case.force_bounce,
            "machine": case.machine.to_toml(),
            "steps": steps,
            "ok": code == 0,
            "result": end,
        });
        super::write_json(out, &v)?;
        return Ok(code);
    }
    writeln!(out, "{case}")?;
    for (k, op, outcome, maps, broken) in &steps {
        match *outcome {
            "" => writeln!(out, "step {k}: {op}")?,
            o => writeln!(out, "step {k}: {op} -> {o}")?,
        }
        for m in maps {
            for line in m.lines() {
                writeln!(out, "    {line}")?;
            }
        }
        match broken {
            Some(m) => writeln!(out, "  invariants: BROKEN: {m}")?,
            None => writeln!(out, "  invariants: ok")?,
        }
    }
    writeln!(out, "{end}")?;
    Ok(code)
}

/// The backend factory of a prefix run: every endpoint's standard backend
/// (from `base`) wrapped in a [`Recorder`] writing to `log`.
fn recorder<'b>(
    base: &'b dyn BackendFactory,
    log: Log,
) -> impl Fn(&FactoryEnv<'_>) -> Arc<dyn DmaBackend> + 'b {
    move |env: &FactoryEnv<'_>| -> Arc<dyn DmaBackend> {
        let inner = base.backend(env);
        let ghost = Arc::new(Ghost {
            inner: inner.clone(),
        });
        let explainer = DmaDevice::new(env.assembly.ctx.clone(), env.endpoint.bdf, ghost).ok();
        let recorder = Recorder {
            explainer,
            bdf: env.endpoint.bdf,
            log: log.clone(),
        };
        Arc::new(Layered::wrap(inner, recorder))
    }
}

/// The decision chain of `[phys, phys + len)` without its result line (the
/// explainer maps nothing; the caller adds what the real backend did).
fn chain(explainer: Option<&DmaDevice>, phys: PhysAddr, len: u64, dir: Direction) -> String {
    let Some(x) = explainer else {
        return format!("map {phys} + {len:#x} {dir} (no explanation: device gone)\n");
    };
    let text = x.explain_map(phys, len, dir).to_string();
    let mut s: String = text
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with("result:") && !l.trim_start().starts_with("backend:")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if s.is_empty() {
        s.push('\n');
    }
    s
}

/// Records, for each mapping handed to the standard backend, the decision
/// chain and what the backend returned; every other call passes unchanged.
struct Recorder {
    explainer: Option<DmaDevice>,
    bdf: Bdf,
    log: Log,
}

impl Recorder {
    fn note(&self, text: String) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text);
    }
}

impl Middleware<Arc<dyn DmaBackend>> for Recorder {
    fn map(&self, next: &Arc<dyn DmaBackend>, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let r = next.map(req);
        let mut s = chain(self.explainer.as_ref(), req.phys, req.len, req.dir);
        match &r {
            Ok(d) => s.push_str(&format!("  result:  {} DMA address {d}", next.name())),
            Err(e) => s.push_str(&format!("  result:  {} error {e}", next.name())),
        }
        self.note(s);
        r
    }
    fn map_coherent(
        &self,
        next: &Arc<dyn DmaBackend>,
        req: &CoherentRequest,
    ) -> Result<DmaAddr, DmaError> {
        let r = next.map_coherent(req);
        let res = match &r {
            Ok(d) => format!("DMA address {d}"),
            Err(e) => format!("error {e}"),
        };
        self.note(format!(
            "coherent {} + {:#x} for {}: {} {res}",
            req.phys,
            req.len,
            self.bdf,
            next.name()
        ));
        r
    }
    fn map_sg(
        &self,
        next: &Arc<dyn DmaBackend>,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let mut s = format!(
            "table of {} entries for {}:\n",
            table.iter().count(),
            self.bdf
        );
        for e in table.iter() {
            let c = chain(self.explainer.as_ref(), e.phys(), u64::from(e.len()), dir);
            for line in c.lines() {
                s.push_str(&format!("  {line}\n"));
            }
        }
        let r = next.map_sg(table, plan, dir, attrs);
        match &r {
            Ok(_) => {
                let segs: Vec<String> = table
                    .dma_iter()
                    .map(|g| format!("{} + {:#x}", g.dma_address(), g.dma_len()))
                    .collect();
                s.push_str(&format!(
                    "  result:  {} DMA segments {}",
                    next.name(),
                    segs.join(", ")
                ));
            }
            Err(e) => s.push_str(&format!("  result:  {} error {e}", next.name())),
        }
        self.note(s);
        r
    }
    /// The two-step API goes through [`Middleware::iova_link`] below.
    fn iova_ops<'a>(
        &'a self,
        next: &'a Arc<dyn DmaBackend>,
        wrapped: &'a dyn IovaOps,
    ) -> Option<&'a dyn IovaOps> {
        next.iova_ops()?;
        Some(wrapped)
    }
    fn iova_link(
        &self,
        next: &dyn IovaOps,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let r = next.link(state, phys, offset, size, dir, attrs);
        let mut s = chain(self.explainer.as_ref(), phys, size, dir);
        let at = state.base.raw() + state.first_offset + offset;
        match &r {
            Ok(()) => s.push_str(&format!("  result:  linked at IOVA {at:#x}")),
            Err(e) => s.push_str(&format!("  result:  link error {e}")),
        }
        self.note(s);
        r
    }
}

/// The explainer's backend: answers every question like the real one but
/// maps nothing (its "mapping" is refused, so an explanation leaves no
/// IOVA, bounce slot or flush-queue entry behind).
struct Ghost {
    inner: Arc<dyn DmaBackend>,
}

impl DmaBackend for Ghost {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        Err(DmaError::ZeroLength { phys: req.phys })
    }
    fn unmap(&self, _: DmaAddr, _: &MapRequest) -> Result<(), DmaError> {
        Ok(())
    }
    fn map_sg(
        &self,
        _: &mut SgTable,
        plan: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let phys = plan.first().map_or(PhysAddr::new(0), |p| p.phys);
        Err(DmaError::ZeroLength { phys })
    }
    fn unmap_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        Ok(())
    }
    fn sync_for_cpu(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn sync_for_device(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn need_sync(&self, _: DmaAddr) -> bool {
        false
    }
    fn max_mapping_size(&self) -> u64 {
        self.inner.max_mapping_size()
    }
    fn opt_mapping_size(&self) -> u64 {
        self.inner.opt_mapping_size()
    }
    fn merge_boundary(&self) -> u64 {
        self.inner.merge_boundary()
    }
    fn constraints(&self) -> Option<DmaConstraints> {
        self.inner.constraints()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard backend with one planted bug: an unmap does nothing, so
    /// the translation stays usable after the caller let go of it.
    struct Leaky;

    impl Middleware<Arc<dyn DmaBackend>> for Leaky {
        fn name<'a>(&'a self, _: &'a Arc<dyn DmaBackend>) -> &'a str {
            "leaky"
        }
        fn unmap(
            &self,
            _: &Arc<dyn DmaBackend>,
            _: DmaAddr,
            _: &MapRequest,
        ) -> Result<(), DmaError> {
            Ok(())
        }
    }

    fn leaky(env: &FactoryEnv<'_>) -> Arc<dyn DmaBackend> {
        Arc::new(Layered::wrap(
            env.endpoint.device.raw_backend().clone(),
            Leaky,
        ))
    }

    /// A checked-in case that maps and unmaps through a strict IOMMU.
    fn case_file() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/replay/unmap-in-strict.bin")
    }

    /// The checked-in case passes over the standard backends (exit 0) and
    /// breaks an invariant with the planted bug: exit 1, the step and the
    /// invariant named, the step marked in the trace.
    #[test]
    fn a_planted_bug_exits_one_naming_step_and_invariant() {
        let mut out = Vec::new();
        let code = run(&case_file(), false, &mut out).unwrap_or_else(|f| f.code);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));

        let mut out = Vec::new();
        let code = run_over(&case_file(), false, &mut out, &leaky).unwrap_or_else(|f| f.code);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, 1, "{text}");
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("invariant broken after step 3: ")
                && last.contains("which no live mapping of its group explains"),
            "{last}"
        );
        assert!(text.contains("\nstep 3: Unmap"), "{text}");
        assert!(text.contains("  invariants: BROKEN: "), "{text}");
        assert!(
            !text.contains("\nstep 4:"),
            "steps after the violation run: {text}"
        );
    }

    /// A file that cannot be read is bad input naming the file.
    #[test]
    fn an_unreadable_file_is_bad_input_naming_it() {
        let dir = std::env::temp_dir();
        let mut out = Vec::new();
        let f = run(&dir, false, &mut out)
            .err()
            .map(|f| (f.code, f.message));
        let (code, msg) = f.unwrap_or_default();
        assert_eq!(code, 2);
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(out.is_empty());
    }
}
