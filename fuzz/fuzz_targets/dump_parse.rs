//! The dumpfile parser on arbitrary text, in strict and lenient mode, whole and fed line
//! by line (both must agree). A strict parse that succeeds implies a lenient one with the
//! same tree. Every accepted tree is printed in both hard-link styles and parsed again:
//! the `Primary` style gives back the same tree (same entries, links and primaries), the
//! `FirstInWalk` style the same tree up to which entry is primary; printing is a fixpoint.
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use composefs_format::dumpfile::{
    parse_bytes, print_dump, print_ls, HardlinkStyle, ParseError, ParseErrorKind, ParseOptions,
    Parsed, Parser, PrintOptions,
};
use composefs_format::limits::MAX_DUMP_XATTR_TEXT;
use composefs_format::tree::Tree;
use composefs_fuzz::compare::{plain, same_tree, Links};
use libfuzzer_sys::fuzz_target;

fn fed_by_line(data: &[u8], options: ParseOptions) -> Result<Parsed, ParseError> {
    let mut parser = Parser::new(options);
    for line in data.split_inclusive(|&b| b == b'\n') {
        parser.parse_line(line)?;
    }
    parser.finish()
}

fn print(tree: &Tree, hardlinks: HardlinkStyle) -> Vec<u8> {
    let mut out = Vec::new();
    let options = PrintOptions {
        hardlinks,
        ..PrintOptions::default()
    };
    print_dump(tree, &options, &mut out).expect("a parsed tree prints");
    out
}

/// Parses a printed dump. `None` only for the one known limit of the format: the xattr
/// text of a line is at most 65535 bytes *as written*, and printing escapes bytes that the
/// input may have given raw (4 bytes each), so a tree parsed from a dump may print lines
/// whose xattr text no longer fits.
fn reparse(text: &[u8]) -> Option<Tree> {
    match parse_bytes(text, ParseOptions::strict()) {
        Ok(p) => Some(p.tree),
        Err(ParseError {
            kind: ParseErrorKind::XattrTextTooLong { len },
            ..
        }) if len > MAX_DUMP_XATTR_TEXT => None,
        Err(e) => {
            let head: String = String::from_utf8_lossy(text).chars().take(2000).collect();
            panic!("printed dump does not parse: {e}\n{head}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let strict = parse_bytes(data, ParseOptions::strict());
    let lenient = parse_bytes(data, ParseOptions::lenient());
    assert_eq!(
        strict,
        fed_by_line(data, ParseOptions::strict()),
        "strict: whole vs lines"
    );
    assert_eq!(
        lenient,
        fed_by_line(data, ParseOptions::lenient()),
        "lenient: whole vs lines"
    );
    if let Ok(s) = &strict {
        let l = lenient
            .as_ref()
            .expect("strict accepts only what lenient accepts");
        assert_eq!(
            s.tree, l.tree,
            "strict and lenient agree on what both accept"
        );
    }
    let Ok(parsed) = lenient else { return };
    let tree = &parsed.tree;
    assert_eq!(tree.validate(), Ok(()), "a parsed tree is valid");
    let _ = parsed.line_of(composefs_format::tree::NodeId::ROOT);

    let primary = print(tree, HardlinkStyle::Primary);
    let Some(again) = reparse(&primary) else {
        return;
    };
    if let Err(e) = same_tree(tree, &again, Links::Exact, plain) {
        panic!("Primary style round trip: {e}");
    }
    assert_eq!(
        print(&again, HardlinkStyle::Primary),
        primary,
        "printing is a fixpoint"
    );

    let first = print(tree, HardlinkStyle::FirstInWalk);
    let again = reparse(&first).expect("the same lines as the Primary style");
    if let Err(e) = same_tree(tree, &again, Links::AnyPrimary, plain) {
        panic!("FirstInWalk style round trip: {e}");
    }
    assert_eq!(print(&again, HardlinkStyle::FirstInWalk), first);

    let mut ls = Vec::new();
    print_ls(tree, &PrintOptions::default(), &mut ls).expect("a parsed tree prints");
});
