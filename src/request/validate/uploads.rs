//! Multipart ownership without a shared store (HCP: only the initiator may upload parts, copy
//! parts, list parts, complete or abort).
//!
//! Every gateway user shares one backend account, so the backend cannot tell initiators apart.
//! The upload id a client sees therefore carries an authenticated binding to its initiator:
//!
//! ```text
//! 1.<initiator access key, base64url>.<MAC, base64url>.<backend upload id>
//! ```
//!
//! The MAC (HMAC-SHA256, 128 bits kept) covers tenant, bucket, initiator and backend id under a
//! secret all replicas share, so any replica can check an id it never issued. A listing of
//! uploads cannot learn initiators from the backend: uploads this process saw initiated are listed
//! with their bound id, others with an *unattributed* id (`0.<MAC>.<backend id>`) that only a
//! user with `admin` permission on the bucket may use, and only to abort (cleanup).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::hcp::errors::{HcpCode, HcpError};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of the MAC kept in an id.
const MAC_BYTES: usize = 16;

/// What the caller may do with an unattributed upload id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Upload, copy or list parts, or complete: the initiator only.
    InitiatorOnly,
    /// Abort: the initiator, or a bucket administrator cleaning up an unattributed upload.
    Abort { caller_is_admin: bool },
}

pub struct UploadIds {
    secret: Vec<u8>,
    /// Backend upload id → initiator's access key, for uploads initiated through this process.
    initiators: moka::sync::Cache<String, String>,
}

/// Where an upload lives, as far as the binding is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub bucket: &'a str,
}

impl UploadIds {
    pub fn new(secret: &[u8]) -> UploadIds {
        UploadIds {
            secret: secret.to_vec(),
            initiators: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(7 * 24 * 3600))
                .build(),
        }
    }

    fn mac(&self, scope: Scope<'_>, initiator: &str, backend_id: &str) -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret).expect("any length");
        for part in [
            "hcp-s3-gateway upload binding",
            scope.tenant,
            scope.bucket,
            initiator,
            backend_id,
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac.finalize().into_bytes().into()
    }

    fn encoded_mac(&self, scope: Scope<'_>, initiator: &str, backend_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(&self.mac(scope, initiator, backend_id)[..MAC_BYTES])
    }

    fn verifies(&self, scope: Scope<'_>, initiator: &str, backend_id: &str, given: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(given) else {
            return false;
        };
        let expected = self.mac(scope, initiator, backend_id);
        given.len() == MAC_BYTES && bool::from(given.ct_eq(&expected[..MAC_BYTES]))
    }

    /// The id the initiator receives for a new upload.
    pub fn issue(&self, scope: Scope<'_>, initiator: &str, backend_id: &str) -> String {
        self.initiators
            .insert(backend_id.to_string(), initiator.to_string());
        self.bound(scope, initiator, backend_id)
    }

    fn bound(&self, scope: Scope<'_>, initiator: &str, backend_id: &str) -> String {
        format!(
            "1.{}.{}.{backend_id}",
            URL_SAFE_NO_PAD.encode(initiator),
            self.encoded_mac(scope, initiator, backend_id)
        )
    }

    /// The id shown for an upload in a listing: bound when this process knows its initiator.
    pub fn listed(&self, scope: Scope<'_>, backend_id: &str) -> String {
        match self.initiators.get(backend_id) {
            Some(initiator) => self.bound(scope, &initiator, backend_id),
            None => format!("0.{}.{backend_id}", self.encoded_mac(scope, "", backend_id)),
        }
    }

    /// Checks a client's upload id for the caller and gives the backend's id.
    /// Unknown or forged ids are 404 `NoSuchUpload`; someone else's upload is 403 `AccessDenied`.
    pub fn open(
        &self,
        scope: Scope<'_>,
        client_id: &str,
        caller: &str,
        use_: Use,
    ) -> Result<String, HcpError> {
        let Some(decoded) = self.decode(scope, client_id) else {
            return Err(HcpError::new(HcpCode::NoSuchUpload));
        };
        let allowed = match &decoded.initiator {
            Some(initiator) => initiator == caller,
            None => {
                use_ == Use::Abort {
                    caller_is_admin: true,
                }
            }
        };
        if !allowed {
            return Err(HcpError::new(HcpCode::AccessDenied).with_message(
                "The credentials provided with the request do not match the credentials used to initiate the multipart upload.",
            ));
        }
        Ok(decoded.backend_id)
    }

    /// The backend id behind any verified form of an id (a listing's `upload-id-marker`).
    pub fn backend_id(&self, scope: Scope<'_>, client_id: &str) -> Option<String> {
        self.decode(scope, client_id).map(|d| d.backend_id)
    }

    fn decode(&self, scope: Scope<'_>, client_id: &str) -> Option<Decoded> {
        let (form, rest) = client_id.split_once('.')?;
        match form {
            "1" => {
                let (initiator, rest) = rest.split_once('.')?;
                let (mac, backend_id) = rest.split_once('.')?;
                let initiator = String::from_utf8(URL_SAFE_NO_PAD.decode(initiator).ok()?).ok()?;
                self.verifies(scope, &initiator, backend_id, mac)
                    .then(|| Decoded {
                        initiator: Some(initiator),
                        backend_id: backend_id.to_string(),
                    })
            }
            "0" => {
                let (mac, backend_id) = rest.split_once('.')?;
                self.verifies(scope, "", backend_id, mac).then(|| Decoded {
                    initiator: None,
                    backend_id: backend_id.to_string(),
                })
            }
            _ => None,
        }
    }
}

