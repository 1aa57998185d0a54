//! HCP's folders, in tenants that keep them (`folders = true`): a folder is a zero-byte marker
//! object named `folder/` at the backend, which listings then show as HCP shows folders
//! (`quarterly_rpts/` beside `quarterly_rpts/Q4_2019`, a common prefix with a delimiter).
//!
//! - Storing an object under a path (PUT, copy, multipart complete) also creates the folders of
//!   that path, once it is stored. What exists is remembered per backend bucket for a minute,
//!   so a write under a known folder costs no backend request; a new path costs a marker write
//!   per new folder (`If-None-Match: *` where the backend refuses atomically, a HEAD first
//!   elsewhere, so that a versioned bucket keeps one version of a folder).
//! - A PUT of a name ending in `/`, or with `Content-Type: x-directory`, creates a folder and
//!   stores no object: 409 where an object or folder of that name exists (manual, "Creating a
//!   folder"); its body is read, verified and ignored.
//! - A GET of a folder is 404 ("the specified item is a folder"); HEAD and DELETE of `name/`
//!   reach the marker itself.

use super::*;
use crate::request::validate::probes::{bucket_key, At, Probe};
use pingora::http::RequestHeader;

/// What a request does with folders ([`effect`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FolderWrite {
    #[default]
    None,
    /// A PUT that creates the folder named by its key (with a `/` added where it has none).
    Create,
    /// A write whose key has folders in it: they are created once the object is stored.
    Parents,
    /// A GET of a folder's name (`name/`): 404, as HCP answers it ([`Gateway::get_folder`]).
    Get,
}

/// The ETag HCP gives every folder (they have no content): an empty body's MD5.
pub const FOLDER_ETAG: &str = "\"d41d8cd98f00b204e9800998ecf8427e\"";

/// Whether a Content-Type asks for a folder (HCP's `x-directory`).
pub fn is_x_directory(value: &http::HeaderValue) -> bool {
    value
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(b"x-directory")
}

/// The folder effect of `op` on `key` (`None` where the tenant keeps no folders).
pub fn effect(op: Operation, req: &RequestHeader, key: Option<&[u8]>) -> FolderWrite {
    let Some(key) = key else {
        return FolderWrite::None;
    };
    let x_directory = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(is_x_directory);
    match op {
        Operation::PutObject if key.ends_with(b"/") || x_directory => FolderWrite::Create,
        Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
            if key.contains(&b'/') =>
        {
            FolderWrite::Parents
        }
        Operation::GetObject if key.ends_with(b"/") => FolderWrite::Get,
        _ => FolderWrite::None,
    }
}

/// The folders a key is in, outermost first: `a/`, `a/b/` for `a/b/c` (and for `a/b/`, which
/// is a folder itself, only `a/`). An empty segment names no folder (`/x` is in none, `a//b`
/// only in `a/`): a folder named `/`, or ending `//`, could not be addressed again.
pub fn folders_of(key: &[u8]) -> Vec<&[u8]> {
    let inner = key.strip_suffix(b"/").unwrap_or(key);
    inner
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i > 0 && inner[i - 1] != b'/')
        .map(|(i, _)| &inner[..=i])
        .collect()
}

/// How many folders deep a name may be in a tenant that keeps folders: a new path costs a
/// marker write per folder, which one request must not multiply without bound.
pub const MAX_DEPTH: usize = 32;

/// The rules of names where folders are kept, before anything reaches the backend: a folder
/// created by a PUT has a name (not empty, no empty last segment); only that PUT stores at a
/// name ending in `/` — a copy or a multipart upload there would put data in a folder's place;
/// no name is more than [`MAX_DEPTH`] folders deep.
pub fn check(op: Operation, key: Option<&[u8]>, effect: FolderWrite) -> Result<(), HcpError> {
    let Some(key) = key else {
        return Ok(());
    };
    let invalid =
        |m: &str| Err(HcpError::new(HcpCode::InvalidArgument).with_message(m.to_string()));
    let name = key.strip_suffix(b"/").unwrap_or(key);
    if effect == FolderWrite::Create && (name.is_empty() || name.ends_with(b"/")) {
        return invalid("A folder's name has no empty segment.");
    }
    let writes_data = matches!(
        op,
        Operation::CopyObject | Operation::CreateMultipartUpload | Operation::PostObject
    );
    if writes_data && key.ends_with(b"/") {
        return invalid("A name ending in / is a folder: only a PUT creates one.");
    }
    // (An upload's name is judged when it starts, not once its parts are in: its complete
    // makes the folders.)
    let makes = matches!(effect, FolderWrite::Create | FolderWrite::Parents)
        || op == Operation::CreateMultipartUpload;
    if makes && folders_of(key).len() > MAX_DEPTH {
        return invalid("The name is more folders deep than this gateway keeps (32).");
    }
    Ok(())
}

