//! Where labeled holds are kept: one small JSON record per object version that a label holds,
//! in the tenant's labeled-holds bucket (`labeled_holds_bucket`), a bucket of the tenant's
//! backend that only the gateway uses — `route` refuses it to clients and listings leave it
//! out — so that the labels are read only where the gateway shows them (to privileged
//! readers). The record is named by a digest of the object's backend bucket, key and version;
//! its body also names them, for an operator reading the bucket.
//!
//! A record exists while a label holds: releasing the last one deletes it. The backend's own
//! legal hold stays on while any hold (labeled or not) holds, so that the backend itself
//! refuses to delete the version; the record says which holds those are.

use super::*;
use crate::hcp::labels::Holds;

/// The record's body: the holds, and which object they hold.
#[derive(serde::Serialize)]
struct Record<'a> {
    bucket: &'a str,
    key: String,
    version: &'a str,
    #[serde(flatten)]
    holds: &'a Holds,
}

/// The record of `version` of the object at `at`: its target and route (the labeled-holds
/// bucket at the same backend, signed with the same credentials).
fn record_place<'r>(at: At<'r>, version: &str) -> Option<(Target, Route<'r>)> {
    let bucket = at.route.tenant.retention.labels_bucket.clone()?;
    let object_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
    let mut name = Vec::with_capacity(object_bucket.len() + 128);
    name.extend_from_slice(object_bucket.as_bytes());
    name.push(0);
    name.extend_from_slice(&at.target.key().unwrap_or_default());
    name.push(0);
    name.extend_from_slice(version.as_bytes());
    let target = Target {
        tenant: at.target.tenant.clone(),
        bucket: Some(bucket.clone()),
        raw_key: Some(format!("labeled-holds/{}", sigv4::sha256_hex(&name)).into_bytes()),
        virtual_host: false,
    };
    let route = Route {
        tenant: at.route.tenant,
        backend: at.route.backend,
        backend_bucket: Some(bucket),
        credentials: at.route.credentials.clone(),
    };
    Some((target, route))
}

fn no_place() -> String {
    "the namespace has no labeled_holds_bucket".into()
}

impl Gateway {
    /// The holds recorded for `version` of the object at `at`; `None` where no label holds it.
    pub(in crate::request) async fn read_holds(
        &self,
        at: At<'_>,
        version: &str,
    ) -> Result<Option<Holds>, String> {
        let (target, route) = record_place(at, version).ok_or_else(no_place)?;
        let got = self
            .backend_call(Operation::GetObject, Params::default(), &target, &route)
            .await;
        match got {
            Some((h, body)) if h.status == 200 => serde_json::from_slice::<Holds>(&body)
                .map(Some)
                .map_err(|e| format!("the labeled-holds record is unreadable: {e}")),
            Some((h, _)) if h.status == 404 => Ok(None),
            other => Err(format!(
                "reading the labeled-holds record: the backend answered {:?}",
                other.map(|(h, _)| h.status.as_u16())
            )),
        }
    }

    /// Records `holds` for `version` of the object at `at`: written while a label holds,
    /// deleted when none does. The bucket is created the first time it is missing.
    pub(in crate::request) async fn write_holds(
        &self,
        at: At<'_>,
        version: &str,
        holds: &Holds,
    ) -> Result<(), String> {
        let (target, route) = record_place(at, version).ok_or_else(no_place)?;
        if holds.labels.is_empty() {
            let params = Params::default();
            let deleted = self
                .backend_call(Operation::DeleteObject, params, &target, &route)
                .await;
            return match deleted.map(|(h, _)| h.status.as_u16()) {
                Some(200 | 204 | 404) => Ok(()),
                other => Err(format!(
                    "deleting the labeled-holds record: the backend answered {other:?}"
                )),
            };
        }
        let record = Record {
            bucket: at.route.backend_bucket.as_deref().unwrap_or_default(),
            key: at.target.key_lossy().unwrap_or_default(),
            version,
            holds,
        };
        let body = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        let mut headers = http::HeaderMap::new();
        let json = http::HeaderValue::from_static("application/json");
        headers.insert(http::header::CONTENT_TYPE, json);
        let place = At {
            target: &target,
            route: &route,
        };
        let op = Operation::PutObject;
        let mut status = self
            .send_bytes(op, Params::default(), place, headers.clone(), &body)
            .await;
        if status == Some(404) {
            let bucket = Target {
                raw_key: None,
                ..target.clone()
            };
            let at_bucket = At {
                target: &bucket,
                route: &route,
            };
            let created = self
                .send_bytes(
                    Operation::CreateBucket,
                    Params::default(),
                    at_bucket,
                    http::HeaderMap::new(),
                    b"",
                )
                .await;
            if !matches!(created, Some(200 | 409)) {
                return Err(format!(
                    "the labeled-holds bucket is missing and could not be created ({created:?})"
                ));
            }
            status = self
                .send_bytes(op, Params::default(), place, headers, &body)
                .await;
        }
        match status {
            Some(200) => Ok(()),
            other => Err(format!(
                "writing the labeled-holds record: the backend answered {other:?}"
            )),
        }
    }
}