struct Decoded {
    initiator: Option<String>,
    backend_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = Scope {
        tenant: "t",
        bucket: "b",
    };

    #[test]
    fn the_initiator_opens_its_upload_and_nobody_else_does() {
        let ids = UploadIds::new(b"secret");
        let id = ids.issue(SCOPE, "alice", "2~abc.def");
        assert_eq!(
            ids.open(SCOPE, &id, "alice", Use::InitiatorOnly).unwrap(),
            "2~abc.def"
        );
        let err = ids.open(SCOPE, &id, "bob", Use::InitiatorOnly).unwrap_err();
        assert_eq!(err.code, HcpCode::AccessDenied);
        let err = ids
            .open(
                SCOPE,
                &id,
                "bob",
                Use::Abort {
                    caller_is_admin: true,
                },
            )
            .unwrap_err();
        assert_eq!(err.code, HcpCode::AccessDenied);
    }

    #[test]
    fn another_replica_with_the_same_secret_checks_the_binding() {
        let id = UploadIds::new(b"secret").issue(SCOPE, "alice", "u1");
        let replica = UploadIds::new(b"secret");
        assert_eq!(
            replica
                .open(SCOPE, &id, "alice", Use::InitiatorOnly)
                .unwrap(),
            "u1"
        );
        let stranger = UploadIds::new(b"other secret");
        let err = stranger
            .open(SCOPE, &id, "alice", Use::InitiatorOnly)
            .unwrap_err();
        assert_eq!(err.code, HcpCode::NoSuchUpload);
    }

    #[test]
    fn forged_moved_and_foreign_ids_are_unknown_uploads() {
        let ids = UploadIds::new(b"secret");
        let id = ids.issue(SCOPE, "alice", "u1");
        // The initiator swapped for the caller's own name.
        let forged = id.replacen(
            &URL_SAFE_NO_PAD.encode("alice"),
            &URL_SAFE_NO_PAD.encode("bob"),
            1,
        );
        let other_bucket = Scope {
            tenant: "t",
            bucket: "c",
        };
        for (scope, given) in [
            (SCOPE, forged.as_str()),
            (SCOPE, "u1"),
            (SCOPE, "1.x.y.u1"),
            (SCOPE, ""),
            (other_bucket, id.as_str()),
            (SCOPE, &format!("{id}x")),
        ] {
            let err = ids
                .open(scope, given, "bob", Use::InitiatorOnly)
                .unwrap_err();
            assert_eq!(err.code, HcpCode::NoSuchUpload, "{given}");
        }
    }

    #[test]
    fn listings_show_known_initiators_and_unattributed_ids_only_admins_abort() {
        let ids = UploadIds::new(b"secret");
        let issued = ids.issue(SCOPE, "alice", "u1");
        assert_eq!(ids.listed(SCOPE, "u1"), issued);
        let replica = UploadIds::new(b"secret");
        let unattributed = replica.listed(SCOPE, "u1");
        assert!(unattributed.starts_with("0."));
        assert_eq!(replica.backend_id(SCOPE, &unattributed).unwrap(), "u1");
        for use_ in [
            Use::InitiatorOnly,
            Use::Abort {
                caller_is_admin: false,
            },
        ] {
            let err = replica
                .open(SCOPE, &unattributed, "alice", use_)
                .unwrap_err();
            assert_eq!(err.code, HcpCode::AccessDenied);
        }
        let admin = Use::Abort {
            caller_is_admin: true,
        };
        assert_eq!(
            replica.open(SCOPE, &unattributed, "root", admin).unwrap(),
            "u1"
        );
    }
}
