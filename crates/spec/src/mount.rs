//! `mounts[].options` turned into what the mount syscalls take.
//!
//! The option names and their meaning are runc's (`specconv`): fstab flag words become `MS_*`
//! bits to set or to clear, propagation words become a propagation change, the `r`-prefixed words
//! become `MOUNT_ATTR_*` bits for a recursive `mount_setattr`, `tmpcopyup`/`idmap`/`ridmap` are
//! berth extensions, and every other word is filesystem data, passed to `mount(2)` unchanged and in
//! order (`mode=755,size=65536k`). Later words win over earlier ones (`ro,rw` is read-write).
//! Parsing never fails; [`crate::validate`] rejects the malformed words (empty, NUL).

use crate::Mount;

macro_rules! ms {
    ($($name:ident)|+) => {{
        #[allow(clippy::unnecessary_cast)]
        let v = 0 $(| libc::$name as u64)+;
        v
    }};
}

/// A flag word: `(name, clears, MS_* bits)`.
const FLAG_OPTIONS: [(&str, bool, u64); 33] = [
    ("async", true, ms!(MS_SYNCHRONOUS)),
    ("atime", true, ms!(MS_NOATIME)),
    ("bind", false, ms!(MS_BIND)),
    ("defaults", false, 0),
    ("dev", true, ms!(MS_NODEV)),
    ("diratime", true, ms!(MS_NODIRATIME)),
    ("dirsync", false, ms!(MS_DIRSYNC)),
    ("exec", true, ms!(MS_NOEXEC)),
    ("iversion", false, ms!(MS_I_VERSION)),
    ("lazytime", false, ms!(MS_LAZYTIME)),
    ("loud", true, ms!(MS_SILENT)),
    ("mand", false, ms!(MS_MANDLOCK)),
    ("noatime", false, ms!(MS_NOATIME)),
    ("nodev", false, ms!(MS_NODEV)),
    ("nodiratime", false, ms!(MS_NODIRATIME)),
    ("noexec", false, ms!(MS_NOEXEC)),
    ("noiversion", true, ms!(MS_I_VERSION)),
    ("nolazytime", true, ms!(MS_LAZYTIME)),
    ("nomand", true, ms!(MS_MANDLOCK)),
    ("norelatime", true, ms!(MS_RELATIME)),
    ("nostrictatime", true, ms!(MS_STRICTATIME)),
    ("nosuid", false, ms!(MS_NOSUID)),
    ("nosymfollow", false, ms!(MS_NOSYMFOLLOW)),
    ("rbind", false, ms!(MS_BIND | MS_REC)),
    ("relatime", false, ms!(MS_RELATIME)),
    ("remount", false, ms!(MS_REMOUNT)),
    ("ro", false, ms!(MS_RDONLY)),
    ("rw", true, ms!(MS_RDONLY)),
    ("silent", false, ms!(MS_SILENT)),
    ("strictatime", false, ms!(MS_STRICTATIME)),
    ("suid", true, ms!(MS_NOSUID)),
    ("sync", false, ms!(MS_SYNCHRONOUS)),
    ("symfollow", true, ms!(MS_NOSYMFOLLOW)),
];

/// A propagation word: `(name, MS_* propagation bits, MS_REC included)`.
const PROPAGATION_OPTIONS: [(&str, u64); 8] = [
    ("private", ms!(MS_PRIVATE)),
    ("rprivate", ms!(MS_PRIVATE | MS_REC)),
    ("shared", ms!(MS_SHARED)),
    ("rshared", ms!(MS_SHARED | MS_REC)),
    ("slave", ms!(MS_SLAVE)),
    ("rslave", ms!(MS_SLAVE | MS_REC)),
    ("unbindable", ms!(MS_UNBINDABLE)),
    ("runbindable", ms!(MS_UNBINDABLE | MS_REC)),
];

/// What a recursive-attribute word does to the `mount_setattr` attribute set.
#[derive(Clone, Copy)]
enum RecAttr {
    /// Set these `MOUNT_ATTR_*` bits.
    Set(u64),
    /// Clear these bits.
    Clear(u64),
    /// Select this access-time mode (a value inside `MOUNT_ATTR__ATIME`, which the kernel wants
    /// in `attr_clr` whenever the mode changes).
    Atime(u64),
}

