//! The request path of a form upload (POST object): the form is read up to its file, the
//! credentials and policy in it are verified, the fields become an ordinary PUT object that the
//! same authorisation, validation and signing phases check, and only then is the file read and
//! sent on.

pub mod form;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;

use super::forward::{Call, Guards, Stop};
use super::{is_expect_continue, write_continue, Exchange, Flow, Gateway, NamedKey};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;
use crate::request::classify::{Operation, Query};
use crate::request::respond::rewrite;
use crate::request::route::Route;
use crate::request::sign;
use crate::request::validate;
use crate::request::validate::acl;
use crate::request::validate::probes::Overwrite;
use crate::sig::v4 as sigv4;
use form::Form;

/// Room for the form's text fields besides the file, all together. They are read before any
/// credential is checked, so an anonymous client may make the gateway hold this much: a policy,
/// its signature and the object's headers fit many times over.
const FIELDS_LIMIT: usize = 64 * 1024;
/// The body read before the file starts, part headers and framing included (the parser may
/// read one piece ahead).
const FIELDS_BUDGET: usize = 2 * FIELDS_LIMIT + 64 * 1024;

fn fields_too_large() -> HcpError {
    HcpError::new(HcpCode::MalformedPOSTRequest).with_message(format!(
        "The form's fields before the file exceed {FIELDS_LIMIT} bytes."
    ))
}

/// Why reading a form stopped.
enum FormError {
    /// The client's answer.
    Refused(HcpError),
    /// The client stopped sending or was too slow: nothing to answer.
    Client(String),
}

/// No place to read a form's fields in: 503 at once, its connection closed after the answer
/// (refused before anyone is known).
fn readers_busy() -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("Too many form uploads are being read; try again.")
        .closing()
}

impl FormError {
    /// The refusal closing the connection after its answer.
    fn closing(self) -> FormError {
        match self {
            FormError::Refused(e) => FormError::Refused(e.closing()),
            client => client,
        }
    }
}

impl From<HcpError> for FormError {
    fn from(e: HcpError) -> Self {
        FormError::Refused(e)
    }
}

impl From<crate::request::held::Full> for FormError {
    fn from(full: crate::request::held::Full) -> Self {
        FormError::Refused(full.error())
    }
}

impl From<multer::Error> for FormError {
    fn from(e: multer::Error) -> Self {
        match e {
            multer::Error::StreamReadFailed(e) => FormError::Client(e.to_string()),
            multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
                FormError::Refused(HcpError::new(HcpCode::EntityTooLarge))
            }
            other => FormError::Refused(
                HcpError::new(HcpCode::MalformedPOSTRequest).with_message(other.to_string()),
            ),
        }
    }
}

/// A form read and checked: who sends what, to which object.
struct Upload {
    form: Form,
    target: Target,
    key: String,
    request: RequestHeader,
    file: Bytes,
    /// The verified signer's access key (none for an anonymous form).
    caller: Option<String>,
    /// The PUT's parameters (`form_params`), and its grants to users where the namespace
    /// keeps them.
    params: crate::request::classify::Params,
    /// The file's SHA-256 (hex), the backend PUT's payload hash.
    digest: String,
    /// What was judged of the name before the file was read (`Gateway::guard_form`).
    guards: Guards,
    /// The file's share of the bytes all requests may hold at once, kept while it is held.
    _room: crate::request::held::Held,
}

/// The parameters of a form's PUT: where the namespace keeps owners, the new object's owner
/// entry (`request::object_owners`); HCP's retention and hold fields, as a PUT's headers give
/// them (`x-hcp-retention`, `x-hcp-retentionhold`): the lock it is stored with, and what is
/// kept once it is (a "deletable at once" over the bucket's default retention).
fn form_params(
    owner: &Option<String>,
    retention: crate::request::classify::Effects,
) -> crate::request::classify::Params {
    let mut params = crate::request::classify::Params::default();
    params.effects.object_owner.clone_from(owner);
    params.effects.protection = retention.protection;
    params.effects.after_write = retention.after_write;
    params
}

/// The form's fields before the file (which hold the credentials), and the file field.
type Fields<'m> = (Form, multer::Field<'m>);

/// The file of a form: its parser, its field, the most it may hold and the policy's range.
type FileAt<'m, 'r> = (
    &'m mut multer::Multipart<'r>,
    multer::Field<'r>,
    (u64, Option<form::LengthRange>),
);

/// A form's place among those reading their fields (`Gateway::form_readers`).
type FieldsSlot<'g> = tokio::sync::SemaphorePermit<'g>;