/// A folder is kept as a marker of the gateway's own, with no retention, hold or Object Lock
/// of its own: a folder PUT that asks for one is refused, never carried out without it.
pub fn check_protection(
    effect: FolderWrite,
    effects: &crate::request::classify::Effects,
    req: &RequestHeader,
) -> Result<(), HcpError> {
    if effect != FolderWrite::Create {
        return Ok(());
    }
    // (What asks for none — a hold `false` or `OFF` — is no protection asked.)
    let protects = effects
        .protection
        .is_some_and(|p| p.retention.is_some() || p.hold == Some(true));
    let header = |name: &str| req.headers.get(name).map(|v| v.as_bytes().trim_ascii());
    let s3_lock = header("x-amz-object-lock-mode").is_some()
        || header("x-amz-object-lock-retain-until-date").is_some()
        || header("x-amz-object-lock-legal-hold").is_some_and(|v| v.eq_ignore_ascii_case(b"ON"));
    // (A write's after-write change with labels places holds; one taking a bucket's default
    // off a new object "deletable at once" asks for none.)
    let labelled = effects
        .after_write
        .as_ref()
        .is_some_and(|a| a.labels.is_some());
    let asks = protects || labelled || effects.change.is_some() || s3_lock;
    if asks {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("A folder has no retention or holds of its own."));
    }
    Ok(())
}

/// A folder PUT names its length (`Content-Length: 0`, the body being ignored): without it,
/// HCP's "Creating a folder" table answers 400. The manual's own example sends it beside
/// `Transfer-Encoding: chunked`, whereupon the HTTP parser drops it (RFC 9112 6.3): it is
/// looked for in the request's header section as sent (`raw_head`, read only then).
pub fn check_length(
    effect: FolderWrite,
    req: &RequestHeader,
    raw_head: impl FnOnce() -> bytes::Bytes,
) -> Result<(), HcpError> {
    if effect != FolderWrite::Create || req.headers.contains_key(http::header::CONTENT_LENGTH) {
        return Ok(());
    }
    let named = |head: &[u8]| {
        head.split(|&b| b == b'\n').any(|line| {
            line.get(..15)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"content-length:"))
        })
    };
    let framed = req.headers.contains_key(http::header::TRANSFER_ENCODING) && named(&raw_head());
    if !framed {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("A folder is created with a Content-Length header (0)."));
    }
    Ok(())
}

/// The answer to a GET of a folder, naming it as HCP's NoSuchKey names its key.
fn get_of_folder(target: &Target) -> HcpError {
    let key = target.key_lossy().unwrap_or_default();
    HcpError::new(HcpCode::NoSuchKey)
        .with_message("The specified item is a folder.")
        .with_key(key)
}

/// HCP's NoSuchBucket, naming the target's bucket.
pub(in crate::request) fn no_such_bucket(target: &Target) -> HcpError {
    let bucket = target.bucket.as_deref().unwrap_or_default();
    HcpError::new(HcpCode::NoSuchBucket).with_bucket(bucket)
}

/// The answer to a copy whose source is a folder: no object to copy, as its GET finds none.
pub fn copy_of_folder() -> HcpError {
    HcpError::new(HcpCode::NoSuchKey).with_message("The specified copy source is a folder.")
}

/// What the known folders' names may take in memory, in all.
const KNOWN_FOLDER_BYTES: u64 = 16 * 1024 * 1024;

/// Folders known to exist, per backend bucket, for a minute (folders deleted elsewhere are
/// created again by the next write under them once that has passed).
pub struct KnownFolders(moka::sync::Cache<String, ()>);

impl Default for KnownFolders {
    fn default() -> Self {
        KnownFolders(
            // (Weighed in bytes: a key of 4 KiB can name a thousand folders of up to 4 KiB.)
            moka::sync::Cache::builder()
                .max_capacity(KNOWN_FOLDER_BYTES)
                .weigher(|k: &String, _: &()| crate::request::weight_of(k.len() + 64))
                .time_to_live(std::time::Duration::from_secs(60))
                .support_invalidation_closures()
                .build(),
        )
    }
}

impl KnownFolders {
    fn name(bucket: &str, folder: &[u8]) -> String {
        format!("{bucket}\n{}", String::from_utf8_lossy(folder))
    }

