//! S3 content store: `s3://BUCKET/PREFIX`, object `PREFIX/{blob_id}`
//! (Software Heritage: `s3://softwareheritage/content/{blob_id}`, gzip).
//!
//! Addressing: on AWS we use virtual-hosted URLs
//! (`https://BUCKET.s3.REGION.amazonaws.com/KEY`, the style AWS keeps for all
//! buckets); with `--s3-endpoint URL` (MinIO, a mirror, a test server) we use
//! path-style URLs (`URL/BUCKET/KEY`), which S3-compatible servers accept
//! without wildcard DNS.
//!
//! Signing: when the AWS credential chain (`aws_credentials.rs`) finds
//! credentials, each attempt is signed with AWS Signature Version 4 by the
//! `aws-sigv4` crate (headers `Authorization: AWS4-HMAC-SHA256 ...`,
//! `x-amz-date`, `x-amz-content-sha256: UNSIGNED-PAYLOAD`, and
//! `x-amz-security-token` for session credentials), with the S3 rules:
//! single percent-encoding and no path normalisation. When it finds none,
//! requests are unsigned, which public buckets accept: Software Heritage's
//! `softwareheritage` bucket is AWS Open Data, readable by anyone. With
//! `--s3-anonymous` they are unsigned whatever credentials exist (a signed
//! request from an account whose policy forbids the bucket is refused even
//! though the bucket is public). [`S3Locator::describe`] says which.

