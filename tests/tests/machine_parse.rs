//! A machine file parsed in pieces (split at its `[[device]]` headers, on
//! several threads) gives exactly the whole-document parse: the same
//! values with the same spans, or the whole parse's own error.

use dma_sim::machine::file::MachineFile;
use dma_sim::machine::parse::{parse_split, try_pieces};
use dma_sim::machine::{Machine, REFERENCE_TOML};
use unidma::gen::{machine_toml, GenSpec, Shape};

/// The whole-document parse, printed with every span (`Spanned`'s `Debug`
/// shows its span), or its error with position.
fn whole(src: &str) -> String {
    show(parse_split(src, usize::MAX, 0, 1))
}

/// A parse result with every span (the error's `Debug` holds its span).
fn show<E: std::fmt::Debug>(r: Result<MachineFile, E>) -> String {
    match r {
        Ok(f) => format!("{f:?}"),
        Err(e) => format!("error: {e:?}"),
    }
}

/// Pieces of every size from one device up, on one and on three threads,
/// all equal to the whole parse.
fn assert_pieces_equal_whole(src: &str) {
    let want = whole(src);
    if src.contains("\n[[device]]\n") {
        for piece in [0, 4096, 1 << 20] {
            assert!(
                try_pieces(src, piece, 2).is_some(),
                "a file with devices must parse in pieces of {piece} bytes"
            );
        }
    }
    for piece in [0, 1, 300, 4096, 1 << 20] {
        for threads in [1, 3] {
            let got = show(parse_split(src, 0, piece, threads));
            assert!(
                got == want,
                "pieces of {piece} bytes on {threads} threads differ from the whole parse"
            );
        }
    }
}

fn examples() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/machines");
    let mut out = vec![REFERENCE_TOML.to_string()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            out.push(std::fs::read_to_string(p).unwrap());
        }
    }
    assert!(out.len() > 3, "the example machines were not found");
    out
}

#[test]
fn example_and_generated_machines_parse_alike_in_pieces() {
    for src in examples() {
        assert_pieces_equal_whole(&src);
    }
    for shape in [Shape::Switch, Shape::Flat] {
        let src = machine_toml(&GenSpec {
            functions: 600,
            shape,
            providers: None,
        })
        .unwrap();
        assert_pieces_equal_whole(&src);
    }
}

/// A device element in the reference machine's form.
const DEV: &str =
    "[[device]]\nbdf = \"0000:00:00.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\n";

/// Texts where a split at a `[[device]]` line would change the meaning or
/// hide an error: each must give the whole parse's answer.
#[test]
fn hostile_splits_give_the_whole_parse() {
    let head = "[machine]\nname = \"m\"\narch = \"x86_64\"\n";
    let cases = [
        // The header inside a multi-line basic and literal string.
        format!("{head}{DEV}name = \"\"\"\n[[device]]\nbdf = 1\n\"\"\"\n{DEV}"),
        format!("{head}{DEV}name = '''\n[[device]]\n'''\n{DEV}"),
        // Inside a multi-line array.
        format!("{head}{DEV}bars = [\n[[device]]\n]\n{DEV}"),
        // A static `device` array in the head, then an array-of-tables
        // header: TOML refuses to extend it.
        format!("device = []\n{head}{DEV}{DEV}"),
        // `device` as a table in the head.
        format!("{head}[device]\nx = 1\n{DEV}"),
        format!("device.x = 1\n{head}{DEV}"),
        // A top-level table after devices, and a second [machine].
        format!("{head}{DEV}[machine]\nname = \"n\"\n{DEV}"),
        format!("{head}{DEV}[[ram]]\nstart = 0\nsize = 1\n{DEV}"),
        // A syntax error in a later piece, and an unknown key.
        format!("{head}{DEV}{DEV}bdf = = 1\n{DEV}"),
        format!("{head}{DEV}{DEV}colour = \"red\"\n"),
        // CRLF line ends, and a header with a trailing comment.
        format!("{head}{DEV}{DEV}").replace('\n', "\r\n"),
        format!("{head}{DEV}[[device]] # second\nbdf = \"0000:00:01.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\n"),
        // Duplicate key inside one element across what would be a split.
        format!("{head}{DEV}bdf = \"x\"\n{DEV}"),
    ];
    for (i, src) in cases.iter().enumerate() {
        let want = whole(src);
        for piece in [0, 1, 64] {
            for threads in [1, 2] {
                assert_eq!(
                    show(parse_split(src, 0, piece, threads)),
                    want,
                    "case {i} (pieces of {piece} bytes, {threads} threads)"
                );
            }
        }
    }
}

/// Error positions in a later piece are the file's: a bad value in the
/// last device of a large generated machine is reported at its own line
/// and column.
#[test]
fn errors_in_later_pieces_point_into_the_file() {
    let src = machine_toml(&GenSpec {
        functions: 20_000,
        shape: Shape::Flat,
        providers: None,
    })
    .unwrap();
    assert!(src.len() > 2 << 20, "too small to be split");
    let at = src.rfind("\nvendor = ").unwrap() + 1;
    let end = at + src[at..].find('\n').unwrap();
    let bad = format!("{}vendor = \"0xzz\"{}", &src[..at], &src[end..]);
    let line = src[..at].matches('\n').count() + 1;
    let e = Machine::from_toml_str("big.toml", &bad).unwrap_err();
    assert_eq!((e.line, e.column), (line, 10), "{e}");
    assert!(e.field.ends_with(".vendor"), "{e}");
}
