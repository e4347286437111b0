//! The AWS credential chain for S3 content stores, in the order of the AWS
//! SDKs' default chain:
//! 1. environment: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
//!    (+ `AWS_SESSION_TOKEN`);
//! 2. the profile `AWS_PROFILE` (else `default`) of the shared files
//!    (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, sections
//!    `[name]`; `AWS_CONFIG_FILE`, else `~/.aws/config`, sections
//!    `[profile name]` or `[default]`; the credentials file wins for a key
//!    in both): static keys, `web_identity_token_file` + `role_arn`, or
//!    `credential_process`;
//! 3. web identity (EKS IRSA, GitHub OIDC): `AWS_WEB_IDENTITY_TOKEN_FILE` +
//!    `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`), exchanged with STS
//!    `AssumeRoleWithWebIdentity` at `AWS_ENDPOINT_URL_STS`, else
//!    `AWS_ENDPOINT_URL`, else `https://sts.{region}.amazonaws.com`;
//! 4. container credentials (ECS, EKS Pod Identity):
//!    `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on `169.254.170.2`) or
//!    `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https, or http to a loopback or
//!    the ECS/EKS agent address, the SDKs' rule), with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN` as `Authorization`;
//! 5. instance metadata (EC2 IMDSv2): `PUT /latest/api/token`, then
//!    `GET /latest/meta-data/iam/security-credentials/` (the role) and
//!    `.../{role}`, at `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else
//!    `http://169.254.169.254` (`http://[fd00:ec2::254]` with
//!    `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`), IMDSv1 when the token
//!    call is refused (unless `AWS_EC2_METADATA_V1_DISABLED`), skipped with
//!    `AWS_EC2_METADATA_DISABLED=true`; 1 s timeouts, so a machine outside
//!    EC2 moves on quickly.
//!
//! Nothing found is not an error: the S3 store then sends unsigned
//! requests and says so. Credentials with an expiry (web identity,
//! container, instance metadata, `credential_process`) are fetched again
//! five minutes before they expire ([`CredentialProvider::current`]).
//!
//! Why our own code: `aws-config` is the SDK's chain, built on the SDK
//! runtime (tokio, hyper) and the generated STS/SSO clients, a large
//! dependency tree for this; `object_store`'s chain (environment, web
//! identity, container, IMDS) is not exposed as a library of its own, does
//! not read the shared profile files, and has no "nothing found" answer (it
//! falls through to IMDS unconditionally), so it cannot tell us to go
//! unsigned. We follow the SDKs' documented behaviour and variable names
//! ("Standardized credential providers" in the AWS SDKs and Tools
//! Reference Guide), and refuse clearly what we do not resolve (SSO,
//! `role_arn` with `source_profile`).

use super::env::Env;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Credentials for SigV4 signing.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When they stop working (temporary credentials).
    pub expires: Option<SystemTime>,
    /// Where they came from, for messages (never the secret).
    pub source: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires", &self.expires)
            .field("source", &self.source)
            .finish()
    }
}

/// How to get (again) the credentials the chain found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refresh {
    Never,
    WebIdentity {
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
        endpoint: String,
    },
    Container {
        url: String,
        auth: Option<String>,
        auth_file: Option<PathBuf>,
    },
    Instance {
        endpoint: String,
        v1_fallback: bool,
    },
    Process {
        command: String,
    },
}

/// Credentials that stay valid: refreshed before they expire.
#[derive(Debug)]
pub struct CredentialProvider {
    refresh: Refresh,
    timeout: Duration,
    current: Mutex<AwsCredentials>,
}

/// Temporary credentials are renewed this long before they expire.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);

impl CredentialProvider {
    /// Static credentials (tests, library callers).
    pub fn fixed(c: AwsCredentials) -> CredentialProvider {
        CredentialProvider {
            refresh: Refresh::Never,
            timeout: Duration::from_secs(5),
            current: Mutex::new(c),
        }
    }

