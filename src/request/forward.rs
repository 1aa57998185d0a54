//! Phases 6 and 7: the backend request is signed from the plan, guarded by the checks that need
//! the backend's state, and sent — with the body verified on its way, control documents read
//! and checked first, and bodiless requests retried by [`Retry`]; then phase 8 is called.

use super::*;
use crate::backend::head::RequestHead;

/// Retries of one request: bounded in count and in time (from its first attempt).
pub(super) struct Retry {
    left: u32,
    done: u32,
    started: Option<Instant>,
}

impl Retry {
    /// First wait's ceiling; each retry doubles it, up to `MAX_WAIT`.
    const BASE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
    const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
    /// No retry starts after this long.
    const BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

    pub(super) fn new(max: u32) -> Retry {
        Retry {
            left: max,
            done: 0,
            started: None,
        }
    }

    /// An attempt begins at `at` (the time is the caller's reading: the budget counts from
    /// the first attempt's).
    pub(super) fn begin(&mut self, at: Instant) {
        self.started.get_or_insert(at);
    }

    pub(super) fn left(&self) -> bool {
        self.left > 0 && self.started.is_none_or(|at| at.elapsed() < Self::BUDGET)
    }

    pub(super) fn next_wait(&mut self) -> Option<std::time::Duration> {
        use rand::Rng;
        debug_assert!(self.started.is_some(), "a retry follows an attempt");
        if !self.left() {
            return None;
        }
        self.left -= 1;
        let ceiling = Self::BASE_WAIT
            .saturating_mul(1 << self.done.min(16))
            .min(Self::MAX_WAIT);
        self.done += 1;
        Some(ceiling.mul_f64(rand::thread_rng().gen_range(0.0..1.0)))
    }
}

/// One backend call as the phases before it decided it: the operation with its parameters, the
/// validated target, the route, who asked, and what the guards established. The phases after
/// read it; nothing reads the access-log record for a decision.
pub(super) struct Call<'a> {
    pub(super) op: Operation,
    /// Whether its method only reads (GET, HEAD): a bucket sub-resource's read changes
    /// nothing a cache of the gateway's holds.
    pub(super) reads: bool,
    pub(super) params: &'a Params,
    pub(super) target: &'a Target,
    pub(super) route: &'a Route<'a>,
    /// The verified caller's access key (it binds the upload ids the gateway issues).
    pub(super) caller: Option<&'a str>,
    /// The upload id as the client gave it (the backend's is in `params`).
    pub(super) client_upload_id: Option<&'a str>,
    /// Whether the caller may delete versions for good (a multi-object delete naming them).
    pub(super) may_purge: bool,
    /// Whether the caller holds HCP's write ACL and change owner permissions, as configured
    /// (asked of PUT `?acl` only).
    pub(super) may_change_owner: bool,
    /// Whether the caller may read an object's labeled holds (HCP's privileged and read
    /// permissions on the bucket; asked of GET and HEAD only).
    pub(super) sees_labels: bool,
    /// The caller as an owner, where the namespace keeps owners (`request::owners`); `None`
    /// for anonymous callers and elsewhere.
    pub(super) owner: Option<owners::Owner>,
    /// Of what an ACL can grant, what the caller holds (by its permissions, ownership, or the
    /// ACLs judged): what an ACL it sets may grant. Read only where the request sets one.
    pub(super) held: Vec<authorize::Permission>,
    /// Where the request sets an ACL: the caller as an HCP user (`None`: anonymous).
    pub(super) acl_caller: Option<owners::Owner>,
    /// The identity (`acls::identity_of`) of the object whose owner or ACL allowed the
    /// request (a PUT `?acl` then changes only that object).
    pub(super) judged_object: Option<String>,
    /// An ACL change's turn on the record of the grants it replaces, held from their removal
    /// until what the backend answered is recorded (`request::acls`), not while the client
    /// reads the answer: no other change through this replica comes between.
    pub(super) acl_turn: std::sync::Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
    /// A metadata change's object, read once before anything is judged (`edited_object`).
    pub(super) edited: Option<Box<EditedObject>>,
    /// A multi-object delete its bucket does not let the caller make: each object it names
    /// needs its own owner's or ACL's leave (`retain::deletes`).
    pub(super) deletes_each: Option<crate::request::retain::deletes::EachObject>,
    pub(super) guards: Guards,
}

/// A metadata change (a copy onto itself with REPLACE): its object's HEAD (`None`: the backend
/// did not answer), read once — the owner the change keeps (`Effects::object_owner`) and the
/// content headers it keeps come from this one answer, and the copy is pinned to it.
pub(super) struct EditedObject {
    pub(super) head: Option<ResponseHeader>,
}

/// What the checks before sending established, for reading the backend's answer.
#[derive(Debug, Default, Clone)]
pub(super) struct Guards {
    /// The upload was seen to exist before a part copy was sent (its absence now is 409).
    pub(super) upload_confirmed: bool,
    /// A copy's source as judged on its HEAD: a part copy's range that ends past it sent to
    /// its end, the client's conditions replaced by a pin to the ETag they held for (the
    /// request is signed again with them).
    pub(super) judged_source: Option<crate::request::validate::probes::JudgedSource>,
    /// The write carries the gateway's own `If-None-Match: *` (a 412 means the name exists).
    pub(super) overwrite_guarded: bool,
    /// A metadata change of an object under no retention (in a namespace that keeps HCP's):
    /// the copy it is must not keep a bucket default retention the backend gives it
    /// (`retain::keep_written` takes it off, as a new object's `0`).
    pub(super) edit_unretained: bool,
    /// A multi-object delete's objects kept back (under retention or on hold), reported in
    /// its answer as not deleted (`retain::deletes`).
    pub(super) kept: Vec<crate::request::retain::deletes::Kept>,
    /// A multi-object delete in quiet mode: its answer lists only what was not deleted.
    pub(super) quiet_deletes: bool,
    /// Who answers name as owner (and for `GET /`, which buckets are the caller's), where the
    /// namespace keeps owners.
    pub(super) owners: Option<owners::Shown>,
    /// A bucket's owner changing (CreateBucket, DeleteBucket, a PUT `?acl` naming another
    /// owner): its turn and the owner before.
    pub(super) owner_change: Option<std::sync::Arc<owners::OwnerChange>>,
    /// A read an object's ACL allowed: the ETag judged, sent as `If-Match` (unless the
    /// client sent its own), so that a newer object under the name is not read by that grant.
    pub(super) if_match: Option<String>,
    /// An ACL body's grants to users, for the gateway to record (`request::acls`).
    pub(super) acl_change: Option<acls::AclChange>,
    /// The recorded grants to users a GET `?acl` shows with the backend's own.
    pub(super) shown_grants: Vec<acls::UserGrant>,
    /// An ACL change: the record of the grants to users it replaces, and for an object the
    /// instance it changes (the grants are recorded only if it is still the object).
    pub(super) acl_target: Option<(String, Option<String>)>,
    /// The record of grants to users an ACL change removed before it was sent: written again
    /// if the backend refuses the change.
    pub(super) replaced_acl: Option<Vec<u8>>,
    /// A complete's ETag as S3 makes it of the parts sent, for an answer that names none
    /// (RGW's): `respond::etag`.
    pub(super) complete_etag: Option<String>,
}

impl Guards {
    /// Puts what the guards ask of the backend on a (newly signed) backend request: the
    /// gateway's own `If-None-Match: *` (not signed, so it survives re-signing only this way).
    pub(super) fn apply(&self, req: &mut RequestHead) {
        if self.overwrite_guarded {
            req.insert("if-none-match", b"*");
        }
        // (A client's own If-Match was checked against this ETag before: it is replaced.)
        if let Some(etag) = &self.if_match {
            req.insert("if-match", etag.as_bytes());
        }
    }
}

/// The answer when the gateway built a backend request head it will not send (a name, value or
/// target no request can carry: `backend::head`): its own fault, 500, and nothing is sent.
/// Whether the backend may take minutes to answer `op` (a complete joins its parts, a copy
/// reads and writes the whole source): its answer is awaited by `long_complete`, which keeps
/// the client's connection alive, never sent again after a timeout.
fn takes_long(op: Operation) -> bool {
    matches!(
        op,
        Operation::CompleteMultipartUpload | Operation::CopyObject | Operation::UploadPartCopy
    )
}

pub(super) fn malformed_head() -> HcpError {
    tracing::error!("a backend request head the gateway built was malformed; not sent");
    HcpError::new(HcpCode::InternalError)
}

