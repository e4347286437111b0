use super::*;

fn kinds(path: &str, text: &str) -> Vec<&'static str> {
    find(path, text).iter().map(|f| f.kind.name()).collect()
}

#[test]
fn each_kind_is_replaced_and_the_code_kept() {
    let key_block = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7bq98zKXh1Ht3sBcN0tKUf8dkEr6PZ3q\n".repeat(4)
    );
    let text = format!(
        r#"import boto3
AWS_KEY = "AKIA2E3A5F3B244C7Q6W"
gh = "ghp_R8aD2kQw9ZpL3mN7xV1cB5tY6uJ0hG4fE2sA"
lab = 'glpat-Zx9_qW2-eR4tY6uI8oP0'
slack = "xoxb-2384823948-2934829348-aB3dE5fG7hJ9kL1m"
stripe = "sk_live_51H8xQ2aBcDeFgHiJkLmNoPqRs"
API_SECRET = "q8Vd93LmZ0pXr7TbN2wK5sY1"
db_password = "Tr0ub4dor&3x"
# Maintainer: Jane Roe <jane.roe@acme-corp.com>
SERVER = "52.14.201.7"
{key_block}
def main():
    return 1
"#
    );
    let (out, counts) = redact("app/settings.py", &text);
    for k in [
        "aws_access_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "stripe_key",
        "secret",
        "password",
        "email",
        "ip_address",
        "private_key",
    ] {
        assert_eq!(counts.get(k), Some(&1), "{k}: {counts:?}\n{out}");
    }
    assert!(out.contains("AWS_KEY = \"<AWS_ACCESS_KEY>\""), "{out}");
    assert!(out.contains("Jane Roe <<EMAIL>>"), "{out}");
    assert!(out.contains("def main():\n    return 1\n"));
    assert!(!out.contains("MIIEow"));
}

#[test]
fn guards_leave_code_alone() {
    let text = r#"
__version__ = "1.2.3.4"
VERSION = v2.10.0.1
requires = ["pkg==10.4.1.2", "foo>=1.0.0.0"]
OID = "1.3.6.1.4.1.311"
HOST = "127.0.0.1"; LAN = "192.168.1.20"; TEN = "10.0.0.8"; DOC = "203.0.113.9"
MASK = "255.255.255.0"
# Contact: someone@example.com, admin@mail.example.org, dev@localhost
url = "git@github.com:owner/repo.git"
npm = "left-pad@1.3.0"
y = a@b.shape
AWS = "AKIAIOSFODNN7EXAMPLE"
fixture = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
token = "${GITHUB_TOKEN}"
api_key = "<your-api-key>"
password = "changeme123"
tokenizer = "bert-base-uncased-v2"
max_tokens = "4096"
secret_key_path = "/etc/app/secret.key"
auth_backend = "django.contrib.auth.backends.ModelBackend"
SECRET_KEY = os.environ["SECRET_KEY"]
"#;
    assert_eq!(
        kinds("x.py", text),
        Vec::<&str>::new(),
        "{:?}",
        find("x.py", text)
    );
    let lock = "[[package]]\nname = \"a\"\nchecksum = \"9f2c2d1f8e0b6b5a7c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b\"\nkey = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n";
    assert!(kinds("Cargo.lock", lock).is_empty());
    assert_eq!(kinds("conf.py", lock), vec!["secret"]);
}

/// A deterministic generator for the planted secrets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One planted secret in Python syntax: `(line, secret)`.
fn plant(rng: &mut Rng, i: usize) -> (String, String) {
    let names = ["alice", "bob", "carol", "dmitri", "eve", "farah"];
    let domains = [
        "acme-corp.com",
        "mail.ru",
        "uni-heidelberg.de",
        "startup.io",
    ];
    match i % 10 {
        0 => {
            let s = format!("AKIA{}", rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
            (format!("aws_access_key_id = \"{s}\""), s)
        }
        1 => {
            let s = format!("ghp_{}", rng.pick(ALNUM, 36));
            (format!("headers = {{\"Authorization\": \"token {s}\"}}"), s)
        }
        2 => {
            let s = format!("glpat-{}", rng.pick(ALNUM, 20));
            (format!("GITLAB = '{s}'"), s)
        }
        3 => {
            let s = format!(
                "xoxb-{}-{}-{}",
                rng.pick(b"0123456789", 11),
                rng.pick(b"0123456789", 12),
                rng.pick(ALNUM, 24)
            );
            (format!("client = WebClient(\"{s}\")"), s)
        }
        4 => {
            let s = format!("sk_live_{}", rng.pick(ALNUM, 24));
            (format!("stripe.api_key = \"{s}\""), s)
        }
        5 => {
            let s = rng.pick(ALNUM, 32);
            (format!("API_SECRET = \"{s}\""), s)
        }
        6 => {
            let s = format!("{}{}!", rng.pick(ALNUM, 9), rng.pick(b"0123456789", 2));
            (format!("conn = connect(host=h, password=\"{s}\")"), s)
        }
        7 => {
            let n = names[(rng.next() % 6) as usize];
            let d = domains[(rng.next() % 4) as usize];
            let s = format!("{n}.{}@{d}", rng.pick(b"abcdefghijklmnop", 5));
            (format!("# Reported by {n} <{s}>"), s)
        }
        8 => {
            let s = format!(
                "{}.{}.{}.{}",
                [3, 34, 52, 81, 91, 141][(rng.next() % 6) as usize],
                rng.next() % 256,
                rng.next() % 256,
                1 + rng.next() % 254
            );
            (format!("UPSTREAM = (\"{s}\", 443)"), s)
        }
        _ => {
            let body: Vec<String> = (0..6).map(|_| rng.pick(ALNUM, 64)).collect();
            let s = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                body.join("\n")
            );
            (format!("KEY = \"\"\"{s}\"\"\""), s)
        }
    }
}