    /// Where the credentials come from (for the "signed with ..." line).
    pub fn source(&self) -> String {
        self.lock().source.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AwsCredentials> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Credentials valid for at least a few more minutes, fetched again when
    /// needed. A failed refresh keeps the old ones while they still work.
    pub fn current(&self) -> Result<AwsCredentials> {
        let mut cur = self.lock();
        let due = cur
            .expires
            .is_some_and(|e| e <= SystemTime::now() + REFRESH_AHEAD);
        if due && self.refresh != Refresh::Never {
            match fetch(&self.refresh, self.timeout) {
                Ok(Some(fresh)) => *cur = fresh,
                Ok(None) => {}
                Err(e) => {
                    if cur.expires.is_some_and(|t| t <= SystemTime::now()) {
                        return Err(e.context(format!(
                            "the AWS credentials from {} expired and cannot be renewed",
                            cur.source
                        )));
                    }
                }
            }
        }
        Ok(cur.clone())
    }
}

/// The chain's answer: credentials, or the list of places that had none.
pub enum ChainResult {
    Found(Box<CredentialProvider>),
    None { looked_at: Vec<String> },
}

/// Runs the chain over `env`. `region` names the STS endpoint when no
/// variable does; `timeout` bounds STS, container and process calls
/// (instance metadata uses 1 s).
pub fn resolve_chain(env: &Env, region: &str, timeout: Duration) -> Result<ChainResult> {
    let mut looked_at = Vec::new();
    let found = |refresh: Refresh, c: AwsCredentials| {
        Ok(ChainResult::Found(Box::new(CredentialProvider {
            refresh,
            timeout,
            current: Mutex::new(c),
        })))
    };
    // 1. Environment.
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            return found(
                Refresh::Never,
                AwsCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: env.get("AWS_SESSION_TOKEN"),
                    expires: None,
                    source: "the environment (AWS_ACCESS_KEY_ID)".into(),
                },
            )
        }
        (Some(_), None) => bail!("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        (None, Some(_)) => bail!("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        (None, None) => looked_at.push("environment".to_string()),
    }
    // 2. Shared files.
    let sts_endpoint = env
        .get("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| {
            let region = env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| region.to_string());
            format!("https://sts.{region}.amazonaws.com")
        });
    match profile(env)? {
        ProfileAnswer::Static(c) => return found(Refresh::Never, c),
        ProfileAnswer::Refreshing(r) => {
            let r = match r {
                Refresh::WebIdentity {
                    token_file,
                    role_arn,
                    session_name,
                    ..
                } => Refresh::WebIdentity {
                    token_file,
                    role_arn,
                    session_name,
                    endpoint: sts_endpoint.clone(),
                },
                other => other,
            };
            let c = fetch(&r, timeout)?
                .ok_or_else(|| anyhow!("the AWS profile gave no credentials"))?;
            return found(r, c);
        }
        ProfileAnswer::Nothing(what) => looked_at.push(what),
    }
    // 3. Web identity.
    if let Some(token_file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let Some(role_arn) = env.get("AWS_ROLE_ARN") else {
            bail!("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        };
        let r = Refresh::WebIdentity {
            token_file: PathBuf::from(token_file),
            role_arn,
            session_name: env
                .get("AWS_ROLE_SESSION_NAME")
                .unwrap_or_else(|| "tritter-gpu".into()),
            endpoint: sts_endpoint,
        };
        let c = fetch(&r, timeout)?.expect("web identity answers or fails");
        return found(r, c);
    }
    looked_at.push("web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".into());
    // 4. Container.
    let container_url = match (
        env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(rel), _) => Some(format!("http://169.254.170.2{rel}")),
        (None, Some(full)) => {
            check_container_url(&full)?;
            Some(full)
        }
        (None, None) => None,
    };
    if let Some(url) = container_url {
        let r = Refresh::Container {
            url,
            auth: env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            auth_file: env
                .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(PathBuf::from),
        };
        let c = fetch(&r, timeout)?.expect("container answers or fails");
        return found(r, c);
    }
    looked_at.push("container credentials (AWS_CONTAINER_CREDENTIALS_*)".into());
    // 5. Instance metadata.
    if env.is_true("AWS_EC2_METADATA_DISABLED") {
        looked_at.push("instance metadata (disabled by AWS_EC2_METADATA_DISABLED)".into());
        return Ok(ChainResult::None { looked_at });
    }
    let endpoint = env
        .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(
            || match env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").as_deref() {
                Some(m) if m.eq_ignore_ascii_case("ipv6") => "http://[fd00:ec2::254]".into(),
                _ => "http://169.254.169.254".into(),
            },
        );
    let r = Refresh::Instance {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        v1_fallback: !env.is_true("AWS_EC2_METADATA_V1_DISABLED"),
    };
    match fetch(&r, timeout) {
        Ok(Some(c)) => found(r, c),
        // No metadata service (not on EC2), or no role attached.
        Ok(None) | Err(_) => {
            looked_at.push(format!("instance metadata ({endpoint})"));
            Ok(ChainResult::None { looked_at })
        }
    }
}