/// A metadata change (a copy onto itself with REPLACE) replaces the object's custom
/// metadata, not how its content is typed and served: the object's Content-Type,
/// Content-Encoding, Content-Disposition, Content-Language, Cache-Control and Expires stay
/// unless the request names its own (a form-encoded Content-Type, some libraries' default on
/// a bodiless request, names none) — S3's REPLACE would drop them. The copy is pinned to the
/// object read (`x-amz-copy-source-if-match`, in place of any the client sent: its own
/// conditions are judged before sending), or where there was none to no object at all, so that
/// the owner and headers kept are that object's. An object that could not be read (no answer,
/// or any status but 200 and 404) is 503: the edit would drop its owner and headers.
fn keep_content_headers(
    req: &mut pingora::http::RequestHeader,
    edited: &EditedObject,
) -> Result<(), HcpError> {
    let pin = "x-amz-copy-source-if-match";
    let head = match &edited.head {
        Some(head) if head.status == 200 => head,
        Some(head) if head.status == 404 => {
            req.insert_header(pin, "\"hcp-gateway-no-source\"")
                .expect("static");
            return Ok(());
        }
        other => {
            let status = other.as_ref().map(|h| h.status.as_u16());
            return Err(HcpError::new(HcpCode::ServiceUnavailable)
                .with_message(
                    "The object could not be read to keep its owner and content headers; try again.",
                )
                .with_cause(format!("HEAD before a metadata change answered {status:?}")));
        }
    };
    let Some(etag) = head.headers.get(http::header::ETAG) else {
        return Err(HcpError::new(HcpCode::ServiceUnavailable)
            .with_cause("HEAD before a metadata change named no ETag"));
    };
    // (The client's own pin is judged on the object read, then replaced by it: the other
    // conditions are judged before sending, on the source as it is then.)
    let asked = req
        .headers
        .get(pin)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let read = String::from_utf8_lossy(etag.as_bytes());
    if asked.is_some_and(|asked| !crate::etag::listed(&asked, &read)) {
        return Err(HcpError::new(HcpCode::PreconditionFailed));
    }
    req.insert_header(pin, etag.clone())
        .expect("a header the backend sent");
    if validate::library_default_type(req) {
        req.remove_header(&http::header::CONTENT_TYPE);
    }
    for name in sign::CONTENT_HEADERS {
        if req.headers.contains_key(&name) {
            continue;
        }
        if let Some(value) = head.headers.get(&name) {
            let _ = req.insert_header(name, value.clone());
        }
    }
    Ok(())
}

/// A metadata change of an object under HCP's retention (in a tenant that keeps it; not on
/// hold) that only adds custom metadata, which HCP allows: the copy it is keeps the object's
/// retention, its mode and date sent as the object has them (the gateway's own effect, needing
/// no Object Lock permission of the caller's) — S3's Object Lock keeps the old version too. A
/// change with Object Lock headers of its own is judged on them (`check_retained`); anything
/// else is refused there.
fn keep_retention(req: &mut pingora::http::RequestHeader, edited: &EditedObject) {
    let Some(head) = edited.head.as_ref().filter(|h| h.status == 200) else {
        return;
    };
    let (setting, held) = rewrite::object_lock_of(head);
    let own = crate::request::validate::retention::names_s3_lock(req);
    if held
        || own
        || !setting.in_force(crate::hcp::retention::now())
        || !validate::probes::adds_metadata_only(req, head)
    {
        return;
    }
    if let Some((mode, date, _)) = rewrite::object_lock_retention(head) {
        for (name, value) in [
            ("x-amz-object-lock-mode", mode),
            ("x-amz-object-lock-retain-until-date", date),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                req.insert_header(name, value).expect("valid header");
            }
        }
    }
}

/// Whether a metadata change edits an object under no retention in force, asking for none
/// of S3's own: HCP's change keeps it so ("no new version is created"; the default retention
/// "is applied to objects when they are first stored"), where the copy it is at the backend
/// takes the bucket's default.
fn under_no_retention(req: &pingora::http::RequestHeader, edited: &EditedObject) -> bool {
    let Some(head) = edited.head.as_ref().filter(|h| h.status == 200) else {
        return false;
    };
    let (setting, _) = rewrite::object_lock_of(head);
    !setting.in_force(crate::hcp::retention::now())
        && !crate::request::validate::retention::names_s3_lock(req)
}

/// Whether the caller owns what the request writes, with full control
/// (`request::object_owners`): the writer of a new object does; a metadata change keeps its
/// object's owner, who alone does.
fn owns_what_it_writes(params: &Params, auth: &Authenticated) -> bool {
    let owner = params.effects.object_owner.as_deref();
    let edit = params.effects.metadata_edit;
    object_owners::writer_owns(owner)
        && (!edit || owner == Some(object_owners::mark_of(&auth.identity).as_str()))
}

/// Whether a client's own `If-Match` (`asked`) holds for the object judged (its ETag
/// `judged`): `*` or that ETag among those named; always where nothing was judged or asked.
fn if_match_holds(asked: Option<&http::HeaderValue>, judged: Option<&str>) -> bool {
    let (Some(judged), Some(asked)) = (judged, asked) else {
        return true;
    };
    crate::etag::listed(&String::from_utf8_lossy(asked.as_bytes()), judged)
}

/// How the request's body goes on, decided once from the operation, the signature and the
/// headers.
pub(super) struct Body {
    /// The body is forwarded (the operation carries one and the client sent one).
    forwarded: bool,
    verifier: Option<BodyVerifier>,
    /// The length sent on (the decoded length of an aws-chunked body), where known.
    length: Option<u64>,
    /// What the gateway vouches for toward the backend.
    payload_hash: PayloadHash,
    framing: BodyFraming,
    /// The request goes without a body and needs an integrity header all the same (a PUT with
    /// Object Lock settings, `lock_needs_checksum`): an empty body's Content-MD5 is sent.
    empty_md5: bool,
    /// A body read whole (`read_whole_body`): its share of the bytes all requests may hold,
    /// kept until the request is done with it.
    held: crate::request::held::Held,
}

/// `x-amz-content-sha256`'s value toward the backend, on the stack: one of SigV4's fixed
/// values, or a verified digest in hex.
enum PayloadHash {
    Fixed(&'static str),
    Digest(sigv4::Hex32),
}

impl PayloadHash {
    fn as_str(&self) -> &str {
        match self {
            PayloadHash::Fixed(text) => text,
            PayloadHash::Digest(hex) => hex.as_str(),
        }
    }
}

/// The algorithm of a part's checksum the client sent in its aws-chunked body's trailer (which
/// the gateway verifies and takes off with the framing): carried on in a trailer of the
/// gateway's own framing (`BodyFraming::Trailed`). An upload begun with a checksum algorithm
/// takes a part only with that algorithm's checksum (AWS, MinIO: 400 otherwise), and the
/// part's checksum is what the client completes the upload with. (To AWS and MinIO only: OBS
/// gets plain bodies; Ceph RGW 16 answers such a trailer 400 BadDigest, and it and the embedded
/// store take parts without. An empty part's body is read whole first and goes as sent.)
fn part_checksum_carried(
    call: &Call<'_>,
    body: &Body,
) -> Option<crate::backend::aws_chunked::ChecksumAlgorithm> {
    use crate::hcp::mapping::Dialect;
    if call.op != Operation::UploadPart || body.framing != BodyFraming::Dechunked {
        return None;
    }
    let to_s3 = matches!(call.route.backend.dialect, Dialect::Aws | Dialect::Minio)
        && call.route.backend.signing == crate::config::Signing::V4;
    if !to_s3 || body.length.is_none_or(|n| n == 0) {
        return None;
    }
    body.verifier.as_ref()?.trailer_algorithm()
}

/// S3 takes a PUT with Object Lock settings, or any PUT to a bucket with a default retention
/// (and moto, which the tests run, checks both), only with an integrity header: `Content-MD5`
/// or a checksum. An HCP client sends neither; where none of the client's goes on, an AWS
/// backend gets the body in aws-chunked framing with a CRC32 trailer the gateway computes
/// (`BodyFraming::Trailed`) — for every PUT in a namespace that keeps retention.
fn lock_needs_checksum(call: &Call<'_>, req: &pingora::http::RequestHeader) -> bool {
    if call.op != Operation::PutObject
        || call.route.backend.dialect != crate::hcp::mapping::Dialect::Aws
    {
        return false;
    }
    // (In a namespace that keeps retention every bucket has Object Lock, and one given a
    // default retention by `PUT ?object-lock` asks it of every PUT.)
    let locks = call.params.effects.protection.is_some()
        || call.route.tenant.retention.mode != crate::config::RetentionMode::Off
        || crate::request::validate::retention::names_s3_lock(req);
    // (Most PUTs set no lock: their headers are not looked through a second time.)
    if !locks {
        return false;
    }
    let integrity = req.headers.keys().any(|n| {
        matches!(
            n.as_str(),
            "content-md5"
                | "x-amz-checksum-crc32"
                | "x-amz-checksum-crc32c"
                | "x-amz-checksum-crc64nvme"
                | "x-amz-checksum-sha1"
                | "x-amz-checksum-sha256"
        )
    });
    !integrity
}

/// Object and part bodies up to this length are read and verified whole before the backend is
/// asked (`Gateway::read_whole_body`): one send with the request header instead of two (the
/// backend wakes once), nothing at the backend before the body is verified, and no backend
/// connection held while a slow client sends. About this much per request in flight.
const HELD_BODY_MAX: u64 = 64 * 1024;

/// A request signed for the backend longer ago than this when its held body is whole is signed
/// again (S3 refuses a signature's date 15 minutes off; a client may pause up to
/// `client_body_timeout_seconds` between any two pieces of its body, at its slowest pace).
const RESIGN_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// Why a request stopped before a backend's answer could be used; [`Gateway::stop`] answers.
pub(super) enum Stop {
    /// Answered before any of the body was read (what is left is drained).
    Early(HcpError),
    /// Answered with the body read part-way: the connection closes after.
    Answer(HcpError),
    /// The backend could not be reached: 503, the cause in the log.
    Unreachable(String),
    /// The client went away or broke its body: no answer at all.
    Abort(String),
    /// Answered by the gateway itself, with this 200 document: a multi-object delete whose
    /// objects were all kept back (`retain::deletes`).
    Settled(Bytes),
}

/// Whether a request may be sent again (`transmit`): one without a body of the client's
/// (but a POST, which could create twice) — a CreateBucket's body is the gateway's own
/// document, held: sent again with every try, so that a create whose answer was lost is made
/// the creator's; and whether it is so only until it was written whole: an object's write or
/// delete, which the backend may have carried out before its answer was lost — a second try
/// makes a second version or delete marker, or meets its own write's no-overwrite condition
/// (409 for what the first stored).
fn sent_again(call: &Call<'_>, body: &Body, method: &http::Method) -> (bool, bool) {
    let replayable =
        (!body.forwarded || call.op == Operation::CreateBucket) && method != http::Method::POST;
    let acts_once = matches!(
        call.op,
        Operation::PutObject | Operation::CopyObject | Operation::DeleteObject
    );
    (replayable, acts_once)
}

impl Gateway {
    /// Phases 6–8: sign, guard, send, and answer from what the backend said.
    pub(super) async fn forward(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        plan: Plan<'_>,
    ) -> Flow {
        let Plan {
            target,
            op,
            params,
            auth,
            mut route,
            client_upload_id,
            upload_refused,
            may_purge,
            sees_labels,
            acl_needed,
            browser: _,
        } = plan;
        if let Err(cause) = self.resolve_credentials(&mut route).await {
            return Box::pin(self.stop(s, x, Stop::Unreachable(cause))).await;
        }
        let mut params = self
            .current_when_unversioned(op, params, &target, &route)
            .await;
        let edited = self
            .copy_source_effects(op, &mut params, s.req_header(), (&target, &route))
            .await;
        let method = &s.req_header().method;
        let mut call = Call {
            op,
            reads: method == http::Method::GET || method == http::Method::HEAD,
            params: &params,
            target: &target,
            route: &route,
            caller: auth.identity.access_key(),
            client_upload_id: client_upload_id.as_deref(),
            may_purge,
            // (HCP: write ACL and change owner, configured — ownership's full control is not
            // enough.)
            may_change_owner: op == Operation::PutBucketAcl
                && [
                    authorize::Permission::WriteAcl,
                    authorize::Permission::ChangeOwner,
                ]
                .into_iter()
                .all(|p| authorize::may(&auth.identity, route.tenant, &target, p)),
            sees_labels,
            owner: (route.tenant.records_bucket.is_some() && owners::needs_caller(op))
                .then(|| match auth.identity.principal() {
                    authenticate::Principal::User(u) => Some(owners::Owner::of(u)),
                    authenticate::Principal::Anonymous => None,
                })
                .flatten(),
            held: Vec::new(),
            acl_caller: None,
            judged_object: None,
            acl_turn: std::sync::Mutex::default(),
            edited,
            deletes_each: None,
            guards: Guards::default(),
        };
        if let Err(e) = self.acls_before(s, &mut call, &auth, &acl_needed).await {
            let e = self.counted_refusal(e);
            return Box::pin(self.stop(s, x, Stop::Early(e))).await;
        }
        if let Some(e) = upload_refused {
            return Box::pin(self.stop(s, x, Stop::Early(*e))).await;
        }
        if let Err(e) = self.prepare_writes(s, &mut call).await {
            return Box::pin(self.stop(s, x, Stop::Early(e))).await;
        }
        self.forget_bucket_settings(&call);
        if let Some(flow) = self.carried_out_here(s, x, &call, &auth.payload).await {
            return flow;
        }
        match self.send(s, x, &mut call, &auth.payload).await {
            Ok(up) => self.respond(s, x, &call, up).await,
            Err(stop) => {
                // (A change of versioning may have reached the backend all the same.)
                self.forget_bucket_settings(&call);
                self.acl_turn_done(&call);
                Box::pin(self.stop(s, x, stop)).await
            }
        }
    }

