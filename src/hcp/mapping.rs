//! Backend error → HCP answer, per backend dialect, from the tables in `tables/mapping/`
//! (embedded at build time). Dialect tables list only what differs from AWS and fall back to
//! `aws.csv`; within a table the most specific row wins (code + backend status + operation, then
//! code + status, code + operation, code alone).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::classify::Operation;

/// The error vocabulary a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Aws,
    Minio,
    Ceph,
    Obs,
    Local,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::Aws,
        Dialect::Minio,
        Dialect::Ceph,
        Dialect::Obs,
        Dialect::Local,
    ];

    fn table_text(self) -> &'static str {
        match self {
            Dialect::Aws => include_str!("../../tables/mapping/aws.csv"),
            Dialect::Minio => include_str!("../../tables/mapping/minio.csv"),
            Dialect::Ceph => include_str!("../../tables/mapping/ceph.csv"),
            Dialect::Obs => include_str!("../../tables/mapping/obs.csv"),
            Dialect::Local => include_str!("../../tables/mapping/local.csv"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Aws => "aws",
            Dialect::Minio => "minio",
            Dialect::Ceph => "ceph",
            Dialect::Obs => "obs",
            Dialect::Local => "local",
        }
    }
}

/// One row of a mapping table.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend_code: &'static str,
    pub backend_status: Option<u16>,
    pub operation: Option<Operation>,
    pub hcp_code: HcpCode,
    /// HCP's status for this row (HCP's own for the code unless the table names another).
    pub hcp_status: u16,
    pub line: usize,
}

impl Row {
    fn specificity(&self) -> u8 {
        2 * self.backend_status.is_some() as u8 + self.operation.is_some() as u8
    }

    fn matches(&self, code: &str, status: u16, op: Operation) -> bool {
        self.backend_code == code
            && self.backend_status.is_none_or(|s| s == status)
            && self.operation.is_none_or(|o| o == op)
    }
}

/// The statuses HCP answers a code with: its own, and for `PreconditionFailed` also 304
/// (conditional GET/HEAD) and 200 (inside CompleteMultipartUpload), per seed 001.
pub fn allowed_statuses(code: HcpCode) -> Vec<u16> {
    let mut s = vec![code.status()];
    if code == HcpCode::PreconditionFailed {
        s.extend([304, 200]);
    }
    s
}

/// Parses one table; every problem is an error naming its line.
pub fn parse_table(text: &'static str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&'static str> = line.splitn(6, ',').collect();
        if cols.len() != 6 {
            return Err(format!(
                "line {n}: want backend_code,backend_status,operation,hcp_code,hcp_status,reason"
            ));
        }
        let backend_status = match cols[1] {
            "*" => None,
            s => Some(
                s.parse::<u16>()
                    .map_err(|_| format!("line {n}: backend_status {s:?}"))?,
            ),
        };
        let operation = match cols[2] {
            "*" => None,
            o => Some(
                Operation::from_name(o)
                    .ok_or_else(|| format!("line {n}: {o} is not an operation"))?,
            ),
        };
        let hcp_code = HcpCode::from_name(cols[3])
            .ok_or_else(|| format!("line {n}: {} is not an HCP code", cols[3]))?;
        let hcp_status = match cols[4] {
            "" => hcp_code.status(),
            s => s
                .parse::<u16>()
                .map_err(|_| format!("line {n}: hcp_status {s:?}"))?,
        };
        if !allowed_statuses(hcp_code).contains(&hcp_status) {
            return Err(format!(
                "line {n}: HCP never answers {} with {hcp_status}",
                hcp_code.as_str()
            ));
        }
        if !keys.insert((cols[0], backend_status, operation)) {
            return Err(format!(
                "line {n}: {} is mapped twice for the same status and operation",
                cols[0]
            ));
        }
        rows.push(Row {
            backend_code: cols[0],
            backend_status,
            operation,
            hcp_code,
            hcp_status,
            line: n,
        });
    }
    Ok(rows)
}

fn tables() -> &'static HashMap<Dialect, Vec<Row>> {
    static TABLES: OnceLock<HashMap<Dialect, Vec<Row>>> = OnceLock::new();
    TABLES.get_or_init(|| {
        Dialect::ALL
            .iter()
            .map(|d| {
                let rows = parse_table(d.table_text()).unwrap_or_else(|e| {
                    panic!(
                        "tables/mapping/{}.csv: {e} (checked by a unit test)",
                        d.name()
                    )
                });
                (*d, rows)
            })
            .collect()
    })
}

/// Every row of a dialect's own table (without the AWS rows it falls back to).
pub fn rows(dialect: Dialect) -> &'static [Row] {
    &tables()[&dialect]
}

