//! The `-o` option string of `mount.composefs`: comma-separated `key` or `key=value`
//! items, where a backslash takes the next character literally (so `\,` is a comma inside
//! a value).

use std::fmt;
use std::path::PathBuf;

use composefs_std::mount::{parse_digest, ImageCheck, MountOptions, Verity};

/// Why an option string was refused. Each message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

fn err(text: impl Into<String>) -> OptionError {
    OptionError(text.into())
}

/// One `key[=value]` item, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    key: String,
    value: Option<String>,
}

/// Splits at unescaped commas; the key ends at the first unescaped `=`; backslashes are
/// removed from keys and values, each keeping the character after it.
fn split(options: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut key = String::new();
    let mut value: Option<String> = None;
    let mut chars = options.chars();
    let mut push = |key: &mut String, value: &mut Option<String>| {
        items.push(Item {
            key: std::mem::take(key),
            value: value.take(),
        });
    };
    while let Some(c) = chars.next() {
        match c {
            ',' => push(&mut key, &mut value),
            '=' if value.is_none() => value = Some(String::new()),
            c => {
                let c = if c == '\\' { chars.next() } else { Some(c) };
                if let Some(c) = c {
                    value.as_mut().unwrap_or(&mut key).push(c);
                }
            }
        }
    }
    push(&mut key, &mut value);
    items
}

/// The options as given, before they become [`MountOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedOptions {
    /// `basedir=`, split at `:`.
    pub basedirs: Vec<PathBuf>,
    /// `digest=`.
    pub digest: Option<[u8; 32]>,
    /// `verity` / `tryverity`.
    pub verity: Verity,
    /// `upperdir=`.
    pub upperdir: Option<PathBuf>,
    /// `workdir=`.
    pub workdir: Option<PathBuf>,
    /// `idmap=`.
    pub idmap: Option<PathBuf>,
    /// `ro` (last of `ro`/`rw` wins).
    pub read_only: bool,
    /// `check=`.
    pub check: ImageCheck,
    /// `nosnapshot`.
    pub no_snapshot: bool,
}

impl ParsedOptions {
    /// The library options these stand for.
    ///
    /// # Errors
    /// Without `basedir=`, or with only one of `upperdir=` and `workdir=`.
    pub fn to_mount_options(&self) -> Result<MountOptions, OptionError> {
        if self.basedirs.is_empty() {
            return Err(err(
                "no basedir= given: at least one object directory is needed",
            ));
        }
        let mut o = MountOptions::new(self.basedirs.iter().cloned())
            .verity(self.verity)
            .read_only(self.read_only)
            .check(self.check)
            .snapshot(!self.no_snapshot);
        if let Some(d) = self.digest {
            o = o.digest(d);
        }
        match (&self.upperdir, &self.workdir) {
            (Some(u), Some(w)) => o = o.upper(u, w),
            (None, None) => {}
            (Some(_), None) => return Err(err("upperdir= needs workdir= as well")),
            (None, Some(_)) => return Err(err("workdir= needs upperdir= as well")),
        }
        if let Some(ns) = &self.idmap {
            o = o.idmap(ns);
        }
        Ok(o)
    }
}

/// Parses an option string (all `-o` arguments joined by commas).
///
/// # Errors
/// An unknown option, a missing or unexpected value, an empty `basedir` component, an
/// invalid digest or `check` level; each message names the option.
pub fn parse(options: &str) -> Result<ParsedOptions, OptionError> {
    let mut out = ParsedOptions::default();
    let mut verity = false;
    let mut tryverity = false;
    for Item { key, value } in split(options) {
        let need = |value: Option<String>| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(format!("option {key} needs a value ({key}=...)")))
        };
        let flag = |value: &Option<String>| match value {
            None => Ok(()),
            Some(_) => Err(err(format!("option {key} takes no value"))),
        };
        match key.as_str() {
            "basedir" => out.basedirs = parse_basedirs(&need(value)?)?,
            "digest" => {
                let text = need(value)?;
                out.digest = Some(parse_digest(&text).map_err(|e| err(format!("digest: {e}")))?);
            }
            "verity" => {
                flag(&value)?;
                verity = true;
            }
            "tryverity" => {
                flag(&value)?;
                tryverity = true;
            }
            "upperdir" => out.upperdir = Some(need(value)?.into()),
            "workdir" => out.workdir = Some(need(value)?.into()),
            "idmap" => out.idmap = Some(need(value)?.into()),
            "ro" => {
                flag(&value)?;
                out.read_only = true;
            }
            "rw" => {
                flag(&value)?;
                out.read_only = false;
            }
            "check" => {
                out.check = match value.as_deref() {
                    None | Some("structure") => ImageCheck::Structure,
                    Some("canonical") => ImageCheck::Canonical,
                    Some("none") => ImageCheck::None,
                    Some(other) => {
                        return Err(err(format!(
                            "check={other}: expected none, structure or canonical"
                        )))
                    }
                }
            }
            "nosnapshot" => {
                flag(&value)?;
                out.no_snapshot = true;
            }
            "" if value.is_none() => return Err(err("empty option (two commas in a row?)")),
            _ => return Err(err(format!("unknown option {key}"))),
        }
    }
    out.verity = if verity {
        Verity::Require
    } else if tryverity {
        Verity::Try
    } else {
        Verity::Off
    };
    Ok(out)
}

