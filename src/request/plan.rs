//! Phases 1–5, before any byte goes to a backend: addressing, classification,
//! authentication and authorisation, validation, routing. Their output is a [`Planned`]
//! request, or the [`HcpError`] that answers it.

use super::*;
use authorize::Permission;

/// Phases 1 and 2's output: who is addressed, and what is asked.
struct Classified {
    target: Target,
    query: Query,
    op: Operation,
}

/// Where the tenant keeps records: the grants to users an ACL-setting request sets, and the
/// owner entry of a new object (its writer: `request::object_owners`).
fn kept_in_records(
    tenant: &crate::config::Tenant,
    op: Operation,
    identity: &Identity,
    grants_to_users: Vec<acls::UserGrant>,
) -> (Option<acls::AclChange>, Option<String>) {
    if tenant.records_bucket.is_none() {
        return (None, None);
    }
    let change = acls::may_grant_to_users(op).then_some(acls::AclChange {
        grants: grants_to_users,
    });
    let owner = object_owners::stores_object(op).then(|| object_owners::mark_of(identity));
    (change, owner)
}

/// A copy's source: a bucket the tenant may name (`route::check_copy_source`), and where
/// folders are kept no folder — it has no data to copy (its GET is 404 too).
fn check_copy_source(
    tenant: &crate::config::Tenant,
    req: &pingora::http::RequestHeader,
) -> Result<(), HcpError> {
    let source = req
        .headers
        .get("x-amz-copy-source")
        .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()));
    route::check_copy_source(tenant, source.as_ref().map(|s| s.bucket.as_str()))?;
    if tenant.folders && source.is_some_and(|s| s.key.ends_with(b"/")) {
        return Err(folders::copy_of_folder());
    }
    Ok(())
}

/// A request refused by addressing or classification, before anyone is known: its connection
/// closes after the answer (a client refused costs only itself — no place of `max_connections`
/// kept for it), and a browser's preflight gets the one refusal every preflight gets.
fn refused_unknown(req: &pingora::http::RequestHeader, e: HcpError) -> HcpError {
    if req.method == http::Method::OPTIONS && req.headers.contains_key(http::header::ORIGIN) {
        respond::preflight_refused()
    } else {
        e.closing()
    }
}