impl Gateway {
    /// A form upload: read the form up to its file, decide everything, read the file, store it
    /// with one PUT, answer as the form asks.
    pub(super) async fn post_object(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        target: Target,
        mut route: Route<'_>,
    ) -> Flow {
        if let Err(cause) = self.resolve_credentials(&mut route).await {
            return self.backend_unreachable(s, x, &cause).await;
        }
        // (Refused before anyone is known: the connection closes after the answer.)
        let boundary = match form::boundary(s.req_header()) {
            Ok(b) => b,
            Err(e) => return self.answer_early(s, x, e.closing()).await,
        };
        // A form's fields are read before anyone is known: a few forms at once, the rest 503
        // (before a 100 Continue asks for the body), so that forms trickling their fields (no
        // credentials needed) hold few of the places every client shares.
        let Ok(reading) = self.form_readers.try_acquire() else {
            self.metrics.overload_refusal("form");
            return self.answer_early(s, x, readers_busy()).await;
        };
        if is_expect_continue(s) && write_continue(s).await.is_err() {
            return Flow::Abort;
        }
        let mut upload = match self
            .receive_form(s, x, (&target, &route, reading), boundary)
            .await
        {
            Ok(u) => u,
            Err(stop) => return self.stop(s, x, stop).await,
        };
        let mut params = std::mem::take(&mut upload.params);
        let call_guards = std::mem::take(&mut upload.guards);
        // (Its folders are created once it is stored, as a PUT's are.)
        if route.tenant.folders && upload.key.contains('/') {
            params.effects.folder = crate::request::folders::FolderWrite::Parents;
        }
        let call = Call {
            op: Operation::PutObject,
            reads: false,
            params: &params,
            target: &upload.target,
            route: &route,
            caller: upload.caller.as_deref(),
            client_upload_id: None,
            may_purge: false,
            may_change_owner: false,
            sees_labels: false,
            // (The bucket's owner is not asked: a form stores an object.)
            owner: None,
            held: Vec::new(),
            acl_caller: None,
            judged_object: None,
            acl_turn: std::sync::Mutex::default(),
            edited: None,
            deletes_each: None,
            guards: call_guards,
        };
        let sent = std::time::Instant::now();
        let Some((header, body)) = self.store_form(&upload, &call).await else {
            let cause = "the form's object could not be stored";
            return self.backend_unreachable(s, x, cause).await;
        };
        x.backend_elapsed = Some(sent.elapsed());
        x.backend_status = Some(header.status.as_u16());
        // (HCP's form answer names its key with the slashes encoded: `acctg%2FChecklist.txt`.)
        let mut encoded = String::with_capacity(upload.key.len());
        sigv4::uri_encode(upload.key.as_bytes(), false, &mut encoded);
        let named = Target {
            raw_key: Some(encoded.as_bytes().into()),
            ..upload.target.clone()
        };
        let location = self.client_location(s, &named);
        if !header.status.is_success() {
            let err = self
                .settle(x, &call, &header, Ok(body), &location, None)
                .err()
                .unwrap_or_else(|| HcpError::new(HcpCode::InternalError));
            return self.answer(s, x, err).await;
        }
        if let Err(e) = self.form_stored(&call, &header).await {
            return self.answer(s, x, e).await;
        }
        self.forget_source_head(crate::request::validate::probes::At {
            target: &upload.target,
            route: &route,
        });
        self.answer_form(s, x, (&upload, &route), &header, &location)
            .await
    }

    /// What follows a form's object once it is stored, as a PUT's: what its retention field
    /// asks (a "deletable at once" over the bucket's default retention), its owner's entry, a
    /// `bucket-owner-*` ACL's grant to the bucket's owner, its folders.
    async fn form_stored(&self, call: &Call<'_>, header: &ResponseHeader) -> Result<(), HcpError> {
        let etag = header.headers.get("etag").and_then(|v| v.to_str().ok());
        // Its owner, remembered for listings as a PUT's is (before what may fail: the object
        // is stored whatever follows — each is done, the first error answered).
        self.owner_written(call, header, etag);
        let kept = self.keep_written(call, header, None).await;
        let recorded = self.acls_after(call, header, etag).await;
        self.folders_after(call).await;
        kept.and(recorded)
    }

