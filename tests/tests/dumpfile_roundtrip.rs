//! Round trips between trees and dump text: printing with `HardlinkStyle::Primary` and
//! parsing gives the same tree; printing with `FirstInWalk` gives the same tree up to
//! which hard-link entry is primary.

use composefs_conformance::arb;
use composefs_format::dumpfile::{self, HardlinkStyle, ParseOptions, PrintOptions};
use composefs_format::tree::Tree;
use proptest::prelude::*;

fn print(tree: &Tree, hardlinks: HardlinkStyle) -> Vec<u8> {
    let mut out = Vec::new();
    let options = PrintOptions {
        hardlinks,
        ..PrintOptions::default()
    };
    dumpfile::print_dump(tree, &options, &mut out).expect("print");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn primary_style_round_trips_exactly(tree in arb::tree()) {
        let text = print(&tree, HardlinkStyle::Primary);
        let parsed = dumpfile::parse_bytes(&text, ParseOptions::strict())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&text))))?;
        prop_assert_eq!(parsed.tree.validate(), Ok(()));
        prop_assert_eq!(arb::canonical(&parsed.tree), arb::canonical(&tree));
        // Printing again reproduces the text byte for byte.
        prop_assert_eq!(print(&parsed.tree, HardlinkStyle::Primary), text);
    }

    #[test]
    fn first_in_walk_style_round_trips_up_to_primary_entries(tree in arb::tree()) {
        let text = print(&tree, HardlinkStyle::FirstInWalk);
        let parsed = dumpfile::parse_bytes(&text, ParseOptions::strict())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&text))))?;
        prop_assert_eq!(
            arb::canonical(&parsed.tree),
            arb::canonical(&arb::primary_first_in_walk(&tree))
        );
        prop_assert_eq!(print(&parsed.tree, HardlinkStyle::FirstInWalk), text);
    }

    #[test]
    fn reader_and_line_feeding_agree_with_parse_bytes(tree in arb::tree_with(12)) {
        let text = print(&tree, HardlinkStyle::Primary);
        let whole = dumpfile::parse_bytes(&text, ParseOptions::strict()).expect("parse");
        let read = dumpfile::parse_reader(std::io::BufReader::with_capacity(7, text.as_slice()),
            ParseOptions::strict()).expect("read");
        prop_assert_eq!(&read, &whole);
        let mut parser = dumpfile::Parser::new(ParseOptions::strict());
        for line in text.split_inclusive(|&b| b == b'\n') {
            parser.parse_line(line).expect("line");
        }
        prop_assert_eq!(&parser.finish().expect("finish"), &whole);
    }
}

#[test]
fn arb_trees_cover_hard_links_with_later_primaries_and_big_content() {
    // Guards the strategy itself: the properties above are only as good as its coverage.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut later_primary, mut big_content, mut negative_mtime) = (false, false, false);
    for _ in 0..200 {
        let tree = arb::tree().new_tree(&mut runner).expect("tree").current();
        let reordered = arb::primary_first_in_walk(&tree);
        later_primary |= arb::canonical(&reordered) != arb::canonical(&tree);
        for (_, node) in tree.iter() {
            big_content |= node.content.as_ref().is_some_and(|c| c.len() > 4096);
            negative_mtime |= node.mtime.sec < 0;
        }
    }
    assert!(later_primary && big_content && negative_mtime);
}