use super::aws_credentials::{resolve_chain, AwsCredentials, ChainResult, CredentialProvider};
use super::blob_store::BlobLocator;
use super::env::Env;
use super::hub::encode_path;
use anyhow::{bail, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::{Duration, SystemTime};

/// How to reach and authenticate to S3.
#[derive(Clone, Debug)]
pub struct S3Options {
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible server (path-style).
    pub endpoint: Option<String>,
    /// Unsigned requests, even when credentials are configured.
    pub anonymous: bool,
    /// Where the credential chain reads its variables.
    pub env: Env,
    /// Bound of the chain's STS, container and process calls.
    pub request_timeout: Duration,
}

/// `s3://bucket/prefix` split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Key prefix without leading/trailing slashes ("" for the bucket root).
    pub prefix: String,
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url> {
        let Some(rest) = s.strip_prefix("s3://") else {
            bail!("{s:?} is not an s3:// URL");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            bail!("{s:?}: {bucket:?} is not a valid S3 bucket name");
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// How requests are authenticated.
enum Signing {
    /// `--s3-anonymous`.
    Forced,
    /// The chain found nothing; where it looked.
    NoCredentials(Vec<String>),
    Signed(Box<CredentialProvider>),
}

/// Builds requests for blobs of one bucket and prefix.
pub struct S3Locator {
    spec: String,
    base: String,
    prefix: String,
    region: String,
    signing: Signing,
}

impl S3Locator {
    /// Runs the credential chain (unless anonymous) and builds the base URL.
    pub fn new(spec: &str, opts: &S3Options) -> Result<S3Locator> {
        let signing = if opts.anonymous {
            Signing::Forced
        } else {
            match resolve_chain(&opts.env, &opts.region, opts.request_timeout)? {
                ChainResult::Found(p) => Signing::Signed(p),
                ChainResult::None { looked_at } => Signing::NoCredentials(looked_at),
            }
        };
        S3Locator::build(spec, opts, signing)
    }

    /// [`S3Locator::new`] with explicit credentials (`None`: unsigned).
    pub fn with_credentials(
        spec: &str,
        opts: &S3Options,
        creds: Option<AwsCredentials>,
    ) -> Result<S3Locator> {
        let signing = match creds {
            Some(c) => Signing::Signed(Box::new(CredentialProvider::fixed(c))),
            None => Signing::Forced,
        };
        S3Locator::build(spec, opts, signing)
    }

    fn build(spec: &str, opts: &S3Options, signing: Signing) -> Result<S3Locator> {
        let url = S3Url::parse(spec)?;
        let base = match &opts.endpoint {
            Some(ep) => {
                if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                    bail!("--s3-endpoint {ep:?} is not an http(s) URL");
                }
                format!("{}/{}", ep.trim_end_matches('/'), url.bucket)
            }
            None => format!("https://{}.s3.{}.amazonaws.com", url.bucket, opts.region),
        };
        Ok(S3Locator {
            spec: spec.to_string(),
            base,
            prefix: url.prefix,
            region: opts.region.clone(),
            signing,
        })
    }

    /// Whether requests are signed.
    pub fn signed(&self) -> bool {
        matches!(self.signing, Signing::Signed(_))
    }
}

impl BlobLocator for S3Locator {
    fn describe(&self) -> String {
        match &self.signing {
            Signing::Signed(p) => format!(
                "{} via {} (signed requests, AWS credentials from {})",
                self.spec,
                self.base,
                p.source()
            ),
            Signing::Forced => format!(
                "{} via {} (unsigned requests: --s3-anonymous)",
                self.spec, self.base
            ),
            Signing::NoCredentials(looked) => format!(
                "{} via {} (unsigned requests: no AWS credentials found in {})",
                self.spec,
                self.base,
                looked.join(", ")
            ),
        }
    }

    fn url(&self, id: &str) -> String {
        if self.prefix.is_empty() {
            format!("{}/{}", self.base, encode_path(id))
        } else {
            format!(
                "{}/{}/{}",
                self.base,
                encode_path(&self.prefix),
                encode_path(id)
            )
        }
    }

    fn headers(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let Signing::Signed(provider) = &self.signing else {
            return Ok(Vec::new());
        };
        let c = provider.current().map_err(|e| format!("{e:#}"))?;
        let identity: Identity = Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            c.session_token,
            c.expires,
            "tritter-gpu",
        )
        .into();
        let identity = &identity;
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot build SigV4 parameters: {e}"))?
            .into();
        let request = SignableRequest::new(
            "GET",
            url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| format!("cannot sign {url}: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("cannot sign {url}: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(endpoint: Option<&str>) -> S3Options {
        S3Options {
            region: "us-east-1".into(),
            endpoint: endpoint.map(str::to_string),
            anonymous: true,
            env: Env::fixed([("AWS_EC2_METADATA_DISABLED", "true")]),
            request_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn urls_parse_and_build() {
        assert_eq!(
            S3Url::parse("s3://softwareheritage/content").expect("ok"),
            S3Url {
                bucket: "softwareheritage".into(),
                prefix: "content".into()
            }
        );
        assert_eq!(S3Url::parse("s3://b").expect("ok").prefix, "");
        assert!(S3Url::parse("s3://").is_err());
        assert!(S3Url::parse("s3://Bad_Bucket/x").is_err());
        assert!(S3Url::parse("https://x").is_err());

        let aws = S3Locator::with_credentials("s3://softwareheritage/content", &opts(None), None)
            .expect("ok");
        assert_eq!(
            aws.url("abc"),
            "https://softwareheritage.s3.us-east-1.amazonaws.com/content/abc"
        );
        let local = S3Locator::with_credentials(
            "s3://softwareheritage/content/",
            &opts(Some("http://127.0.0.1:9000/")),
            None,
        )
        .expect("ok");
        assert_eq!(
            local.url("abc"),
            "http://127.0.0.1:9000/softwareheritage/content/abc"
        );
        assert!(!local.signed());
        assert_eq!(
            local.headers("http://127.0.0.1:9000/x").expect("ok"),
            vec![]
        );
    }

    #[test]
    fn signed_requests_carry_sigv4_headers() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
            expires: None,
            source: "test".into(),
        };
        let loc = S3Locator::with_credentials("s3://bucket/content", &opts(None), Some(creds))
            .expect("ok");
        let h = loc.headers(&loc.url("abc")).expect("signed");
        let get = |name: &str| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let auth = get("authorization").expect("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert_eq!(
            get("x-amz-content-sha256").as_deref(),
            Some("UNSIGNED-PAYLOAD")
        );
        assert_eq!(get("x-amz-security-token").as_deref(), Some("tok"));
        assert!(get("x-amz-date").is_some());
    }
}