    /// Reads the form through a body stream bounded before the file: until the file starts,
    /// the body is the fields and their part headers, read before any credential is checked,
    /// so at most FIELDS_BUDGET bytes of it are read.
    async fn receive_form(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        (target, route, reading): (&Target, &Route<'_>, FieldsSlot<'_>),
        boundary: String,
    ) -> Result<Upload, Stop> {
        use std::sync::atomic::AtomicBool;
        let file_started = Arc::new(AtomicBool::new(false));
        let rejected = Arc::new(std::sync::Mutex::new(None));
        let origin = s.req_header().headers.get(http::header::ORIGIN).cloned();
        let read = {
            let body = bounded_body(s, self.cfg.client_body, &file_started, &rejected);
            let limit = self.cfg.limits.max_post_object_bytes + FIELDS_LIMIT as u64;
            let constraints =
                multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
            let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
            let form = (target, route, reading);
            let browser = (&*file_started, origin.as_ref());
            self.read_form(&mut multipart, x, form, browser).await
        };
        let rejected = rejected.lock().expect("the body's rejection").take();
        read.map_err(|e| match (e, rejected) {
            (FormError::Refused(e), _) => Stop::Answer(e),
            // (The stream stopped at a rule the client is told about: the fields' budget, the
            // body's chunked framing.)
            (FormError::Client(_), Some(rejection)) => Stop::Answer(rejection),
            (FormError::Client(cause), None) => Stop::Abort(format!("client body: {cause}")),
        })
    }

