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

    #[test]
    fn formats_basic_iso() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1490279225);
        assert_eq!(format_amz_date(t), "20170323T142705Z");
    }
}
