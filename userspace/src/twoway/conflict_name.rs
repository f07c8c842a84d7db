//! The name of a conflict copy: `STEM.sync-conflict-YYYYMMDD-HHMMSS-SIDE.EXT`
//! in the same directory (EXT = the last suffix, kept last; none for
//! names without one, or whose only dot leads), UTC.

/// The UTC stamp `YYYYMMDD-HHMMSS` of `secs` since the epoch.
pub fn stamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