    /// HCP's rule 41, create-only writes and retained objects for the form's object, as for a
    /// PUT.
    async fn guard_form(
        &self,
        mut request: RequestHeader,
        (target, route): (&Target, &Route<'_>),
        written: &crate::request::classify::Params,
    ) -> Result<(Guards, RequestHeader), HcpError> {
        let mut guards = Guards::default();
        let at = crate::request::validate::probes::At { target, route };
        use crate::request::validate::probes;
        // Never a new version over an object under retention or on hold (judged after rule 41,
        // as a PUT's: `retained_or_taken`).
        let params = crate::request::classify::Params::default();
        let retained = probes::check_retained(self, Operation::PutObject, &params, at, None).await;
        // HCP's names where folders are kept, as a PUT's.
        if route.tenant.folders {
            let asked = (at, Operation::PutObject, &written.effects);
            Box::pin(self.check_folder_names(asked)).await?;
        }
        guards.overwrite_guarded = matches!(
            probes::check_overwrite(self, &request, (Operation::PutObject, false, None), at)
                .await?,
            Overwrite::AskBackend
        );
        probes::retained_or_taken(retained, guards.overwrite_guarded)?;
        // (A form purges nothing: it names no permission beyond write.)
        if self.replaces_null(at).await {
            probes::check_null_version(self, at).await?;
        }
        // Grant fields keep the owner's full control at the backend, as grant headers do.
        self.keep_owner_control(&mut request, (at, Operation::PutObject))
            .await;
        // `bucket-owner-read` and `-full-control` (HCP's manual): a grant to the bucket's
        // owner, kept by the gateway where owners are kept; the backend is asked for `private`.
        if route.tenant.records_bucket.is_some() {
            let asked = (at, Operation::PutObject, written);
            if let Some(grant) = Box::pin(self.bucket_owner_grant(&mut request, asked)).await? {
                guards.acl_change = Some(crate::request::acls::with_grant(written, grant));
            }
        }
        Ok((guards, request))
    }

    /// The form's object as one signed PUT with the file as its body.
    async fn store_form(
        &self,
        upload: &Upload,
        call: &Call<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let digest = upload.digest.as_str();
        let mut backend_req = sign::backend_request(
            sign::Outbound {
                op: Operation::PutObject,
                method: &upload.request.method,
                params: call.params,
                target: call.target,
                headers: &upload.request.headers,
            },
            call.route,
            sign::BodyPlan {
                length: Some(upload.file.len() as u64),
                framing: sign::BodyFraming::AsSent,
                payload_hash: digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        );
        // (As a PUT's: the guards' headers on the signed request.)
        call.guards.apply(&mut backend_req);
        self.backend_exchange(backend_req, Some(&upload.file), call.route)
            .await
    }

    /// What a browser's form from another origin needs to read the answer (manual: a form POST
    /// is a CORS "simple request"): the bucket's rules' headers for a POST from it
    /// (`request::cors`), for a form whose policy holds and that may write here only.
    async fn form_cors(
        &self,
        origin: Option<&http::HeaderValue>,
        target: &Target,
        route: &Route<'_>,
    ) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let Some(origin) = origin else {
            return Vec::new();
        };
        self.cors_of_request(origin, &http::Method::POST, (target, route))
            .await
    }

    /// What a stored form answers: a redirect, or `success_action_status` with its document.
    async fn answer_form(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        (upload, route): (&Upload, &Route<'_>),
        stored: &ResponseHeader,
        location: &str,
    ) -> Flow {
        let etag = stored
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bucket = upload.target.bucket.as_deref().unwrap_or_default();
        let done = form::success(&upload.form, bucket, &upload.key, &etag, location);
        let body = done
            .body
            .map(|doc| Bytes::from(rewrite::own_document(&doc, x.reply.pretty)))
            .unwrap_or_default();
        let mut resp = ResponseHeader::build(done.status, Some(6)).expect("status");
        let headers = [
            ("location", done.location.as_str()),
            ("etag", etag.as_str()),
            ("content-length", &body.len().to_string()),
        ];
        for (name, value) in headers {
            if resp.insert_header(name, value).is_err() {
                let err = HcpError::new(HcpCode::InternalError);
                return self.answer(s, x, err).await;
            }
        }
        if !body.is_empty() {
            resp.insert_header(http::header::CONTENT_TYPE, rewrite::XML_DOCUMENT)
                .expect("static");
        }
        // HCP's encryption question, asked with a form field or the POST's own header
        // (manual, POST object: "Optional headers").
        let asked = upload
            .form
            .fields
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-amz-server-side-encryption"))
            || s.req_header()
                .headers
                .contains_key("x-amz-server-side-encryption");
        rewrite::answer_encryption(asked, stored, &mut resp);
        // HCP names the new version while versioning is enabled (manual, POST's answer headers;
        // S3's `null` names none) — where the gateway keeps HCP's versioning, as it says.
        if let Some(version) = crate::request::acls::version_of(stored) {
            let at = crate::request::validate::probes::At {
                target: &upload.target,
                route,
            };
            let kept = crate::request::versioning::kept_by_gateway(route.tenant);
            if !kept || Box::pin(self.bucket_versioning(at)).await != Some(false) {
                resp.insert_header("x-amz-version-id", version)
                    .expect("a header value");
            }
        }
        rewrite::finish_headers(&mut resp, false, &x.reply.id, &self.cfg.host_id);
        // The form's `Expires`: "If present, HCP returns the value in the response header"
        // (manual, POST object's optional fields) — in place of HCP's own.
        use crate::request::authenticate::post_form::FormFields as _;
        let expires = upload.form.field("expires");
        if let Some(value) = expires.and_then(|v| http::HeaderValue::from_str(v).ok()) {
            resp.insert_header(http::header::EXPIRES, value)
                .expect("a header value");
        }
        // (What follows the file — fields S3 ignores — is read, bounded, once the upload's
        // place and room are given back: `Gateway::drain`.)
        match self.answer_finished(s, x, resp, body).await {
            Flow::Close => Flow::Drain,
            flow => flow,
        }
    }

    /// The form's grant fields as a PUT's grant headers: to groups as the backend's, to the
    /// tenant's users kept in its records (`None` where it keeps none: such a grant is 501) —
    /// each only what its author holds (`held`).
    fn form_grants(
        &self,
        request: &mut RequestHeader,
        route: &Route<'_>,
        held: &[crate::request::authorize::Permission],
    ) -> Result<Option<crate::request::acls::AclChange>, HcpError> {
        let users = self.users.load();
        let records = route.tenant.records_bucket.is_some();
        let who = acl::Grantees {
            users: &users,
            tenant: &route.tenant.name,
            keep_users: records,
        };
        let to_users = acl::translate_grants(request, who)?;
        // An ACL can grant only what its author holds (ACLs judge requests here).
        let mut granted = acl::granted_in_headers(request);
        granted.extend(to_users.iter().map(|g| g.permission.as_str()));
        crate::request::acls::check_grantable(&granted, held)?;
        Ok(records.then_some(crate::request::acls::AclChange { grants: to_users }))
    }

    /// The form's PUT authorised as any PUT by the permissions alone: `Some` of what they do
    /// not allow, for the bucket's owner or ACL to allow ([`Self::judge_form`]).
    fn authorize_form(
        identity: &crate::request::authenticate::Identity,
        route: &Route<'_>,
        request: &RequestHeader,
        object: &Target,
    ) -> Result<Option<crate::request::acls::Needed>, HcpError> {
        let op = Operation::PutObject;
        let Err(e) =
            crate::request::authorize::authorize(identity, route.tenant, op, request, object)
        else {
            return Ok(None);
        };
        // (An anonymous client refused: the connection closes after the answer.)
        let anonymous = matches!(identity.principal(), crate::request::Principal::Anonymous);
        crate::request::authorize::missing_for_acl(identity, route.tenant, op, request, object)
            .map(Some)
            .ok_or(if anonymous { e.closing() } else { e })
    }

    /// What the permissions left to the bucket's owner or ACL (`needed`), judged
    /// (`request::acls`). Returns what the signer holds of what an ACL grants.
    async fn judge_form(
        &self,
        identity: &crate::request::authenticate::Identity,
        (route, object): (&Route<'_>, &Target),
        request: &RequestHeader,
        needed: Option<crate::request::acls::Needed>,
    ) -> Result<Vec<crate::request::authorize::Permission>, HcpError> {
        // (Read only where ACLs are judged: a form's ACL is checked against it there alone.)
        let mut held = if route.tenant.records_bucket.is_some() {
            crate::request::authorize::held(identity, route.tenant, object)
        } else {
            Vec::new()
        };
        let Some(needed) = needed else {
            return Ok(held);
        };
        let caller = match identity.principal() {
            crate::request::Principal::User(u) => Some(crate::request::owners::Owner::of(u)),
            crate::request::Principal::Anonymous => None,
        };
        let at = crate::request::validate::probes::At {
            target: object,
            route,
        };
        let no_params = crate::request::classify::Params::default();
        let op = Operation::PutObject;
        let judged = self
            .check_acls((at, op, &no_params), request, caller.as_ref(), &needed)
            .await?;
        held.extend(judged.held);
        Ok(held)
    }

    /// Reads the form's fields, decides everything about the upload, then reads its file.
    async fn read_form(
        &self,
        multipart: &mut multer::Multipart<'_>,
        x: &mut Exchange,
        (target, route, reading): (&Target, &Route<'_>, FieldsSlot<'_>),
        (file_started, origin): (&std::sync::atomic::AtomicBool, Option<&http::HeaderValue>),
    ) -> Result<Upload, FormError> {
        // (A form refused before anyone is known — its fields, its key — closes its
        // connection after the answer, as one whose credentials fail.)
        let (form, file) = self
            .read_fields(multipart, file_started)
            .await
            .map_err(FormError::closing)?;
        // (The fields read, the slot goes: what follows is done for whom they named.)
        drop(reading);
        // Everything is decided before a byte of the file is read.
        let key = form::object_key(&form, file.file_name()).map_err(HcpError::closing)?;
        x.key = Some(NamedKey::Form(key.clone()));
        // (Credentials that failed: the connection closes after the answer, as a request's.)
        let identity = self
            .authn
            .authenticate_form(&form, &target.tenant)
            .map_err(|e| {
                self.metrics.auth_failure(e.code);
                e.closing()
            })?;
        x.caller = identity.user().cloned();
        x.scheme = identity.scheme().name();
        let bucket = target.bucket.as_deref().unwrap_or_default();
        let range = form::check_policy(&form, bucket, &key, SystemTime::now())?;
        let mut raw_key = String::with_capacity(key.len());
        sigv4::uri_encode(key.as_bytes(), true, &mut raw_key);
        let object = Target {
            raw_key: Some(raw_key.as_bytes().into()),
            ..target.clone()
        };
        let path = format!("/{bucket}/{raw_key}");
        let mut request = form::object_request(&form, path.as_bytes(), 0)?;
        let refused = |e| self.counted_refusal(e);
        let needed = Self::authorize_form(&identity, route, &request, &object).map_err(refused)?;
        // (Validated before anything is asked of the backend about it, as any request is.)
        let retention = self.validate_form(route, &object, &key, &request)?;
        let protects = retention.protection.is_some();
        let mut held = self
            .judge_form(&identity, (route, &object), &request, needed)
            .await
            .map_err(refused)?;
        // (Asked once the form's policy holds and it may write here — a refused form costs the
        // backend nothing —, so that every answer from here on has them.)
        x.reply.cors = self.form_cors(origin, target, route).await;
        // The form's signer owns the new object, with full control (kept where owners are).
        let owner = route
            .tenant
            .records_bucket
            .as_ref()
            .map(|_| crate::request::object_owners::mark_of(&identity));
        if identity.user().is_some() {
            held.extend(crate::request::acls::FULL_CONTROL);
        }
        let to_users = self.form_grants(&mut request, route, &held)?;
        // HCP's rule 41, folders' names, retention and holds: judged by the name alone, so
        // before the file — a form they refuse holds no room for it.
        let mut params = form_params(&owner, retention);
        params.effects.acl_change = to_users;
        let (guards, mut request) = self.guard_form(request, (&object, route), &params).await?;
        let limit = self.form_limit();
        // A file longer than the policy allows is refused as it passes that length, not
        // after the whole of it was read and held (room taken for it) at the client's pace —
        // unless it is to be decoded: a gzipped file's length says little of what it decodes
        // to (members may be many, their headers long), which the decoding caps itself.
        let cap = match (range, form::asks_gunzip(&form)) {
            (Some(range), false) => range.max.min(limit),
            _ => limit,
        };
        let mut room = self.held.hold();
        let data = (multipart, file, (cap, range));
        let data = self.read_file(data, &mut room).await?;
        x.bytes_in = data.len() as u64;
        let data = self
            .stored_file((&form, &mut request), data, (range, &mut room))
            .await?;
        // (Where the namespace keeps retention, a bucket may have a default retention too.)
        let keeps = route.tenant.retention.mode != crate::config::RetentionMode::Off;
        let digest = self.digests(&mut request, &data, protects || keeps).await?;
        Ok(Upload {
            form,
            target: object,
            key,
            request,
            file: data,
            caller: identity.access_key().map(str::to_string),
            params,
            digest,
            guards,
            _room: room,
        })
    }

    /// The form's PUT validated as a PUT is — HCP's folder rule for its key, the request rules,
    /// the backend's limits on the key — and its retention and hold (a PUT's headers: 501 where
    /// the tenant keeps no retention).
    fn validate_form(
        &self,
        route: &Route<'_>,
        object: &Target,
        key: &str,
        request: &RequestHeader,
    ) -> Result<crate::request::classify::Effects, HcpError> {
        // HCP's folders: a name ending in / is a folder, which only a PUT creates.
        if route.tenant.folders {
            use crate::request::folders::{check, FolderWrite};
            let effect = if key.contains('/') {
                FolderWrite::Parents
            } else {
                FolderWrite::None
            };
            check(Operation::PostObject, Some(key.as_bytes()), effect)?;
        }
        let query = Query::default();
        validate::check(
            Operation::PutObject,
            object,
            &query,
            request,
            (false, crate::request::folders::FolderWrite::None),
            &self.cfg.limits,
        )?;
        // The backend's own limits on the form's key (its length), as for any object route.
        crate::request::route::route(route.tenant, Some(route.backend), object)?;
        validate::customer_keys_fit(request, route.backend)?;
        // HCP's retention and hold, as on a PUT (501 where the tenant keeps no retention).
        let now = crate::hcp::retention::seconds(SystemTime::now());
        let effects =
            validate::retention::effects(Operation::PutObject, request, object, route.tenant, now)?;
        // What this backend's Object Lock cannot keep is refused, not sent (OBS: no hold).
        validate::retention::fits_backend(Operation::PutObject, request, &effects, route.backend)?;
        Ok(effects)
    }

    /// A gzipped file the form asks to decode, decoded off the request threads (at most one
    /// byte past `cap`); the object is stored as what it decodes to, with no `Content-Encoding`
    /// of its own.
    async fn decoded(
        &self,
        request: &mut RequestHeader,
        file: Bytes,
        (cap, room): (u64, &mut crate::request::held::Held),
    ) -> Result<Bytes, HcpError> {
        let limit = self.form_limit();
        // (Decoded at most one byte past the policy's largest size: room for as much as the
        // policy allows, taken before the decoding writes it.)
        room.add(usize::try_from(cap).unwrap_or(usize::MAX))?;
        let decoded = tokio::task::spawn_blocking(move || form::gunzip(&file, limit, cap))
            .await
            .map_err(|_| HcpError::new(HcpCode::InternalError))??;
        request.remove_header(&http::header::CONTENT_ENCODING);
        room.set(decoded.capacity())?;
        Ok(Bytes::from(decoded))
    }

    /// The file as it is stored: what the form claims of it verified, decoded where the form
    /// asks (the policy's range judged on what it decodes to, HCP's manual says), and its
    /// length the PUT's.
    async fn stored_file(
        &self,
        (form, request): (&Form, &mut RequestHeader),
        data: Bytes,
        (range, room): (Option<form::LengthRange>, &mut crate::request::held::Held),
    ) -> Result<Bytes, HcpError> {
        if let Some(claims) = form::claimed_digests(form)? {
            // (Hashed off the request threads, as the backend PUT's digest is.)
            let file = data.clone();
            tokio::task::spawn_blocking(move || form::verify_claims(claims, file))
                .await
                .map_err(|_| HcpError::new(HcpCode::InternalError))??;
        }
        let limit = self.form_limit();
        let data = match form::asks_gunzip(form) && form::gzipped(&data) {
            true => {
                let cap = range.map_or(limit, |r| r.max.min(limit));
                self.decoded(request, data, (cap, room)).await?
            }
            false => data,
        };
        if let Some(range) = range {
            range.check(data.len() as u64)?;
        }
        request
            .insert_header(http::header::CONTENT_LENGTH, data.len().to_string())
            .expect("digits");
        Ok(data)
    }

    /// The file's SHA-256 for the backend PUT's signature, off the request threads (a file of
    /// up to `max_post_object_bytes`), and where the form asks for retention or a hold, or the
    /// namespace keeps retention, its `Content-MD5` too: S3 takes Object Lock settings on a
    /// PUT, and any PUT to a bucket with a default retention, only with one.
    async fn digests(
        &self,
        request: &mut RequestHeader,
        file: &Bytes,
        with_md5: bool,
    ) -> Result<String, HcpError> {
        let file = file.clone();
        let (sha256, md5) = tokio::task::spawn_blocking(move || {
            let md5 = with_md5.then(|| crate::request::body::content_md5(&file));
            (sigv4::sha256_hex(&file), md5)
        })
        .await
        .map_err(|_| HcpError::new(HcpCode::InternalError))?;
        if let Some(md5) = md5 {
            request.insert_header("content-md5", md5).expect("Base64");
        }
        Ok(sha256)
    }

    /// The fields before the file: they carry the credentials, so they are bounded in size
    /// (FIELDS_LIMIT, names and framing included) and in time (the header deadline), as a
    /// request's header section is.
    async fn read_fields<'m>(
        &self,
        multipart: &mut multer::Multipart<'m>,
        file_started: &std::sync::atomic::AtomicBool,
    ) -> Result<Fields<'m>, FormError> {
        let deadline = tokio::time::Instant::now() + self.cfg.client_header_timeout;
        let too_slow = || FormError::Client("the form's fields took too long".into());
        let mut form = Form::default();
        let mut budget = FIELDS_LIMIT;
        loop {
            let next = tokio::time::timeout_at(deadline, multipart.next_field())
                .await
                .map_err(|_| too_slow())?;
            let Some(mut field) = next? else {
                return Err(HcpError::new(HcpCode::MalformedPOSTRequest)
                    .with_message("The form has no file field.")
                    .into());
            };
            let name = field.name().unwrap_or_default().to_string();
            if name.eq_ignore_ascii_case("file") {
                file_started.store(true, std::sync::atomic::Ordering::Release);
                return Ok((form, field));
            }
            // A field's name and the framing around it count too (fields with empty values).
            budget = budget
                .checked_sub(name.len() + 64)
                .ok_or_else(|| FormError::Refused(fields_too_large()))?;
            let mut value = Vec::new();
            while let Some(chunk) = tokio::time::timeout_at(deadline, field.chunk())
                .await
                .map_err(|_| too_slow())??
            {
                budget = budget
                    .checked_sub(chunk.len())
                    .ok_or_else(|| FormError::Refused(fields_too_large()))?;
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                HcpError::new(HcpCode::MalformedPOSTRequest)
                    .with_message(format!("The form field {name} is not UTF-8 text."))
            })?;
            form.fields.push((name, value));
        }
    }

