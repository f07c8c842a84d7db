//! Sizes and rates as rsync's options write them: a number (a decimal
//! fraction allowed) and an optional suffix, `B` for bytes, `K`/`M`/`G`
//! (also `KiB`/`MiB`/`GiB`) for powers of 1024, `KB`/`MB`/`GB` for powers
//! of 1000, in any case. `--max-size` and `--bwlimit` differ only in what
//! a bare number means.

/// `s` in bytes, a bare number counting `bare_unit` bytes; `None` when
/// it is not a number with a known suffix.
pub fn parse_quantity(s: &str, bare_unit: u64) -> Option<f64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let unit: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" => bare_unit,
        "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    Some(num.parse::<f64>().ok()? * unit as f64)
}

/// A size in bytes (`--max-size`): a bare number is bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let size = parse_quantity(s, 1)?;
    (size < u64::MAX as f64).then(|| size.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, want) in [
            ("500", 500),
            ("100K", 100 << 10),
            ("1.5M", 3 << 19),
            ("2g", 2 << 30),
            ("1KB", 1000),
            ("3 ", 3),
            ("7b", 7),
        ] {
            assert_eq!(parse_size(s), Some(want), "{s}");
        }
        for s in [
            "",
            "K",
            ".5",
            "5.",
            "1.2.3",
            "5X",
            "-1",
            "99999999999999999999G",
        ] {
            assert_eq!(parse_size(s), None, "{s:?} accepted");
        }
    }
}
