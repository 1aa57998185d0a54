//! A `PUT ?cors` document (HCP's manual, "CORS rules configuration"), read strictly into its
//! rules and built again: the backend gets the gateway's document, never the client's bytes —
//! an element a backend knows and the gateway does not could otherwise set what nobody checked.
//! A value read one way here and another at the backend (CDATA, references, a field's text in
//! pieces) is refused, as in [`super::lock_document`].

use crate::hcp::errors::{HcpCode, HcpError};

/// One `CORSRule`, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub id: Option<String>,
    pub methods: Vec<String>,
    pub origins: Vec<String>,
    pub headers: Vec<String>,
    pub max_age: Option<u32>,
    pub expose: Vec<String>,
}

/// A CORS configuration: its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsDocument(pub Vec<Rule>);

fn malformed(why: &str) -> HcpError {
    HcpError::new(HcpCode::MalformedXML)
        .with_message("The XML you provided was not well-formed or did not validate.")
        .with_cause(format!("CORS configuration: {why}"))
}

/// The fields of a rule: each holds a value.
const FIELDS: [&str; 6] = [
    "ID",
    "AllowedMethod",
    "AllowedOrigin",
    "AllowedHeader",
    "MaxAgeSeconds",
    "ExposeHeader",
];

/// Reads a CORS configuration: one `CORSConfiguration` of at least one `CORSRule`, each with at
/// least one origin and one method (GET, PUT, HEAD, POST or DELETE), at most one ID and one
/// `MaxAgeSeconds` (digits), origins and allowed headers with at most one `*` each; read
/// strictly ([`super::strict_xml`]).
pub fn read(doc: &[u8]) -> Result<CorsDocument, HcpError> {
    // HCP: "any number of `CORSRule` … However, the maximum size of the CORS configuration
    // cannot exceed 2.5 MB."
    if doc.len() > MAX_BYTES {
        return Err(too_large());
    }
    let mut rules = Rules(Vec::new());
    super::strict_xml::read(doc, &mut rules, malformed)?;
    whole(rules.0)
}

/// A configuration as a backend keeps and answers it (`GET ?cors`): the gateway's own
/// document written again by the backend's serialiser — its references read, its size not
/// judged again (a declaration and a namespace may take it past 2.5 MB).
pub fn read_kept(doc: &[u8]) -> Result<CorsDocument, HcpError> {
    let mut rules = Rules(Vec::new());
    super::strict_xml::read_as(
        doc,
        &mut rules,
        malformed,
        super::strict_xml::Reading::Backend,
    )?;
    whole(rules.0)
}

/// The largest CORS configuration HCP takes (2.5 MB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024 / 2;

/// How much of a configuration's body is read: up to [`MAX_BYTES`] (whatever
/// `max_control_body_bytes` says of other documents), past it 400 EntityTooLarge — less where
/// the bytes all requests may hold (`held`, 0 for no limit) leave one request less beside a
/// chunk (`chunk`: the configuration's validation grants one request that much, no more), or
/// where the backend's answers read whole (`answers`: `max_buffered_response_bytes`) could not
/// bring it back — half of them, for the backend's own writing of it —, past which it is the
/// same answer, as this gateway's bound.
pub fn limit(held: usize, chunk: usize, answers: usize) -> crate::backend::upstream::BodyLimit {
    let room = if held == 0 {
        MAX_BYTES
    } else {
        held.saturating_sub(chunk)
    }
    .min(answers / 2);
    if room >= MAX_BYTES {
        crate::backend::upstream::BodyLimit {
            bytes: MAX_BYTES,
            past: too_large,
        }
    } else {
        crate::backend::upstream::BodyLimit {
            bytes: room,
            past: too_large_here,
        }
    }
}

fn too_large() -> HcpError {
    HcpError::new(HcpCode::EntityTooLarge).with_message("A CORS configuration is at most 2.5 MB.")
}

fn too_large_here() -> HcpError {
    HcpError::new(HcpCode::EntityTooLarge)
        .with_message("The CORS configuration is larger than this gateway accepts.")
}

/// The rules as they are read.
struct Rules(Vec<Rule>);

impl super::strict_xml::Fields for Rules {
    fn open(&mut self, path: &[Vec<u8>]) -> Result<(), HcpError> {
        let name = path.last().map(Vec::as_slice).unwrap_or_default();
        let known = match path.len() {
            1 => name == b"CORSConfiguration",
            2 => name == b"CORSRule",
            3 => FIELDS.iter().any(|f| f.as_bytes() == name),
            _ => false,
        };
        if !known {
            return Err(malformed("an element of no CORS configuration"));
        }
        if path.len() == 2 {
            self.0.push(Rule::default());
        }
        Ok(())
    }

