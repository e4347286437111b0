//! How the page writes numbers: counts with thousands separators, byte sizes
//! in decimal units, percentages with one decimal, durations in seconds.
//! Tests format the stats' values with these same functions to find them in
//! the page.

/// `57,000,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `233.0 GB`, `4.1 kB`, `12 B` (powers of 1000, as the data plan writes sizes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `out` of `inp` as a percentage with one decimal (`100.0%` of nothing).
pub fn pct(out: u64, inp: u64) -> String {
    format!("{:.1}%", ratio_pct(out, inp))
}

/// `out / inp` in percent, 100 when `inp` is 0.
pub fn ratio_pct(out: u64, inp: u64) -> f64 {
    if inp == 0 {
        100.0
    } else {
        out as f64 * 100.0 / inp as f64
    }
}

/// `0.000 s`, `12.345 s`, `1 h 02 min` past an hour.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".to_string();
    }
    if s >= 3600.0 {
        let total = s.round() as u64;
        return format!("{} h {:02} min", total / 3600, (total % 3600) / 60);
    }
    format!("{s:.3} s")
}

/// A rate per second: `1,234 files/s`, `12.3 MB/s`.
pub fn rate(amount: f64, unit: &str, secs: f64) -> String {
    if secs <= 0.0 || !amount.is_finite() {
        return "-".to_string();
    }
    let r = amount / secs;
    if r >= 100.0 {
        format!("{} {unit}/s", count(r.round() as u64))
    } else {
        format!("{r:.1} {unit}/s")
    }
}

/// A similarity with three decimals.
pub fn similarity(s: f64) -> String {
    format!("{s:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(57_000_000), "57,000,000");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(4_100), "4.1 kB");
        assert_eq!(bytes(233_000_000_000), "233.0 GB");
        assert_eq!(bytes(999_990), "1.0 MB");
        assert_eq!(pct(1, 3), "33.3%");
        assert_eq!(pct(0, 0), "100.0%");
        assert_eq!(seconds(1.5), "1.500 s");
        assert_eq!(seconds(3725.0), "1 h 02 min");
        assert_eq!(rate(5000.0, "files", 2.0), "2,500 files/s");
        assert_eq!(rate(5.0, "MB", 2.0), "2.5 MB/s");
    }
}