/// The SDKs' rule for `AWS_CONTAINER_CREDENTIALS_FULL_URI`: https anywhere,
/// http only to a loopback address or the ECS/EKS agent.
fn check_container_url(url: &str) -> Result<()> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("AWS_CONTAINER_CREDENTIALS_FULL_URI {url:?} is not an http(s) URL");
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let allowed = host == "localhost"
        || host == "169.254.170.2"
        || host == "169.254.170.23"
        || host == "fd00:ec2::23"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !allowed {
        bail!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {url:?}: plain http is only allowed to a \
             loopback address or the ECS/EKS credential agent (the AWS SDKs' rule)"
        );
    }
    Ok(())
}

enum ProfileAnswer {
    Static(AwsCredentials),
    Refreshing(Refresh),
    Nothing(String),
}

/// Step 2 of the chain: the shared files' profile.
fn profile(env: &Env) -> Result<ProfileAnswer> {
    let profile_env = env.get("AWS_PROFILE");
    let profile = profile_env.clone().unwrap_or_else(|| "default".into());
    let home = env.home();
    let file = |var: &str, rel: &str| -> Option<PathBuf> {
        env.get(var)
            .map(|v| env.expand(&v))
            .or_else(|| home.as_ref().map(|h| h.join(rel)))
    };
    let cred_path = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let conf_path = file("AWS_CONFIG_FILE", ".aws/config");

    let read = |p: &Option<PathBuf>| -> Result<Option<(PathBuf, String)>> {
        let Some(p) = p else { return Ok(None) };
        match std::fs::read_to_string(p) {
            Ok(t) => Ok(Some((p.clone(), t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => bail!("cannot read AWS profile file {}: {e}", p.display()),
        }
    };
    let mut props: HashMap<String, String> = HashMap::new();
    let mut found_in: Vec<String> = Vec::new();
    // Config first, credentials second: later inserts win.
    if let Some((p, text)) = read(&conf_path)? {
        if let Some(sec) = parse_profiles(&text, true).remove(&profile) {
            found_in.push(p.display().to_string());
            props.extend(sec);
        }
    }
    if let Some((p, text)) = read(&cred_path)? {
        if let Some(sec) = parse_profiles(&text, false).remove(&profile) {
            found_in.push(p.display().to_string());
            props.extend(sec);
        }
    }
    if found_in.is_empty() {
        if profile_env.is_some() {
            bail!(
                "AWS_PROFILE={profile} but no such profile in {} or {}",
                show(&cred_path),
                show(&conf_path)
            );
        }
        return Ok(ProfileAnswer::Nothing(format!(
            "profile {profile} ({}, {})",
            show(&cred_path),
            show(&conf_path)
        )));
    }
    let source = format!("profile {profile} ({})", found_in.join(", "));
    if let (Some(id), Some(secret)) = (
        props.get("aws_access_key_id"),
        props.get("aws_secret_access_key"),
    ) {
        return Ok(ProfileAnswer::Static(AwsCredentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: props.get("aws_session_token").cloned(),
            expires: None,
            source,
        }));
    }
    if let (Some(token_file), Some(role_arn), None) = (
        props.get("web_identity_token_file"),
        props.get("role_arn"),
        props.get("source_profile"),
    ) {
        return Ok(ProfileAnswer::Refreshing(Refresh::WebIdentity {
            token_file: env.expand(token_file),
            role_arn: role_arn.clone(),
            session_name: props
                .get("role_session_name")
                .cloned()
                .unwrap_or_else(|| "tritter-gpu".into()),
            endpoint: String::new(),
        }));
    }
    if let Some(command) = props.get("credential_process") {
        return Ok(ProfileAnswer::Refreshing(Refresh::Process {
            command: command.clone(),
        }));
    }
    let unsupported: Vec<&str> = [
        "sso_session",
        "sso_start_url",
        "role_arn",
        "source_profile",
        "credential_source",
    ]
    .into_iter()
    .filter(|k| props.contains_key(*k))
    .collect();
    if unsupported.is_empty() {
        bail!("AWS {source} has no aws_access_key_id/aws_secret_access_key");
    }
    bail!(
        "AWS profile {profile} uses {}, which tritter-gpu does not resolve; export static \
         credentials with `eval \"$(aws configure export-credentials --profile {profile} --format env)\"`, \
         or pass --s3-anonymous for a public bucket",
        unsupported.join(", ")
    )
}

fn show(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or("(no HOME)".into(), |p| p.display().to_string())
}

/// One small HTTP call of a credential provider: `(status, body)`.
fn call(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .into();
    let resp = match method {
        "PUT" => {
            let mut r = agent.put(url);
            for (k, v) in headers {
                r = r.header(*k, v.as_str());
            }
            r.send_empty()
        }
        "POST" => {
            let mut r = agent.post(url);
            for (k, v) in headers {
                r = r.header(*k, v.as_str());
            }
            r.send_empty()
        }
        _ => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, v.as_str());
            }
            r.call()
        }
    }
    .map_err(|e| anyhow!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| anyhow!("{method} {url}: {e}"))?;
    Ok((status, body))
}

