//! RFC 3339 UTC timestamps for the state's `created` field and for log lines, without a date
//! crate.
//!
//! Seconds since the epoch are split into days and seconds of the day (flooring, so instants
//! before 1970 work too); the days become a proleptic Gregorian date by [`civil_from_days`]. The
//! fraction always has a fixed number of digits (9, or 6 for logs) and the zone is always `Z`.

use std::time::{SystemTime, UNIX_EPOCH};

/// The date `(year, month 1..=12, day 1..=31)` of `days` since 1970-01-01 in the proleptic
/// Gregorian calendar.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days end each 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March = 0 … February = 11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // `day` is 1..=31 and `month` 1..=12 by construction.
    (year, month as u32, day as u32)
}

fn format(secs: i64, nanos: u32, digits: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (sod / 3_600, sod % 3_600 / 60, sod % 60);
    let frac = nanos.min(999_999_999) / 10u32.pow(9 - digits);
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{frac:0width$}Z",
        width = digits as usize
    )
}

/// `secs`/`nanos` since the epoch as `2026-11-23T13:10:17.123456789Z`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    format(secs, nanos, 9)
}

/// `secs`/`nanos` since the epoch as `2026-11-23T13:10:17.123456Z` (truncated, not rounded).
pub fn rfc3339_micros(secs: i64, nanos: u32) -> String {
    format(secs, nanos, 6)
}

/// The wall clock as `(seconds, nanoseconds)` since the epoch; negative if the clock is set
/// before 1970.
pub fn now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// Now, with nanoseconds: the state's `created`.
pub fn rfc3339_nanos_now() -> String {
    let (s, n) = now();
    rfc3339(s, n)
}

/// Now, with microseconds: for log lines.
pub fn rfc3339_micros_now() -> String {
    let (s, n) = now();
    rfc3339_micros(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_795_439_417, 123_456_789),
            "2026-11-23T13:10:17.123456789Z"
        );
        assert_eq!(
            rfc3339_micros(1_795_439_417, 123_456_789),
            "2026-11-23T13:10:17.123456Z"
        );
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(951_868_799, 0), "2000-02-29T23:59:59.000000000Z");
        assert_eq!(rfc3339(4_107_542_400, 0), "2100-03-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(-1, 999_999_999), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339(253_402_300_799, 0),
            "9999-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(47_482), (2100, 1, 1));
        // Every day for ±3000 years: consecutive and valid.
        let mut prev = civil_from_days(-1_100_000);
        for d in -1_099_999..1_100_000 {
            let cur = civil_from_days(d);
            let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let dim = [
                31,
                if leap(prev.0) { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let expect = if prev.2 < dim[prev.1 as usize - 1] {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!(cur, expect, "day {d}");
            prev = cur;
        }
    }

    #[test]
    fn now_is_well_formed() {
        let s = rfc3339_nanos_now();
        assert_eq!(s.len(), "2026-11-23T13:10:17.123456789Z".len(), "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T', "{s}");
        let m = rfc3339_micros_now();
        assert_eq!(m.len(), "2026-11-23T13:10:17.123456Z".len(), "{m}");
        assert!(s.as_str() >= "2024");
    }
}
