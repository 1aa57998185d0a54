//! Multipart ownership without a shared store (HCP: only the initiator may upload parts, copy
//! parts, list parts, complete or abort).
//!
//! Every gateway user shares one backend account, so the backend cannot tell initiators apart.
//! The upload id a client sees therefore carries its initiator and the backend's id, sealed:
//!
//! ```text
//! 3.<base64url(nonce ‖ AES-256-GCM-SIV(flag ‖ initiator's length ‖ initiator ‖
//!                                     backend id's length ‖ backend id ‖ zeros))>
//! ```
//!
//! padded with zeros to a multiple of [`PADDED_TO`] bytes, so that an id's length tells neither
//! the backend (whose ids' lengths differ: RGW's 34 bytes, the store's 48, AWS's and MinIO's
//! many more) nor the length of another user's access key.
//!
//! sealed under a key derived from a secret all replicas share, with tenant and bucket (its
//! name in lower case: HCP's bucket names are not case-sensitive) as associated data, so any
//! replica can open an id it never issued, an id moved to another bucket or changed in any
//! byte opens nowhere, and no client reads in an id the backend's own upload id (whose form
//! names the backend) or another user's access key. The nonce is derived from what is sealed,
//! so an upload is listed under the id its initiator was given. A listing of uploads cannot
//! learn initiators from the backend: uploads this process saw initiated are listed with their
//! bound id, others with an *unattributed* one that only a user with `admin` permission on the
//! bucket may use, and only to abort (cleanup). Ids of the earlier forms (`2.` unpadded,
//! `1.<initiator>.<MAC>.<backend id>`, `0.<MAC>.<backend id>`), issued before, are still
//! opened.

use aes_gcm_siv::aead::{Aead, KeyInit as _, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::hcp::errors::{HcpCode, HcpError};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of the MAC kept in an id of the earlier form.
const MAC_BYTES: usize = 16;

/// Bytes of an id's nonce.
const NONCE_BYTES: usize = 12;

/// What the caller would do with an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Upload or copy parts, or complete: the initiator only.
    InitiatorOnly,
    /// List parts: the initiator, or (HCP) the bucket's owner where owners are kept.
    List { bucket_owner_may: bool },
    /// Abort: the initiator, the bucket's owner where owners are kept, or a bucket
    /// administrator cleaning up an unattributed upload.
    Abort {
        caller_is_admin: bool,
        bucket_owner_may: bool,
    },
}

/// An upload id opened for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub backend_id: String,
    /// Opened for someone other than its initiator, as only the bucket's owner may: the
    /// initiator's access key (`None`: the id names none), for the owner to be checked before
    /// anything is sent.
    pub if_bucket_owner: Option<Option<String>>,
}

/// HCP's 403 for an upload used by someone who may not (`or_owner`: a use the bucket's owner
/// may make — listing parts, aborting — as HCP's reason says).
pub fn not_initiator(or_owner: bool) -> HcpError {
    HcpError::new(HcpCode::AccessDenied).with_message(if or_owner {
        "The credentials provided with the request do not match the credentials used to initiate the multipart upload or the credentials for the owner of the bucket."
    } else {
        "The credentials provided with the request do not match the credentials used to initiate the multipart upload."
    })
}

pub struct UploadIds {
    secret: Vec<u8>,
    cipher: Aes256GcmSiv,
    /// Backend upload id → initiator's access key, for uploads initiated through this process.
    initiators: moka::sync::Cache<String, String>,
}

/// Where an upload lives, as far as the binding is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub bucket: &'a str,
}

/// The sealed part of an id is padded to a multiple of this many bytes.
const PADDED_TO: usize = 256;

