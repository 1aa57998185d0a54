//! Request dates: SigV4's ISO 8601 basic form and the RFC 1123 form HCP documents
//! (`Thu, 23 Mar 2017 14:27:05 +0000` or `… GMT`).

use std::time::SystemTime;

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses `20150830T123600Z` or an RFC 1123 date with `GMT` or `+0000`.
pub fn parse_request_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let iso = format_description!("[year][month][day]T[hour][minute][second]Z");
    if let Ok(t) = PrimitiveDateTime::parse(value, iso) {
        return Some(t.assume_utc().into());
    }
    let gmt = match value.strip_suffix("+0000") {
        Some(rest) => format!("{}GMT", rest),
        None => value.to_string(),
    };
    httpdate::parse_http_date(&gmt).ok()
}

/// Formats a time as SigV4's `yyyymmddThhmmssZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
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
    }

    #[test]
    fn formats_basic_iso() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1490279225);
        assert_eq!(format_amz_date(t), "20170323T142705Z");
    }
}