/// The most specific row of the dialect's table that `keep` keeps, else of AWS's (which every
/// dialect falls back to).
fn most_specific(dialect: Dialect, keep: impl Fn(&Row) -> bool) -> Option<&'static Row> {
    let best = |d: Dialect| {
        tables()[&d]
            .iter()
            .filter(|r| keep(r))
            .max_by_key(|r| r.specificity())
    };
    best(dialect).or_else(|| best(Dialect::Aws))
}

/// The row that maps `code` for this dialect, status and operation, if any.
pub fn lookup(dialect: Dialect, code: &str, status: u16, op: Operation) -> Option<&'static Row> {
    most_specific(dialect, |r| r.matches(code, status, op))
}

/// Whether `code` is one the dialect's table (or AWS's, which it falls back to) names: only
/// such codes become metric labels, so that a backend cannot grow the label set at will.
pub fn is_known(dialect: Dialect, code: &str) -> bool {
    most_specific(dialect, |r| r.backend_code == code).is_some()
}

/// HCP's code for a backend's error code reported without a status of its own (a key's
/// `<Error>` in a multi-object delete's result): the code's most specific row for `op` among
/// those that hold for any status (a row for one status — MinIO's 400 AccessDenied, a signing
/// fault — says nothing of a code that came without it); a code in no such row is
/// InternalError.
pub fn map_code(dialect: Dialect, code: &str, op: Operation) -> HcpCode {
    let row = most_specific(dialect, |r| {
        r.backend_code == code && r.backend_status.is_none() && r.operation.is_none_or(|o| o == op)
    });
    row.map_or(HcpCode::InternalError, |r| r.hcp_code)
}

/// The HCP error for a backend error answer: by its code where the backend sent one, else by
/// its status and operation (HEAD answers have no body).
pub fn map(dialect: Dialect, status: u16, code: Option<&str>, op: Operation) -> HcpError {
    let err = match code.and_then(|c| lookup(dialect, c, status, op)) {
        Some(row) => HcpError::new(row.hcp_code).with_status(row.hcp_status),
        None if code.is_some() => by_class(status),
        None => by_status(status, op),
    };
    // (HCP's HEADs have no 400, whatever code MinIO or OBS put in its headers: what their
    // code says — OBS's 400 InvalidBucket is 404 NoSuchBucket —, else the backend's fault;
    // a version id an object's HEAD names is settled before, `respond::settle`.)
    let head = matches!(op, Operation::HeadObject | Operation::HeadBucket);
    if head && err.status == 400 {
        return HcpError::new(HcpCode::InternalError);
    }
    err
}

/// Codes in no table: by status class.
fn by_class(status: u16) -> HcpError {
    HcpError::new(if (400..500).contains(&status) {
        HcpCode::InvalidArgument
    } else {
        HcpCode::InternalError
    })
}

