//! Where HCP's holds are recorded in a namespace with labeled holds: one small object per hold
//! in the tenant's labeled-holds bucket (`labeled_holds_bucket`), a bucket of the tenant's
//! backend that only the gateway uses — `route` refuses it to clients and listings leave it
//! out — so that labels are read only where the gateway shows them (to privileged readers).
//!
//! The holds of one object version live under `labeled-holds/<digest>/`, the digest of the
//! version's backend bucket, key and version id: `hold` for the unlabeled hold and
//! `label-<hex of the label>` for each label (each body names the object, for an operator
//! reading the bucket). One object per hold means that no change reads, edits and writes back a
//! shared record: two custodians placing labels at once each write their own, and a release
//! removes only its own. The backend's one legal hold is on while anything is recorded there —
//! see `retain::change` for the order that keeps it so under concurrent changes.

use super::*;
use crate::hcp::labels::Holds;

/// The unlabeled hold's record name.
const HOLD: &str = "hold";
/// The prefix of a label's record name (the label's UTF-8 in hex follows).
const LABEL: &str = "label-";

/// A hold's record.
#[derive(serde::Serialize)]
struct Record<'a> {
    bucket: &'a str,
    key: String,
    version: &'a str,
    /// `null` for the unlabeled hold.
    label: Option<&'a str>,
}

/// The records' place for `version` of the object at `at`: the labeled-holds bucket (same
/// backend, same credentials) and the version's prefix there.
fn place<'r>(at: At<'r>, version: Option<&str>) -> Option<(Route<'r>, String)> {
    let bucket = at.route.tenant.retention.labels_bucket.clone()?;
    let object_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
    let mut name = Vec::with_capacity(object_bucket.len() + 128);
    name.extend_from_slice(object_bucket.as_bytes());
    name.push(0);
    name.extend_from_slice(&at.target.key().unwrap_or_default());
    name.push(0);
    name.extend_from_slice(version.unwrap_or("null").as_bytes());
    let route = Route {
        tenant: at.route.tenant,
        backend: at.route.backend,
        backend_bucket: Some(bucket),
        credentials: at.route.credentials.clone(),
    };
    Some((
        route,
        format!("labeled-holds/{}/", sigv4::sha256_hex(&name)),
    ))
}

fn target(route: &Route<'_>, at: At<'_>, key: Option<String>) -> Target {
    Target {
        tenant: at.target.tenant.clone(),
        bucket: route.backend_bucket.clone(),
        raw_key: key.map(String::into_bytes),
        virtual_host: false,
    }
}

fn no_place() -> String {
    "the namespace has no labeled_holds_bucket".into()
}

/// A record's name within the version's prefix.
fn record_name(label: Option<&str>) -> String {
    label.map_or_else(
        || HOLD.to_string(),
        |l| format!("{LABEL}{}", hex::encode(l)),
    )
}

/// The holds of a change, as `record_name` takes them: `None` for the unlabeled one.
fn holds_named<'l>(hold: bool, labels: &'l [&'l str]) -> impl Iterator<Item = Option<&'l str>> {
    hold.then_some(None)
        .into_iter()
        .chain(labels.iter().map(|l| Some(*l)))
}

/// The holds that record names stand for (names of no hold are ignored).
fn holds_of_names<'n>(names: impl Iterator<Item = &'n str>) -> Holds {
    let mut holds = Holds::default();
    for name in names {
        if name == HOLD {
            holds.hold = true;
        } else if let Some(label) = name
            .strip_prefix(LABEL)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| String::from_utf8(b).ok())
        {
            holds.labels.insert(label);
        }
    }
    holds
}

/// The `<Key>`s of a ListObjectsV2 answer; a document that does not parse is an error (read
/// as "nothing recorded", it would let a hold come off).
fn listed_keys(doc: &[u8]) -> Result<Vec<String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(doc);
    let (mut keys, mut in_key, mut root) = (Vec::new(), false, false);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                root |= e.local_name().as_ref() == b"ListBucketResult";
                in_key = e.local_name().as_ref() == b"Key";
            }
            Ok(Event::Text(t)) if in_key => {
                let key = t.decode().map_err(|e| e.to_string())?;
                keys.push(key.into_owned());
            }
            Ok(Event::End(_)) => in_key = false,
            Ok(Event::Eof) if root => return Ok(keys),
            Ok(Event::Eof) => return Err("the listing is not a ListBucketResult".into()),
            Err(e) => return Err(format!("the listing does not parse: {e}")),
            _ => {}
        }
    }
}

impl Gateway {
    /// The holds recorded for `version` of the object at `at` (`None`: nothing recorded).
    pub(in crate::request) async fn read_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<Option<Holds>, String> {
        let (route, prefix) = place(at, version).ok_or_else(no_place)?;
        let params = Params::default()
            .with("list-type", "2")
            .with("max-keys", "1000")
            .with("prefix", prefix.as_str());
        let bucket = target(&route, at, None);
        let got = self
            .backend_call(Operation::ListObjectsV2, params, &bucket, &route)
            .await;
        match got {
            Some((h, body)) if h.status == 200 => {
                let keys = listed_keys(&body)?;
                let names = keys.iter().filter_map(|k| k.strip_prefix(prefix.as_str()));
                Ok(Some(holds_of_names(names)).filter(|_| !keys.is_empty()))
            }
            other => Err(format!(
                "listing the labeled-holds bucket: the backend answered {:?} (a missing bucket \
                 is created when the gateway starts or a hold is first recorded)",
                other.map(|(h, _)| h.status.as_u16())
            )),
        }
    }