    /// A request the gateway carries out itself rather than sending it on, answered: a
    /// folder's creation, a retention change, a legal hold where labeled holds are kept, HCP's
    /// versioning where the gateway keeps it. `None`: the request goes to the backend.
    async fn carried_out_here(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        payload: &Payload,
    ) -> Option<Flow> {
        let effects = &call.params.effects;
        match effects.folder {
            folders::FolderWrite::Create => {
                return Some(Box::pin(self.create_folder(s, x, call, payload)).await);
            }
            folders::FolderWrite::Get => return Some(Box::pin(self.get_folder(s, x, call)).await),
            _ => {}
        }
        // A copy onto itself that changes retention is no copy (a complete's change comes
        // after the backend's answer, in `respond`).
        if let Some(change) = effects
            .change
            .as_ref()
            .filter(|_| call.op == Operation::CopyObject)
        {
            // (A version still named: versioning is enabled, and the copy is HCP's recovery
            // of an old version — a new version, never a change of the old one in place; or
            // whether it is could not be read.)
            if change.version.is_some() {
                return Some(Box::pin(self.refuse_recovery_with_retention(s, x, call)).await);
            }
            return Some(Box::pin(self.change_retention(s, x, call, change)).await);
        }
        // (Boxed: only a DELETE asks. A conditional one is judged by its If-Match, in the
        // guards.)
        let backend_s = || s.req_header().headers.contains_key(http::header::IF_MATCH);
        if call.op == Operation::DeleteObject
            && Box::pin(self.nothing_to_delete(call, backend_s())).await
        {
            x.cause = Some("no object, or a delete marker, is the current version".into());
            let resp = ResponseHeader::build(204, Some(2)).expect("204");
            return Some(self.answer_own(s, x, resp, Bytes::new()).await);
        }
        // Where labeled holds are kept, S3's legal hold is HCP's unlabeled hold: changed by
        // the same protocol as every hold (`request::retain`), never sent on as it is.
        let labels = call.route.tenant.retention.labels_bucket.is_some();
        if call.op == Operation::PutObjectLegalHold && labels {
            return Some(Box::pin(self.change_legal_hold(s, x, call, payload)).await);
        }
        if call.op == Operation::GetObjectLegalHold && labels {
            match Box::pin(self.legal_hold_answer(call)).await {
                Ok(Some(doc)) => return Some(self.answer_own_xml(s, x, &doc).await),
                Ok(None) => {}
                Err(e) => return Some(self.answer(s, x, e).await),
            }
        }
        // (Boxed: only `?versioning` requests ask.)
        if crate::request::versioning::may_answer(call)
            && Box::pin(self.answers_versioning(call)).await
        {
            return Some(Box::pin(self.answer_versioning(s, x, call, payload)).await);
        }
        None
    }

    /// Owners where a request writes: grant headers keep the owner's full control at the
    /// backend (`acls`); a copy names the copier as its owner, not its source's
    /// (`request::object_owners`: sent as `REPLACE` with the source's metadata). A metadata
    /// change keeps the object's content headers and its ACL.
    async fn prepare_writes(
        &self,
        s: &mut ServerSession,
        call: &mut Call<'_>,
    ) -> Result<(), HcpError> {
        let at = crate::request::validate::probes::At {
            target: call.target,
            route: call.route,
        };
        if let Some(edited) = &call.edited {
            keep_content_headers(s.req_header_mut(), edited)?;
            if call.route.tenant.retention.mode != crate::config::RetentionMode::Off {
                keep_retention(s.req_header_mut(), edited);
                call.guards.edit_unretained = call.params.effects.change.is_none()
                    && under_no_retention(s.req_header(), edited);
            }
            // (Unless the change sets an ACL of its own, which replaces the object's: its
            // headers, or its grants to users, which planning took out of them.)
            let to_users = call.params.effects.acl_change.as_ref();
            let own = to_users.is_some_and(|c| !c.grants.is_empty())
                || validate::carries_any(&s.req_header().headers, validate::acl::ACL_HEADERS);
            if let Some(head) = edited.head.as_ref().filter(|h| h.status == 200 && !own) {
                let kept = self.keep_object_acl(s.req_header_mut(), at, head);
                if let Some(users) = Box::pin(kept).await? {
                    call.guards.acl_change = Some(users);
                }
            }
        }
        self.keep_owner_control(s.req_header_mut(), (at, call.op))
            .await;
        let effects = &call.params.effects;
        // (A copy onto itself that changes retention is no copy: `retain`.)
        if call.op == Operation::CopyObject
            && effects.object_owner.is_some()
            && effects.change.is_none()
        {
            let current = effects.current_source;
            Box::pin(self.carry_source_metadata(s.req_header_mut(), at, current)).await?;
        }
        Ok(())
    }