impl Gateway {
    /// The phases that decide, before any byte goes to a backend.
    pub(super) fn plan(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
    ) -> Result<Planned<'_>, HcpError> {
        let Classified { target, query, op } = self
            .classify(s.req_header(), x)
            .map_err(|e| refused_unknown(s.req_header(), e))?;
        x.operation = Some(op);
        x.sub_resource = classify::sub_resource(op, &query);
        let tenant = &self.cfg.tenants[&*target.tenant];
        if op == Operation::PostObject {
            // Rule 47: a form upload is authenticated by its form alone.
            if s.req_header()
                .headers
                .contains_key(http::header::AUTHORIZATION)
            {
                self.metrics.auth_failure(HcpCode::AccessDenied);
                return Err(form_with_authorization());
            }
            // (Refused before anyone is known: the connection closes after the answer.)
            let route = route::route(tenant, self.backends.get(&tenant.backend), &target)
                .map_err(HcpError::closing)?;
            x.backend = route.backend.name.clone();
            return Ok(Planned::Form { target, route });
        }
        let classified = Classified { target, query, op };
        let planned = self.plan_request(s, x, classified, tenant);
        // A preflight is anonymous: whatever refuses it is one and the same 403 (a reserved
        // name or a key too long for the backend would tell what the backend is).
        if op == Operation::CorsPreflight {
            return match planned {
                Ok(Planned::Refused { .. }) | Err(_) => Err(respond::preflight_refused()),
                planned => planned,
            };
        }
        planned
    }

    /// [`Gateway::plan`] for a request that is no form upload: phases 3 to 5.
    fn plan_request<'g>(
        &'g self,
        s: &mut ServerSession,
        x: &mut Exchange,
        Classified { target, query, op }: Classified,
        tenant: &'g crate::config::Tenant,
    ) -> Result<Planned<'g>, HcpError> {
        // The request's time, read once: it is authenticated at it and its retention judged
        // at it.
        let at = SystemTime::now();
        let auth = self
            .authenticate(s.req_header(), &target, &query, op, at)
            .inspect_err(|_| {
                let (scheme, key) = Authenticator::attempted(s.req_header(), &query);
                x.scheme = scheme.name();
                x.claimed_access_key = key;
            })?;
        x.caller = auth.identity.user().cloned();
        x.scheme = auth.identity.scheme().name();
        // A browser's request refused from here on, to one of the tenant's users: its answer
        // carries the CORS headers the bucket's rules give it (HCP validates all but
        // "requests that fail authentication", `validates_cors`).
        let browser = s.req_header().headers.contains_key(http::header::ORIGIN);
        let refused_to = (browser && self.validates_cors(&auth, tenant)).then(|| target.clone());
        let classified = Classified { target, query, op };
        match self.plan_authenticated(s, x, classified, (tenant, auth, at, browser)) {
            Err(error) if refused_to.is_some() => {
                let target = refused_to.expect("a browser's target");
                Ok(Planned::Refused { error, target })
            }
            planned => planned,
        }
    }

    /// Whether HCP validates a refused request's CORS: the request of one of the tenant's own
    /// users, whose signature the tenant takes ("requests that fail authentication are not
    /// validated" — a user of another tenant is none of this one's). An anonymous one is not
    /// either: refused, it costs no backend request for the rules.
    fn validates_cors(&self, auth: &Authenticated, tenant: &crate::config::Tenant) -> bool {
        let scheme = auth.identity.scheme();
        // (A tenant a reload removed has no rules to give: nothing is asked of its backend.)
        authorize::serving(tenant).is_ok()
            && auth.identity.user().is_some_and(|user| {
                authorize::belongs_to(user, &tenant.name)
                    && authorize::check_tenant(user, scheme, &tenant.name).is_ok()
            })
    }

    /// [`Gateway::plan_request`] once authenticated: phases 3b to 5.
    fn plan_authenticated<'g>(
        &'g self,
        s: &mut ServerSession,
        x: &mut Exchange,
        Classified { target, query, op }: Classified,
        (tenant, auth, at, browser): (&'g crate::config::Tenant, Authenticated, SystemTime, bool),
    ) -> Result<Planned<'g>, HcpError> {
        let acl_needed = self.authorize(&auth, tenant, op, s.req_header(), &target)?;
        let mut params = Params::of(op, &query);
        params.take_response_headers(op, s.req_header());
        // Asked only of the deletes that can name versions, of the writes that may replace a
        // `null` version (`probes::may_replace_null`), and of reads that may see labels.
        let deletes = matches!(op, Operation::DeleteObject | Operation::DeleteObjects);
        let may_purge = (deletes || validate::probes::may_replace_null(op, false, false))
            && authorize::may(&auth.identity, tenant, &target, Permission::Purge);
        // (HCP: a user with "privileged data access and read permission(s) on the bucket" —
        // an object's ACL that lets the read through is no read permission on the bucket.)
        let sees_labels = matches!(op, Operation::GetObject | Operation::HeadObject)
            && tenant.retention.labels_bucket.is_some()
            && authorize::may(&auth.identity, tenant, &target, Permission::Privileged)
            && authorize::may(&auth.identity, tenant, &target, Permission::Read);
        // Deleting a version is for good: it needs the purge permission, not only delete.
        if op == Operation::DeleteObject && params.get("versionId").is_some() && !may_purge {
            self.metrics.auth_failure(HcpCode::AccessDenied);
            return Err(authorize::denied()
                .with_message("Deleting an object version needs the purge permission."));
        }
        // HCP's folders, where the tenant keeps them: what the request does with one.
        let key = target.key().filter(|_| tenant.folders);
        let folder = folders::effect(op, s.req_header(), key.as_deref());
        // (A folder PUT without Content-Length is the folder table's 400, before rule 12's
        // 411 for every other PUT.)
        folders::check_length(folder, s.req_header(), || s.to_h1_raw())?;
        validate::acl::first_grants_only(s.req_header_mut());
        let grants_to_users = self.validate(s, (&auth, op, folder), &target, (&query, &params))?;
        // HCP's retention headers, as the tenant keeps retention.
        let now = crate::hcp::retention::seconds(at);
        params.effects = validate::retention::effects(op, s.req_header(), &target, tenant, now)?;
        params.effects.answer_encryption = rewrite::asks_encryption(op, s.req_header());
        folders::check(op, key.as_deref(), folder)?;
        folders::check_protection(folder, &params.effects, s.req_header())?;
        params.effects.folder = folder;
        (params.effects.acl_change, params.effects.object_owner) =
            kept_in_records(tenant, op, &auth.identity, grants_to_users);
        // Only an upload's initiator may use it; the backend gets its own id for it. (Where an
        // ACL may yet allow the request, its refusal comes first: whether an upload is there
        // is told only to whom may use the bucket — `Plan::upload_refused`.)
        let (client_upload_id, upload_refused) =
            match self.open_upload(&auth.identity, tenant, op, &target, &mut params) {
                // (Boxed: every plan carries the room.)
                Err(e) if !acl_needed.is_empty() => (None, Some(Box::new(e))),
                opened => (opened?, None),
            };
        // Phase 5, routing.
        let route = route::route(tenant, self.backends.get(&tenant.backend), &target)?;
        x.backend = route.backend.name.clone();
        if matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
            check_copy_source(tenant, s.req_header())?;
        }
        // What this backend's Object Lock cannot keep is refused, not sent.
        validate::retention::fits_backend(op, s.req_header(), &params.effects, route.backend)?;
        // Nor is a customer's key it would not keep, nor CORS rules that would not act.
        validate::customer_keys_fit(s.req_header(), route.backend)?;
        validate::cors_fits((op, &s.req_header().method), &params, route.backend)?;
        Ok(Planned::Request(Plan {
            target,
            op,
            params,
            auth,
            route,
            client_upload_id,
            upload_refused,
            may_purge,
            sees_labels,
            acl_needed,
            browser,
        }))
    }

    /// Phase 3b, authorisation: what the permissions allow is allowed; what they do not, an
    /// ACL or the bucket's owner may — the permissions returned are asked of the backend
    /// before sending (`request::acls`); otherwise 403.
    fn authorize(
        &self,
        auth: &Authenticated,
        tenant: &crate::config::Tenant,
        op: Operation,
        req: &pingora::http::RequestHeader,
        target: &Target,
    ) -> Result<acls::Needed, HcpError> {
        let Err(e) = authorize::authorize(&auth.identity, tenant, op, req, target) else {
            return Ok(acls::Needed::default());
        };
        let missing = authorize::missing_for_acl(&auth.identity, tenant, op, req, target);
        if missing.is_none() {
            self.metrics.auth_failure(HcpCode::AccessDenied);
        }
        // (An anonymous client refused: the connection closes after the answer.)
        let anonymous = matches!(auth.identity.principal(), Principal::Anonymous);
        missing.ok_or(if anonymous { e.closing() } else { e })
    }

    /// Phase 1, addressing (`Host` and path → tenant, bucket, key), and phase 2,
    /// classification (method, target, query → the operation).
    fn classify(
        &self,
        req: &pingora::http::RequestHeader,
        x: &mut Exchange,
    ) -> Result<Classified, HcpError> {
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let (raw_path, raw_query) = crate::sig::split_target(req.raw_path());
        // HCP's own scheme addresses through a /hs3 path prefix.
        let hcp_scheme = req
            .headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"HCP "));
        let target = address::resolve(
            host,
            raw_path,
            hcp_scheme,
            &self.cfg.domains,
            self.cfg.default_tenant.as_deref(),
            |t| self.cfg.tenants.get(t).map(|t| t.name.clone()),
        )?;
        x.tenant = target.tenant.clone();
        x.bucket = target.bucket.clone();
        x.key = target.raw_key.clone().map(NamedKey::Path);
        let query = Query::parse(raw_query);
        let copy = req.headers.contains_key("x-amz-copy-source");
        let op = classify::classify(&req.method, &target, &query, copy)?;
        Ok(Classified { target, query, op })
    }

    /// Phase 3, authentication (a CORS preflight has no identity: it is never
    /// signature-checked).
    fn authenticate(
        &self,
        req: &pingora::http::RequestHeader,
        target: &Target,
        query: &Query,
        op: Operation,
        now: SystemTime,
    ) -> Result<Authenticated, HcpError> {
        if op == Operation::CorsPreflight {
            return Ok(self.authn.preflight());
        }
        // (Credentials that failed: the connection closes after the answer.)
        self.authn
            .authenticate(req, target, query, now)
            .map_err(|e| {
                self.metrics.auth_failure(e.code);
                e.closing()
            })
    }

    /// Phase 4, validation by HCP's rules that need no backend; ACL grant headers in the
    /// backend's terms (HCP ignores them on parts and completes), and the grants to users they
    /// name where the tenant keeps them.
    fn validate(
        &self,
        s: &mut ServerSession,
        (auth, op, folder): (&Authenticated, Operation, folders::FolderWrite),
        target: &Target,
        (query, params): (&Query, &Params),
    ) -> Result<Vec<acls::UserGrant>, HcpError> {
        let chunked = matches!(
            auth.payload,
            crate::request::authenticate::Payload::Chunked { .. }
        );
        let req = s.req_header();
        validate::check(op, target, query, req, (chunked, folder), &self.cfg.limits)?;
        // Response header overrides change what the answer says about the object: as S3, only
        // for authenticated requests.
        if matches!(auth.identity.principal(), Principal::Anonymous)
            && params.names().any(|n| n.starts_with("response-"))
        {
            return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                "Request specific response headers cannot be used for anonymous GET requests.",
            ));
        }
        if matches!(
            op,
            Operation::UploadPart | Operation::UploadPartCopy | Operation::CompleteMultipartUpload
        ) {
            acl::strip_acl_headers(s.req_header_mut());
            Ok(Vec::new())
        } else {
            let tenant = &self.cfg.tenants[&*target.tenant];
            let users = self.users.load();
            let who = acl::Grantees {
                users: &users,
                tenant: &tenant.name,
                keep_users: tenant.records_bucket.is_some() && acls::may_grant_to_users(op),
            };
            let req = s.req_header_mut();
            let acl_put = matches!(op, Operation::PutObjectAcl | Operation::PutBucketAcl);
            let had_grants = acl_put && acl::has_grant_headers(req);
            let to_users = acl::translate_grants(req, who)?;
            // An ACL change whose grants were all to users leaves the backend's ACL private.
            if had_grants && !acl::has_grant_headers(req) {
                req.insert_header("x-amz-acl", "private").expect("static");
            }
            Ok(to_users)
        }
    }

    /// Checks the upload id of a multipart request against the caller and puts the backend's id
    /// in its place (likewise a listing's `upload-id-marker`). Returns the client's id.
    pub(super) fn open_upload(
        &self,
        identity: &Identity,
        tenant: &crate::config::Tenant,
        op: Operation,
        target: &Target,
        params: &mut Params,
    ) -> Result<Option<String>, HcpError> {
        let scope = uploads::Scope {
            tenant: &target.tenant,
            bucket: target.bucket.as_deref().unwrap_or_default(),
        };
        let (param, client_id, backend_id) = match op {
            Operation::UploadPart
            | Operation::UploadPartCopy
            | Operation::ListParts
            | Operation::CompleteMultipartUpload
            | Operation::AbortMultipartUpload => {
                let Some(client_id) = params.get("uploadId").map(str::to_string) else {
                    return Ok(None);
                };
                // (HCP: the bucket's owner too lists an upload's parts and aborts it, where
                // owners are kept: checked before sending, `owners_before`.)
                let bucket_owner_may = tenant.records_bucket.is_some();
                let use_ = match identity.principal() {
                    Principal::User(user) if op == Operation::AbortMultipartUpload => {
                        uploads::Use::Abort {
                            caller_is_admin: authorize::aborts_unattributed(
                                &user.grants,
                                &tenant.name,
                                target.bucket.as_deref(),
                            ),
                            bucket_owner_may,
                        }
                    }
                    Principal::User(_) if op == Operation::ListParts => {
                        uploads::Use::List { bucket_owner_may }
                    }
                    _ => uploads::Use::InitiatorOnly,
                };
                let caller = identity.access_key().unwrap_or_default();
                let opened = self.upload_ids.open(scope, &client_id, caller, use_)?;
                params.effects.others_upload = opened.if_bucket_owner;
                ("uploadId", client_id, opened.backend_id)
            }
            Operation::ListMultipartUploads => {
                let Some(marker) = params.get("upload-id-marker").map(str::to_string) else {
                    return Ok(None);
                };
                match self.upload_ids.backend_id(scope, &marker) {
                    Some(backend_id) => ("upload-id-marker", marker, backend_id),
                    // A marker the gateway did not issue is not sent: the backend would list
                    // the uploads whose own ids sort after it, and so answer, a listing at a
                    // time, what the ids it keeps hidden are (AWS and MinIO refuse one not of
                    // their form; RGW reads it as a place among its own names). The listing
                    // goes on after the key marker, as for a key marker alone; the answer
                    // echoes the client's marker.
                    None => {
                        *params = std::mem::take(params).without("upload-id-marker");
                        return Ok(Some(marker));
                    }
                }
            }
            _ => return Ok(None),
        };
        params.set(param, backend_id);
        Ok(Some(client_id))
    }
}

/// Rule 47: a form upload that carries an `Authorization` header (it is authenticated by its
/// form alone) — refused as credentials that fail are: the connection closes after.
fn form_with_authorization() -> HcpError {
    authorize::denied()
        .with_message("A POST object upload is authenticated by its form fields.")
        .closing()
}