    /// A folder of `bucket` deleted (or the bucket): each of its folders is asked again (one
    /// known inside a deleted folder would otherwise stand for it). Other buckets keep theirs.
    fn forget_bucket(&self, bucket: &str) {
        let prefix = format!("{bucket}\n");
        // (Fails only without support_invalidation_closures, set above.)
        let _ = self
            .0
            .invalidate_entries_if(move |name, _| name.starts_with(&prefix));
    }
}

impl Gateway {
    /// HCP's names where folders are kept, judged before a write stores anything: an object is
    /// not stored at a folder's name, whatever the bucket's versioning (manual, storing an
    /// object: 409 "A folder with the specified name already exists"), nor anything — an
    /// object or a folder — in a folder whose name an object holds: the folder could not be
    /// made beside it, as a folder PUT there is refused. (A folder's own name is judged by its
    /// creation, [`Gateway::create_folder`].) A name the backend could not say of is 503:
    /// nothing is written.
    pub(in crate::request) async fn check_folder_names(
        &self,
        (at, op, effects): (At<'_>, Operation, &crate::request::classify::Effects),
    ) -> Result<(), HcpError> {
        let writes = matches!(
            op,
            Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
        );
        if !at.route.tenant.folders || !writes || effects.metadata_edit {
            return Ok(());
        }
        let bucket = bucket_key(at);
        let known = |folder: &[u8]| {
            let name = KnownFolders::name(&bucket, folder);
            self.known_folders.0.contains_key(&name)
        };
        let unknown = |what: &str| {
            let cause = format!("{what} for the folder rules said nothing");
            crate::request::validate::probes::name_unknown(cause)
        };
        let key = at.target.key().unwrap_or_default();
        let mut folder = key.to_vec();
        folder.push(b'/');
        let folder_there = effects.folder != FolderWrite::Create
            && (known(&folder)
                || self
                    .any_key_under(at, &folder)
                    .await
                    .ok_or_else(|| unknown("a listing"))?);
        if folder_there {
            return Err(HcpError::new(HcpCode::OperationAborted)
                .with_message("A folder with this name already exists."));
        }
        for parent in folders_of(&key).into_iter().filter(|f| !known(f)) {
            let name = at.target.with_key(&parent[..parent.len() - 1]);
            let head = self.backend_call(Operation::HeadObject, Params::default(), &name, at.route);
            let status = match head.await.map(|(h, _)| h.status.as_u16()) {
                // (A 403 — AWS's HEAD of a name that is not there for an account that may not
                // list, or of an object it may not read — is asked of a listing.)
                Some(403) => {
                    let at_name = At {
                        target: &name,
                        route: at.route,
                    };
                    match self.key_listed(at_name).await {
                        Some(true) => Some(200),
                        Some(false) => Some(404),
                        None => None,
                    }
                }
                other => other,
            };
            match status {
                Some(404) => {}
                // (A 400: an object a HEAD without its customer's key cannot read.)
                Some(200 | 400) => {
                    return Err(HcpError::new(HcpCode::OperationAborted)
                        .with_message("An object holds the name of a folder this name is in."))
                }
                _ => return Err(unknown("a HEAD")),
            }
        }
        Ok(())
    }

    /// After a backend's success: the folders of a stored object created, or what was known
    /// of folders forgotten after a delete that may have removed one.
    pub(in crate::request) async fn folders_after(&self, call: &Call<'_>) {
        if !call.route.tenant.folders {
            return;
        }
        let key = call.target.key().unwrap_or_default();
        let at = At {
            target: call.target,
            route: call.route,
        };
        match call.op {
            Operation::DeleteObject if key.ends_with(b"/") => {
                self.known_folders.forget_bucket(&bucket_key(at));
            }
            Operation::DeleteObjects | Operation::DeleteBucket => {
                self.known_folders.forget_bucket(&bucket_key(at));
            }
            _ if call.params.effects.folder == FolderWrite::Parents => {
                // Boxed: most answers pass here without it.
                Box::pin(self.ensure_folders(at, &key)).await;
            }
            _ => {}
        }
    }

    /// Creates the folders `key` is in that are not known to exist, outermost first (an inner
    /// folder known means its outer ones are). A folder that cannot be created is logged and
    /// the write it came with stands: the object is stored.
    pub(in crate::request) async fn ensure_folders(&self, at: At<'_>, key: &[u8]) -> bool {
        let bucket = bucket_key(at);
        let folders = folders_of(key);
        let known = folders.iter().rposition(|f| {
            self.known_folders
                .0
                .contains_key(&KnownFolders::name(&bucket, f))
        });
        self.metrics
            .cache_lookup("folder", known == folders.len().checked_sub(1));
        let first_unknown = known.map_or(0, |i| i + 1);
        for folder in &folders[first_unknown..] {
            if !self.put_marker(at, folder).await {
                tracing::warn!(
                    backend = %at.route.backend.name,
                    "a folder of a stored object could not be created"
                );
                return false;
            }
            self.known_folders
                .0
                .insert(KnownFolders::name(&bucket, folder), ());
        }
        true
    }

    /// Writes the marker of `folder` unless it exists: whether it exists now.
    async fn put_marker(&self, at: At<'_>, folder: &[u8]) -> bool {
        let written = self.write_marker(at, folder).await;
        written.is_some_and(|h| h.status == 200)
    }

    /// Writes the marker of `folder` unless it exists: the backend's answer to its PUT (200
    /// when it exists now, naming no version then), or to the HEAD that found it or could not
    /// tell (`None`: unreachable).
    async fn write_marker(&self, at: At<'_>, folder: &[u8]) -> Option<ResponseHeader> {
        let marker = at.target.with_key(folder);
        let at_marker = At {
            target: &marker,
            route: at.route,
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        if at.route.backend.conditional_writes {
            headers.insert(
                http::header::IF_NONE_MATCH,
                http::HeaderValue::from_static("*"),
            );
        } else {
            let head =
                self.backend_call(Operation::HeadObject, Params::default(), &marker, at.route);
            match head.await.map(|(h, _)| h) {
                Some(h) if h.status == 404 => {}
                // (Found: the folder's own, not this write's, version.)
                Some(h) if h.status == 200 => return ResponseHeader::build(200, None).ok(),
                other => return other,
            }
        }
        let op = Operation::PutObject;
        let answer = self
            .send_bytes_answer(op, Params::default(), at_marker, headers, b"")
            .await?;
        if answer.status == 412 {
            return ResponseHeader::build(200, None).ok();
        }
        Some(answer)
    }

    /// A GET of a folder's name, judged as any GET (permissions, ACLs): HCP's 404 "the
    /// specified item is a folder" — `NoSuchBucket` where the bucket is not there (manual,
    /// GET object's table). The backend is asked only of the bucket.
    pub(in crate::request) async fn get_folder(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
    ) -> Flow {
        let at = At {
            target: call.target,
            route: call.route,
        };
        let e = match self.bucket_status(at).await {
            Some(404) => no_such_bucket(call.target),
            // (Where the backend said nothing of the bucket, nothing is known.)
            None | Some(500..) => HcpError::new(HcpCode::ServiceUnavailable)
                .with_message("Whether the bucket exists could not be read."),
            _ => get_of_folder(call.target),
        };
        self.answer(s, x, e).await
    }

    /// A PUT that creates a folder (HCP's "Creating a folder"): the body read and ignored, 409
    /// where the name exists as an object or a folder, the folders around it and its marker
    /// created; answered 200 with HCP's folder ETag.
    pub(in crate::request) async fn create_folder(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        payload: &Payload,
    ) -> Flow {
        if let Err(stop) = self.read_ignored_body(s, x, call.op, payload).await {
            return self.stop(s, x, stop).await;
        }
        let key = call.target.key().unwrap_or_default();
        let name = key.strip_suffix(b"/").unwrap_or(&key);
        let at = At {
            target: call.target,
            route: call.route,
        };
        let exists = |candidate: Vec<u8>| async move {
            let t = call.target.with_key(&candidate);
            let head = self.backend_call(Operation::HeadObject, Params::default(), &t, call.route);
            head.await.map(|(h, _)| h.status.as_u16())
        };
        let mut folder = name.to_vec();
        folder.push(b'/');
        for candidate in [folder.clone(), name.to_vec()] {
            match exists(candidate).await {
                Some(404) => {}
                // (A 400 or 403 is an object that is there but not readable so: taken.)
                Some(status) if status < 500 => {
                    let e = crate::request::respond::settle::name_exists();
                    return self.answer(s, x, e).await;
                }
                _ => {
                    let e = HcpError::new(HcpCode::ServiceUnavailable)
                        .with_message("Whether the name is taken could not be read.");
                    return self.answer(s, x, e).await;
                }
            }
        }
        // Nor is a folder made in one whose name an object holds.
        let asked = (at, call.op, &call.params.effects);
        if let Err(e) = Box::pin(self.check_folder_names(asked)).await {
            return self.answer(s, x, e).await;
        }
        let parents = self.ensure_folders(at, &folder).await;
        let created = self.write_marker(at, &folder).await;
        let failed = match created.as_ref().map(|h| h.status.as_u16()) {
            Some(404) => Some(no_such_bucket(at.target)),
            Some(200) if parents => None,
            _ => Some(
                HcpError::new(HcpCode::ServiceUnavailable)
                    .with_message("The folder could not be created."),
            ),
        };
        if let Some(e) = failed {
            return self.answer(s, x, e).await;
        }
        let mut resp = ResponseHeader::build(200, Some(4)).expect("status");
        resp.insert_header(http::header::ETAG, FOLDER_ETAG)
            .expect("static");
        resp.insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("static");
        // HCP's `x-amz-version-id`, "returned only while versioning is enabled".
        let version = created
            .as_ref()
            .and_then(crate::request::acls::version_header)
            .filter(|v| !v.is_empty() && v.as_bytes() != b"null");
        if let Some(version) = version.cloned() {
            resp.insert_header("x-amz-version-id", version)
                .expect("valid");
            Box::pin(self.versions_only_where_on(s, call, &mut resp)).await;
        }
        x.status = 200;
        self.answer_own(s, x, resp, Bytes::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folders of the longest names fill the cache to its byte budget, not to a count of
    /// entries that would take hundreds of MiB.
    #[test]
    fn known_folders_are_bounded_in_bytes() {
        let known = KnownFolders::default();
        let long = "f".repeat(4000);
        for i in 0..20_000 {
            known.0.insert(
                KnownFolders::name("bucket", format!("{long}{i}/").as_bytes()),
                (),
            );
        }
        known.0.run_pending_tasks();
        let bytes = known.0.weighted_size();
        assert!(bytes <= KNOWN_FOLDER_BYTES, "{bytes}");
        assert!(known.0.entry_count() < 5_000, "{}", known.0.entry_count());
    }

    #[test]
    fn the_folders_of_a_key() {
        assert_eq!(folders_of(b"a/b/c"), [&b"a/"[..], b"a/b/"]);
        assert_eq!(folders_of(b"a/b/"), [&b"a/"[..]]);
        assert!(folders_of(b"plain").is_empty());
        assert!(folders_of(b"top/").is_empty());
        assert_eq!(folders_of(b"a//b"), [&b"a/"[..]]);
        assert!(folders_of(b"/x").is_empty());
        assert!(folders_of(b"//x/").is_empty());
        assert_eq!(folders_of(b"/x/y"), [&b"/x/"[..]]);
    }

    #[test]
    fn names_folders_refuse() {
        let deep = "d/".repeat(MAX_DEPTH + 1) + "o";
        let refused: [(Operation, &[u8], FolderWrite); 6] = [
            (Operation::PutObject, b"/", FolderWrite::Create),
            (Operation::PutObject, b"x//", FolderWrite::Create),
            (Operation::CopyObject, b"x/", FolderWrite::None),
            (Operation::CreateMultipartUpload, b"x/", FolderWrite::None),
            (Operation::PutObject, deep.as_bytes(), FolderWrite::Parents),
            // (An upload is judged as it starts, not once its parts are in.)
            (
                Operation::CreateMultipartUpload,
                deep.as_bytes(),
                FolderWrite::None,
            ),
        ];
        for (op, key, effect) in refused {
            let e = check(op, Some(key), effect).unwrap_err();
            assert_eq!(e.code, HcpCode::InvalidArgument, "{op:?} {key:?}");
        }
        let fine = "d/".repeat(MAX_DEPTH) + "o";
        assert!(check(
            Operation::PutObject,
            Some(fine.as_bytes()),
            FolderWrite::Parents
        )
        .is_ok());
        assert!(check(Operation::PutObject, Some(b"x/"), FolderWrite::Create).is_ok());
    }

    #[test]
    fn which_requests_touch_folders() {
        let put = |ct: Option<&str>| {
            let mut r = RequestHeader::build("PUT", b"/b/k", None).unwrap();
            if let Some(ct) = ct {
                r.insert_header("content-type", ct).unwrap();
            }
            r
        };
        let plain = put(None);
        let directory = put(Some("x-directory"));
        let cases: [(Operation, &RequestHeader, &[u8], FolderWrite); 6] = [
            (Operation::PutObject, &plain, b"f/", FolderWrite::Create),
            (Operation::PutObject, &directory, b"f", FolderWrite::Create),
            (Operation::PutObject, &plain, b"f/o", FolderWrite::Parents),
            (Operation::CopyObject, &plain, b"f/o", FolderWrite::Parents),
            (Operation::PutObject, &plain, b"o", FolderWrite::None),
            (Operation::GetObject, &plain, b"f/o", FolderWrite::None),
        ];
        for (op, req, key, expected) in cases {
            assert_eq!(effect(op, req, Some(key)), expected, "{op:?} {key:?}");
        }
    }
}