/// A status without a code.
fn by_status(status: u16, op: Operation) -> HcpError {
    use Operation::*;
    let code = match status {
        // (A 400 without a code says nothing of why — what the client did wrong would be
        // named: the backend's fault.)
        400 => HcpCode::InternalError,
        403 => HcpCode::AccessDenied,
        404 if matches!(
            op,
            HeadBucket | DeleteBucket | ListObjects | ListObjectsV2 | ListObjectVersions
        ) =>
        {
            HcpCode::NoSuchBucket
        }
        404 if matches!(
            op,
            UploadPart | ListParts | AbortMultipartUpload | CompleteMultipartUpload
        ) =>
        {
            HcpCode::NoSuchUpload
        }
        404 => HcpCode::NoSuchKey,
        405 => HcpCode::MethodNotAllowed,
        409 => HcpCode::OperationAborted,
        411 => HcpCode::MissingContentLength,
        412 => HcpCode::PreconditionFailed,
        413 => HcpCode::OutOfSpace,
        416 => HcpCode::InvalidRange,
        // (A gateway's timeout before the backend, as `bodiless_failure` takes it: to retry.)
        429 | 503 | 504 => HcpCode::ServiceUnavailable,
        501 => HcpCode::NotImplemented,
        507 => HcpCode::OutOfSpace,
        _ => return by_class(status),
    };
    HcpError::new(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses_and_targets_hcp_codes_with_hcp_statuses() {
        for d in Dialect::ALL {
            let rows = parse_table(d.table_text()).unwrap_or_else(|e| panic!("{}: {e}", d.name()));
            assert!(!rows.is_empty(), "{} is empty", d.name());
        }
        assert!(parse_table("X,*,*,NotAnHcpCode,,r\n").is_err());
        assert!(
            parse_table("X,*,*,NoSuchKey,500,r\n").is_err(),
            "404 code with 500 status"
        );
        assert!(parse_table("X,*,NoSuchOperation,NoSuchKey,,r\n").is_err());
        assert!(
            parse_table("X,*,*,NoSuchKey,,r\nX,*,*,AccessDenied,,r\n").is_err(),
            "duplicates"
        );
    }

    #[test]
    fn every_hcp_code_is_reachable() {
        let targets: std::collections::HashSet<HcpCode> =
            tables().values().flatten().map(|r| r.hcp_code).collect();
        // The gateway answers these itself when it verifies clients (tests/auth.rs); a backend
        // rejecting the gateway's own credentials or clock is a 500/503, never the client's fault.
        let own = [
            HcpCode::InvalidAccessKeyId,
            HcpCode::SignatureDoesNotMatch,
            HcpCode::RequestTimeTooSkewed,
        ];
        for code in HcpCode::ALL {
            assert!(
                targets.contains(&code) || own.contains(&code),
                "{} is reachable from no table",
                code.as_str()
            );
        }
    }

    /// An answer that says nothing of why (no body, no code) is the backend's fault, and a
    /// gateway's timeout before it one to retry; HCP's HEADs have no 400, whatever code a
    /// backend puts in its headers.
    #[test]
    fn what_says_nothing_is_the_backend_s_fault() {
        use Operation::*;
        let m = |d, status, code, op| {
            let e = map(d, status, code, op);
            (e.code, e.status)
        };
        let unavailable = (HcpCode::ServiceUnavailable, 503);
        let internal = (HcpCode::InternalError, 500);
        assert_eq!(m(Dialect::Aws, 504, None, GetObject), unavailable);
        assert_eq!(m(Dialect::Aws, 400, None, PutObject), internal);
        assert_eq!(m(Dialect::Aws, 400, None, HeadObject), internal);
        for d in [Dialect::Minio, Dialect::Obs] {
            assert_eq!(m(d, 400, Some("InvalidRequest"), HeadObject), internal);
            assert_eq!(m(d, 400, Some("InvalidArgument"), HeadBucket), internal);
        }
        // (What a HEAD's code says all the same, where it is no 400 of HCP's.)
        for op in [HeadObject, HeadBucket] {
            let gone = m(Dialect::Obs, 400, Some("InvalidBucket"), op);
            assert_eq!(gone, (HcpCode::NoSuchBucket, 404));
            assert_eq!(
                m(Dialect::Minio, 400, Some("XMinioBackendDown"), op),
                unavailable
            );
        }
        // (With a code, a 400 is what the code says.)
        assert_eq!(
            m(Dialect::Aws, 400, Some("InvalidArgument"), PutObject),
            (HcpCode::InvalidArgument, 400)
        );
    }

    #[test]
    fn specific_rows_win_and_dialects_fall_back_to_aws() {
        let m = |d, code: &str, status, op| {
            let e = map(d, status, Some(code), op);
            (e.code, e.status)
        };
        use Operation::*;
        assert_eq!(
            m(Dialect::Aws, "EntityTooSmall", 400, CompleteMultipartUpload),
            (HcpCode::EntityTooSmall, 200)
        );
        assert_eq!(
            m(Dialect::Aws, "EntityTooSmall", 400, PutObject),
            (HcpCode::InvalidPolicyDocument, 400)
        );
        assert_eq!(
            m(
                Dialect::Aws,
                "PreconditionFailed",
                412,
                CompleteMultipartUpload
            ),
            (HcpCode::PreconditionFailed, 200)
        );
        assert_eq!(
            m(Dialect::Aws, "PreconditionFailed", 412, GetObject),
            (HcpCode::PreconditionFailed, 412)
        );
        assert_eq!(
            m(Dialect::Minio, "AccessDenied", 400, GetObject),
            (HcpCode::InternalError, 500)
        );
        assert_eq!(
            m(Dialect::Minio, "AccessDenied", 403, GetObject),
            (HcpCode::AccessDenied, 403)
        );
        assert_eq!(
            m(Dialect::Minio, "XMinioStorageFull", 507, PutObject),
            (HcpCode::OutOfSpace, 413)
        );
        assert_eq!(
            m(Dialect::Obs, "InsufficientStorageSpace", 403, PutObject),
            (HcpCode::OutOfSpace, 413)
        );
        assert_eq!(
            m(Dialect::Obs, "InvalidBucket", 400, ListObjects),
            (HcpCode::NoSuchBucket, 404)
        );
        assert_eq!(
            m(Dialect::Obs, "KeyTooLongError", 400, PutObject),
            (HcpCode::KeyTooLong, 400)
        );
        assert_eq!(
            m(Dialect::Ceph, "NoSuchKey", 404, ListParts),
            (HcpCode::NoSuchUpload, 404)
        );
        assert_eq!(
            m(Dialect::Aws, "NoSuchKey", 404, ListParts),
            (HcpCode::NoSuchKey, 404)
        );
        assert_eq!(
            m(Dialect::Aws, "Unheard", 418, GetObject),
            (HcpCode::InvalidArgument, 400)
        );
        assert_eq!(
            m(Dialect::Aws, "Unheard", 502, GetObject),
            (HcpCode::InternalError, 500)
        );
        let head = map(Dialect::Aws, 404, None, HeadBucket);
        assert_eq!(head.code, HcpCode::NoSuchBucket);
    }
}
