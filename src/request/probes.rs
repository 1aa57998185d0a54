//! The checks that need the backend's state, made with the gateway's own small requests
//! (`backend_call`, built like every backend request from an operation and its parameters):
//! overwrite protection, part sizes, part-copy sources, re-created buckets, the backend
//! account's id.

use super::*;

/// How a write that must not replace an object is protected.
pub(super) enum Overwrite {
    /// Nothing to protect, or the gateway already checked.
    Unguarded,
    /// The backend refuses atomically: the gateway adds `If-None-Match: *`.
    AskBackend,
}

impl Gateway {
    /// AWS in us-east-1 (and what speaks its dialect there) answers CreateBucket on a bucket its
    /// caller owns with a plain 200.
    pub(super) fn recreates_silently(&self, route: &Route<'_>) -> bool {
        route.backend.dialect == crate::mapping::Dialect::Aws && route.backend.region == "us-east-1"
    }

    /// AWS in us-east-1 answers a re-created own bucket 200 and resets its ACL: the gateway asks
    /// first and answers HCP's BucketAlreadyOwnedByYou without re-creating it.
    pub(super) async fn check_recreate(&self, call: &Call<'_>) -> Result<(), HcpError> {
        if !self.recreates_silently(call.route) {
            return Ok(());
        }
        let head = self
            .backend_call(
                Operation::HeadBucket,
                Params::default(),
                call.target,
                call.route,
            )
            .await;
        match head {
            Some((h, _)) if h.status == 200 => {
                let bucket = call.target.bucket.as_deref().unwrap_or_default();
                Err(HcpError::new(HcpCode::BucketAlreadyOwnedByYou).with_bucket(bucket))
            }
            Some((h, _)) if h.status == 403 => Err(HcpError::new(HcpCode::BucketAlreadyExists)),
            _ => Ok(()),
        }
    }