    /// A request its permissions do not allow, judged by ownership and the ACLs (403 where
    /// they do not allow it either); what they allowed is kept on `call`: the object judged
    /// (a read is pinned to it), what the caller holds, a multi-object delete's judging of
    /// each object.
    async fn judged_by_acls(
        &self,
        s: &mut ServerSession,
        call: &mut Call<'_>,
        caller: Option<owners::Owner>,
        needed: &acls::Needed,
    ) -> Result<(), HcpError> {
        let at = crate::request::validate::probes::At {
            target: call.target,
            route: call.route,
        };
        let req = s.req_header();
        let asked = (at, call.op, call.params);
        let judged = Box::pin(self.check_acls(asked, req, caller.as_ref(), needed))
            .await
            .map_err(|e| match caller {
                // (An anonymous client refused: the connection closes after the answer.)
                None if e.code == HcpCode::AccessDenied => e.closing(),
                _ => e,
            })?;
        // A read pinned to the object judged answers the client's own If-Match here; a
        // copy whose source an ACL let it read is pinned to that source alike.
        let source_if_match = http::HeaderName::from_static("x-amz-copy-source-if-match");
        if !if_match_holds(
            req.headers.get(http::header::IF_MATCH),
            judged.etag.as_deref(),
        ) || !if_match_holds(
            req.headers.get(&source_if_match),
            judged.source_etag.as_deref(),
        ) {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        if let Some(etag) = &judged.source_etag {
            // (On the client's request, so that it is signed with the rest.)
            let value = http::HeaderValue::from_str(etag)
                .map_err(|_| HcpError::new(HcpCode::InternalError))?;
            s.req_header_mut()
                .insert_header(source_if_match, value)
                .expect("valid header");
        }
        call.guards.if_match = judged.etag;
        call.judged_object = judged.object;
        call.held.extend(judged.held);
        if judged.each_object {
            call.deletes_each = Some(crate::request::retain::deletes::EachObject { caller });
        }
        Ok(())
    }

    /// What the permissions left to ACLs, judged before anything is sent (`request::acls`);
    /// and an ACL the request sets may grant only what its author holds — by the permissions,
    /// by ownership, or by the ACLs (an ACL body is checked when it is read).
    async fn acls_before(
        &self,
        s: &mut ServerSession,
        call: &mut Call<'_>,
        auth: &Authenticated,
        needed: &acls::Needed,
    ) -> Result<(), HcpError> {
        let sets_acl = acls::sets_acl(call.op) && call.route.tenant.records_bucket.is_some();
        let owner_of = || match auth.identity.principal() {
            authenticate::Principal::User(u) => Some(owners::Owner::of(u)),
            authenticate::Principal::Anonymous => None,
        };
        let changes_acl = matches!(call.op, Operation::PutObjectAcl | Operation::PutBucketAcl);
        if sets_acl && changes_acl {
            call.acl_caller = owner_of();
        }
        let at = crate::request::validate::probes::At {
            target: call.target,
            route: call.route,
        };
        if !needed.is_empty() {
            Box::pin(self.judged_by_acls(s, call, owner_of(), needed)).await?;
        }
        if call.op == Operation::CreateBucket {
            return Ok(());
        }
        if !sets_acl {
            return held_without_records(s.req_header(), call, auth);
        }
        // `bucket-owner-*`: a grant to the bucket's owner, kept with the request's own.
        let asked = (at, call.op, call.params);
        if let Some(grant) = Box::pin(self.bucket_owner_grant(s.req_header_mut(), asked)).await? {
            call.guards.acl_change = Some(acls::with_grant(call.params, grant));
        }
        // (The bucket's owner's grant is not the author's to hold: the bucket's owner has
        // full control of its objects anyway.)
        let mut granted = acl::granted_in_headers(s.req_header());
        if let Some(change) = &call.params.effects.acl_change {
            granted.extend(change.grants.iter().map(|g| g.permission.as_str()));
        }
        // (Only where it may be read: a write without ACL headers pays nothing here.)
        if granted.is_empty() && !changes_acl {
            return Ok(());
        }
        call.held.extend(authorize::held(
            &auth.identity,
            call.route.tenant,
            call.target,
        ));
        if owns_what_it_writes(call.params, auth) {
            call.held.extend(acls::FULL_CONTROL);
        }
        if granted.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut call.held);
        let caller = call.acl_caller.clone().or_else(owner_of);
        let asked = (at, call.op, call.params);
        let checked =
            Box::pin(self.check_granting(asked, caller.as_ref(), &mut held, &granted)).await;
        call.held = held;
        checked
    }

    /// HCP: "A request to retrieve an old version of an object while versioning is disabled
    /// returns the current version" — a GET or HEAD naming a version of a bucket whose
    /// versioning is not enabled asks for the object as it is now.
    async fn current_when_unversioned(
        &self,
        op: Operation,
        params: Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Params {
        use crate::request::validate::probes::At;
        if !matches!(op, Operation::GetObject | Operation::HeadObject)
            || params.get("versionId").is_none()
        {
            return params;
        }
        // Only a known "not enabled" drops it: an unknown answer serves what was asked.
        let enabled = Box::pin(self.bucket_versioning(At { target, route })).await != Some(false);
        if enabled {
            params
        } else {
            params.without("versionId")
        }
    }

    /// A metadata change's object (`Effects::metadata_edit`), read before anything is judged
    /// ([`EditedObject`]). HCP: changing an object's metadata does not change its owner — the
    /// change keeps the owner entry the object has (none where it has none, or could not be
    /// read), never names its editor, who would then hold the owner's full control (delete,
    /// write ACL).
    async fn edited_object(
        &self,
        params: &mut Params,
        req: &pingora::http::RequestHeader,
        (target, route): (&Target, &Route<'_>),
    ) -> Option<Box<EditedObject>> {
        let at = validate::probes::At { target, route };
        // (The object itself is the copy's source: read with the source's customer key, where
        // it is encrypted with one.)
        let mut source = req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| sign::CopySource::parse(v.as_bytes()))?;
        // (A version id the bucket's versioning has the copy ignore names nothing here either:
        // the change is the current version's.)
        if params.effects.current_source {
            source.version_id = None;
        }
        let head = self.head_of_source(req, at, &source).await.ok().flatten();
        if params.effects.object_owner.is_some() {
            let read = head.as_ref().filter(|h| h.status == 200);
            params.effects.object_owner = read.and_then(object_owners::recorded_in);
        }
        Some(Box::new(EditedObject { head }))
    }

    /// What a copy's source decides: whether it is a metadata change (a copy onto itself with
    /// REPLACE, `Effects::metadata_edit`); and, HCP: a copy source's versionId "while
    /// versioning is disabled … is ignored, and the current version of the specified object is
    /// used as the source" (CopyObject and UploadPartCopy) — where the source bucket is known
    /// not to keep versions. A metadata change's object is read with it ([`EditedObject`]).
    async fn copy_source_effects(
        &self,
        op: Operation,
        params: &mut Params,
        req: &pingora::http::RequestHeader,
        (target, route): (&Target, &Route<'_>),
    ) -> Option<Box<EditedObject>> {
        if !matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
            return None;
        }
        self.copy_source_version(op, params, req, target, route)
            .await;
        // (Boxed, and kept in a box: only a metadata change reads its object, and every
        // request's future would otherwise carry this one's space.)
        match params.effects.metadata_edit {
            true => Box::pin(self.edited_object(params, req, (target, route))).await,
            false => None,
        }
    }

    /// [`Gateway::copy_source_effects`] but the metadata change's object.
    async fn copy_source_version(
        &self,
        op: Operation,
        params: &mut Params,
        req: &pingora::http::RequestHeader,
        target: &Target,
        route: &Route<'_>,
    ) {
        use crate::request::validate::probes::At;
        // (Decided from the client's request, before anything of it is rewritten.)
        params.effects.metadata_edit = params.effects.change.is_none()
            && validate::probes::replaces_its_own_metadata(req, (op, false), target);
        let Some(source) = req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| sign::CopySource::parse(v.as_bytes()))
            .filter(|source| source.version_id.is_some())
        else {
            return;
        };
        let source_target = Target {
            tenant: target.tenant.clone(),
            bucket: Some(source.bucket.as_str().into()),
            raw_key: None,
            virtual_host: false,
        };
        // (A source bucket the tenant may not address was refused in validation; one that
        // cannot be routed now keeps the version asked for.)
        let Ok(mut source_route) = route::route(route.tenant, Some(route.backend), &source_target)
        else {
            return;
        };
        source_route.credentials = route.credentials.clone();
        let at = At {
            target: &source_target,
            route: &source_route,
        };
        params.effects.current_source = Box::pin(self.bucket_versioning(at)).await == Some(false);
        if params.effects.current_source {
            // A copy onto itself that changes retention changes the current version then;
            // one with REPLACE is a metadata change of it.
            if let Some(change) = params.effects.change.as_mut() {
                change.version = None;
            }
            params.effects.metadata_edit = params.effects.change.is_none()
                && validate::probes::replaces_its_own_metadata(req, (op, true), target);
        }
    }

    /// A copy naming a version onto its own object with HCP's retention headers, where the
    /// version stayed named: 501 where versioning is enabled (a recovery of the version, which
    /// cannot also change it), 503 where it could not be read (where it is off, HCP's change
    /// of the current object).
    async fn refuse_recovery_with_retention(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
    ) -> Flow {
        let at = validate::probes::At {
            target: call.target,
            route: call.route,
        };
        let e = match self.bucket_versioning(at).await {
            Some(true) => HcpError::new(HcpCode::NotImplemented).with_message(
                "A copy of an old version onto its object cannot also set its retention or \
                 holds: copy it, then set them with a copy onto itself.",
            ),
            _ => HcpError::new(HcpCode::ServiceUnavailable)
                .with_message("The bucket's versioning could not be read; try again.")
                .with_cause("a copy naming a version with retention: versioning unknown"),
        };
        self.answer(s, x, e).await
    }

    /// Forgets what was known of the bucket's versioning and CORS rules when a request may
    /// change them: once when it is sent and once when it is answered
    /// (`validate::probes::VersioningCache`, `cors`).
    pub(super) fn forget_bucket_settings(&self, call: &Call<'_>) {
        let cors = call.op == Operation::BucketSubresource
            && !call.reads
            && call.params.get("cors").is_some();
        if cors || matches!(call.op, Operation::DeleteBucket | Operation::CreateBucket) {
            self.forget_cors(call.route);
        }
        if matches!(
            call.op,
            Operation::PutBucketVersioning
                | Operation::DeleteBucket
                | Operation::CreateBucket
                | Operation::PutObjectLockConfiguration
        ) {
            let at = crate::request::validate::probes::At {
                target: call.target,
                route: call.route,
            };
            let bucket = crate::request::validate::probes::bucket_key(at);
            self.unlocked_buckets.invalidate(&bucket);
            if call.op == Operation::DeleteBucket {
                // (A bucket of the name made again need not keep Object Lock.)
                self.locked_buckets.invalidate(&bucket);
            }
            self.versioned_buckets.forget(&bucket);
        }
    }

