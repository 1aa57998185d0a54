//! The request path of a form upload (POST object): the form is read up to its file, the
//! credentials and policy in it are verified, the fields become an ordinary PUT object that the
//! same authorisation, validation and signing phases check, and only then is the file read and
//! sent on.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;

use super::send::{Call, Guards};
use super::{authorize, is_expect_continue, Exchange, Flow, Gateway, Overwrite};
use crate::acl;
use crate::addressing::Target;
use crate::errors::{HcpCode, HcpError};
use crate::normalize;
use crate::operation::{Operation, Query};
use crate::post_object::{self, Form};
use crate::routing::Route;
use crate::signing;
use crate::sigv4;
use crate::validation;

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

impl From<HcpError> for FormError {
    fn from(e: HcpError) -> Self {
        FormError::Refused(e)
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
}

impl Gateway {
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
        let boundary = match post_object::boundary(s.req_header()) {
            Ok(b) => b,
            Err(e) => return self.answer_early(s, x, e).await,
        };
        if is_expect_continue(s) && s.write_continue_response().await.is_err() {
            return Flow::Abort;
        }
        // Until the file starts, the body is the form's fields and their part headers, read
        // before any credential is checked: at most FIELDS_BUDGET bytes of it are read.
        let file_started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let over_budget = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let read = {
            let timeout = self.cfg.client_body_timeout;
            let (started, over) = (file_started.clone(), over_budget.clone());
            let before_file = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let body = futures_util::stream::unfold(&mut *s, move |s| {
                let (started, over, before_file) =
                    (started.clone(), over.clone(), before_file.clone());
                async move {
                    match tokio::time::timeout(timeout, s.read_request_body()).await {
                        Ok(Ok(Some(chunk))) => {
                            use std::sync::atomic::Ordering;
                            if !started.load(Ordering::Acquire)
                                && before_file.fetch_add(chunk.len(), Ordering::AcqRel)
                                    + chunk.len()
                                    > FIELDS_BUDGET
                            {
                                over.store(true, Ordering::Release);
                                return Some((
                                    Err(std::io::Error::other("form fields too large")),
                                    s,
                                ));
                            }
                            Some((Ok(chunk), s))
                        }
                        Ok(Ok(None)) => None,
                        Ok(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), s)),
                        Err(_) => {
                            Some((Err(std::io::Error::other("the client body timed out")), s))
                        }
                    }
                }
            });
            let limit = self.cfg.limits.max_post_object_bytes + FIELDS_LIMIT as u64;
            let constraints =
                multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
            let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
            self.read_form(&mut multipart, x, &target, &route, &file_started)
                .await
        };
        let mut upload = match read {
            Ok(u) => u,
            Err(FormError::Refused(e)) => return self.answer(s, x, e).await,
            Err(FormError::Client(_)) if over_budget.load(std::sync::atomic::Ordering::Acquire) => {
                return self.answer(s, x, fields_too_large()).await;
            }
            Err(FormError::Client(cause)) => {
                x.cause = Some(format!("client body: {cause}"));
                return Flow::Abort;
            }
        };
        let mut guards = Guards::default();
        let at = super::probes::At {
            target: &upload.target,
            route: &route,
        };
        match super::probes::check_overwrite(self, &upload.request, Operation::PutObject, at).await
        {
            Ok(Overwrite::Unguarded) => {}
            Ok(Overwrite::AskBackend) => {
                upload
                    .request
                    .insert_header(http::header::IF_NONE_MATCH, "*")
                    .expect("static");
                guards.overwrite_guarded = true;
            }
            Err(e) => return self.answer(s, x, e).await,
        }
        let no_params = crate::operation::Params::default();
        let call = Call {
            op: Operation::PutObject,
            params: &no_params,
            target: &upload.target,
            route: &route,
            caller: upload.caller.as_deref(),
            client_upload_id: None,
            guards,
        };

        let digest = sigv4::sha256_hex(&upload.file);
        let backend_req = signing::backend_request(
            signing::Outbound {
                op: Operation::PutObject,
                method: &upload.request.method,
                params: &crate::operation::Params::default(),
                target: &upload.target,
                headers: &upload.request.headers,
            },
            &route,
            signing::BodyPlan {
                length: Some(upload.file.len() as u64),
                framing: signing::BodyFraming::AsSent,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        );
        let Some((header, body)) = self
            .backend_exchange(backend_req, Some(&upload.file), &route)
            .await
        else {
            return self
                .backend_unreachable(s, x, "the form's object could not be stored")
                .await;
        };
        x.backend_status = Some(header.status.as_u16());
        let location = self.client_location(s, &upload.target);
        if !header.status.is_success() {
            let err = self
                .settle(x, &call, &header, Ok(body), &location)
                .err()
                .unwrap_or_else(|| HcpError::new(HcpCode::InternalError));
            return self.answer(s, x, err).await;
        }
        let etag = header
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bucket = upload.target.bucket.as_deref().unwrap_or_default();
        let done = post_object::success(&upload.form, bucket, &upload.key, &etag, &location);
        let body = done.body.map(Bytes::from).unwrap_or_default();
        let mut resp = ResponseHeader::build(done.status, Some(6)).expect("status");
        let headers = [
            ("location", done.location.as_str()),
            ("etag", etag.as_str()),
            ("content-length", &body.len().to_string()),
        ];
        for (name, value) in headers {
            if resp.insert_header(name, value).is_err() {
                return self
                    .answer(s, x, HcpError::new(HcpCode::InternalError))
                    .await;
            }
        }
        if !body.is_empty() {
            resp.insert_header(http::header::CONTENT_TYPE, "application/xml")
                .expect("static");
        }
        normalize::finish_headers(&mut resp, false, &x.request_id, &self.cfg.host_id);
        x.status = done.status;
        x.bytes_out = body.len() as u64;
        if s.write_response_header(Box::new(resp)).await.is_err()
            || s.write_response_body(body, true).await.is_err()
        {
            return Flow::Abort;
        }
        if s.is_body_done() {
            Flow::KeepAlive
        } else {
            Flow::Close
        }
    }

    /// Reads the form's fields, decides everything about the upload, then reads its file.
    async fn read_form(
        &self,
        multipart: &mut multer::Multipart<'_>,
        x: &mut Exchange,
        target: &Target,
        route: &Route<'_>,
        file_started: &std::sync::atomic::AtomicBool,
    ) -> Result<Upload, FormError> {
        let mut form = Form::default();
        // The fields before the file carry the credentials: they are bounded in size
        // (FIELDS_LIMIT) and in time (the header deadline), as a request's header section is.
        let deadline = tokio::time::Instant::now() + self.cfg.client_header_timeout;
        let too_slow = || FormError::Client("the form's fields took too long".into());
        let too_large = || FormError::Refused(fields_too_large());
        let mut fields_bytes = 0usize;
        let mut file = loop {
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
                break field;
            }
            // A field's name and the framing around it count too (fields with empty values).
            fields_bytes += name.len() + 64;
            if fields_bytes > FIELDS_LIMIT {
                return Err(too_large());
            }
            let mut value = Vec::new();
            loop {
                let chunk = tokio::time::timeout_at(deadline, field.chunk())
                    .await
                    .map_err(|_| too_slow())??;
                let Some(chunk) = chunk else { break };
                fields_bytes += chunk.len();
                if fields_bytes > FIELDS_LIMIT {
                    return Err(too_large());
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                HcpError::new(HcpCode::MalformedPOSTRequest)
                    .with_message(format!("The form field {name} is not UTF-8 text."))
            })?;
            form.fields.push((name, value));
        };

        // Everything is decided before a byte of the file is read.
        let key = post_object::object_key(&form, file.file_name())?;
        x.key = Some(key.clone());
        let identity = self.authn.authenticate_form(&form).inspect_err(|e| {
            self.metrics
                .auth_failures
                .with_label_values(&[e.code.as_str()])
                .inc();
        })?;
        x.access_key = identity.access_key().map(str::to_string);
        x.scheme = identity.scheme().name();
        let bucket = target.bucket.as_deref().unwrap_or_default();
        let range = post_object::check_policy(&form, bucket, &key, SystemTime::now())?;
        let mut raw_key = String::with_capacity(key.len());
        sigv4::uri_encode(key.as_bytes(), true, &mut raw_key);
        let object = Target {
            raw_key: Some(raw_key.clone().into_bytes()),
            ..target.clone()
        };
        let mut request =
            post_object::object_request(&form, format!("/{bucket}/{raw_key}").as_bytes(), 0)?;
        authorize(
            &identity,
            route.tenant,
            Operation::PutObject,
            &request,
            &object,
        )?;
        validation::check(
            Operation::PutObject,
            &object,
            &Query::default(),
            &request,
            &self.cfg.limits,
        )?;
        acl::translate_grants(&mut request, &self.users.load())?;

        let limit = self.cfg.limits.max_post_object_bytes;
        let mut data = BytesMut::new();
        while let Some(chunk) = file.chunk().await? {
            if (data.len() + chunk.len()) as u64 > limit {
                return Err(HcpError::new(HcpCode::EntityTooLarge)
                    .with_message(format!("A form upload may carry at most {limit} bytes."))
                    .into());
            }
            data.extend_from_slice(&chunk);
        }
        drop(file);
        if let Some(range) = range {
            range.check(data.len() as u64)?;
        }
        // Fields after the file are ignored, as S3 does; the rest of the body is read so that
        // the connection can serve the next request.
        while let Some(field) = multipart.next_field().await? {
            drop(field);
        }
        x.bytes_in = data.len() as u64;
        request
            .insert_header(http::header::CONTENT_LENGTH, data.len().to_string())
            .expect("digits");
        Ok(Upload {
            form,
            target: object,
            key,
            request,
            file: data.freeze(),
            caller: identity.access_key().map(str::to_string),
        })
    }
}
