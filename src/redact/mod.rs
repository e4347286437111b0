//! Redaction of secrets and personal data in file texts, before any key,
//! hash or verdict is computed from them (so that the output, the dedup
//! keys and the decontamination report all see the redacted text).
//!
//! What is found, and its placeholder (one per kind, in the manner of the
//! StarCoder data's `<EMAIL>`, `<KEY>`, `<IP_ADDRESS>`):
//! * `secrets.rs`: provider formats from gitleaks' rules (AWS access key
//!   ids, GitHub, GitLab, Slack and Stripe tokens, Slack webhooks, private
//!   key blocks) and, after detect-secrets' keyword detector, quoted values
//!   assigned to names like `key`, `secret`, `token` or `password` that look
//!   random (Shannon entropy, as detect-secrets' entropy plugins measure it).
//! * `pii.rs`: e-mail addresses and public IPv4 addresses.
//!
//! Guards against damaging code (each tested): documentation and example
//! domains and addresses (`example.com`, RFC 2606/6761 names, RFC 5737
//! ranges), loopback, private, link-local and reserved ranges, version
//! strings that look like IPs, SSH remotes (`git@github.com:`), package
//! specs (`pkg@1.2`), values that are placeholders (`changeme`,
//! `<your-token>`, `${VAR}`), lockfiles (whose hashes are random by
//! design) and the documented fake keys (`AKIA...EXAMPLE`).

mod pii;
mod secrets;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `--redact on|off`: unset redacts the `--repos` shards only (raw
/// repositories are not scrubbed the way the published datasets were).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactMode {
    #[default]
    Repos,
    On,
    Off,
}

/// Which input shards of a run are redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedactScope {
    pub all: bool,
    /// Ordinals redacted when not `all`, sorted.
    pub ordinals: Vec<u32>,
}

impl RedactScope {
    pub fn covers(&self, ordinal: u32) -> bool {
        self.all || self.ordinals.binary_search(&ordinal).is_ok()
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.ordinals.is_empty()
    }
}

/// The stats note of a kind: `redacted_email`, ...
pub fn note_name(kind: &str) -> String {
    format!("redacted_{kind}")
}

/// One kind of finding: its stats name and placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Email,
    IpAddress,
    AwsAccessKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    StripeKey,
    PrivateKey,
    /// A random-looking value assigned to a secret-like name.
    Secret,
    Password,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::IpAddress => "ip_address",
            Kind::AwsAccessKey => "aws_access_key",
            Kind::GithubToken => "github_token",
            Kind::GitlabToken => "gitlab_token",
            Kind::SlackToken => "slack_token",
            Kind::StripeKey => "stripe_key",
            Kind::PrivateKey => "private_key",
            Kind::Secret => "secret",
            Kind::Password => "password",
        }
    }

    pub fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "<EMAIL>",
            Kind::IpAddress => "<IP_ADDRESS>",
            Kind::AwsAccessKey => "<AWS_ACCESS_KEY>",
            Kind::GithubToken => "<GITHUB_TOKEN>",
            Kind::GitlabToken => "<GITLAB_TOKEN>",
            Kind::SlackToken => "<SLACK_TOKEN>",
            Kind::StripeKey => "<STRIPE_KEY>",
            Kind::PrivateKey => "<PRIVATE_KEY>",
            Kind::Secret => "<SECRET>",
            Kind::Password => "<PASSWORD>",
        }
    }
}

/// A span of the text to replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// Counts per kind name.
pub type Counts = BTreeMap<String, u64>;

/// Every finding in `text` (of the file at `path`, which decides the
/// lockfile guard), sorted, without overlaps (the earlier, then the longer
/// finding wins).
pub fn find(path: &str, text: &str) -> Vec<Finding> {
    let mut all = secrets::find(path, text);
    all.extend(pii::find(path, text));
    all.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(all.len());
    for f in all {
        if out.last().is_some_and(|l| f.start < l.end) {
            continue;
        }
        out.push(f);
    }
    out
}

/// `text` with every finding replaced by its placeholder, and the counts.
pub fn redact(path: &str, text: &str) -> (String, Counts) {
    let found = find(path, text);
    let mut counts = Counts::new();
    if found.is_empty() {
        return (text.to_string(), counts);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in &found {
        out.push_str(&text[at..f.start]);
        out.push_str(f.kind.placeholder());
        at = f.end;
        *counts.entry(f.kind.name().to_string()).or_insert(0) += 1;
    }
    out.push_str(&text[at..]);
    (out, counts)
}

/// Adds `from` into `into`.
pub fn add_counts(into: &mut Counts, from: &Counts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

#[cfg(test)]
mod tests;
