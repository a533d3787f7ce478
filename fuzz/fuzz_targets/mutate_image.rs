//! Structure-aware mutation of valid images. The image is written from a small tree built
//! from the fuzz bytes, or is one of a few built-in seeds; then one to three fields, found
//! through the reader's offsets (inode, xattr area and entries, dirents, names, inline
//! data, data blocks) or the writer's layout (padding), get fuzz-chosen values, name
//! filters are optionally recomputed so that deeper checks are reached, and the result
//! goes through the check, the full walk, `image_to_tree` and `canonical::verify`.
//!
//! Properties: no panic; the unmutated image is canonical; a mutation that changed a
//! structural byte (one the writer derives, see `composefs_fuzz::sites`) is rejected by
//! `canonical::verify`; a mutated image that still verifies must describe a different
//! tree or format version than the original (two images of one tree cannot both be
//! canonical).
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use composefs_format::canonical;
use composefs_format::check::check_bytes;
use composefs_format::from_image::image_to_tree;
use composefs_format::image::{superblock_checksum, Image};
use composefs_format::ondisk::EROFS_FEATURE_COMPAT_SB_CHKSUM;
use composefs_format::tree::Tree;
use composefs_format::write::{self, Options};
use composefs_fuzz::compare::{plain, same_tree, Links};
use composefs_fuzz::sites::{sites, Site};
use composefs_fuzz::{gen, seeds, walk, write_tree};
use libfuzzer_sys::fuzz_target;

fn seed_trees() -> &'static [(Tree, Options)] {
    static SEEDS: OnceLock<Vec<(Tree, Options)>> = OnceLock::new();
    SEEDS.get_or_init(seeds::trees)
}

/// A value for a `width`-byte field that held `old`.
fn value(u: &mut Unstructured<'_>, old: u64, width: usize) -> Result<u64> {
    let mask = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let v = match u.int_in_range(0u8..=11)? {
        0 => 0,
        1 => 1,
        2 => mask,
        3 => old.wrapping_add(1),
        4 => old.wrapping_sub(1),
        5 => old ^ (1u64 << u.int_in_range(0..=(8 * width as u32 - 1))?),
        6 => mask >> 1,
        7 => mask ^ (mask >> 1),
        8 => old.wrapping_add(u64::from(u.int_in_range(2u8..=64)?)),
        9 => u64::from(*u.choose(&[b'/', b'.', 0, b'a', 0xff])?),
        _ => u.arbitrary()?,
    };
    Ok(v & mask)
}

fn read_le(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(&bytes[at..at + width]);
    u64::from_le_bytes(buf)
}

/// A structural field that a mutation wrote: what, where, width.
type Written = (&'static str, usize, usize);

/// Applies one mutation; returns the field when it is structural.
fn mutate(u: &mut Unstructured<'_>, img: &mut [u8], site: &Site) -> Result<Option<Written>> {
    let slots = site.len / site.width;
    let at = site.start + site.width * u.choose_index(slots.max(1))?;
    let old = read_le(img, at, site.width);
    let new = value(u, old, site.width)?;
    img[at..at + site.width].copy_from_slice(&new.to_le_bytes()[..site.width]);
    Ok(site.structural.then_some((site.what, at, site.width)))
}

/// Recomputes the name filter of the inodes in `targets` (filter offset, nid) whose xattrs
/// still read, except the filters in `keep` (the ones mutated on purpose).
fn fix_filters(img: &mut [u8], targets: &[(usize, u64)], keep: &[usize]) {
    let fixes: Vec<(usize, u32)> = match Image::open(img) {
        Ok(image) => targets
            .iter()
            .filter(|(at, _)| !keep.contains(at))
            .filter_map(|&(at, nid)| {
                let inode = image.inode(nid).ok()?;
                if inode.xattr_offset() != at as u64 {
                    return None;
                }
                Some((at, inode.xattrs().ok()?.computed_filter().ok()?))
            })
            .collect(),
        Err(_) => return,
    };
    for (at, f) in fixes {
        img[at..at + 4].copy_from_slice(&f.to_le_bytes());
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let seeds = seed_trees();
    let pick = u.int_in_range(0..=seeds.len())?;
    let generated;
    let (tree, options) = if pick == 0 {
        generated = (gen::tree(&mut u, 12)?, gen::options(&mut u)?);
        (&generated.0, &generated.1)
    } else {
        let (t, o) = &seeds[pick - 1];
        (t, o)
    };
    let Ok(original) = write_tree(tree, options) else {
        return Ok(());
    };
    let layout = write::plan(tree, options).expect("planned once already");
    let image = Image::open(&original).expect("writer output opens");
    let sites = sites(&image, Some(&layout));
    let original_tree = image_to_tree(&image).expect("writer output reads back");

    let mut img = original.clone();
    let mut structural: Vec<Written> = Vec::new();
    let mut touched_filters = Vec::new();
    let mut filter_sites = Vec::new();
    for _ in 0..u.int_in_range(1u8..=3)? {
        let site = *u.choose(&sites)?;
        structural.extend(mutate(&mut u, &mut img, &site)?);
        if site.what == "h_name_filter" {
            filter_sites.push(site.start);
        }
        if let Some(f) = site.filter_of {
            touched_filters.push(f);
        }
    }
    if u.arbitrary()? {
        let all: Vec<(usize, u64)> = sites.iter().filter_map(|s| s.filter_of).collect();
        fix_filters(
            &mut img,
            if u.arbitrary()? {
                &all
            } else {
                &touched_filters
            },
            &filter_sites,
        );
    }
    let compat = u32::from_le_bytes(img[1032..1036].try_into().expect("4 bytes"));
    if compat & EROFS_FEATURE_COMPAT_SB_CHKSUM != 0 && u.arbitrary()? {
        if let Ok(c) = superblock_checksum(&img) {
            img[1028..1032].copy_from_slice(&c.to_le_bytes());
        }
    }

    let report = check_bytes(&img);
    for p in report.problems().iter().take(20) {
        let _ = (report.path(p), p.error.to_string());
    }
    walk::walk_bytes(&img, report.is_sound());
    let read = Image::open(&img).ok().map(|i| image_to_tree(&i));
    let verdict = canonical::verify(&img);
    if img == original {
        assert!(
            verdict.is_ok(),
            "an unmutated writer image verifies: {verdict:?}"
        );
        return Ok(());
    }
    if let Ok(c) = verdict {
        // Structural fields whose final bytes differ from the original's.
        let structural: Vec<_> = structural
            .iter()
            .filter(|&&(_, at, w)| img[at..at + w] != original[at..at + w])
            .map(|&(what, at, w)| (what, at, read_le(&original, at, w), read_le(&img, at, w)))
            .collect();
        assert!(
            structural.is_empty(),
            "changed structural fields accepted as canonical: {structural:?}"
        );
        let read = read.expect("canonical images open").expect("and read back");
        assert_eq!(c.format_version, read.format_version);
        let same = read.format_version == original_tree.format_version
            && same_tree(&original_tree.tree, &read.tree, Links::Exact, plain).is_ok();
        assert!(
            !same,
            "two different images of one tree both verified as canonical"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