    /// Answers a request that stopped before the backend's answer.
    pub(super) async fn stop(&self, s: &mut ServerSession, x: &mut Exchange, stop: Stop) -> Flow {
        match stop {
            Stop::Early(e) => self.answer_early(s, x, e).await,
            Stop::Answer(e) => self.answer(s, x, e).await,
            Stop::Unreachable(cause) => self.backend_unreachable(s, x, &cause).await,
            Stop::Abort(cause) => {
                x.cause = Some(cause);
                Flow::Abort
            }
            Stop::Settled(doc) => self.answer_own_xml(s, x, &doc).await,
        }
    }

    /// The request up to the backend's answer header: body plan, signature, guards, control
    /// documents, then the exchange with the backend.
    async fn send(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &mut Call<'_>,
        payload: &Payload,
    ) -> Result<Upstream, Stop> {
        let mut body = self.body_of(s, call.op, payload).map_err(Stop::Early)?;
        if let Some(algorithm) = part_checksum_carried(call, &body) {
            body.framing = BodyFraming::Trailed(algorithm);
            body.payload_hash = PayloadHash::Fixed(crate::backend::aws_chunked::PAYLOAD);
        } else if lock_needs_checksum(call, s.req_header()) {
            match body.length {
                // (An empty body's digest is known: its Content-MD5 goes with it — for an
                // aws-chunked one that decodes to nothing, `read_whole_body` signs it so.)
                Some(0) => {}
                Some(_) => {
                    let crc32 = crate::backend::aws_chunked::ChecksumAlgorithm::Crc32;
                    body.framing = BodyFraming::Trailed(crc32);
                    body.payload_hash = PayloadHash::Fixed(crate::backend::aws_chunked::PAYLOAD);
                }
                None if !body.forwarded => body.empty_md5 = true,
                // (An object body of no known length is refused before: 411.)
                None => {}
            }
        }
        // Signed as of now: the time of the one reading is also what a held body's wait is
        // measured from (`read_whole_body`).
        let signed = SystemTime::now();
        let mut req = self.sign(s, call, &body, signed);
        call.guards = self.guard(s, call, &mut req).await.map_err(Stop::Early)?;
        if let Some(judged) = call.guards.judged_source.take() {
            // (A copy has no body: signing it again costs only its head.)
            judged.apply(s.req_header_mut());
            req = self.sign(s, call, &body, signed);
            call.guards.apply(&mut req);
        }
        if req.is_malformed() {
            // (Before a 100-continue: nothing of the body is asked for.)
            return Err(Stop::Early(malformed_head()));
        }
        // An empty body's 100 too: a client that asked for it and got the final answer
        // instead may misread the next answer on the connection (botocore keeps its status).
        if is_expect_continue(s) && (body.forwarded || s.is_body_empty()) {
            write_continue(s)
                .await
                .map_err(|e| Stop::Abort(format!("writing 100-continue: {e}")))?;
        }
        let mut buffered = self
            .read_whole_body(s, x, call, &mut body, (&mut req, signed))
            .await?;
        if call.op == Operation::CreateBucket && buffered.is_none() {
            // (A bucket created without a body: where the backend needs its region named,
            // the gateway's document goes.)
            let doc = records::bucket_configuration(call.route.backend);
            if !doc.is_empty() {
                let doc = Bytes::from(doc);
                req = self.head_with(s, call, &body, Some(&doc));
                buffered = Some(doc);
            }
        }
        // (Only now, with the request checked whole: a refused one changes nothing. Asked only
        // of an ACL change: no other request waits on these.)
        if call.guards.acl_target.is_some() || call.judged_object.is_some() {
            Box::pin(self.change_acl_in_turn(call))
                .await
                .map_err(Stop::Answer)?;
        }
        self.versioning_at_creation(call)
            .await
            .map_err(Stop::Answer)?;
        self.transmit(s, x, call, req, &mut body, buffered).await
    }

    /// A small document the gateway acts on itself (not forwarded): read whole and verified as
    /// every body is (signature, Content-MD5, checksums), within the control-document limit.
    /// `integrity`: the request must name its digest (Content-MD5 or a checksum), as S3 asks of
    /// an Object Lock document (HCP's versioning document needs none).
    pub(super) async fn read_document(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        (op, integrity): (Operation, bool),
        payload: &Payload,
    ) -> Result<Bytes, Stop> {
        let body = self.body_of(s, op, payload).map_err(Stop::Early)?;
        let Some(verifier) = body.verifier.filter(|_| body.forwarded) else {
            return Err(Stop::Early(HcpError::new(HcpCode::MissingRequestBodyError)));
        };
        let named = !integrity || crate::request::body::names_a_digest(&s.req_header().headers);
        if !named {
            return Err(Stop::Early(
                HcpError::new(HcpCode::MissingSecurityHeader)
                    .with_message("This request requires Content-MD5 (or a checksum)."),
            ));
        }
        self.read_verified(s, x, verifier).await
    }

    /// A body the request may carry but nothing keeps (a folder's): read and verified all the
    /// same, so that a forged body is refused, and dropped as it is read — held nowhere, of
    /// any length an object's PUT may have.
    pub(super) async fn read_ignored_body(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        op: Operation,
        payload: &Payload,
    ) -> Result<(), Stop> {
        let body = self.body_of(s, op, payload).map_err(Stop::Early)?;
        // (As in `send`: the 100 even for an empty body.)
        if is_expect_continue(s) {
            write_continue(s)
                .await
                .map_err(|e| Stop::Abort(format!("writing 100-continue: {e}")))?;
        }
        let Some(verifier) = body.verifier.filter(|_| body.forwarded) else {
            return Ok(());
        };
        let limit = self.cfg.limits.max_put_bytes;
        match upstream::drain_request_body(s, verifier, limit, self.cfg.client_body).await {
            Ok(n) => {
                x.bytes_in = n;
                Ok(())
            }
            Err(BodyError::Rejected(e)) => Err(Stop::Answer(e)),
            Err(e) => Err(Stop::Abort(format!("client body: {e:?}"))),
        }
    }

    async fn read_verified(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        verifier: BodyVerifier,
    ) -> Result<Bytes, Stop> {
        if is_expect_continue(s) {
            write_continue(s)
                .await
                .map_err(|e| Stop::Abort(format!("writing 100-continue: {e}")))?;
        }
        let limit = upstream::BodyLimit::document(self.cfg.limits.max_control_body_bytes);
        let mut held = self.held.hold();
        let read = upstream::read_request_body(s, verifier, limit, self.cfg.client_body, &mut held);
        match read.await {
            Ok(doc) => {
                x.bytes_in = doc.len() as u64;
                Ok(doc)
            }
            Err(BodyError::Rejected(e)) => Err(Stop::Answer(e)),
            Err(e) => Err(Stop::Abort(format!("client body: {e:?}"))),
        }
    }

    /// Reads a 503's short error answer so that its connection can be pooled.
    async fn pool_after_busy(&self, mut up: Upstream) {
        let mut held = self.held.hold_counted();
        let drained = upstream::read_whole_body(&mut up.session, 64 * 1024, &mut held).await;
        if drained.is_ok() && up.session.is_body_done() {
            self.forwarder.release(up).await;
        }
    }

    /// Only operations that carry a body forward one; a body sent with any other request is
    /// left unread (the connection closes after the answer), so that it can hold nothing — no
    /// backend connection, no place — while it trickles in. A body is verified before the
    /// backend could commit it, whatever its length: without one, the signed digest,
    /// Content-MD5 and checksums must be an empty body's, and an aws-chunked request must have
    /// its chunks (the backend would store an empty object on the header alone).
    fn body_of(
        &self,
        s: &mut ServerSession,
        op: Operation,
        payload: &Payload,
    ) -> Result<Body, HcpError> {
        let takes_body = op.takes_body()
            && matches!(
                s.req_header().method,
                http::Method::PUT | http::Method::POST
            );
        let forwarded = takes_body && !s.is_body_empty();
        let object_s = op.checksums_are_the_object_s();
        let max_chunk = self.cfg.max_chunk_bytes;
        // (A request that takes no body has no digest of one to check: its digest headers are
        // not read — HCP's manual names Content-MD5 for requests that store data.)
        let mut verifier = match takes_body {
            true => Some(BodyVerifier::with_checksums_of(
                payload,
                s.req_header(),
                max_chunk,
                object_s,
            )?),
            false => None,
        };
        if let Some(verifier) = verifier.as_mut().filter(|v| v.holds_chunks()) {
            verifier.hold_within(self.held.hold());
        }
        let length = verifier
            .as_ref()
            .filter(|_| forwarded)
            .and_then(BodyVerifier::decoded_length);
        if !forwarded {
            if let Some(verifier) = verifier.take() {
                verifier.finish()?;
            }
        }
        if forwarded {
            self.metrics.payload(payload.mode());
        }
        // What the gateway vouches for toward the backend: the verified digest of a body that is
        // forwarded unchanged, or no claim at all (the gateway verified what it could itself).
        let (payload_hash, framing) = match (payload, forwarded) {
            (_, false) => (PayloadHash::Fixed(sigv4::EMPTY_SHA256), BodyFraming::AsSent),
            (Payload::Plain { sha256: Some(d) }, true) => (
                PayloadHash::Digest(sigv4::Hex32::of(d)),
                BodyFraming::AsSent,
            ),
            (Payload::Plain { sha256: None }, true) => (
                PayloadHash::Fixed(sigv4::UNSIGNED_PAYLOAD),
                BodyFraming::AsSent,
            ),
            (Payload::Chunked { .. }, true) => (
                PayloadHash::Fixed(sigv4::UNSIGNED_PAYLOAD),
                BodyFraming::Dechunked,
            ),
        };
        Ok(Body {
            forwarded,
            verifier,
            length,
            payload_hash,
            framing,
            empty_md5: false,
            held: crate::request::held::Held::unbounded(),
        })
    }