    /// Records holds placed on `version` of the object at `at`: the unlabeled one (`hold`) and
    /// `labels`.
    pub(in crate::request) async fn record_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
        (hold, labels): (bool, &[&str]),
    ) -> Result<(), String> {
        let (route, prefix) = place(at, version).ok_or_else(no_place)?;
        let mut json = http::HeaderMap::new();
        json.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let names = holds_named(hold, labels);
        for label in names {
            let record = Record {
                bucket: at.route.backend_bucket.as_deref().unwrap_or_default(),
                key: at.target.key_lossy().unwrap_or_default(),
                version: version.unwrap_or("null"),
                label,
            };
            let body = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
            let key = format!("{prefix}{}", record_name(label));
            let object = target(&route, at, Some(key));
            let at_record = At {
                target: &object,
                route: &route,
            };
            let op = Operation::PutObject;
            let put = || self.send_bytes(op, Params::default(), at_record, json.clone(), &body);
            let mut status = put().await;
            if status == Some(404) {
                self.ensure_bucket(&route, at).await?;
                status = put().await;
            }
            if status != Some(200) {
                return Err(format!("recording a hold: the backend answered {status:?}"));
            }
        }
        Ok(())
    }

    /// Removes the records of holds released on `version` of the object at `at`.
    pub(in crate::request) async fn remove_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
        (hold, labels): (bool, &[&str]),
    ) -> Result<(), String> {
        let (route, prefix) = place(at, version).ok_or_else(no_place)?;
        let names = holds_named(hold, labels);
        for label in names {
            let object = target(&route, at, Some(format!("{prefix}{}", record_name(label))));
            let deleted = self
                .backend_call(Operation::DeleteObject, Params::default(), &object, &route)
                .await;
            match deleted.map(|(h, _)| h.status.as_u16()) {
                Some(200 | 204 | 404) => {}
                other => {
                    return Err(format!(
                        "removing a hold's record: the backend answered {other:?}"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Creates the labeled-holds bucket if it is missing; it must then be the gateway's own (a
    /// HEAD of it answers 200), never someone else's of the same name.
    async fn ensure_bucket(&self, route: &Route<'_>, at: At<'_>) -> Result<(), String> {
        let bucket = target(route, at, None);
        let status = |answer: Option<(ResponseHeader, Vec<u8>)>| answer.map(|(h, _)| h.status);
        let head = self.backend_call(Operation::HeadBucket, Params::default(), &bucket, route);
        if status(head.await) == Some(http::StatusCode::OK) {
            return Ok(());
        }
        let at_bucket = At {
            target: &bucket,
            route,
        };
        let mut headers = http::HeaderMap::new();
        let mut doc = Vec::new();
        let backend = route.backend;
        if backend.dialect == crate::hcp::mapping::Dialect::Aws && backend.region != "us-east-1" {
            doc = format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                quick_xml::escape::escape(backend.region.as_str())
            )
            .into_bytes();
            let xml = http::HeaderValue::from_static("application/xml");
            headers.insert(http::header::CONTENT_TYPE, xml);
        }
        let create = Operation::CreateBucket;
        let created = self
            .send_bytes(create, Params::default(), at_bucket, headers, &doc)
            .await;
        let head = self.backend_call(Operation::HeadBucket, Params::default(), &bucket, route);
        match status(head.await) {
            Some(http::StatusCode::OK) => Ok(()),
            other => Err(format!(
                "the labeled-holds bucket is missing and could not be created (create {created:?}, then HEAD {other:?})"
            )),
        }
    }

    /// At start: each tenant's labeled-holds bucket exists, or is created. A backend that
    /// cannot be reached now is left for the first hold recorded (and logged).
    pub async fn prepare_labeled_holds(&self) {
        for tenant in self.cfg.tenants.values() {
            if tenant.retention.labels_bucket.is_none() {
                continue;
            }
            let Some(backend) = self.backends.get(&tenant.backend) else {
                continue;
            };
            let mut route = Route {
                tenant,
                backend,
                backend_bucket: None,
                credentials: backend.credentials.fixed_now(),
            };
            if self.resolve_credentials(&mut route).await.is_err() {
                continue;
            }
            let nothing = Target {
                tenant: tenant.name.clone(),
                bucket: None,
                raw_key: None,
                virtual_host: false,
            };
            let at = At {
                target: &nothing,
                route: &route,
            };
            let Some((records, _)) = place(at, None) else {
                continue;
            };
            if let Err(e) = self.ensure_bucket(&records, at).await {
                tracing::warn!(tenant = %tenant.name, "labeled holds: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_stand_for_their_holds() {
        let names = [
            record_name(None),
            record_name(Some("UniqueLabelHold-1")),
            record_name(Some("é/\"x\"")),
            "stray".to_string(),
        ];
        let holds = holds_of_names(names.iter().map(String::as_str));
        assert!(holds.hold);
        let labels: Vec<&str> = holds.labels.iter().map(String::as_str).collect();
        assert_eq!(labels, ["UniqueLabelHold-1", "é/\"x\""]);
        // The longest label (64 characters of four bytes) keeps the name short enough for any
        // backend (1,024 bytes).
        let long = "😀".repeat(64);
        assert!(
            format!(
                "labeled-holds/{}/{}",
                "0".repeat(64),
                record_name(Some(&long))
            )
            .len()
                < 600
        );
    }

    #[test]
    fn listed_keys_are_read() {
        let doc = br#"<ListBucketResult><Name>b</Name><Contents><Key>labeled-holds/d/hold</Key></Contents><Contents><Key>labeled-holds/d/label-4c31</Key></Contents></ListBucketResult>"#;
        assert_eq!(
            listed_keys(doc).unwrap(),
            ["labeled-holds/d/hold", "labeled-holds/d/label-4c31"]
        );
        assert!(listed_keys(b"").is_err());
        assert!(listed_keys(b"<ListBucketResult><Contents><Key>x</Contents>").is_err());
    }
}