/// `P1[:P2...]`; every component must be non-empty.
fn parse_basedirs(value: &str) -> Result<Vec<PathBuf>, OptionError> {
    value
        .split(':')
        .enumerate()
        .map(|(i, p)| {
            if p.is_empty() {
                Err(err(format!(
                    "basedir={value}: path {} of the ':'-separated list is empty",
                    i + 1
                )))
            } else {
                Ok(PathBuf::from(p))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, value: Option<&str>) -> Item {
        Item {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn splitting_honours_backslash_escapes() {
        assert_eq!(
            split(r"basedir=/a\,b,ro,x=1=2,y\=z=v\\w"),
            vec![
                item("basedir", Some("/a,b")),
                item("ro", None),
                item("x", Some("1=2")),
                item("y=z", Some(r"v\w")),
            ]
        );
        assert_eq!(split(""), vec![item("", None)]);
        assert_eq!(split(r"k=a\"), vec![item("k", Some("a"))]);
        assert_eq!(split("k="), vec![item("k", Some(""))]);
    }

    #[test]
    fn every_option_is_understood() {
        let hex = "ab".repeat(32);
        let p = parse(&format!(
            "basedir=/o1:/o2,digest={hex},upperdir=/u,workdir=/w,idmap=/proc/1/ns/user,ro,check=canonical,nosnapshot"
        ))
        .unwrap();
        assert_eq!(
            p,
            ParsedOptions {
                basedirs: vec!["/o1".into(), "/o2".into()],
                digest: Some([0xab; 32]),
                verity: Verity::Off,
                upperdir: Some("/u".into()),
                workdir: Some("/w".into()),
                idmap: Some("/proc/1/ns/user".into()),
                read_only: true,
                check: ImageCheck::Canonical,
                no_snapshot: true,
            }
        );
        let o = p.to_mount_options().unwrap();
        assert_eq!(o.basedirs(), &[PathBuf::from("/o1"), PathBuf::from("/o2")]);
        assert_eq!(
            o.effective_verity(),
            Verity::Require,
            "digest implies verity"
        );
        assert_eq!(
            o,
            MountOptions::new(["/o1", "/o2"])
                .digest([0xab; 32])
                .upper("/u", "/w")
                .idmap("/proc/1/ns/user")
                .read_only(true)
                .check(ImageCheck::Canonical)
                .snapshot(false)
        );
    }

    #[test]
    fn defaults_and_last_one_wins() {
        let p = parse("basedir=/o").unwrap();
        assert_eq!(p.check, ImageCheck::Structure);
        assert!(!p.read_only);
        assert_eq!(p.verity, Verity::Off);
        assert!(!parse("basedir=/o,ro,rw").unwrap().read_only);
        assert!(parse("basedir=/o,rw,ro").unwrap().read_only);
        assert_eq!(
            parse("basedir=/a,basedir=/b").unwrap().basedirs,
            vec![PathBuf::from("/b")]
        );
        assert_eq!(parse("basedir=/o,tryverity").unwrap().verity, Verity::Try);
        assert_eq!(
            parse("basedir=/o,tryverity,verity").unwrap().verity,
            Verity::Require
        );
        assert_eq!(
            parse("basedir=/o,check").unwrap().check,
            ImageCheck::Structure
        );
        assert_eq!(
            parse("basedir=/o,check=none").unwrap().check,
            ImageCheck::None
        );
    }

    #[test]
    fn bad_options_are_named() {
        for (opts, want) in [
            ("basedir=/o,foo", "unknown option foo"),
            ("basedir=/o,foo=1", "unknown option foo"),
            ("basedir", "option basedir needs a value"),
            ("basedir=", "option basedir needs a value"),
            (
                "basedir=a::b",
                "basedir=a::b: path 2 of the ':'-separated list is empty",
            ),
            ("basedir=:a", "path 1 of the ':'-separated list is empty"),
            ("basedir=a:", "path 2 of the ':'-separated list is empty"),
            (
                "basedir=/o,digest=00",
                "digest: invalid digest \"00\": expected 64",
            ),
            ("basedir=/o,digest", "option digest needs a value"),
            ("basedir=/o,verity=yes", "option verity takes no value"),
            ("basedir=/o,ro=1", "option ro takes no value"),
            (
                "basedir=/o,check=full",
                "check=full: expected none, structure or canonical",
            ),
            ("basedir=/o,,ro", "empty option"),
            ("basedir=/o,upperdir", "option upperdir needs a value"),
        ] {
            let e = parse(opts).unwrap_err().to_string();
            assert!(e.contains(want), "{opts}: {e}");
        }
    }

    #[test]
    fn combinations_are_checked_when_building() {
        let e = parse("ro").unwrap().to_mount_options().unwrap_err();
        assert!(e.0.contains("no basedir= given"), "{e}");
        let e = parse("basedir=/o,upperdir=/u")
            .unwrap()
            .to_mount_options()
            .unwrap_err();
        assert_eq!(e.0, "upperdir= needs workdir= as well");
        let e = parse("basedir=/o,workdir=/w")
            .unwrap()
            .to_mount_options()
            .unwrap_err();
        assert_eq!(e.0, "workdir= needs upperdir= as well");
    }

    #[test]
    fn escaped_commas_reach_paths() {
        let p = parse(r"basedir=/a\,b:/c,upperdir=/u\,1,workdir=/w").unwrap();
        assert_eq!(p.basedirs, vec![PathBuf::from("/a,b"), PathBuf::from("/c")]);
        assert_eq!(p.upperdir, Some(PathBuf::from("/u,1")));
    }
}