    /// Phase 6: the backend request, built from the call (see `sign::backend_request`) and
    /// signed as of `now`.
    fn sign(
        &self,
        s: &ServerSession,
        call: &Call<'_>,
        body: &Body,
        now: SystemTime,
    ) -> RequestHead {
        let client = s.req_header();
        // (Rare: the client's headers and the empty body's digest, in a map of their own.)
        let with_md5;
        let headers = match body.empty_md5 {
            true => {
                let mut headers = client.headers.clone();
                headers.insert(
                    http::HeaderName::from_static("content-md5"),
                    http::HeaderValue::from_static(crate::request::body::EMPTY_MD5),
                );
                with_md5 = headers;
                &with_md5
            }
            false => &client.headers,
        };
        let outbound = sign::Outbound {
            op: call.op,
            method: &client.method,
            params: call.params,
            target: call.target,
            headers,
        };
        let plan = sign::BodyPlan {
            length: body.length,
            framing: body.framing,
            payload_hash: body.payload_hash.as_str(),
        };
        let mut req = sign::backend_request(outbound, call.route, plan, now, &self.signing_keys);
        if body.forwarded && body.length.is_none() {
            // Framed by its chunks alone: `sign` gives a PUT or POST of unknown length a
            // Content-Length of 0, which beside the chunks would make two framings.
            req.remove("content-length");
            req.insert("transfer-encoding", b"chunked");
        }
        req
    }

    /// The backend request as `send` built it (signature, then guards), signed now: for a
    /// retry, and for a held body whose first signature has aged while it was read. (Not for
    /// a document the gateway checked or rewrote: that is signed with its own body.)
    fn sign_again(&self, s: &ServerSession, call: &Call<'_>, body: &Body) -> RequestHead {
        let mut req = self.sign(s, call, body, SystemTime::now());
        call.guards.apply(&mut req);
        req
    }

    /// The checks that need the backend's state, before a 100-continue so that a refused body
    /// is never sent: a re-created own bucket on AWS us-east-1, HCP's rule 41 and create-only
    /// writes the backend cannot refuse itself, seed 000's part-copy rules.
    async fn guard(
        &self,
        s: &ServerSession,
        call: &Call<'_>,
        req: &mut RequestHead,
    ) -> Result<Guards, HcpError> {
        let mut guards = Guards {
            if_match: call.guards.if_match.clone(),
            acl_change: call.guards.acl_change.clone(),
            edit_unretained: call.guards.edit_unretained,
            ..Guards::default()
        };
        let at = crate::request::validate::probes::At {
            target: call.target,
            route: call.route,
        };
        if call.route.tenant.records_bucket.is_some() {
            // An object's ACL: the object's HEAD, read once for its owner, its grants to users
            // and the instance a change is for.
            let object = match call.op {
                Operation::GetObjectAcl | Operation::PutObjectAcl => {
                    let version = call.params.get("versionId");
                    Box::pin(self.object_instance(at, version)).await?
                }
                _ => None,
            };
            let (shown, change) = Box::pin(self.owners_before(call, object.as_ref())).await?;
            guards.owners = shown;
            guards.owner_change = change.map(std::sync::Arc::new);
            guards.shown_grants = Box::pin(self.shown_user_grants(call, object.as_ref())).await?;
            guards.acl_target = Box::pin(self.acl_change_target(call, object.as_ref())).await?;
        } else if call.op == Operation::CreateBucket {
            Box::pin(crate::request::validate::probes::check_recreate(self, at)).await?;
        }
        use crate::request::validate::probes;
        let client = Some(s.req_header());
        let version = call.params.get("versionId");
        probes::check_delete_if_match(self, s.req_header(), (call.op, at, version)).await?;
        let retained = probes::check_retained(self, call.op, call.params, at, client).await;
        // (Boxed, and asked, only where folders are kept: every other request would pay an
        // allocation for it.)
        if call.route.tenant.folders {
            let asked = (at, call.op, &call.params.effects);
            Box::pin(self.check_folder_names(asked)).await?;
        }
        // (Rule 41's 409 comes before retention's 403: `retained_or_taken`.)
        let edit = call.params.effects.metadata_edit;
        let asked = (call.op, edit, call.params.get("uploadId"));
        let overwrite = probes::check_overwrite(self, s.req_header(), asked, at).await?;
        guards.overwrite_guarded = matches!(overwrite, Overwrite::AskBackend);
        probes::retained_or_taken(retained, guards.overwrite_guarded)?;
        if probes::may_replace_null(call.op, version.is_some(), call.may_purge)
            && self.replaces_null(at).await
        {
            probes::check_null_version(self, at).await?;
        }
        if call.op == Operation::CopyObject {
            // HCP copies only a source that meets all its conditions; a backend ignores a
            // date beside its ETag condition, as HTTP does: judged here first, on the source
            // as it is now (the gateway's own pin of a metadata change too).
            let current = call.params.effects.current_source;
            let source = self.copy_source_answer(s.req_header(), at, current, None);
            let conditions = validate::probes::check_copy_conditions(s.req_header(), source);
            guards.judged_source = Box::pin(conditions).await?;
        }
        if call.op == Operation::UploadPartCopy {
            let upload_id = call.params.get("uploadId").unwrap_or_default();
            let current = call.params.effects.current_source;
            // (A part copy's conditions are judged on its source as it is now; its range alone
            // on a HEAD kept a few seconds for the series of part copies it is one of.)
            let conditional = s
                .req_header()
                .headers
                .keys()
                .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
            // (Seed 000's 409 for an upload that ends during the copy needs it seen before:
            // where its listing went unanswered, the backend's NoSuchUpload stands.)
            guards.upload_confirmed = probes::upload_listed(self, at, upload_id).await?;
            let check = |kept| {
                let source = self.copy_source_answer(s.req_header(), at, current, kept);
                probes::check_part_copy(s.req_header(), source, self.cfg.limits.max_part_bytes)
            };
            // (A range clamped, or refused, on a HEAD kept a few seconds is judged again on
            // the source as it is now — a clamped copy is pinned to it. Judged on a HEAD read
            // now, it stands.)
            let was_kept = std::sync::atomic::AtomicBool::new(false);
            let first = Box::pin(check((!conditional).then_some(&was_kept))).await;
            guards.judged_source = match first {
                Ok(Some(_)) | Err(_) if was_kept.load(std::sync::atomic::Ordering::Relaxed) => {
                    Box::pin(check(None)).await?
                }
                judged => judged?,
            };
        }
        guards.apply(req);
        Ok(guards)
    }

    /// HCP's complete, multi-delete and ACL rules (and Object Lock's dates) need the (small) XML
    /// body before the backend acts: it is read and verified whole, checked, then sent on (an ACL as the gateway read
    /// it). A body that decodes to nothing (aws-chunked with `x-amz-decoded-content-length: 0`)
    /// is read and verified whole first too, so that the backend cannot commit it unverified.
    /// So is an object or part body of at most [`HELD_BODY_MAX`] bytes: held, it goes out with
    /// the request header in one send; signed again if reading it took long enough for the
    /// signature's date to age ([`RESIGN_AFTER`]).
    async fn read_whole_body(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &mut Call<'_>,
        body: &mut Body,
        (req, signed): (&mut RequestHead, SystemTime),
    ) -> Result<Option<Bytes>, Stop> {
        let cors = call.op == Operation::BucketSubresource
            && call.params.get("cors").is_some()
            && s.req_header().method == http::Method::PUT;
        let control = cors
            || matches!(
                call.op,
                Operation::CreateBucket
                    | Operation::CompleteMultipartUpload
                    | Operation::DeleteObjects
                    | Operation::PutBucketAcl
                    | Operation::PutObjectAcl
                    | Operation::PutObjectRetention
                    | Operation::PutObjectLockConfiguration
                    | Operation::PutObjectLegalHold
                    | Operation::PutBucketVersioning
            );
        let small = body.length == Some(0)
            || (call.op.has_object_body() && body.length.is_some_and(|n| n <= HELD_BODY_MAX));
        if !body.forwarded || !(control || small) {
            return Ok(None);
        }
        let verifier = body.verifier.take().expect("not used yet");
        let limit = if cors {
            // (HCP's own bound for CORS, whatever the limit for other documents.)
            let (held, chunk) = (self.cfg.max_held_bytes, self.cfg.max_chunk_bytes);
            let answers = self.cfg.max_buffered_response_bytes;
            crate::request::validate::cors_document::limit(held, chunk, answers)
        } else if control {
            upstream::BodyLimit::document(self.cfg.limits.max_control_body_bytes)
        } else {
            upstream::BodyLimit::document(HELD_BODY_MAX as usize)
        };
        body.held = self.held.hold();
        let pace = self.cfg.client_body;
        let read = upstream::read_request_body(s, verifier, limit, pace, &mut body.held);
        let whole = match read.await {
            Ok(b) => b,
            Err(BodyError::Rejected(e)) => return Err(Stop::Answer(e)),
            Err(e) => return Err(Stop::Abort(format!("client body: {e:?}"))),
        };
        x.bytes_in = whole.len() as u64;
        if small && !whole.is_empty() {
            // The length and digest the request was signed with are the body's. (A clock set
            // back since it was signed makes its age unknown: signed again.)
            let age = SystemTime::now().duration_since(signed);
            if !age.is_ok_and(|age| age <= RESIGN_AFTER) {
                *req = self.sign_again(s, call, body);
            }
            return Ok(Some(whole));
        }
        let doc = if control {
            match Box::pin(self.check_document(call, &whole)).await {
                Err(e) => return Err(Stop::Answer(e)),
                Ok(rebuilt) => Bytes::from(rebuilt),
            }
        } else {
            whole
        };
        if call.op == Operation::DeleteObjects && doc.is_empty() {
            let result = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult \
                 xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</DeleteResult>",
                crate::request::retain::deletes::kept_errors(&call.guards.kept)
            );
            return Err(Stop::Settled(Bytes::from(result)));
        }
        // Sent with its own length and digest, whatever framing the client used.
        let (op, params) = (call.op, call.params);
        *req = self.resign_with_body(s, (op, params), call.target, call.route, &doc);
        call.guards.apply(req);
        Ok(Some(doc))
    }

