//! Request dates: SigV4's ISO 8601 basic form and the RFC 1123 form HCP documents
//! (`Thu, 23 Mar 2017 14:27:05 +0000` or `… GMT`).

use std::time::SystemTime;

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses `20150830T123600Z` or an RFC 1123 date with `GMT` or `+0000`. The weekday name is
/// redundant and not checked against the date (S3 servers ignore it too), so a client that gets
/// it wrong is judged by its clock, as RequestTimeTooSkewed, rather than refused as unreadable.
pub fn parse_request_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    if let Some(t) = parse_iso_basic(value.as_bytes()) {
        return Some(t);
    }
    // (What the hand reading leaves — a year with a sign, `+20170323T142705Z` — `time` reads.)
    let iso = format_description!("[year][month][day]T[hour][minute][second]Z");
    if let Ok(t) = PrimitiveDateTime::parse(value, iso) {
        return Some(t.assume_utc().into());
    }
    let (weekday, rest) = value.split_once(", ")?;
    if weekday.len() != 3 || !weekday.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let rest = rest
        .strip_suffix(" GMT")
        .or_else(|| rest.strip_suffix(" +0000"))?;
    let rfc1123 = format_description!("[day] [month repr:short] [year] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(rest, rfc1123)
        .ok()
        .map(|t| t.assume_utc())
        // No request was signed before 1970; such a date is unreadable, not merely skewed.
        .filter(|t| t.unix_timestamp() >= 0)
        .map(Into::into)
}

/// `yyyymmddThhmmssZ`, a valid date and time of the (proleptic) Gregorian calendar in UTC:
/// what `time` parses by `[year][month][day]T[hour][minute][second]Z` with an unsigned year,
/// read here without a format description, as every SigV4 request carries one
/// (`iso_basic_reads_as_time_does`); a signed year is left to `time`.
fn parse_iso_basic(value: &[u8]) -> Option<SystemTime> {
    let v: &[u8; 16] = value.try_into().ok()?;
    if v[8] != b'T' || v[15] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        v[from..to].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(4, 6)?, number(6, 8)?);
    let (hour, minute, second) = (number(9, 11)?, number(11, 13)?, number(13, 15)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a Gregorian date (the civil-from-days inverse; years counted
    // from March, so that a leap day ends its year).
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * ((i64::from(month) + 9) % 12) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let offset = std::time::Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    }
}

/// Formats a time as SigV4's `yyyymmddThhmmssZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    let mut out = String::with_capacity(16);
    let digits = |out: &mut String, n: u32, width: u32| {
        for place in (0..width).rev() {
            let digit = (n / 10u32.pow(place)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
    };
    digits(&mut out, u32::try_from(t.year()).unwrap_or(0), 4);
    digits(&mut out, u32::from(u8::from(t.month())), 2);
    digits(&mut out, u32::from(t.day()), 2);
    out.push('T');
    digits(&mut out, u32::from(t.hour()), 2);
    digits(&mut out, u32::from(t.minute()), 2);
    digits(&mut out, u32::from(t.second()), 2);
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn both_forms_parse_to_the_same_instant() {
        let iso = parse_request_date("20170323T142705Z").unwrap();
        let rfc_plus = parse_request_date("Thu, 23 Mar 2017 14:27:05 +0000").unwrap();
        let rfc_gmt = parse_request_date("Thu, 23 Mar 2017 14:27:05 GMT").unwrap();
        assert_eq!(iso, rfc_plus);
        assert_eq!(iso, rfc_gmt);
        assert_eq!(
            iso.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_secs(1490279225)
        );
        assert!(parse_request_date("yesterday").is_none());
        assert!(parse_request_date("Thu, 23 Mar 2017 14:27:05 CET").is_none());
        assert!(parse_request_date("Thu, 32 Mar 2017 14:27:05 GMT").is_none());
        assert!(parse_request_date("Tue, 07 Jul 1950 21:53:04 GMT").is_none());
    }

    #[test]
    fn a_wrong_weekday_does_not_make_a_date_unreadable() {
        // 7 July 2030 is a Sunday; s3-tests sends "Tue" and expects RequestTimeTooSkewed.
        let t = parse_request_date("Tue, 07 Jul 2030 21:53:04 GMT").unwrap();
        assert_eq!(t, parse_request_date("20300707T215304Z").unwrap());
    }

    /// Oracle: the hand-read ISO basic form is what `time` reads by its format description,
    /// for dates near and far (years 0000–9999, leap days, the ends of months, out-of-range
    /// fields, a stray byte).
    #[test]
    fn iso_basic_reads_as_time_does() {
        use rand::{Rng, SeedableRng};
        let by_time = |value: &str| {
            let iso = format_description!("[year][month][day]T[hour][minute][second]Z");
            PrimitiveDateTime::parse(value, iso)
                .ok()
                .map(|t| SystemTime::from(t.assume_utc()))
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x150);
        let mut read = 0;
        for _ in 0..50_000 {
            let year = match rng.gen_range(0..4) {
                0 => rng.gen_range(0..10_000),
                1 => {
                    [0, 1, 100, 400, 1600, 1900, 1969, 1970, 2000, 2100, 9999][rng.gen_range(0..11)]
                }
                _ => rng.gen_range(1960..2110),
            };
            let mut value = format!(
                "{year:04}{:02}{:02}T{:02}{:02}{:02}Z",
                rng.gen_range(0..14),
                rng.gen_range(0..33),
                rng.gen_range(0..25),
                rng.gen_range(0..61),
                rng.gen_range(0..62),
            )
            .into_bytes();
            if rng.gen_bool(0.1) {
                let at = rng.gen_range(0..value.len());
                value[at] = b"0123456789TZ+-: x"[rng.gen_range(0..17)];
            }
            let value = String::from_utf8(value).unwrap();
            let expected = by_time(&value);
            assert_eq!(parse_iso_basic(value.as_bytes()), expected, "{value}");
            read += usize::from(expected.is_some());
        }
        assert!((10_000..45_000).contains(&read), "{read} read");
        // The leap rule's every case, and the instants around 1970 and at the calendar's ends.
        for value in [
            "19000229T000000Z",
            "20000229T000000Z",
            "21000229T000000Z",
            "20240229T235959Z",
            "20230229T000000Z",
            "19691231T235959Z",
            "19700101T000000Z",
            "00000101T000000Z",
            "99991231T235959Z",
            "20261130T000000Z",
        ] {
            assert_eq!(parse_iso_basic(value.as_bytes()), by_time(value), "{value}");
        }
        assert!(parse_iso_basic(b"20000229T000000Z").is_some());
        assert!(parse_iso_basic(b"19000229T000000Z").is_none());
        // A signed year, which `time` reads, is still read (by `time`).
        for value in ["+20260101T120000Z", "-20260101T120000Z"] {
            assert!(by_time(value).is_some(), "{value}");
            assert_eq!(parse_request_date(value), by_time(value), "{value}");
        }
        assert_eq!(parse_iso_basic(b"20170323T142705"), None);
        assert_eq!(parse_iso_basic(b"20170323T142705Z "), None);
    }

    #[test]
    fn formats_basic_iso() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1490279225);
        assert_eq!(format_amz_date(t), "20170323T142705Z");
    }
}