    /// Writes that must not replace an existing object: HCP's rule 41 on tenants with
    /// `overwrite = "refuse-unversioned"` (409 when the name exists as an object or a folder and
    /// the bucket is not versioned), and `If-None-Match: *` for backends without conditional
    /// writes (412). A backend with conditional writes refuses an existing object atomically;
    /// otherwise a HEAD checks first, and a writer racing between check and write is not caught.
    pub(super) async fn check_overwrite(
        &self,
        req: &pingora::http::RequestHeader,
        op: Operation,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<Overwrite, HcpError> {
        if !matches!(
            op,
            Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
        ) {
            return Ok(Overwrite::Unguarded);
        }
        let client_create_only = req
            .headers
            .get(http::header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"*");
        let create_only = client_create_only && !route.backend.conditional_writes;
        let bucket = Target {
            raw_key: None,
            ..target.clone()
        };
        let refuse = route.tenant.overwrite == crate::config::Overwrite::RefuseUnversioned
            && !matches!(
                self.backend_call(Operation::GetBucketVersioning, Params::default().with("versioning", ""), &bucket, route).await,
                Some((h, body)) if h.status == 200
                    && String::from_utf8_lossy(&body).contains("<Status>Enabled</Status>")
            );
        if !create_only && !refuse {
            return Ok(Overwrite::Unguarded);
        }
        // With conditional writes the backend checks the object itself; a client's own
        // If-None-Match then stays the client's (412).
        let ask_backend = refuse && route.backend.conditional_writes && !client_create_only;
        let exists = !ask_backend
            && matches!(
                self.backend_call(Operation::HeadObject, Params::default(), target, route).await,
                Some((h, _)) if h.status == 200
            );
        // The client's own precondition comes first, as HTTP evaluates preconditions.
        if client_create_only && exists {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        if !refuse {
            return Ok(Overwrite::Unguarded);
        }
        let folder_exists = !exists && {
            let mut folder = target.key().unwrap_or_default();
            folder.push(b'/');
            let listing = Params::default()
                .with("list-type", "2")
                .with("max-keys", "1")
                .with("prefix", String::from_utf8_lossy(&folder));
            matches!(
                self.backend_call(Operation::ListObjectsV2, listing, &bucket, route).await,
                Some((h, body)) if h.status == 200 && normalize::has_element(&body, b"Contents")
            )
        };
        if exists || folder_exists {
            return Err(name_exists());
        }
        Ok(if ask_backend {
            Overwrite::AskBackend
        } else {
            Overwrite::Unguarded
        })
    }

    /// HCP's complete rules (docs/validation.md 29, 30, 32): a well-formed, ascending part list,
    /// and every part but the last at least HCP's and the backend's minimum size.
    pub(super) async fn check_complete(
        &self,
        body: &[u8],
        upload_id: &str,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<(), HcpError> {
        let parts = complete::parse(body)?;
        complete::check_order(&parts)?;
        let hcp_minimum = self.cfg.limits.min_part_bytes;
        if hcp_minimum == 0 && route.backend.min_part_bytes == 0 {
            return Ok(());
        }
        let sizes = self.part_sizes(upload_id, target, route).await;
        complete::check_sizes(
            &parts,
            |n| sizes.get(&n).copied(),
            hcp_minimum,
            route.backend.min_part_bytes,
        )
    }

    /// The sizes of an upload's parts, from ListParts at the backend. A failed listing gives what
    /// was read so far: the backend's answer to the complete itself then decides.
    pub(super) async fn part_sizes(
        &self,
        upload_id: &str,
        target: &Target,
        route: &Route<'_>,
    ) -> HashMap<u32, u64> {
        let mut sizes = HashMap::new();
        let mut marker: Option<String> = None;
        for _ in 0..20 {
            let mut query = Params::default()
                .with("uploadId", upload_id)
                .with("max-parts", "1000");
            if let Some(m) = &marker {
                query.set("part-number-marker", m.as_str());
            }
            let Some((header, body)) = self
                .backend_call(Operation::ListParts, query, target, route)
                .await
            else {
                break;
            };
            if header.status != 200 {
                break;
            }
            let Some((page, next)) = complete::parse_list_parts(&body) else {
                break;
            };
            sizes.extend(page);
            match next {
                Some(n) => marker = Some(n),
                None => break,
            }
        }
        sizes
    }

    /// A small request of the gateway's own to the backend (listing parts, the size of a copy
    /// source): status and whole body, or `None` if the backend could not be reached.
    pub(super) async fn backend_call(
        &self,
        op: Operation,
        params: Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let method = match op {
            Operation::HeadBucket | Operation::HeadObject => http::Method::HEAD,
            _ => http::Method::GET,
        };
        let headers = http::HeaderMap::new();
        let req = signing::backend_request(
            signing::Outbound {
                op,
                method: &method,
                params: &params,
                target,
                headers: &headers,
            },
            route,
            signing::BodyPlan::NONE,
            SystemTime::now(),
            &self.signing_keys,
        );
        self.backend_exchange(req, None, route).await
    }

    /// Sends a signed request with a small body held in memory; status and whole answer.
    pub(super) async fn backend_exchange(
        &self,
        req: pingora::http::RequestHeader,
        body: Option<&[u8]>,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let head = req.method == http::Method::HEAD;
        let mut up = self.forwarder.connect(route.backend).await.ok()?;
        self.count_connection(route.backend, up.reused);
        self.metrics
            .backend_requests
            .with_label_values(&[&route.backend.name])
            .inc();
        up.session.write_request_header(Box::new(req)).await.ok()?;
        if let Some(body) = body {
            up.session.write_body(body).await.ok()?;
        }
        up.session.finish_body().await.ok()?;
        up.session.read_response().await.ok()?;
        let header = up.session.resp_header()?.clone();
        let body = if head {
            Vec::new()
        } else {
            forward::read_whole_body(&mut up.session, self.cfg.max_buffered_response_bytes)
                .await
                .ok()?
        };
        if up.session.is_body_done() {
            self.forwarder.release(up).await;
        }
        Some((header, body))
    }

    /// Seed 000's UploadPartCopy rules that need backend state: the upload must exist before the
    /// copy (so that its disappearance during the copy can be told apart, 409), the range must
    /// start inside the source, and the copy-source conditions must hold (412). The source is
    /// read with one HEAD, cached briefly.
    pub(super) async fn check_part_copy(
        &self,
        req: &pingora::http::RequestHeader,
        params: &Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Result<(), HcpError> {
        let upload_id = params.get("uploadId").unwrap_or_default();
        let query = Params::default()
            .with("uploadId", upload_id)
            .with("max-parts", "1");
        if let Some((header, _)) = self
            .backend_call(Operation::ListParts, query, target, route)
            .await
        {
            if header.status == 404 {
                return Err(HcpError::new(HcpCode::NoSuchUpload));
            }
        }
        let range_start = req
            .headers
            .get("x-amz-copy-source-range")
            .and_then(|v| v.to_str().ok())
            .and_then(validation::copy_range)
            .map(|(first, _)| first);
        let conditional = req
            .headers
            .keys()
            .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
        let Some(source) = req
            .headers
            .get("x-amz-copy-source")
            .filter(|_| range_start.is_some() || conditional)
        else {
            return Ok(());
        };
        let Some(source) = signing::CopySource::parse(source.as_bytes()) else {
            return Ok(());
        };
        let mut raw_key = String::new();
        sigv4::uri_encode(&source.key, true, &mut raw_key);
        let source_target = Target {
            tenant: target.tenant.clone(),
            bucket: Some(source.bucket.clone()),
            raw_key: Some(raw_key.into_bytes()),
            virtual_host: false,
        };
        let mut head_params = Params::default();
        if let Some(v) = &source.version_id {
            head_params.set("versionId", v.as_str());
        }
        // Keyed by the backend's bucket name: tenants may use the same client names.
        let cache_key = format!(
            "{}\n{}\n{:?}\n{:?}",
            route.backend.name,
            routing::backend_bucket_name(route.tenant, &source.bucket),
            source_target.raw_key,
            source.version_id
        );
        let cached = self.source_heads.get(&cache_key);
        self.metrics
            .cache_lookup("copy_source_head", cached.is_some());
        let head = match cached {
            Some(head) => head,
            None => {
                let mut source_route =
                    routing::route(route.tenant, Some(route.backend), &source_target)?;
                source_route.credentials = route.credentials.clone();
                match self
                    .backend_call(
                        Operation::HeadObject,
                        head_params,
                        &source_target,
                        &source_route,
                    )
                    .await
                {
                    Some((header, _)) if header.status == 200 => {
                        let head = Arc::new(header);
                        self.source_heads.insert(cache_key, head.clone());
                        head
                    }
                    // A missing or unreadable source is the backend's to answer.
                    _ => return Ok(()),
                }
            }
        };
        if conditional
            && normalize::precondition_with(req, "x-amz-copy-source-", &head)
                != normalize::Precondition::Holds
        {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        let size = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(first), Some(size)) = (range_start, size) {
            if first >= size {
                return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                    "The copy range starts at or beyond the end of the source object.",
                ));
            }
        }
        Ok(())
    }

    /// The backend account's canonical id (the owner of everything the gateway stores there),
    /// for ACL documents that name the tenant's id. Read once per backend from a bucket ACL.
    pub(super) async fn backend_owner(&self, target: &Target, route: &Route<'_>) -> Option<String> {
        if let Some(id) = self.backend_owners.get(&route.backend.name) {
            return Some(id);
        }
        let bucket = Target {
            raw_key: None,
            ..target.clone()
        };
        let params = Params::default().with("acl", "");
        let (header, body) = self
            .backend_call(Operation::GetBucketAcl, params, &bucket, route)
            .await?;
        let id = acl::owner_id(&body).filter(|_| header.status == 200)?;
        self.backend_owners
            .insert(route.backend.name.clone(), id.clone());
        Some(id)
    }
}