    /// A multi-object delete's list by HCP's rules (a version's purge needs `purge`; objects
    /// under retention kept back), and the list to send: empty where nothing is left.
    async fn check_deletes(&self, call: &mut Call<'_>, doc: &[u8]) -> Result<Vec<u8>, HcpError> {
        let versions = validate::check_delete_list(doc, &self.cfg.limits)?;
        if versions && !call.may_purge {
            return Err(authorize::denied()
                .with_message("Deleting object versions needs the purge permission."));
        }
        let judged = self.judge_deletes(call, doc).await?;
        call.guards.kept = judged.kept;
        call.guards.quiet_deletes = judged.quiet;
        if !judged.any_left {
            // (Nothing left to ask the backend: answered in `read_whole_body`.)
            return Ok(Vec::new());
        }
        Ok(judged.document)
    }

    /// An ACL document by HCP's rules (grantees, a change of owner, grants only of what its
    /// author holds), and the document to send, rebuilt from its parse.
    async fn check_acl_document(
        &self,
        call: &mut Call<'_>,
        doc: &[u8],
    ) -> Result<Vec<u8>, HcpError> {
        let backend = self.backend_owner(call.target, call.route).await;
        let shown = match &call.guards.owners {
            Some(shown) => shown.owner.id.clone(),
            None => route::tenant_owner_id(call.route.tenant),
        };
        let ids = (shown.as_str(), backend.as_deref());
        let users = self.users.load();
        let keep_users = call.route.tenant.records_bucket.is_some();
        let who = acl::Grantees {
            users: &users,
            tenant: &call.route.tenant.name,
            keep_users,
        };
        let acl::Policy {
            document: doc,
            to_users: grants,
            new_owner,
        } = acl::check_policy(doc, who, ids)?;
        if let Some(to) = new_owner {
            let change = self.begin_owner_change(call, to).await?;
            call.guards.owner_change = Some(std::sync::Arc::new(change));
        }
        if keep_users {
            // An ACL can grant only what its author holds.
            let groups = acl::group_grants(&doc)?;
            let granted: Vec<&str> = groups
                .iter()
                .map(|(_, p)| p.as_str())
                .chain(grants.iter().map(|g| g.permission.as_str()))
                .collect();
            let at = crate::request::validate::probes::At {
                target: call.target,
                route: call.route,
            };
            let mut held = std::mem::take(&mut call.held);
            let caller = call.acl_caller.clone();
            let asked = (at, call.op, call.params);
            let checked = self
                .check_granting(asked, caller.as_ref(), &mut held, &granted)
                .await;
            call.held = held;
            checked?;
            call.guards.acl_change = Some(acls::AclChange { grants });
        } else {
            // (No grants to users here: only groups, held to the author's permissions.)
            let groups = acl::group_grants(&doc)?;
            let granted: Vec<&str> = groups.iter().map(|(_, p)| p.as_str()).collect();
            acls::check_grantable(&granted, &call.held)?;
        }
        Ok(doc)
    }

    /// A control document by HCP's rules, and the document to send: always built from what was
    /// read, never the client's bytes.
    async fn check_document(&self, call: &mut Call<'_>, doc: &[u8]) -> Result<Vec<u8>, HcpError> {
        match call.op {
            Operation::CreateBucket => {
                validate::check_bucket_configuration(doc)?;
                Ok(records::bucket_configuration(call.route.backend))
            }
            Operation::DeleteObjects => self.check_deletes(call, doc).await,
            Operation::PutObjectRetention
            | Operation::PutObjectLockConfiguration
            | Operation::PutObjectLegalHold
            | Operation::PutBucketVersioning => {
                // (Sent as the gateway read it.)
                let now = crate::hcp::retention::now();
                let read = crate::request::validate::lock_document::read(call.op, doc, now)?;
                validate::retention::document_fits_backend(&read, call.route.backend)?;
                Ok(read.to_xml())
            }
            Operation::PutBucketAcl | Operation::PutObjectAcl => {
                Box::pin(self.check_acl_document(call, doc)).await
            }
            // (Only a CORS configuration, of the bucket sub-resources, is read here.)
            Operation::BucketSubresource => Ok(validate::cors_document::read(doc)?.to_xml()),
            _ => {
                let upload_id = call.params.get("uploadId").unwrap_or_default();
                let at = crate::request::validate::probes::At {
                    target: call.target,
                    route: call.route,
                };
                let minimum = self.cfg.limits.min_part_bytes;
                // (Sent as the gateway read it.)
                let changes = call.params.effects.change.is_some();
                let parts = crate::request::validate::probes::check_complete(
                    self,
                    minimum,
                    (doc, upload_id, changes),
                    at,
                )
                .await?;
                call.guards.complete_etag = crate::request::respond::etag::of_parts(&parts);
                Ok(crate::request::respond::complete::to_xml(&parts))
            }
        }
    }

    /// The request header signed again (a retry's): with the document the gateway attached
    /// to a bodiless request (a CreateBucket's region), which goes with every try.
    fn head_with(
        &self,
        s: &mut ServerSession,
        call: &Call<'_>,
        body: &Body,
        attached: Option<&Bytes>,
    ) -> RequestHead {
        let Some(doc) = attached else {
            return self.sign_again(s, call, body);
        };
        let (op, params) = (call.op, call.params);
        let mut req = self.resign_with_body(s, (op, params), call.target, call.route, doc);
        call.guards.apply(&mut req);
        req
    }

    /// Phase 7: connects, sends, and waits for the answer's header. Bodiless requests other
    /// than POST (which could create twice) are retried on connection failures and on the
    /// backend's 503 (SlowDown), with backoff — an object's write or delete only until it was
    /// written whole; a client's body is never replayed (a
    /// CreateBucket's is the gateway's own document, held), so the verifier is used once. A pooled connection the backend closed meanwhile gets one immediate retry.
    /// The first attempt sends `req` itself; a retry signs the request again (it was built by
    /// `sign` and the guards alone, with a document the gateway attached, if any: only bodiless
    /// requests are retried), so that no copy of the request header is made for a retry that
    /// seldom comes. An attempt's header is dropped once written, before the answer is awaited
    /// (its buffer is the thread's to lend again). The answer says whether a try before it
    /// was written and its answer lost (`Upstream::sent_before`): the backend may have acted.
    /// (A body the gateway holds whole is not replayed either: the backend may have stored it
    /// before the connection failed, and a second PUT makes a second version or meets the
    /// no-overwrite rule's own condition.)
    async fn transmit(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        req: RequestHead,
        body: &mut Body,
        buffered: Option<Bytes>,
    ) -> Result<Upstream, Stop> {
        let backend = call.route.backend;
        let (replayable, acts_once) = sent_again(call, body, &s.req_header().method);
        let mut retry = Retry::new(if replayable { backend.max_retries } else { 0 });
        let mut stale_retried = false;
        let mut sent_before = false;
        let mut first = Some(req);
        loop {
            let req = match first.take() {
                Some(req) => req,
                None => {
                    debug_assert!(
                        replayable,
                        "only bodiless requests (and creates) are sent again"
                    );
                    self.head_with(s, call, body, buffered.as_ref())
                }
            };
            if req.is_malformed() {
                // (Re-signed with a document the gateway read, or for a retry: refused before
                // a connection is taken.)
                return Err(Stop::Answer(malformed_head()));
            }
            // One reading of the clock for an attempt: the retries' budget counts from the
            // first, the pool judges its idle connections by it, and on a pooled connection
            // the backend's time counts from it (a new one's from when it is open).
            let attempt = Instant::now();
            retry.begin(attempt);
            let mut up = match self.forwarder.connect(backend, attempt).await {
                Ok(u) => u,
                Err(e) => {
                    // Only failures to reach a backend count toward its health, never its
                    // answer (or its hanging up) on a bad request, nor this process running
                    // out of descriptors.
                    if !crate::server::open_files::failed_here(&e) {
                        self.health.record(&backend.name, false);
                    }
                    if self.back_off(&mut retry, backend, "connect").await {
                        continue;
                    }
                    return Err(Stop::Unreachable(e.to_string()));
                }
            };
            backend.counters.connection(up.reused);
            let sent = if up.reused { attempt } else { Instant::now() };
            // (Never a POST, which could create twice.)
            let retriable = up.reused && replayable && !stale_retried;
            stale_retried |= retriable;
            let request = (&req, buffered.as_ref());
            let written = self.write_request(s, x, &mut up, call, request, body).await;
            drop(req);
            match written {
                Ok(()) => {}
                // (A header not written whole is not acted on.)
                Err(Stop::Unreachable(_)) if retriable => continue,
                Err(stop) => return Err(stop),
            }
            if takes_long(call.op) {
                // Its answer may take long: `long_complete` waits for it.
                return Ok(up);
            }
            match up.session.read_response().await {
                Ok(_)
                    if up.session.resp_header().map(|h| h.status.as_u16()) == Some(503)
                        && retry.left() =>
                {
                    Box::pin(self.pool_after_busy(up)).await;
                    if !self.back_off(&mut retry, backend, "busy").await {
                        // Out of time: answered as the backend is overloaded.
                        return Err(Stop::Answer(HcpError::new(HcpCode::ServiceUnavailable)));
                    }
                }
                Ok(_) => {
                    x.backend_elapsed = Some(sent.elapsed());
                    self.health.record(&backend.name, true);
                    up.sent_before = sent_before;
                    return Ok(up);
                }
                Err(e) => {
                    sent_before = true;
                    // (A read timeout is not counted: a client can make a request long; a
                    // backend that stops answering fails its HTTP probe. Nor is it tried
                    // again: the backend had the whole request and may still be carrying it
                    // out — a copy sent again would be made twice. But for a CreateBucket, whose
                    // try again finds the bucket the first made the creator's:
                    // `done_by_a_lost_try`. Nor is an object's write or delete: `sent_again`.)
                    let once = acts_once
                        || e.etype() == &pingora::ErrorType::ReadTimedout
                            && call.op != Operation::CreateBucket;
                    if retriable && !once {
                        tracing::debug!("retrying on a fresh backend connection: {e}");
                    } else if once || !self.back_off(&mut retry, backend, "connection").await {
                        return Err(Stop::Unreachable(e.to_string()));
                    }
                }
            }
        }
    }

