//! Time for log lines: RFC 3339 timestamps with nanoseconds in UTC (`…Z`, which Kubernetes'
//! CRI log parser accepts like any offset), and a monotonic clock for recordings.

use rustix::time::{ClockId, clock_gettime};

/// Seconds and nanoseconds since the Unix epoch.
pub fn realtime() -> (i64, u32) {
    let t = clock_gettime(ClockId::Realtime);
    (t.tv_sec, t.tv_nsec as u32)
}

/// Seconds on the monotonic clock, as a float.
pub fn monotonic_secs() -> f64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as f64 + f64::from(t.tv_nsec as u32) / 1e9
}

/// `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `2026-08-19T12:00:00.123456789Z` for the given time to `out`.
pub fn write_rfc3339_nanos(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    use std::io::Write;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: i64, nanos: u32) -> String {
        let mut v = Vec::new();
        write_rfc3339_nanos(&mut v, secs, nanos);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(fmt(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            fmt(1_787_140_800, 123_456_789),
            "2026-08-19T12:00:00.123456789Z"
        );
        assert_eq!(fmt(-1, 0), "1969-12-31T23:59:59.000000000Z");
    }
}
