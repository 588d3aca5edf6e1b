//! `unidma gen`: print a synthetic machine file of N functions
//! ([`crate::gen`]), to measure how the other commands scale.

use super::{Failure, ShapeArg};
use crate::gen::{machine_toml_on_nodes, GenSpec};
use std::io::Write;

pub(crate) fn run(
    functions: usize,
    shape: ShapeArg,
    providers: Option<usize>,
    numa_nodes: usize,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    if json {
        return Err(Failure::bad_input(
            "gen prints a machine file (TOML); --json does not apply",
        ));
    }
    let spec = GenSpec {
        functions,
        shape: shape.into(),
        providers,
    };
    let text =
        machine_toml_on_nodes(&spec, numa_nodes).map_err(|e| Failure::bad_input(e.to_string()))?;
    out.write_all(text.as_bytes())?;
    Ok(0)
}
