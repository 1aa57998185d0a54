//! The gateway's own records at a tenant's backend: small objects in a bucket of that backend
//! that only the gateway uses (`records_bucket`, or `labeled_holds_bucket`) — `route` refuses it
//! to clients and listings leave it out. HCP keeps things the backend cannot (labeled holds,
//! bucket owners); the gateway writes them here, so that every replica reads the same records
//! without a database of its own.
//!
//! Each record is one object, written whole and never edited in place: a change writes or
//! removes records, so that two requests never lose each other's work in a read-modify-write.

use crate::request::validate::probes::At;
use crate::request::*;

/// Where records of one kind are kept for `at`'s tenant: the route to `bucket` (same backend,
/// same credentials) and a target naming one record in it.
pub(in crate::request) struct Records<'r> {
    pub(in crate::request) route: Route<'r>,
    tenant: Arc<str>,
}

impl<'r> Records<'r> {
    /// The records in `bucket` of `at`'s backend.
    pub(in crate::request) fn at(at: At<'r>, bucket: String) -> Records<'r> {
        Records {
            route: Route {
                tenant: at.route.tenant,
                backend: at.route.backend,
                backend_bucket: Some(bucket.into()),
                credentials: at.route.credentials.clone(),
            },
            tenant: at.target.tenant.clone(),
        }
    }

    /// The records `at`'s tenant keeps in its `records_bucket`, if it names one.
    pub(in crate::request) fn of_tenant(at: At<'r>) -> Option<Records<'r>> {
        let bucket = at.route.tenant.records_bucket.clone()?;
        Some(Records::at(at, bucket))
    }

    /// The record `key` (`None`: the bucket itself).
    pub(in crate::request) fn target(&self, key: Option<String>) -> Target {
        Target {
            tenant: self.tenant.clone(),
            bucket: self.route.backend_bucket.clone(),
            raw_key: key.map(|k| k.into_bytes().into()),
            virtual_host: false,
        }
    }
}

/// The `<Key>`s of a ListObjectsV2 answer and its continuation token; a document that does not
/// parse is an error (read as "nothing recorded", it could let a hold come off or a bucket
/// change hands).
pub(in crate::request) fn listed_keys(doc: &[u8]) -> Result<(Vec<String>, Option<String>), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(doc);
    let (mut keys, mut next, mut root) = (Vec::new(), None, false);
    let mut element: Vec<u8> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                root |= e.local_name().as_ref() == b"ListBucketResult";
                element = e.local_name().as_ref().to_vec();
            }
            Ok(Event::Text(t)) if element == b"Key" || element == b"NextContinuationToken" => {
                let text = t.decode().map_err(|e| e.to_string())?.into_owned();
                if element == b"Key" {
                    keys.push(text);
                } else {
                    next = Some(text);
                }
            }
            Ok(Event::End(_)) => element.clear(),
            Ok(Event::Eof) if root => return Ok((keys, next)),
            Ok(Event::Eof) => return Err("the listing is not a ListBucketResult".into()),
            Err(e) => return Err(format!("the listing does not parse: {e}")),
            _ => {}
        }
    }
}

impl Gateway {
    /// Writes the record `key` (a 404 — the bucket missing — creates the bucket and writes
    /// again).
    pub(in crate::request) async fn put_record(
        &self,
        records: &Records<'_>,
        key: String,
        body: &[u8],
    ) -> Result<(), String> {
        let mut json = http::HeaderMap::new();
        json.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let object = records.target(Some(key));
        let at = At {
            target: &object,
            route: &records.route,
        };
        let op = Operation::PutObject;
        let put = || self.send_bytes(op, Params::default(), at, json.clone(), body);
        let mut status = put().await;
        if status == Some(404) {
            self.ensure_records_bucket(records).await?;
            status = put().await;
        }
        match status {
            Some(200) => Ok(()),
            other => Err(format!("writing a record: the backend answered {other:?}")),
        }
    }

    /// The record `key`'s body, `None` where there is none.
    pub(in crate::request) async fn get_record(
        &self,
        records: &Records<'_>,
        key: String,
    ) -> Result<Option<Vec<u8>>, String> {
        let object = records.target(Some(key));
        let got = self
            .backend_call(
                Operation::GetObject,
                Params::default(),
                &object,
                &records.route,
            )
            .await;
        match got {
            Some((h, body)) if h.status == 200 => Ok(Some(body)),
            Some((h, _)) if h.status == 404 => Ok(None),
            other => Err(format!(
                "reading a record: the backend answered {:?}",
                other.map(|(h, _)| h.status.as_u16())
            )),
        }
    }

    /// Removes the record `key` (one that is not there is no error).
    pub(in crate::request) async fn delete_record(
        &self,
        records: &Records<'_>,
        key: String,
    ) -> Result<(), String> {
        self.delete_record_named(records, key, false).await
    }

