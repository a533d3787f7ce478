//! Differential tests: our writer against the reference mkcomposefs, byte for byte.

mod writer_support;

use composefs_conformance::{gen_dump, reference_tool, skip};
use writer_support::{first_difference, our_image, reference_image};

#[test]
fn random_dumps_match_the_reference() {
    let Some(tool) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    for seed in 0..10u64 {
        let Some(dump) = gen_dump(seed, 60, seed % 2 == 0) else {
            return;
        };
        for (args, min, max) in [
            (&[][..], 0, 1),
            (&["--min-version=0", "--max-version=0"][..], 0, 0),
            (&["--min-version=1"][..], 1, 0),
        ] {
            let theirs = reference_image(&tool, &dump, args, false);
            let ours = our_image(&dump, min, max);
            match (ours, theirs) {
                (Ok(o), Ok(t)) => {
                    if o != t {
                        std::fs::write(format!("/tmp/wdiff-{seed}.dump"), &dump).unwrap();
                        panic!(
                            "seed {seed} {args:?}: {}",
                            first_difference(&dump, min, max, &o, &t)
                        );
                    }
                }
                (o, t) => panic!(
                    "seed {seed} {args:?}: ours {:?} theirs {:?}",
                    o.map(|v| v.len()),
                    t.map(|v| v.len())
                ),
            }
        }
    }
}

#[test]
#[ignore]
fn scratch_many() {
    let tool = reference_tool("mkcomposefs").unwrap();
    let mut n = 0;
    for seed in 100..400u64 {
        let entries = [5, 50, 300, 1500][(seed % 4) as usize];
        let Some(dump) = gen_dump(seed, entries, seed % 3 != 0) else {
            return;
        };
        for (args, min, max) in [
            (&[][..], 0, 1),
            (&["--min-version=0", "--max-version=0"][..], 0, 0),
            (&["--min-version=1"][..], 1, 0),
        ] {
            let theirs = reference_image(&tool, &dump, args, false);
            let ours = our_image(&dump, min, max);
            match (ours, theirs) {
                (Ok(o), Ok(t)) => {
                    n += 1;
                    if o != t {
                        std::fs::write(format!("/tmp/wdiff-{seed}.dump"), &dump).unwrap();
                        panic!(
                            "seed {seed} {args:?}: {}",
                            first_difference(&dump, min, max, &o, &t)
                        );
                    }
                }
                (o, t) => panic!(
                    "seed {seed} {args:?}: ours {:?} theirs {:?}",
                    o.map(|v| v.len()),
                    t.map(|v| v.len())
                ),
            }
        }
    }
    eprintln!("{n} identical");
}