/// The recursive-attribute words. `ratime`, `rnorelatime` and `rnostrictatime` select the
/// kernel's default mode, relatime.
const REC_ATTR_OPTIONS: [(&str, RecAttr); 18] = [
    ("rro", RecAttr::Set(libc::MOUNT_ATTR_RDONLY)),
    ("rrw", RecAttr::Clear(libc::MOUNT_ATTR_RDONLY)),
    ("rnosuid", RecAttr::Set(libc::MOUNT_ATTR_NOSUID)),
    ("rsuid", RecAttr::Clear(libc::MOUNT_ATTR_NOSUID)),
    ("rnodev", RecAttr::Set(libc::MOUNT_ATTR_NODEV)),
    ("rdev", RecAttr::Clear(libc::MOUNT_ATTR_NODEV)),
    ("rnoexec", RecAttr::Set(libc::MOUNT_ATTR_NOEXEC)),
    ("rexec", RecAttr::Clear(libc::MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", RecAttr::Set(libc::MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", RecAttr::Clear(libc::MOUNT_ATTR_NODIRATIME)),
    ("rnosymfollow", RecAttr::Set(libc::MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", RecAttr::Clear(libc::MOUNT_ATTR_NOSYMFOLLOW)),
    ("rrelatime", RecAttr::Atime(libc::MOUNT_ATTR_RELATIME)),
    ("rnorelatime", RecAttr::Atime(libc::MOUNT_ATTR_RELATIME)),
    ("rnoatime", RecAttr::Atime(libc::MOUNT_ATTR_NOATIME)),
    ("ratime", RecAttr::Atime(libc::MOUNT_ATTR_RELATIME)),
    ("rstrictatime", RecAttr::Atime(libc::MOUNT_ATTR_STRICTATIME)),
    ("rnostrictatime", RecAttr::Atime(libc::MOUNT_ATTR_RELATIME)),
];

/// Words that are neither flags nor data: copy-up for tmpfs, idmapped mounts.
const EXTENSION_OPTIONS: [&str; 3] = ["tmpcopyup", "idmap", "ridmap"];

/// `mounts[].options` parsed: the flags for `mount(2)`, the attributes for `mount_setattr(2)`,
/// and the filesystem data string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` bits to set, `MS_BIND`/`MS_REC` included for `bind`/`rbind`.
    pub flags: u64,
    /// `MS_*` bits an option explicitly cleared (`rw`, `suid`, `dev`, `exec`, …): a bind
    /// remount must clear them rather than keep what the source had.
    pub clear_flags: u64,
    /// The last propagation word's `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE` bit, with
    /// `MS_REC` for the `r` forms; 0 when none was given.
    pub propagation: u64,
    /// `MOUNT_ATTR_*` bits to set recursively (`attr_set` of `mount_setattr` with `AT_RECURSIVE`).
    pub rec_attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear recursively (`attr_clr`), `MOUNT_ATTR__ATIME` when an atime
    /// word was given.
    pub rec_attr_clr: u64,
    /// Filesystem data: the unknown words joined by `,`, in order.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind` was given.
    pub recursive: bool,
    /// `tmpcopyup`: copy the directory's old contents into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap` or `ridmap`: an idmapped mount.
    pub idmap: bool,
    /// `ridmap`: the idmapping applies to the whole tree.
    pub idmap_recursive: bool,
}

impl MountOptions {
    /// Whether `mount_setattr` has anything to do.
    pub fn has_rec_attrs(&self) -> bool {
        self.rec_attr_set != 0 || self.rec_attr_clr != 0
    }
}

/// Parses `mounts[].options`; see the module documentation for the rules.
pub fn parse_mount_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some(&(_, clear, bits)) = FLAG_OPTIONS.iter().find(|(n, _, _)| *n == opt) {
            if clear {
                out.flags &= !bits;
                out.clear_flags |= bits;
            } else {
                out.flags |= bits;
                out.clear_flags &= !bits;
            }
            if opt == "bind" || opt == "rbind" {
                out.bind = true;
            }
            if opt == "rbind" {
                out.recursive = true;
            }
        } else if let Some(&(_, bits)) = PROPAGATION_OPTIONS.iter().find(|(n, _)| *n == opt) {
            out.propagation = bits;
        } else if let Some(&(_, attr)) = REC_ATTR_OPTIONS.iter().find(|(n, _)| *n == opt) {
            match attr {
                RecAttr::Set(bits) => {
                    out.rec_attr_set |= bits;
                    out.rec_attr_clr &= !bits;
                }
                RecAttr::Clear(bits) => {
                    out.rec_attr_clr |= bits;
                    out.rec_attr_set &= !bits;
                }
                RecAttr::Atime(mode) => {
                    out.rec_attr_set = (out.rec_attr_set & !libc::MOUNT_ATTR__ATIME) | mode;
                    out.rec_attr_clr |= libc::MOUNT_ATTR__ATIME;
                }
            }
        } else {
            match opt {
                "tmpcopyup" => out.tmpcopyup = true,
                "idmap" => out.idmap = true,
                "ridmap" => {
                    out.idmap = true;
                    out.idmap_recursive = true;
                }
                _ => data.push(opt),
            }
        }
    }
    out.data = data.join(",");
    out
}