/// Precision and recall on real code (the Python standard library of this
/// machine) with one planted secret per file. Prints the numbers recorded
/// in docs/repos.md.
#[test]
fn precision_and_recall_on_the_python_stdlib() {
    let Some(dir) = std::fs::read_dir("/usr/lib")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3.") && p.join("os.py").exists())
        })
        .max()
    else {
        eprintln!("skipping: no Python standard library under /usr/lib");
        return;
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let (mut planted, mut found_planted, mut total, mut outside) = (0u64, 0u64, 0u64, 0u64);
    let mut outside_by_kind = Counts::new();
    let mut missed = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let Ok(orig) = std::fs::read_to_string(path) else {
            continue;
        };
        let lines: Vec<&str> = orig.lines().collect();
        let at = (rng.next() as usize) % (lines.len() + 1);
        let (line, secret) = plant(&mut rng, i);
        let mut text = lines[..at].join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        let start = text.len() + line.find(&secret).unwrap();
        let span = (start, start + secret.len());
        text.push_str(&line);
        text.push('\n');
        text.push_str(&lines[at..].join("\n"));
        let found = find(&path.display().to_string(), &text);
        planted += 1;
        total += found.len() as u64;
        let mut hit = false;
        for f in &found {
            if f.start < span.1 && span.0 < f.end {
                hit |= f.start <= span.0 && f.end >= span.1;
            } else {
                outside += 1;
                *outside_by_kind.entry(f.kind.name().into()).or_insert(0) += 1;
                if f.kind != Kind::Email {
                    eprintln!(
                        "outside: {}: {:?} {:?}",
                        path.display(),
                        f.kind,
                        &text[f.start..f.end]
                    );
                }
            }
        }
        if hit {
            found_planted += 1;
        } else {
            missed.push(line);
        }
    }
    let recall = found_planted as f64 / planted as f64;
    let non_email_outside = outside - outside_by_kind.get("email").copied().unwrap_or(0);
    let precision_all = (total - outside) as f64 / total as f64;
    // Every finding is right except the non-e-mail ones outside the planted
    // spans: the stdlib's addresses are its authors' real ones.
    let precision_secrets = (total - non_email_outside) as f64 / total as f64;
    eprintln!(
        "redaction on {} files of {}: planted {planted}, found {found_planted} (recall {:.1}%), findings {total}, outside the planted spans {outside} {outside_by_kind:?}; precision counting every outside finding as false {:.1}%, counting the stdlib's real e-mail addresses as true {:.1}%",
        files.len(),
        dir.display(),
        100.0 * recall,
        100.0 * precision_all,
        100.0 * precision_secrets
    );
    for m in missed.iter().take(10) {
        eprintln!("missed: {m}");
    }
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision_secrets >= 0.95, "precision {precision_secrets}");
}

/// What redaction finds in real code with no planted secrets: the Rust
/// sources of the local cargo registry (published crates, where a real
/// secret is rare, so nearly every non-e-mail finding is a false positive).
/// Run by hand: `cargo test --lib redact::tests::findings_in_the_cargo_registry -- --ignored --nocapture`.
#[test]
#[ignore]
fn findings_in_the_cargo_registry() {
    let home = std::env::var("HOME").unwrap_or_default();
    let root = std::path::Path::new(&home).join(".cargo/registry/src");
    let mut stack = vec![root];
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut counts = Counts::new();
    let mut samples: Vec<String> = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let Ok(t) = std::fs::read_to_string(&p) else {
                    continue;
                };
                files += 1;
                bytes += t.len() as u64;
                for f in find(&p.display().to_string(), &t) {
                    *counts.entry(f.kind.name().into()).or_insert(0) += 1;
                    if f.kind != Kind::Email
                        && (f.kind != Kind::IpAddress || counts["ip_address"] <= 15)
                    {
                        samples.push(format!(
                            "{}: {:?} {:?}",
                            p.display(),
                            f.kind,
                            &t[f.start..f.end.min(f.start + 80)]
                        ));
                    }
                }
            }
        }
    }
    eprintln!("{files} .rs files, {bytes} bytes: {counts:?}");
    for s in samples {
        eprintln!("{s}");
    }
}