    /// The most a form's file may be: `max_post_object_bytes`, and no more than a PUT may carry
    /// (`max_put_bytes`, rule 26 — the form becomes one).
    fn form_limit(&self) -> u64 {
        let limits = &self.cfg.limits;
        limits.max_post_object_bytes.min(limits.max_put_bytes)
    }

    /// The file, at most `cap` bytes of it — `max_post_object_bytes`, or less where the policy's
    /// range is (a file past it is refused by the range); the fields after it are ignored, as S3
    /// does, and read so that the connection can serve the next request.
    async fn read_file(
        &self,
        (_, mut file, (cap, range)): FileAt<'_, '_>,
        room: &mut crate::request::held::Held,
    ) -> Result<Bytes, FormError> {
        let limit = self.form_limit();
        // (Room is taken as the file arrives, not for what its request declares: a form that
        // says much and sends little holds only what it sent. Its buffer grows with it, to the
        // cap at most.)
        let most = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut data = Vec::new();
        while let Some(chunk) = file.chunk().await? {
            let len = (data.len() + chunk.len()) as u64;
            if len > cap {
                if let Some(range) = range.filter(|_| cap < limit) {
                    range.check(len)?;
                }
                return Err(HcpError::new(HcpCode::EntityTooLarge)
                    .with_message(format!("A form upload may carry at most {limit} bytes."))
                    .into());
            }
            crate::request::held::grow_within(&mut data, chunk.len(), most);
            room.set(data.capacity())?;
            data.extend_from_slice(&chunk);
        }
        drop(file);
        // (The fields after the file, which S3 ignores, are not read while the file holds its
        // room: the answer's drain reads what is left, bounded — `answer_form`.)
        Ok(Bytes::from(data))
    }
}