fn parse_time(s: &str) -> Result<SystemTime> {
    let dt = aws_smithy_types::DateTime::from_str(
        s.trim(),
        aws_smithy_types::date_time::Format::DateTime,
    )
    .map_err(|e| anyhow!("expiration {s:?} is not an RFC 3339 time: {e}"))?;
    SystemTime::try_from(dt).map_err(|e| anyhow!("expiration {s:?}: {e}"))
}

/// The text of the first `<name>...</name>`.
fn xml_tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].trim().to_string())
}

/// Credentials from a JSON document with the container / instance metadata
/// / credential_process field names.
fn from_json(body: &str, source: String) -> Result<AwsCredentials> {
    let v: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("{source}: not JSON"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Some(code) = s("Code").filter(|c| c != "Success") {
        bail!(
            "{source} answered Code {code}: {}",
            s("Message").unwrap_or_default()
        );
    }
    let (Some(id), Some(secret)) = (s("AccessKeyId"), s("SecretAccessKey")) else {
        bail!("{source} answered without AccessKeyId/SecretAccessKey");
    };
    Ok(AwsCredentials {
        access_key_id: id,
        secret_access_key: secret,
        session_token: s("Token").or_else(|| s("SessionToken")),
        expires: s("Expiration").map(|e| parse_time(&e)).transpose()?,
        source,
    })
}

/// Percent-encodes a query value.
fn q(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Fetches credentials from a refreshing source; `Ok(None)` only for
/// instance metadata without a role or without a metadata service.
fn fetch(r: &Refresh, timeout: Duration) -> Result<Option<AwsCredentials>> {
    match r {
        Refresh::Never => Ok(None),
        Refresh::WebIdentity {
            token_file,
            role_arn,
            session_name,
            endpoint,
        } => {
            let token = std::fs::read_to_string(token_file).with_context(|| {
                format!(
                    "cannot read the web identity token {}",
                    token_file.display()
                )
            })?;
            let url = format!(
                "{}/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&DurationSeconds=3600&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
                endpoint.trim_end_matches('/'),
                q(role_arn),
                q(session_name),
                q(token.trim())
            );
            let (status, body) = call("POST", &url, &[], timeout)?;
            if status != 200 {
                bail!(
                    "STS AssumeRoleWithWebIdentity for {role_arn} at {endpoint} answered HTTP \
                     {status}: {} {}",
                    xml_tag(&body, "Code").unwrap_or_default(),
                    xml_tag(&body, "Message").unwrap_or_default()
                );
            }
            let get = |k: &str| {
                xml_tag(&body, k).ok_or_else(|| anyhow!("STS answer without <{k}> ({endpoint})"))
            };
            Ok(Some(AwsCredentials {
                access_key_id: get("AccessKeyId")?,
                secret_access_key: get("SecretAccessKey")?,
                session_token: Some(get("SessionToken")?),
                expires: Some(parse_time(&get("Expiration")?)?),
                source: format!("web identity (role {role_arn}, {})", token_file.display()),
            }))
        }
        Refresh::Container {
            url,
            auth,
            auth_file,
        } => {
            let token = match auth_file {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?
                        .trim()
                        .to_string(),
                ),
                None => auth.clone(),
            };
            let headers: Vec<(&str, String)> =
                token.into_iter().map(|t| ("Authorization", t)).collect();
            let (status, body) = call("GET", url, &headers, timeout)?;
            if status != 200 {
                bail!(
                    "container credentials at {url} answered HTTP {status}: {}",
                    body.trim()
                );
            }
            from_json(&body, format!("container credentials ({url})")).map(Some)
        }
        Refresh::Instance {
            endpoint,
            v1_fallback,
        } => {
            let t = Duration::from_secs(1);
            let (status, token) = call(
                "PUT",
                &format!("{endpoint}/latest/api/token"),
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21600".into())],
                t,
            )?;
            let token = match status {
                200 => Some(token.trim().to_string()),
                403..=405 if *v1_fallback => None,
                _ => bail!("instance metadata token call answered HTTP {status}"),
            };
            let headers: Vec<(&str, String)> = token
                .iter()
                .map(|t| ("X-aws-ec2-metadata-token", t.clone()))
                .collect();
            let base = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
            let (status, roles) = call("GET", &base, &headers, t)?;
            if status == 404 {
                return Ok(None); // no role attached to the instance
            }
            if status != 200 {
                bail!("instance metadata answered HTTP {status} for the role");
            }
            let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
                return Ok(None);
            };
            let (status, body) = call("GET", &format!("{base}{role}"), &headers, t)?;
            if status != 200 {
                bail!("instance metadata answered HTTP {status} for role {role}");
            }
            from_json(
                &body,
                format!("instance metadata (role {role}, {endpoint})"),
            )
            .map(Some)
        }
        Refresh::Process { command } => {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("cannot run credential_process {command:?}"))?;
            if !out.status.success() {
                bail!(
                    "credential_process {command:?} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            from_json(
                &String::from_utf8_lossy(&out.stdout),
                format!("credential_process {command:?}"),
            )
            .map(Some)
        }
    }
}

