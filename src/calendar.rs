//! Civil (UTC, proleptic Gregorian) dates from day counts and back: quota
//! windows and AWS signature dates need them; wasm has no clock library.

/// Bound on the day counts and years the civil-date functions accept.
const CIVIL_RANGE: i64 = 1 << 40;

/// Days since 1970-01-01 → proleptic Gregorian (year, month 1–12, day
/// 1–31). Howard Hinnant's `civil_from_days`. Exact within ±2⁴⁰ days
/// (±3 billion years); inputs beyond are clamped so nothing can overflow.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.clamp(-CIVIL_RANGE, CIVIL_RANGE) + 719_468; // epoch → 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from Mar 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Proleptic Gregorian (year, month 1–12, day 1–31) → days since
/// 1970-01-01; the inverse of [`civil_from_days`]. Inputs are clamped
/// (month to 1–12, day to 1–31, year to ±2⁴⁰) so nothing can overflow.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let day = day.clamp(1, 31);
    let year = year.clamp(-CIVIL_RANGE, CIVIL_RANGE);
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = if month > 2 { month - 3 } else { month + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDTHHMMSSZ` (the AWS signature date) for Unix seconds.
pub fn amz_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(days);
    let s = unix_secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn amz_dates() {
        assert_eq!(super::amz_date(0), "19700101T000000Z");
        // AWS's SigV4 test suite date.
        assert_eq!(super::amz_date(1_440_938_160), "20150830T123600Z");
    }
}