/// The request body as a stream for the form parser: read at the client's body pace, and
/// before the file starts at most FIELDS_BUDGET bytes; where it stops at a rule the client is
/// told about (that budget, the body's chunked framing), `rejected` holds the answer. The parser reads all the pieces that are ready before it looks at them: until the
/// file starts, each piece after the first is handed over only after a yield, so that the
/// parser finds the file's start after the fields, not after all of a file that was waiting
/// in the socket (which would be counted as coming before it).
fn bounded_body<'s>(
    s: &'s mut ServerSession,
    pace: crate::backend::upstream::BodyPace,
    file_started: &Arc<std::sync::atomic::AtomicBool>,
    rejected: &Arc<std::sync::Mutex<Option<HcpError>>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 's {
    use crate::backend::upstream::{next_chunk, BodyError, Paced};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (started, rejected) = (file_started.clone(), rejected.clone());
    let before_file = Arc::new(AtomicUsize::new(0));
    futures_util::stream::unfold((s, Paced::new(pace)), move |(s, mut paced)| {
        let (started, before_file) = (started.clone(), before_file.clone());
        let rejected = rejected.clone();
        async move {
            if !started.load(Ordering::Acquire) && before_file.load(Ordering::Acquire) > 0 {
                tokio::task::yield_now().await;
            }
            let chunk = match next_chunk(s, &mut paced).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return None,
                Err(BodyError::Client(e)) => {
                    return Some((Err(std::io::Error::other(e.to_string())), (s, paced)))
                }
                Err(BodyError::Rejected(e)) => {
                    let failed = std::io::Error::other(e.to_string());
                    *rejected.lock().expect("the body's rejection") = Some(e);
                    return Some((Err(failed), (s, paced)));
                }
                Err(_) => {
                    let failed = std::io::Error::other("the client body could not be read");
                    return Some((Err(failed), (s, paced)));
                }
            };
            if !started.load(Ordering::Acquire)
                && before_file.fetch_add(chunk.len(), Ordering::AcqRel) + chunk.len()
                    > FIELDS_BUDGET
            {
                *rejected.lock().expect("the body's rejection") =
                    Some(fields_too_large().closing());
                let too_large = std::io::Error::other("form fields too large");
                return Some((Err(too_large), (s, paced)));
            }
            Some((Ok(chunk), (s, paced)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;

    /// A form (fields, then a file of 256 KiB) that is all in the socket before the gateway
    /// reads its body: the parser finds the file after the fields, and the bound on the bytes
    /// before the file is not reached (counted as they were read, every piece waiting, the
    /// file's too, came before the file's start).
    #[tokio::test]
    async fn a_waiting_file_is_not_counted_before_its_start() {
        // (Buffers that take the whole request: a connection's window grows as large with use.)
        let listener = tokio::net::TcpSocket::new_v4().unwrap();
        listener.set_recv_buffer_size(4 << 20).unwrap();
        listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listener.listen(1).unwrap();
        let at = listener.local_addr().unwrap();
        // (Larger than the bound of what comes before the file, and within the socket buffers
        // a stock kernel allows: 208 KiB, doubled.)
        let file = vec![b'f'; 256 << 10];
        let mut body = b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n".to_vec();
        body.extend_from_slice(
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n",
        );
        body.extend_from_slice(&file);
        body.extend_from_slice(b"\r\n--b--\r\n");
        let mut request = format!(
            "POST /b HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4 << 20).unwrap();
        let mut client = socket.connect(at).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // (Written beside the reader: a kernel with smaller buffers than asked for cannot
        // hang the test.)
        let writer = tokio::spawn(async move {
            client.write_all(&request).await.unwrap();
            client
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let stream: pingora::protocols::l4::stream::Stream = server.into();
        let mut s = ServerSession::new_http1(Box::new(stream));
        assert!(s.read_request().await.unwrap());
        let started = Arc::new(AtomicBool::new(false));
        let pace = crate::backend::upstream::BodyPace {
            pause: std::time::Duration::from_secs(5),
            min_rate: 1,
        };
        let rejected = Arc::new(std::sync::Mutex::new(None));
        let stream = bounded_body(&mut s, pace, &started, &rejected);
        let mut multipart = multer::Multipart::new(stream, "b");
        let mut key = multipart.next_field().await.unwrap().unwrap();
        assert_eq!(key.name(), Some("key"));
        while key.chunk().await.unwrap().is_some() {}
        drop(key);
        let next = multipart.next_field().await;
        assert!(
            rejected.lock().unwrap().is_none(),
            "the fields' bound was reached"
        );
        let mut field = next.unwrap().unwrap();
        started.store(true, Ordering::Release);
        assert_eq!(field.name(), Some("file"));
        let mut read = 0;
        while let Some(piece) = field.chunk().await.unwrap() {
            read += piece.len();
        }
        assert_eq!(read, file.len());
        drop(writer.await.unwrap());
    }
}