    fn is_field(&self, path: &[Vec<u8>]) -> bool {
        path.len() == 3
    }

    fn field(&mut self, path: &[Vec<u8>], value: Option<String>) -> Result<(), HcpError> {
        let field = path.last().map(Vec::as_slice).unwrap_or_default();
        let rule = self.0.last_mut().expect("a field is in a rule");
        match value.filter(|v| !v.is_empty()) {
            Some(value) => set_field(rule, field, value),
            // (botocore writes a rule's ID empty where it was given as "": no ID.)
            None if field == b"ID" => Ok(()),
            None => Err(malformed("an empty field")),
        }
    }
}

/// The rules read, if they make a configuration: at least one, each with an origin and a
/// method.
fn whole(rules: Vec<Rule>) -> Result<CorsDocument, HcpError> {
    if rules.is_empty() {
        return Err(malformed("no CORSRule"));
    }
    if rules
        .iter()
        .any(|r| r.methods.is_empty() || r.origins.is_empty())
    {
        return Err(malformed("a rule without an origin or a method"));
    }
    Ok(CorsDocument(rules))
}

fn set_field(rule: &mut Rule, field: &[u8], value: String) -> Result<(), HcpError> {
    let one_wildcard = |v: &str| v.matches('*').count() <= 1;
    match field {
        b"ID" if rule.id.is_none() => rule.id = Some(value),
        b"AllowedMethod" => {
            if !matches!(value.as_str(), "GET" | "PUT" | "HEAD" | "POST" | "DELETE") {
                return Err(malformed(
                    "a method of none of GET, PUT, HEAD, POST, DELETE",
                ));
            }
            rule.methods.push(value);
        }
        b"AllowedOrigin" if one_wildcard(&value) => rule.origins.push(value),
        b"AllowedHeader" if one_wildcard(&value) => rule.headers.push(value),
        b"MaxAgeSeconds" if rule.max_age.is_none() => {
            // (S3's Integer: at most 2^31 - 1, what a backend keeps.)
            let seconds = super::digits_u32(&value)
                .filter(|&n| i32::try_from(n).is_ok())
                .ok_or_else(|| malformed("a MaxAgeSeconds that is not a number"))?;
            rule.max_age = Some(seconds);
        }
        b"ExposeHeader" => rule.expose.push(value),
        _ => return Err(malformed("a field given twice, or more than one wildcard")),
    }
    Ok(())
}

