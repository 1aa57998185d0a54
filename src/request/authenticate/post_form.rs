//! Credentials of a browser-form upload (POST object). They are form fields, and what is signed
//! is the Base64 policy document itself: SigV4 signs it with the derived key (hex HMAC-SHA256),
//! SigV2 with the secret (Base64 HMAC-SHA1). A form with neither, and no policy, is anonymous.

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{sigv2, sigv4_header, AuthScheme, Authenticator, Identity, Principal};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::sig::v4 as sigv4;

/// Form fields by case-insensitive name.
pub trait FormFields {
    fn field(&self, name: &str) -> Option<&str>;
}

impl Authenticator {
    /// Verifies a form's signature over its policy; the policy's conditions are checked by the
    /// caller (`post_object`), which knows the rest of the form.
    /// A disabled user is refused once its signature matched (as `authenticate`); another
    /// tenant's user is none of `tenant`'s (its key unknown there).
    pub fn authenticate_form(
        &self,
        form: &dyn FormFields,
        tenant: &str,
    ) -> Result<Identity, HcpError> {
        let identity = self.verify_form(form, tenant)?;
        super::enabled(&identity)?;
        Ok(identity)
    }

    fn verify_form(&self, form: &dyn FormFields, tenant: &str) -> Result<Identity, HcpError> {
        let v4 = ["x-amz-algorithm", "x-amz-credential", "x-amz-signature"]
            .iter()
            .any(|f| form.field(f).is_some());
        let v2 = ["awsaccesskeyid", "signature"]
            .iter()
            .any(|f| form.field(f).is_some());
        // (HCP: the credentials are "required if policy is sent with request"; a form without
        // a policy is anonymous.)
        if !v4 && !v2 && form.field("policy").is_some() {
            return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                "A form with a policy must carry the credentials that sign it \
                 (AWSAccessKeyId and signature, or the x-amz-* fields).",
            ));
        }
        if !v4 && !v2 {
            return Ok(Identity {
                principal: Principal::Anonymous,
                scheme: AuthScheme::Anonymous,
            });
        }
        // Rule 46: credentials in the form sign a policy; without one there is nothing signed.
        let policy = form.field("policy").ok_or_else(|| {
            HcpError::new(HcpCode::InvalidPolicyDocument)
                .with_message("A form with credentials must carry a policy.")
        })?;
        let required = |name: &str| {
            form.field(name).ok_or_else(|| {
                HcpError::new(HcpCode::InvalidArgument)
                    .with_message(format!("The form field {name} is missing."))
            })
        };
        // (HCP: "if both V2 and V4 fields are present, V2 wins".)
        if v4 && !v2 {
            if required("x-amz-algorithm")? != sigv4::ALGORITHM {
                return Err(HcpError::new(HcpCode::InvalidArgument)
                    .with_message("x-amz-algorithm must be AWS4-HMAC-SHA256."));
            }
            let credential = required("x-amz-credential")?;
            let (access_key, date, region, service) = sigv4_header::parse_credential(credential)
                .filter(|(_, _, _, service)| *service == "s3")
                .ok_or_else(|| {
                    HcpError::new(HcpCode::InvalidArgument)
                        .with_message("x-amz-credential is malformed.")
                })?;
            let amz_date = required("x-amz-date")?;
            // (A date in SigV4's form, `20261206T000000Z`: the policy's expiration judges it.)
            let iso = amz_date.len() == 16 && amz_date.ends_with('Z');
            if !iso || crate::request::authenticate::parse_request_date(amz_date).is_none() {
                return Err(HcpError::new(HcpCode::InvalidArgument)
                    .with_message("x-amz-date is not a date (yyyyMMddTHHmmssZ)."));
            }
            if !amz_date.starts_with(date) {
                return Err(HcpError::new(HcpCode::InvalidArgument)
                    .with_message("x-amz-date and the credential's date differ."));
            }
            let given = required("x-amz-signature")?;
            let user = self.user(access_key, tenant)?;
            let key = self.signing_key(&user.secret, date, region, service);
            let expected = hex::encode(key.hmac(policy.as_bytes()));
            if !same(given.as_bytes(), expected.as_bytes()) {
                return Err(HcpError::new(HcpCode::SignatureDoesNotMatch));
            }
            self.signature_matched(&user.secret, (date, region, service), &key);
            return Ok(Self::identity(user, AuthScheme::PostFormV4));
        }
        let user = self.user(required("awsaccesskeyid")?, tenant)?;
        let given = base64::engine::general_purpose::STANDARD
            .decode(required("signature")?.trim())
            .map_err(|_| HcpError::new(HcpCode::SignatureDoesNotMatch))?;
        if !same(&given, &sigv2::sign(user.secret.expose(), policy)) {
            return Err(HcpError::new(HcpCode::SignatureDoesNotMatch));
        }
        Ok(Self::identity(user, AuthScheme::PostFormV2))
    }
}

fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::authenticate::{User, UserStore};
    use std::collections::HashMap;
    use std::sync::Arc;

    struct Fields(HashMap<String, String>);
    impl FormFields for Fields {
        fn field(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }

    fn authenticator() -> Authenticator {
        // (Tenant t's: a key is looked up in the request's tenant.)
        let user = User::new(None, "AKID".into(), "secret".into(), true, vec![]).at_home_in("t");
        let off = User::new(None, "OFF".into(), "secret".into(), false, vec![]).at_home_in("t");
        Authenticator::new(
            Arc::new(UserStore::new(vec![user, off])).shared(),
            std::time::Duration::from_secs(900),
            Arc::default(),
        )
    }

    fn form(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn sigv4_and_sigv2_sign_the_policy() {
        let a = authenticator();
        let policy = "eyJjb25kaXRpb25zIjpbXX0=";
        let key = sigv4::derive_signing_key("secret", "20261122", "us-east-1", "s3");
        let v4 = hex::encode(sigv4::hmac_sha256(&key, policy.as_bytes()));
        let fields = [
            ("policy", policy),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            (
                "x-amz-credential",
                "AKID/20261122/us-east-1/s3/aws4_request",
            ),
            ("x-amz-date", "20261122T000000Z"),
            ("x-amz-signature", v4.as_str()),
        ];
        // A refused caller leaves nothing kept beside the user's secret; a verified one does.
        let kept = || {
            a.user("AKID", "t")
                .unwrap()
                .secret
                .derived()
                .kept_key("20261122", "us-east-1", "s3")
        };
        let mut wrong = fields;
        wrong[0].1 = "eyJjb25kaXRpb25zIjpbMV19";
        let e = a.authenticate_form(&form(&wrong), "t").unwrap_err();
        assert_eq!(e.code, HcpCode::SignatureDoesNotMatch);
        assert_eq!(kept(), None);
        let id = a.authenticate_form(&form(&fields), "t").unwrap();
        assert_eq!(id.access_key(), Some("AKID"));
        assert_eq!(kept(), Some(sigv4::SigningKey::new(key)));
        let e = a.authenticate_form(&form(&wrong), "t").unwrap_err();
        assert_eq!(e.code, HcpCode::SignatureDoesNotMatch);
        // An x-amz-date that is no date (only its day was looked at) is refused.
        for date in ["20261122garbage!", "20261122", "20261122T250000Z"] {
            let mut undated = fields;
            undated[3].1 = date;
            let e = a.authenticate_form(&form(&undated), "t").unwrap_err();
            assert_eq!(e.code, HcpCode::InvalidArgument, "{date}");
        }

        let v2 = base64::engine::general_purpose::STANDARD.encode(sigv2::sign("secret", policy));
        let fields = [
            ("policy", policy),
            ("awsaccesskeyid", "AKID"),
            ("signature", v2.as_str()),
        ];
        assert!(a.authenticate_form(&form(&fields), "t").is_ok());
        // Both V2 and V4 fields: V2's are judged (HCP), here with V4's wrong.
        let mut both = fields.to_vec();
        both.push(("x-amz-signature", "00"));
        both.push(("x-amz-algorithm", "AWS4-HMAC-SHA256"));
        let id = a.authenticate_form(&form(&both), "t").unwrap();
        assert_eq!(id.scheme(), AuthScheme::PostFormV2);
        // A disabled user is refused as such only with its signature right.
        let mut off = fields;
        off[1].1 = "OFF";
        let e = a.authenticate_form(&form(&off), "t").unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        off[2].1 = "d3Jvbmc=";
        let e = a.authenticate_form(&form(&off), "t").unwrap_err();
        assert_eq!(e.code, HcpCode::SignatureDoesNotMatch);
    }

    #[test]
    fn credentials_without_a_policy_and_unknown_keys() {
        let a = authenticator();
        let e = a
            .authenticate_form(
                &form(&[("awsaccesskeyid", "AKID"), ("signature", "x")]),
                "t",
            )
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InvalidPolicyDocument);
        let e = a
            .authenticate_form(
                &form(&[
                    ("policy", "p"),
                    ("awsaccesskeyid", "NOPE"),
                    ("signature", "x"),
                ]),
                "t",
            )
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InvalidAccessKeyId);
        let id = a.authenticate_form(&form(&[]), "t").unwrap();
        assert!(matches!(id.principal(), Principal::Anonymous));
    }
}