    /// Writes the request header and its body: a buffered document, or the client's body
    /// streamed and verified on its way (a body that fails verification is never finished, so
    /// the backend stores nothing).
    async fn write_request(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        call: &Call<'_>,
        (req, buffered): (&RequestHead, Option<&Bytes>),
        body: &mut Body,
    ) -> Result<(), Stop> {
        let unreachable = |e: pingora::BError| Stop::Unreachable(e.to_string());
        if buffered.is_some_and(|doc| !doc.is_empty()) {
            up.header_with_body();
        }
        up.session
            .write_request_header(req)
            .await
            .map_err(unreachable)?;
        call.route.backend.counters.request();
        if let Some(doc) = buffered {
            let framed;
            let doc = match body.framing {
                BodyFraming::Trailed(algorithm) => {
                    framed = crate::backend::aws_chunked::Chunker::frame_whole(doc, algorithm);
                    &framed
                }
                _ => doc,
            };
            let sent = match up.session.write_body(doc).await {
                Ok(()) => up.session.finish_body().await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                x.cause = Some(format!("backend stopped reading the body: {e}"));
                up.body_cut_short = true;
            }
            return Ok(());
        }
        let Some(verifier) = body.verifier.take().filter(|_| body.forwarded) else {
            return up.session.finish_body().await.map_err(unreachable);
        };
        let pace = self.cfg.client_body;
        // Boxed: only a body larger than the held ones streams, and every request's future
        // would otherwise carry this one's space.
        let trailed = match (body.length, body.framing) {
            (Some(n), BodyFraming::Trailed(algorithm)) => {
                Some(crate::backend::aws_chunked::Chunker::new(n, algorithm))
            }
            _ => None,
        };
        let streamed = Box::pin(upstream::stream_request_body(
            s,
            &mut up.session,
            (verifier, trailed),
            pace,
        ));
        match streamed.await {
            Ok(n) => x.bytes_in = n,
            // The upstream request is abandoned unfinished: the backend stores nothing.
            Err(BodyError::Rejected(e)) => return Err(Stop::Answer(e)),
            Err(BodyError::Client(e)) => return Err(Stop::Abort(format!("client body: {e}"))),
            // The backend may have answered early (and stopped reading): its answer is used.
            Err(BodyError::Backend(e)) => {
                x.cause = Some(format!("backend stopped reading the body: {e}"));
                up.body_cut_short = true;
            }
        }
        Ok(())
    }

    /// Phase 8: HCP's answer from the backend's, and the backend connection pooled again when
    /// the exchange ended cleanly.
    async fn respond(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        mut up: Upstream,
    ) -> Flow {
        if let Some(failed) = early_success(x, call, &up) {
            drop(up);
            return self.answer(s, x, failed).await;
        }
        if takes_long(call.op) {
            return Box::pin(self.complete(s, x, up, call)).await;
        }
        let body_fully_read = s.is_body_empty() || s.is_body_done();
        let flow = self.answer_from_backend(s, x, &mut up, call).await;
        match flow {
            Flow::KeepAlive if up.session.is_body_done() => self.forwarder.release(up).await,
            _ => drop(up),
        }
        match flow {
            Flow::KeepAlive if !body_fully_read => Flow::Close,
            f => f,
        }
    }

    /// Waits before the next attempt (exponential backoff with full jitter), or says that no
    /// attempt is left in count or time.
    pub(super) async fn back_off(
        &self,
        retry: &mut Retry,
        backend: &BackendRuntime,
        reason: &str,
    ) -> bool {
        let Some(wait) = retry.next_wait() else {
            return false;
        };
        self.metrics.backend_retry(&backend.name, reason);
        tokio::time::sleep(wait).await;
        true
    }

    /// The backend request again, for a body the gateway rewrote: its length, digest and
    /// Content-MD5 are the new body's, and the client's checksums of the old body are dropped.
    pub(super) fn resign_with_body(
        &self,
        s: &mut ServerSession,
        (op, params): (Operation, &Params),
        target: &Target,
        route: &Route<'_>,
        body: &[u8],
    ) -> RequestHead {
        let req = s.req_header_mut();
        // (A multi-object delete, an Object Lock document and a bucket's ACL need a digest at
        // S3's servers: the document sent always has its Content-MD5, the new document's,
        // whatever checksum the client sent of its own — current SDKs send a CRC, which is
        // the client's document's and is not sent on.)
        let md5 = crate::request::body::content_md5(body);
        req.insert_header("content-md5", md5).expect("base64");
        // (A multipart complete's `x-amz-checksum-*` and `-type` are the object's: kept.)
        let object_s = op.checksums_are_the_object_s();
        let stale: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| {
                (n.as_str().starts_with("x-amz-checksum-") && !object_s)
                    || n.as_str() == "x-amz-sdk-checksum-algorithm"
            })
            .cloned()
            .collect();
        for name in stale {
            req.remove_header(&name);
        }
        let digest = sigv4::sha256_hex(body);
        let client = s.req_header();
        sign::backend_request(
            sign::Outbound {
                op,
                method: &client.method,
                params,
                target,
                headers: &client.headers,
            },
            route,
            sign::BodyPlan {
                length: Some(body.len() as u64),
                framing: BodyFraming::Dechunked,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        )
    }
}

/// A success the backend answered before it had the whole request body (it stopped reading it,
/// then answered 2xx): whatever it committed is not the body the client sent and the gateway
/// verified — the rest of which may not even have been read, let alone checked. Never relayed
/// as a success: 503, and a warning that names what the backend may hold.
pub(super) fn early_success(x: &mut Exchange, call: &Call<'_>, up: &Upstream) -> Option<HcpError> {
    if !up.body_cut_short {
        return None;
    }
    let head = up.session.resp_header()?;
    let status = head.status.as_u16();
    if !(200..300).contains(&status) {
        return None;
    }
    x.backend_status = Some(status);
    let version = head
        .headers
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok());
    // (The key is the access log's to show, as `server.log_keys` says: the request id finds
    // it there.)
    tracing::warn!(request_id = %x.reply.id, backend = %call.route.backend.name,
        operation = ?call.op, version = ?version,
        "the backend answered success before it had the whole body: what it stored is not \
         what the client sent");
    Some(
        HcpError::new(HcpCode::ServiceUnavailable)
            .with_cause("the backend answered success before it had read the request's body"),
    )
}

/// Where the tenant keeps no records nobody's ownership is known: an ACL a request sets grants
/// at most what its author's permissions hold (and a new object's authenticated writer owns
/// it); kept in `call.held` for an ACL document read later.
fn held_without_records(
    req: &pingora::http::RequestHeader,
    call: &mut Call<'_>,
    auth: &Authenticated,
) -> Result<(), HcpError> {
    let changes_acl = matches!(call.op, Operation::PutObjectAcl | Operation::PutBucketAcl);
    // (A write without ACL headers pays one pass over its header names here, no lookups; an
    // ACL document is judged when it is read.)
    let sets = changes_acl
        || (acls::sets_acl(call.op)
            && crate::request::validate::carries_any(&req.headers, acl::ACL_HEADERS));
    if !sets {
        return Ok(());
    }
    let granted = acl::granted_in_headers(req);
    call.held.extend(authorize::held(
        &auth.identity,
        call.route.tenant,
        call.target,
    ));
    let edit = call.params.effects.metadata_edit;
    if object_owners::stores_object(call.op) && !edit && auth.identity.user().is_some() {
        call.held.extend(acls::FULL_CONTROL);
    }
    acls::check_grantable(&granted, &call.held)
}

#[cfg(test)]
mod tests {
    use super::Retry;
    use std::time::{Duration, Instant};

    /// The budget counts from the first attempt's reading of the clock, not from when the
    /// retries were set up nor from a later attempt.
    #[test]
    fn the_retry_budget_counts_from_the_first_attempt() {
        let mut retry = Retry::new(3);
        assert!(retry.left(), "no attempt yet: nothing spent");
        let Some(long_ago) = Instant::now().checked_sub(Retry::BUDGET + Duration::from_secs(1))
        else {
            return; // (A clock too young to go back that far.)
        };
        retry.begin(long_ago);
        assert!(
            !retry.left(),
            "the first attempt began longer ago than the budget"
        );
        retry.begin(Instant::now());
        assert!(
            !retry.left(),
            "a later attempt does not start the budget again"
        );
        assert_eq!(retry.next_wait(), None);

        let mut retry = Retry::new(1);
        retry.begin(Instant::now());
        assert!(retry.next_wait().is_some());
        assert!(!retry.left(), "bounded in count too");
    }
}