impl CorsDocument {
    /// The document the backend gets: built from what was read.
    pub fn to_xml(&self) -> Vec<u8> {
        use quick_xml::escape::escape;
        let mut doc = format!(
            "<CORSConfiguration xmlns=\"{}\">",
            crate::hcp::xml::S3_NAMESPACE
        );
        let field = |doc: &mut String, name: &str, value: &str| {
            doc.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        };
        for rule in &self.0 {
            doc.push_str("<CORSRule>");
            if let Some(id) = &rule.id {
                field(&mut doc, "ID", id);
            }
            for m in &rule.methods {
                field(&mut doc, "AllowedMethod", m);
            }
            for o in &rule.origins {
                field(&mut doc, "AllowedOrigin", o);
            }
            for h in &rule.headers {
                field(&mut doc, "AllowedHeader", h);
            }
            if let Some(age) = rule.max_age {
                field(&mut doc, "MaxAgeSeconds", &age.to_string());
            }
            for e in &rule.expose {
                field(&mut doc, "ExposeHeader", e);
            }
            doc.push_str("</CORSRule>");
        }
        doc.push_str("</CORSConfiguration>");
        doc.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(doc: &str) -> Option<HcpCode> {
        read(doc.as_bytes()).err().map(|e| e.code)
    }

    /// What the gateway sends a backend reads back as it was, whatever the backend's
    /// serialiser escapes (`'` as `&apos;`, `"`, `>`), and a client's document with a reference
    /// is still refused.
    #[test]
    fn what_is_sent_reads_back_as_it_was() {
        let doc = read(
            b"<CORSConfiguration><CORSRule><ID>Bob's \"rule\" &gt; all</ID>\
              <AllowedOrigin>https://*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
              <AllowedHeader>x-'a'</AllowedHeader></CORSRule></CORSConfiguration>",
        );
        assert!(doc.is_err(), "a client's reference");
        let doc = read(
            b"<CORSConfiguration><CORSRule><ID>Bob's \"rule\" > all</ID>\
              <AllowedOrigin>https://*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
              <AllowedHeader>x-'a'</AllowedHeader></CORSRule></CORSConfiguration>",
        )
        .unwrap();
        let sent = doc.to_xml();
        assert!(
            String::from_utf8_lossy(&sent).contains("&apos;"),
            "escaped as a backend would"
        );
        assert_eq!(read_kept(&sent).unwrap(), doc);
        let kept = b"<?xml version=\"1.0\"?><CORSConfiguration xmlns=\"x\"><CORSRule><ID>a<![CDATA[&b]]></ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
        assert_eq!(read_kept(kept).unwrap().0[0].id.as_deref(), Some("a&b"));
    }

    /// The manual's own example is read, and sent as it says.
    #[test]
    fn the_manual_s_configuration_is_read_and_built_again() {
        let doc = "<CORSConfiguration>
     <CORSRule>
          <AllowedOrigin>http://www.example.com</AllowedOrigin>
          <AllowedMethod>PUT</AllowedMethod>
          <AllowedMethod>POST</AllowedMethod>
          <AllowedMethod>DELETE</AllowedMethod>
          <AllowedHeader>*</AllowedHeader>
          <MaxAgeSeconds>3000</MaxAgeSeconds>
          <ExposeHeader>ETag</ExposeHeader>
     </CORSRule>
     <CORSRule>
          <AllowedOrigin>*</AllowedOrigin>
          <AllowedMethod>GET</AllowedMethod>
          <AllowedHeader>*</AllowedHeader>
          <MaxAgeSeconds>3000</MaxAgeSeconds>
     </CORSRule>
</CORSConfiguration>";
        let read_doc = read(doc.as_bytes()).unwrap();
        assert_eq!(read_doc.0.len(), 2);
        assert_eq!(read_doc.0[0].methods, ["PUT", "POST", "DELETE"]);
        let sent = read_doc.to_xml();
        assert_eq!(
            String::from_utf8(sent.clone()).unwrap(),
            format!(
                "<CORSConfiguration xmlns=\"{}\"><CORSRule><AllowedMethod>PUT</AllowedMethod>\
                 <AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod>\
                 <AllowedOrigin>http://www.example.com</AllowedOrigin><AllowedHeader>*</AllowedHeader>\
                 <MaxAgeSeconds>3000</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader></CORSRule>\
                 <CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>\
                 <AllowedHeader>*</AllowedHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>\
                 </CORSConfiguration>",
                crate::hcp::xml::S3_NAMESPACE
            )
        );
        // What is sent reads as what was read.
        assert_eq!(read(&sent).unwrap(), read_doc);
    }

    #[test]
    fn what_could_be_read_two_ways_or_sets_more_is_refused() {
        let rule = |inner: &str| {
            format!("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>{inner}</CORSRule></CORSConfiguration>")
        };
        for doc in [
            rule("<AllowedOriginRegex>.*</AllowedOriginRegex>"),
            rule("<ID>a</ID><ID>b</ID>"),
            rule("<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>"),
            rule("<MaxAgeSeconds>-1</MaxAgeSeconds>"),
            rule("<MaxAgeSeconds>2147483648</MaxAgeSeconds>"),
            rule("<AllowedMethod>PATCH</AllowedMethod>"),
            rule("<AllowedHeader>*-*</AllowedHeader>"),
            rule("<ExposeHeader><![CDATA[x]]></ExposeHeader>"),
            rule("<ExposeHeader>a&amp;b</ExposeHeader>"),
            rule("<ExposeHeader>a<!-- -->b</ExposeHeader>"),
            rule("<ExposeHeader></ExposeHeader>"),
            rule("stray"),
            "<CORSConfiguration/>".to_string(),
            "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>".to_string(),
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>".to_string(),
            "<CORSConfiguration><CORSRule/></CORSConfiguration>".to_string(),
            "<Other/>".to_string(),
            "<!DOCTYPE x><CORSConfiguration/>".to_string(),
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration><CORSConfiguration/>".to_string(),
        ] {
            assert_eq!(code(&doc), Some(HcpCode::MalformedXML), "{doc}");
        }
        // An ID left empty (botocore's for ""), in either form, is no ID.
        for id in ["<ID></ID>", "<ID/>"] {
            let doc = rule(id);
            assert_eq!(read(doc.as_bytes()).unwrap().0[0].id, None, "{doc}");
        }
        // A prefixed namespace, as some SDKs write it, is the same document.
        let prefixed = "<s3:CORSConfiguration xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:CORSRule><s3:AllowedOrigin>https://*.example.com</s3:AllowedOrigin><s3:AllowedMethod>GET</s3:AllowedMethod></s3:CORSRule></s3:CORSConfiguration>";
        assert_eq!(
            read(prefixed.as_bytes()).unwrap().0[0].origins,
            ["https://*.example.com"]
        );
    }
}