impl UploadIds {
    pub fn new(secret: &[u8]) -> UploadIds {
        let key = derived(secret, "hcp-s3-gateway upload id key");
        UploadIds {
            secret: secret.to_vec(),
            cipher: Aes256GcmSiv::new_from_slice(&key).expect("a 256-bit key"),
            initiators: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(7 * 24 * 3600))
                .build(),
        }
    }

    /// An id sealing the initiator (`None`: unattributed) and the backend's id.
    fn sealed(&self, scope: Scope<'_>, initiator: Option<&str>, backend_id: &str) -> String {
        let length = 9 + initiator.map_or(0, str::len) + backend_id.len();
        let mut plain = Vec::with_capacity(length.next_multiple_of(PADDED_TO));
        plain.push(u8::from(initiator.is_some()));
        for part in [initiator.unwrap_or_default(), backend_id] {
            let length = u32::try_from(part.len()).expect("ids and keys are short");
            plain.extend_from_slice(&length.to_be_bytes());
            plain.extend_from_slice(part.as_bytes());
        }
        plain.resize(length.next_multiple_of(PADDED_TO), 0);
        let aad = associated(scope);
        let mut nonce_mac = hmac_of(&self.secret, "hcp-s3-gateway upload id nonce");
        nonce_mac.update(&aad);
        nonce_mac.update(&plain);
        let nonce: [u8; 32] = nonce_mac.finalize().into_bytes().into();
        let nonce = Nonce::from_slice(&nonce[..NONCE_BYTES]);
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .expect("sealing cannot fail");
        let mut id = nonce.to_vec();
        id.extend_from_slice(&sealed);
        format!("3.{}", URL_SAFE_NO_PAD.encode(id))
    }

    /// What an id of the current form (`padded`) or the one before seals, if it opens in
    /// `scope`.
    fn unsealed(&self, scope: Scope<'_>, sealed: &str, padded: bool) -> Option<Decoded> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let aad = associated(scope);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()?;
        let (&flag, rest) = plain.split_first()?;
        let (length, rest) = rest.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
        let initiator = String::from_utf8(rest.get(..length)?.to_vec()).ok()?;
        let rest = rest.get(length..)?;
        let backend_id = match padded {
            true => {
                let (length, rest) = rest.split_first_chunk::<4>()?;
                let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
                rest.get(..length)?
            }
            false => rest,
        };
        let backend_id = String::from_utf8(backend_id.to_vec()).ok()?;
        Some(Decoded {
            initiator: (flag == 1).then_some(initiator),
            backend_id,
        })
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
        self.sealed(scope, Some(initiator), backend_id)
    }

    /// The initiator (access key) of the backend's upload `backend_id`, where this process
    /// knows it.
    pub fn initiator(&self, backend_id: &str) -> Option<String> {
        self.initiators.get(backend_id)
    }

    /// The id shown for an upload in a listing: bound when this process knows its initiator.
    pub fn listed(&self, scope: Scope<'_>, backend_id: &str) -> String {
        let initiator = self.initiators.get(backend_id);
        self.sealed(scope, initiator.as_deref(), backend_id)
    }

    /// Checks a client's upload id for the caller and gives the backend's id. Unknown or
    /// forged ids are 404 `NoSuchUpload`; someone else's upload is 403 `AccessDenied`, or
    /// (listing parts, aborting) opened on condition that the caller owns the bucket.
    pub fn open(
        &self,
        scope: Scope<'_>,
        client_id: &str,
        caller: &str,
        use_: Use,
    ) -> Result<Opened, HcpError> {
        let Some(decoded) = self.decode(scope, client_id) else {
            return Err(HcpError::new(HcpCode::NoSuchUpload));
        };
        let opened = |if_bucket_owner| Opened {
            backend_id: decoded.backend_id.clone(),
            if_bucket_owner,
        };
        let bucket_owner_may = match use_ {
            Use::InitiatorOnly => false,
            Use::List { bucket_owner_may }
            | Use::Abort {
                bucket_owner_may, ..
            } => bucket_owner_may,
        };
        match &decoded.initiator {
            Some(initiator) if initiator == caller => Ok(opened(None)),
            None if matches!(
                use_,
                Use::Abort {
                    caller_is_admin: true,
                    ..
                }
            ) =>
            {
                Ok(opened(None))
            }
            initiator if bucket_owner_may => Ok(opened(Some(initiator.clone()))),
            _ => Err(not_initiator(use_ != Use::InitiatorOnly)),
        }
    }

    /// The backend id behind any verified form of an id (a listing's `upload-id-marker`).
    pub fn backend_id(&self, scope: Scope<'_>, client_id: &str) -> Option<String> {
        self.decode(scope, client_id).map(|d| d.backend_id)
    }

    fn decode(&self, scope: Scope<'_>, client_id: &str) -> Option<Decoded> {
        let (form, rest) = client_id.split_once('.')?;
        match form {
            "3" => self.unsealed(scope, rest, true),
            "2" => self.unsealed(scope, rest, false),
            "1" => {
                let (initiator, rest) = rest.split_once('.')?;
                let (mac, backend_id) = rest.split_once('.')?;
                let initiator = String::from_utf8(URL_SAFE_NO_PAD.decode(initiator).ok()?).ok()?;
                // (No initiator is no one's: `0.`'s MAC is the one an empty initiator would
                // have, and an anonymous caller's key is empty.)
                if initiator.is_empty() {
                    return None;
                }
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

/// An id's associated data: where the upload lives (a bucket's name in any case).
fn associated(scope: Scope<'_>) -> Vec<u8> {
    let mut aad = b"hcp-s3-gateway upload id\0".to_vec();
    aad.extend_from_slice(scope.tenant.as_bytes());
    aad.push(0);
    aad.extend(scope.bucket.bytes().map(|b| b.to_ascii_lowercase()));
    aad
}

fn hmac_of(secret: &[u8], purpose: &str) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("any length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac
}

/// A key for one purpose, derived from the binding secret.
fn derived(secret: &[u8], purpose: &str) -> [u8; 32] {
    hmac_of(secret, purpose).finalize().into_bytes().into()
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
            ids.open(SCOPE, &id, "alice", Use::InitiatorOnly)
                .unwrap()
                .backend_id,
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
                    bucket_owner_may: false,
                },
            )
            .unwrap_err();
        assert_eq!(err.code, HcpCode::AccessDenied);
    }

    /// Where owners are kept, another user's upload is opened for listing its parts or aborting
    /// it on condition that the caller owns the bucket; never for its parts or its completion.
    #[test]
    fn the_bucket_s_owner_may_list_and_abort_another_s_upload() {
        let ids = UploadIds::new(b"secret");
        let id = ids.issue(SCOPE, "alice", "u1");
        let unattributed = UploadIds::new(b"secret").listed(SCOPE, "u1");
        let list = Use::List {
            bucket_owner_may: true,
        };
        let abort = Use::Abort {
            caller_is_admin: false,
            bucket_owner_may: true,
        };
        for use_ in [list, abort] {
            let opened = ids.open(SCOPE, &id, "owner", use_).unwrap();
            assert_eq!(opened.if_bucket_owner, Some(Some("alice".to_string())));
            let opened = UploadIds::new(b"secret")
                .open(SCOPE, &unattributed, "owner", use_)
                .unwrap();
            assert_eq!(opened.if_bucket_owner, Some(None));
            // The initiator itself needs no owner.
            let own = ids.open(SCOPE, &id, "alice", use_).unwrap();
            assert_eq!((own.backend_id.as_str(), own.if_bucket_owner), ("u1", None));
        }
        let not_kept = Use::List {
            bucket_owner_may: false,
        };
        for use_ in [Use::InitiatorOnly, not_kept] {
            let err = ids.open(SCOPE, &id, "owner", use_).unwrap_err();
            assert_eq!(err.code, HcpCode::AccessDenied);
        }
    }

    #[test]
    fn another_replica_with_the_same_secret_checks_the_binding() {
        let id = UploadIds::new(b"secret").issue(SCOPE, "alice", "u1");
        let replica = UploadIds::new(b"secret");
        assert_eq!(
            replica
                .open(SCOPE, &id, "alice", Use::InitiatorOnly)
                .unwrap()
                .backend_id,
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
        // Any byte of the sealed id changed.
        let mut forged = id.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
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

    /// An id names neither the backend's upload id (whose form names the backend) nor its
    /// initiator's access key; it opens under its bucket's name in any case, and ids of the
    /// earlier form, issued before, still open.
    #[test]
    fn an_id_s_length_names_neither_backend_nor_initiator() {
        let ids = UploadIds::new(b"secret");
        let rgw = format!("2~{}", "r".repeat(32));
        let (store, aws) = ("s".repeat(48), "a".repeat(160));
        let forty = "k".repeat(40);
        let lengths: std::collections::BTreeSet<usize> = [rgw.as_str(), &store, &aws]
            .iter()
            .flat_map(|backend| {
                let ids = &ids;
                ["a", forty.as_str()]
                    .map(move |who| ids.issue(SCOPE, who, backend).len())
                    .into_iter()
                    .chain([ids.listed(SCOPE, backend).len()])
            })
            .collect();
        assert_eq!(lengths.len(), 1, "{lengths:?}");
        // (And each opens to what it sealed.)
        let id = ids.issue(SCOPE, &forty, &aws);
        let opened = ids.open(SCOPE, &id, &forty, Use::InitiatorOnly).unwrap();
        assert_eq!(opened.backend_id, aws);
    }

    /// An id of the unpadded form issued before (`2.`) still opens.
    #[test]
    fn the_unpadded_form_still_opens() {
        let ids = UploadIds::new(b"secret");
        let mut plain = vec![1u8];
        plain.extend_from_slice(&5u32.to_be_bytes());
        plain.extend_from_slice(b"alice");
        plain.extend_from_slice(b"2~backend");
        let nonce = [7u8; NONCE_BYTES];
        let aad = associated(SCOPE);
        let payload = Payload {
            msg: &plain,
            aad: &aad,
        };
        let sealed = ids
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap();
        let id = format!(
            "2.{}",
            URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat())
        );
        let opened = ids.open(SCOPE, &id, "alice", Use::InitiatorOnly).unwrap();
        assert_eq!(opened.backend_id, "2~backend");
    }

    #[test]
    fn ids_are_sealed_and_open_under_the_bucket_in_any_case() {
        let ids = UploadIds::new(b"secret");
        let backend_id = "2~rgw-upload-id";
        let id = ids.issue(SCOPE, "alice", backend_id);
        assert!(id.starts_with("3."), "{id}");
        for hidden in [backend_id, "rgw", "alice", &URL_SAFE_NO_PAD.encode("alice")] {
            assert!(!id.contains(hidden), "{id} shows {hidden}");
        }
        let upper = Scope {
            tenant: "t",
            bucket: "B",
        };
        assert_eq!(
            ids.open(upper, &id, "alice", Use::InitiatorOnly)
                .unwrap()
                .backend_id,
            backend_id
        );
        let other_tenant = Scope {
            tenant: "u",
            bucket: "b",
        };
        let err = ids
            .open(other_tenant, &id, "alice", Use::InitiatorOnly)
            .unwrap_err();
        assert_eq!(err.code, HcpCode::NoSuchUpload);
        let earlier = format!(
            "1.{}.{}.u0",
            URL_SAFE_NO_PAD.encode("alice"),
            URL_SAFE_NO_PAD.encode(&ids.mac(SCOPE, "alice", "u0")[..MAC_BYTES])
        );
        assert_eq!(
            ids.open(SCOPE, &earlier, "alice", Use::InitiatorOnly)
                .unwrap()
                .backend_id,
            "u0"
        );
        let err = ids
            .open(SCOPE, &earlier, "bob", Use::InitiatorOnly)
            .unwrap_err();
        assert_eq!(err.code, HcpCode::AccessDenied);
        // An earlier unattributed id respelled as bound to no one (an anonymous caller's
        // empty key) opens nothing.
        let mac = URL_SAFE_NO_PAD.encode(&ids.mac(SCOPE, "", "u0")[..MAC_BYTES]);
        let unattributed = format!("0.{mac}.u0");
        assert_eq!(ids.backend_id(SCOPE, &unattributed).as_deref(), Some("u0"));
        let respelled = format!("1..{mac}.u0");
        let err = ids
            .open(SCOPE, &respelled, "", Use::InitiatorOnly)
            .unwrap_err();
        assert_eq!(err.code, HcpCode::NoSuchUpload);
    }

    /// The oracle: every id opens, for its initiator, in its tenant and bucket only, to its
    /// backend id; an id with any one character changed opens nowhere.
    #[test]
    fn an_id_opens_only_as_issued() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261205);
        let ids = UploadIds::new(b"secret");
        let alphabet: Vec<char> = "aZ09.~_-/=+é".chars().collect();
        let text = |rng: &mut rand::rngs::StdRng, max: usize| -> String {
            (0..rng.gen_range(0..max))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        let encoding: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec();
        for _ in 0..2000 {
            let (initiator, backend_id) = (text(&mut rng, 40), text(&mut rng, 120));
            let (tenant, bucket) = (text(&mut rng, 6), text(&mut rng, 6));
            let scope = Scope {
                tenant: &tenant,
                bucket: &bucket,
            };
            let id = ids.issue(scope, &initiator, &backend_id);
            let opened = ids.open(scope, &id, &initiator, Use::InitiatorOnly);
            assert_eq!(opened.unwrap().backend_id, backend_id);
            assert!(backend_id.len() <= 3 || !id.contains(&backend_id), "{id}");
            let elsewhere = format!("{bucket}x");
            let moved = Scope {
                tenant: &tenant,
                bucket: &elsewhere,
            };
            let err = ids.open(moved, &id, &initiator, Use::InitiatorOnly);
            assert_eq!(err.unwrap_err().code, HcpCode::NoSuchUpload);
            let mut changed = id.clone().into_bytes();
            let at = rng.gen_range(2..changed.len());
            let was = changed[at];
            changed[at] = *encoding.iter().find(|&&c| c != was).unwrap();
            let changed = String::from_utf8(changed).unwrap();
            let err = ids.open(scope, &changed, &initiator, Use::InitiatorOnly);
            assert_eq!(err.unwrap_err().code, HcpCode::NoSuchUpload, "{changed}");
        }
    }

    #[test]
    fn listings_show_known_initiators_and_unattributed_ids_only_admins_abort() {
        let ids = UploadIds::new(b"secret");
        let issued = ids.issue(SCOPE, "alice", "u1");
        assert_eq!(ids.listed(SCOPE, "u1"), issued);
        let replica = UploadIds::new(b"secret");
        let unattributed = replica.listed(SCOPE, "u1");
        assert_ne!(unattributed, issued);
        assert_eq!(replica.backend_id(SCOPE, &unattributed).unwrap(), "u1");
        for use_ in [
            Use::InitiatorOnly,
            Use::Abort {
                caller_is_admin: false,
                bucket_owner_may: false,
            },
        ] {
            let err = replica
                .open(SCOPE, &unattributed, "alice", use_)
                .unwrap_err();
            assert_eq!(err.code, HcpCode::AccessDenied);
        }
        let admin = Use::Abort {
            caller_is_admin: true,
            bucket_owner_may: false,
        };
        assert_eq!(
            replica
                .open(SCOPE, &unattributed, "root", admin)
                .unwrap()
                .backend_id,
            "u1"
        );
    }
}