/// Parses a shared config or credentials file into profile name -> keys.
/// In the config file, sections are `[profile NAME]` (or `[default]`); in
/// the credentials file `[NAME]`. Keys are lowercased; indented lines are
/// sub-properties of the previous key (e.g. `s3 =` blocks), skipped here.
pub fn parse_profiles(text: &str, config_file: bool) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue; // sub-property or continuation
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                current = None;
                continue;
            };
            let name = rest[..end].trim();
            current = if config_file {
                match name.strip_prefix("profile") {
                    Some(n) if n.starts_with([' ', '\t']) => Some(n.trim().to_string()),
                    _ if name == "default" => Some("default".into()),
                    // `[sso-session x]`, `[services x]`: not profiles.
                    _ => None,
                }
            } else {
                Some(name.to_string())
            };
            continue;
        }
        let (Some(section), Some((k, v))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        let value = strip_inline_comment(v.trim());
        out.entry(section.clone())
            .or_default()
            .insert(k.trim().to_lowercase(), value.to_string());
    }
    out
}

/// Removes a ` #comment` or ` ;comment` (whitespace before the marker).
fn strip_inline_comment(v: &str) -> &str {
    let bytes = v.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t')
        {
            return v[..i].trim_end();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(pairs: &[(&str, &str)]) -> Result<ChainResult> {
        let mut all = vec![("AWS_EC2_METADATA_DISABLED", "true")];
        all.extend_from_slice(pairs);
        resolve_chain(
            &Env::fixed(all.iter().copied()),
            "us-east-1",
            Duration::from_secs(2),
        )
    }

    fn creds(r: Result<ChainResult>) -> AwsCredentials {
        match r.expect("ok") {
            ChainResult::Found(p) => p.current().expect("current"),
            ChainResult::None { looked_at } => panic!("nothing found: {looked_at:?}"),
        }
    }

    #[test]
    fn environment_wins() {
        let c = creds(chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
            ("HOME", "/nonexistent"),
        ]));
        assert_eq!(c.access_key_id, "AKIDENV");
        assert_eq!(c.session_token.as_deref(), Some("t"));
        assert!(
            !format!("{c:?}").contains("\"s\""),
            "secret must not be printed"
        );
        assert!(chain(&[("AWS_ACCESS_KEY_ID", "A")]).is_err());
    }

    #[test]
    fn profiles_from_both_files_credentials_win() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cred = tmp.path().join("credentials");
        let conf = tmp.path().join("config");
        std::fs::write(
            &cred,
            "# comment\n[default]\naws_access_key_id = AKIDCRED\naws_secret_access_key = sc ; inline\n\n[other]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=so\n",
        )
        .expect("write");
        std::fs::write(
            &conf,
            "[default]\nregion = eu-west-1\naws_access_key_id = AKIDCONF\n[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = scfg\ns3 =\n  max_concurrent_requests = 10\n[profile sso]\nsso_session = x\n[sso-session x]\nsso_region = us-east-1\n[profile proc]\ncredential_process = printf '{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\",\"SecretAccessKey\":\"sp\",\"SessionToken\":\"tp\",\"Expiration\":\"2999-01-01T00:00:00Z\"}'\n",
        )
        .expect("write");
        let base = [
            ("AWS_SHARED_CREDENTIALS_FILE", cred.to_str().expect("utf8")),
            ("AWS_CONFIG_FILE", conf.to_str().expect("utf8")),
        ];
        let c = creds(chain(&base));
        assert_eq!(c.access_key_id, "AKIDCRED");
        assert_eq!(c.secret_access_key, "sc");
        assert!(c.source.contains("profile default"));

        let with = |p: &str| {
            let mut v = base.to_vec();
            v.push(("AWS_PROFILE", p));
            chain(&v)
        };
        assert_eq!(creds(with("cfgonly")).access_key_id, "AKIDCFG");
        let p = creds(with("proc"));
        assert_eq!(
            (p.access_key_id.as_str(), p.session_token.as_deref()),
            ("AKIDPROC", Some("tp"))
        );
        assert!(p.expires.is_some());
        let msg = format!("{:#}", with("sso").err().expect("unsupported"));
        assert!(
            msg.contains("sso_session") && msg.contains("export-credentials"),
            "{msg}"
        );
        assert!(with("nope").is_err());
    }

    #[test]
    fn nothing_configured_is_none_and_lists_where_it_looked() {
        let tmp = tempfile::tempdir().expect("tmp");
        match chain(&[("HOME", tmp.path().to_str().expect("utf8"))]).expect("ok") {
            ChainResult::Found(p) => panic!("found {:?}", p.source()),
            ChainResult::None { looked_at } => {
                let all = looked_at.join("; ");
                assert!(
                    all.contains("environment")
                        && all.contains("profile default")
                        && all.contains("web identity")
                        && all.contains("container")
                        && all.contains("disabled by AWS_EC2_METADATA_DISABLED"),
                    "{all}"
                );
            }
        }
    }

    #[test]
    fn container_full_uri_must_be_https_or_local() {
        assert!(check_container_url("https://creds.example/x").is_ok());
        assert!(check_container_url("http://127.0.0.1:9/creds").is_ok());
        assert!(check_container_url("http://[::1]:9/creds").is_ok());
        assert!(check_container_url("http://169.254.170.23/v1/credentials").is_ok());
        assert!(check_container_url("http://10.0.0.1/creds").is_err());
        assert!(check_container_url("ftp://x").is_err());
    }
}
