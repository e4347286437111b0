//! Detection on real license texts: Debian's `/usr/share/common-licenses`
//! (skipped with a message on a machine without them) and the SPDX texts
//! the `spdx` crate ships, plus edited variants.

use super::*;

fn common(name: &str) -> Option<String> {
    let p = std::path::Path::new("/usr/share/common-licenses").join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("skipping {}: {e} (not a Debian system)", p.display());
            None
        }
    }
}

#[test]
fn debian_texts_are_matched_with_confidence() {
    for (file, id) in [
        ("Apache-2.0", "Apache-2.0"),
        ("MPL-2.0", "MPL-2.0"),
        // The GNU texts are the same for -only and -or-later (the notice
        // decides), so only the version is checked.
        ("GPL-3", "GPL-3.0"),
        ("GPL-2", "GPL-2.0"),
        ("LGPL-2.1", "LGPL-2.1"),
    ] {
        let Some(text) = common(file) else { return };
        let m = match_text(&text).unwrap();
        assert!(m.id.starts_with(id), "{file}: {m:?}");
        assert!(m.score >= CONFIDENT, "{file}: {m:?}");
    }
}

#[test]
fn edited_variants_still_match() {
    let mit = spdx::license_id("MIT").unwrap().text();
    // A copyright line filled in, and the text reflowed to other widths.
    let filled = mit.replace(
        "<year> <copyright holders>",
        "2019-2024 The Example Authors",
    );
    let reflowed: String = filled
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(7)
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    for t in [&filled, &reflowed] {
        let m = match_text(t).unwrap();
        assert_eq!(m.id, "MIT");
        assert!(m.score >= CONFIDENT, "{m:?}");
    }
    let Some(apache) = common("Apache-2.0") else {
        return;
    };
    let edited = format!(
        "Copyright 2020 Someone Else\n\n{}",
        apache.replace("    ", " ")
    );
    assert_eq!(match_text(&edited).unwrap().id, "Apache-2.0");
}

#[test]
fn a_mangled_text_is_low_confidence_and_not_used() {
    let mit = spdx::license_id("MIT").unwrap().text();
    let words: Vec<&str> = mit.split_whitespace().collect();
    // Half the text, then unrelated prose.
    let mangled = format!(
        "{} This software may only be used on Tuesdays by people named Bob.",
        words[..words.len() / 2].join(" ")
    );
    let r = detect(&[("LICENSE".into(), mangled)]);
    assert_eq!(r.expression, None, "{r:?}");
    assert!(!r.files[0].confident);
    assert!(r.files[0].score < CONFIDENT);
}

#[test]
fn dual_license_files_and_manifests_combine() {
    let mit = spdx::license_id("MIT").unwrap().text().to_string();
    let apache = spdx::license_id("Apache-2.0").unwrap().text().to_string();
    let side_by_side = detect(&[
        ("LICENSE-MIT".into(), mit.clone()),
        ("LICENSE-APACHE".into(), apache.clone()),
    ]);
    assert_eq!(
        side_by_side.expression.as_deref(),
        Some("Apache-2.0 OR MIT")
    );
    let both = detect(&[
        ("LICENSE".into(), mit.clone()),
        ("COPYING".into(), apache.clone()),
    ]);
    assert_eq!(both.expression.as_deref(), Some("Apache-2.0 AND MIT"));
    let cargo = detect(&[
        ("LICENSE-MIT".into(), mit.clone()),
        (
            "Cargo.toml".into(),
            "[package]\nname = \"x\"\nlicense = \"MIT OR Apache-2.0\"\n".into(),
        ),
    ]);
    assert_eq!(cargo.expression.as_deref(), Some("MIT OR Apache-2.0"));
    let extra = detect(&[
        (
            "COPYING".into(),
            spdx::license_id("GPL-3.0-only").unwrap().text().to_string(),
        ),
        (
            "pyproject.toml".into(),
            "[project]\nlicense = {text = \"MIT\"}\n".into(),
        ),
    ]);
    let e = extra.expression.unwrap();
    assert!(e.starts_with("(MIT) AND GPL-3.0"), "{e}");
    let bad = detect(&[(
        "setup.cfg".into(),
        "[metadata]\nlicense = BSD-like, see file\n".into(),
    )]);
    assert_eq!(bad.expression, None);
    assert_eq!(bad.invalid_manifest_fields.len(), 1);
}

#[test]
fn spdx_headers() {
    assert_eq!(
        spdx_header("#!/usr/bin/env python\n# SPDX-License-Identifier: Apache-2.0\nimport os\n")
            .as_deref(),
        Some("Apache-2.0")
    );
    assert_eq!(
        spdx_header("/* SPDX-License-Identifier: MIT OR Apache-2.0 */\nfn main() {}\n").as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert_eq!(
        spdx_header("# SPDX-License-Identifier: not a license !!\n"),
        None
    );
    let late = format!("{}# SPDX-License-Identifier: MIT\n", "x = 1\n".repeat(40));
    assert_eq!(spdx_header(&late), None);
    assert!(
        is_license_file("LICENSE-MIT")
            && is_license_file("COPYING")
            && is_license_file("UNLICENSE")
    );
    assert!(is_license_file("LICENSE.md") && is_license_file("LICENSE.txt"));
    assert!(!is_license_file("docs/LICENSE") && !is_license_file("license.py"));
}
