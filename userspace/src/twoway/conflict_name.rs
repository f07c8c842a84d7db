//! The name of a conflict copy: `STEM.sync-conflict-YYYYMMDD-HHMMSS-SIDE.EXT`
//! in the same directory (EXT = the last suffix, kept last; none for
//! names without one, or whose only dot leads), UTC.

/// The UTC stamp `YYYYMMDD-HHMMSS` of `secs` since the epoch (before
/// 1970: the epoch's).
pub fn stamp(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or(0);
    crate::utc::stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The conflict copy name of `name` (one component) for `side` at
/// `stamp`; `n` > 0 adds `-n` (a name already taken). Long stems are cut
/// so that the name stays within 255 bytes.
pub fn conflict_name(name: &[u8], stamp: &str, side: &str, n: u32) -> Vec<u8> {
    let dot = name.iter().rposition(|&c| c == b'.').filter(|&i| i > 0);
    let (stem, ext) = match dot {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, &b""[..]),
    };
    let mut mid = format!(".sync-conflict-{stamp}-{side}").into_bytes();
    if n > 0 {
        mid.extend(format!("-{n}").bytes());
    }
    let ext = if ext.len() > 32 { &b""[..] } else { ext };
    let room = 255usize.saturating_sub(mid.len() + ext.len());
    let mut out = stem[..stem.len().min(room)].to_vec();
    out.extend(mid);
    out.extend_from_slice(ext);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(stamp(0), "19700101-000000");
        assert_eq!(stamp(1_796_638_500), "20261207-101500");
        assert_eq!(stamp(951_782_400), "20000229-000000");
    }

    #[test]
    fn names_keep_the_extension_last() {
        let s = "20261207-101500";
        assert_eq!(
            conflict_name(b"report.txt", s, "laptop", 0),
            b"report.sync-conflict-20261207-101500-laptop.txt"
        );
        assert_eq!(
            conflict_name(b"a.tar.gz", s, "a", 0),
            b"a.tar.sync-conflict-20261207-101500-a.gz"
        );
        assert_eq!(
            conflict_name(b"Makefile", s, "b", 2),
            b"Makefile.sync-conflict-20261207-101500-b-2"
        );
        assert_eq!(
            conflict_name(b".bashrc", s, "b", 0),
            b".bashrc.sync-conflict-20261207-101500-b"
        );
        let long = vec![b'x'; 250];
        assert!(conflict_name(&long, s, "a", 0).len() <= 255);
    }
}