/// Whether `option` is one of the words berth interprets (anything else is filesystem data).
pub fn is_known_mount_option(option: &str) -> bool {
    known_mount_options().contains(&option)
}

/// Every word berth interprets, sorted (the `mountOptions` of `berth features`).
pub fn known_mount_options() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FLAG_OPTIONS
        .iter()
        .map(|o| o.0)
        .chain(PROPAGATION_OPTIONS.iter().map(|o| o.0))
        .chain(REC_ATTR_OPTIONS.iter().map(|o| o.0))
        .chain(EXTENSION_OPTIONS)
        .collect();
    names.sort_unstable();
    names
}

impl Mount {
    /// [`parse_mount_options`] of this mount's `options`.
    pub fn parsed_options(&self) -> MountOptions {
        parse_mount_options(&self.options)
    }

    /// Whether this is a bind mount: `options` hold `bind`/`rbind`, or `type` is `bind`
    /// (as crun reads it).
    pub fn is_bind(&self) -> bool {
        self.typ.as_deref() == Some("bind")
            || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse_mount_options(&v)
    }

    // `c_ulong` is `u64` here but `u32` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    fn bits(v: libc::c_ulong) -> u64 {
        u64::from(v)
    }

    #[test]
    fn runc_dev_tmpfs() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, bits(libc::MS_NOSUID | libc::MS_STRICTATIME));
        assert_eq!(o.clear_flags, 0);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind && !o.recursive);
        assert_eq!(o.propagation, 0);
    }

    #[test]
    fn runc_devpts() {
        let o = parse(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(o.flags, bits(libc::MS_NOSUID | libc::MS_NOEXEC));
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn later_words_win_and_clears_are_recorded() {
        let o = parse(&["ro", "rw"]);
        assert_eq!(o.flags & bits(libc::MS_RDONLY), 0);
        assert_eq!(o.clear_flags, bits(libc::MS_RDONLY));
        let o = parse(&["rw", "ro", "suid", "nodev", "exec"]);
        assert_eq!(o.flags, bits(libc::MS_RDONLY | libc::MS_NODEV));
        assert_eq!(o.clear_flags, bits(libc::MS_NOSUID | libc::MS_NOEXEC));
    }

    #[test]
    fn bind_and_propagation() {
        let o = parse(&["rbind", "rprivate", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(
            o.flags,
            bits(libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY)
        );
        assert_eq!(o.propagation, bits(libc::MS_PRIVATE | libc::MS_REC));
        assert_eq!(o.data, "");
        let o = parse(&["bind", "shared"]);
        assert!(o.bind && !o.recursive);
        assert_eq!(o.propagation, bits(libc::MS_SHARED));
        for (w, b) in [
            ("slave", libc::MS_SLAVE),
            ("unbindable", libc::MS_UNBINDABLE),
        ] {
            assert_eq!(parse(&[w]).propagation, bits(b));
        }
        assert_eq!(
            parse(&["rslave"]).propagation,
            bits(libc::MS_SLAVE | libc::MS_REC)
        );
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnodev", "rnoexec"]);
        assert_eq!(
            o.rec_attr_set,
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
        );
        assert_eq!(o.rec_attr_clr, 0);
        assert!(o.has_rec_attrs());
        let o = parse(&["rro", "rrw"]);
        assert_eq!(o.rec_attr_set, 0);
        assert_eq!(o.rec_attr_clr, libc::MOUNT_ATTR_RDONLY);
        let o = parse(&["rnoatime"]);
        assert_eq!(o.rec_attr_set, libc::MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_attr_clr, libc::MOUNT_ATTR__ATIME);
        let o = parse(&["rnoatime", "rstrictatime"]);
        assert_eq!(o.rec_attr_set, libc::MOUNT_ATTR_STRICTATIME);
        let o = parse(&["rnoatime", "ratime", "rnodiratime"]);
        assert_eq!(
            o.rec_attr_set,
            libc::MOUNT_ATTR_RELATIME | libc::MOUNT_ATTR_NODIRATIME
        );
        assert_eq!(o.rec_attr_clr, libc::MOUNT_ATTR__ATIME);
        assert!(!parse(&["ro"]).has_rec_attrs());
    }

    #[test]
    fn extensions_and_data() {
        let o = parse(&["tmpcopyup", "mode=1777", "ridmap", "x-foo"]);
        assert!(o.tmpcopyup && o.idmap && o.idmap_recursive);
        assert_eq!(o.data, "mode=1777,x-foo");
        let o = parse(&["idmap"]);
        assert!(o.idmap && !o.idmap_recursive);
        assert_eq!(parse(&["defaults"]), MountOptions::default());
        let o = parse(&[
            "nosymfollow",
            "lazytime",
            "mand",
            "dirsync",
            "sync",
            "remount",
            "relatime",
        ]);
        assert_eq!(
            o.flags,
            bits(
                libc::MS_NOSYMFOLLOW
                    | libc::MS_LAZYTIME
                    | libc::MS_MANDLOCK
                    | libc::MS_DIRSYNC
                    | libc::MS_SYNCHRONOUS
                    | libc::MS_REMOUNT
                    | libc::MS_RELATIME
            )
        );
    }

    #[test]
    fn known_options_cover_runc_features() {
        let known = known_mount_options();
        assert!(
            known.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        // runc 1.1.5's `features` list minus acl/noacl (runc dropped them: they are fs data).
        for o in [
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "iversion",
            "lazytime",
            "loud",
            "mand",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "noiversion",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "nosymfollow",
            "private",
            "ratime",
            "rbind",
            "rdev",
            "rdiratime",
            "relatime",
            "remount",
            "rexec",
            "rnoatime",
            "rnodev",
            "rnodiratime",
            "rnoexec",
            "rnorelatime",
            "rnostrictatime",
            "rnosuid",
            "rnosymfollow",
            "ro",
            "rprivate",
            "rrelatime",
            "rro",
            "rrw",
            "rshared",
            "rslave",
            "rstrictatime",
            "rsuid",
            "rsymfollow",
            "runbindable",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "symfollow",
            "sync",
            "tmpcopyup",
            "unbindable",
            "idmap",
            "ridmap",
        ] {
            assert!(is_known_mount_option(o), "{o}");
        }
        assert!(!is_known_mount_option("mode=755"));
        assert!(!is_known_mount_option("acl"));
    }

    #[test]
    fn mount_helpers() {
        let m = Mount {
            destination: "/x".into(),
            typ: Some("bind".into()),
            ..Default::default()
        };
        assert!(m.is_bind());
        let m = Mount {
            destination: "/x".into(),
            options: vec!["rbind".into()],
            ..Default::default()
        };
        assert!(m.is_bind());
        assert!(m.parsed_options().recursive);
        let m = Mount {
            destination: "/x".into(),
            typ: Some("tmpfs".into()),
            ..Default::default()
        };
        assert!(!m.is_bind());
    }
}