    /// [`Gateway::delete_record`]; `maybe_unnameable`: a name the backend may refuse to name
    /// at all (400: MinIO's segments of over 255 characters), which it then cannot hold.
    pub(in crate::request) async fn delete_record_named(
        &self,
        records: &Records<'_>,
        key: String,
        maybe_unnameable: bool,
    ) -> Result<(), String> {
        let object = records.target(Some(key));
        let deleted = self
            .backend_call(
                Operation::DeleteObject,
                Params::default(),
                &object,
                &records.route,
            )
            .await;
        match deleted.map(|(h, _)| h.status.as_u16()) {
            Some(200 | 204 | 404) => Ok(()),
            Some(400) if maybe_unnameable => Ok(()),
            other => Err(format!("removing a record: the backend answered {other:?}")),
        }
    }

    /// The names of the records under `prefix`, at most `limit` of them (the listing is read
    /// page by page).
    pub(in crate::request) async fn list_records(
        &self,
        records: &Records<'_>,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        let bucket = records.target(None);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = Params::default()
                .with("list-type", "2")
                .with("max-keys", "1000")
                .with("prefix", prefix);
            if let Some(t) = &token {
                params = params.with("continuation-token", t.as_str());
            }
            let got = self
                .backend_call(Operation::ListObjectsV2, params, &bucket, &records.route)
                .await;
            let (keys, next) = match got {
                Some((h, body)) if h.status == 200 => listed_keys(&body)?,
                other => {
                    return Err(format!(
                        "listing the gateway's records: the backend answered {:?} (a missing \
                         bucket is created when the gateway starts or a record is first written)",
                        other.map(|(h, _)| h.status.as_u16())
                    ))
                }
            };
            names.extend(keys);
            match next {
                Some(t) if names.len() < limit => token = Some(t),
                _ => return Ok(names),
            }
        }
    }

    /// Creates the records' bucket if it is missing; it must then be the gateway's own (a
    /// HEAD of it answers 200), never someone else's of the same name.
    pub(in crate::request) async fn ensure_records_bucket(
        &self,
        records: &Records<'_>,
    ) -> Result<(), String> {
        let route = &records.route;
        let bucket = records.target(None);
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
        let doc = bucket_configuration(route.backend);
        if !doc.is_empty() {
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
                "the gateway's records bucket is missing and could not be created (create {created:?}, then HEAD {other:?})"
            )),
        }
    }

    /// At start: each tenant's records buckets exist, or are created. A backend that cannot
    /// be reached now is left for the first record written (and logged).
    pub async fn prepare_records(&self) {
        for tenant in self.cfg.tenants.values() {
            let buckets = [
                tenant.retention.labels_bucket.as_ref(),
                tenant.records_bucket.as_ref(),
            ];
            let mut buckets: Vec<&String> = buckets.into_iter().flatten().collect();
            buckets.dedup();
            if buckets.is_empty() {
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
            for bucket in buckets {
                let records = Records::at(at, bucket.clone());
                if let Err(e) = self.ensure_records_bucket(&records).await {
                    tracing::warn!(tenant = %tenant.name, bucket = %bucket, "gateway records: {e}");
                }
            }
        }
    }
}

/// The body of a CreateBucket the gateway sends: the backend's configured region where AWS
/// or Huawei OBS needs it named (AWS outside us-east-1; OBS outside its default region, as
/// `Location` under OBS's own signing — seed 004: "A request without Location is sent for
/// creating a bucket in a non-default region"), else none — whatever the client's body named
/// (HCP has no regions or placements: `validate::check_bucket_configuration`). (An OBS
/// backend configured with no region, `us-east-1` then, names none.)
pub(in crate::request) fn bucket_configuration(backend: &crate::config::Backend) -> Vec<u8> {
    use crate::hcp::mapping::Dialect;
    let named = matches!(backend.dialect, Dialect::Aws | Dialect::Obs);
    if !named || backend.region == "us-east-1" {
        return Vec::new();
    }
    let region = quick_xml::escape::escape(backend.region.as_str());
    let (namespace, element) = match backend.signing {
        crate::config::Signing::Obs => ("http://obs.myhwclouds.com/doc/2015-06-30/", "Location"),
        crate::config::Signing::V4 => (
            "http://s3.amazonaws.com/doc/2006-03-01/",
            "LocationConstraint",
        ),
    };
    format!(
        "<CreateBucketConfiguration xmlns=\"{namespace}\"><{element}>{region}</{element}></CreateBucketConfiguration>"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_are_read() {
        let doc = br#"<ListBucketResult><Name>b</Name><Contents><Key>labeled-holds/d/hold</Key></Contents><Contents><Key>labeled-holds/d/label-4c31</Key></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>"#;
        let (keys, next) = listed_keys(doc).unwrap();
        assert_eq!(keys, ["labeled-holds/d/hold", "labeled-holds/d/label-4c31"]);
        assert_eq!(next.as_deref(), Some("t1"));
        assert!(listed_keys(b"").is_err());
        assert!(listed_keys(b"<ListBucketResult><Contents><Key>x</Contents>").is_err());
        let (keys, next) =
            listed_keys(b"<ListBucketResult><Name>b</Name></ListBucketResult>").unwrap();
        assert!(keys.is_empty() && next.is_none());
    }
}
