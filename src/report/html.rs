//! Escaping and a small builder for the page's HTML and SVG.
//!
//! Everything the page shows from a stats file (paths, repository names,
//! file contents, benchmark texts, error messages, even stage names) is
//! untrusted: it goes through [`escape`], which turns the five characters
//! with a meaning in HTML and XML (`& < > " '`) into entities, so a file
//! holding `</pre><script>` renders as those characters. The same escaping
//! is valid inside SVG text and attribute values (SVG is XML, and the
//! entities used are XML's own or numeric). C0 control characters other
//! than tab, newline and carriage return are not allowed in HTML text
//! either; they become the matching Unicode "control picture" (U+2400 +
//! code, e.g. NUL shows as `␀`), so they stay visible instead of breaking
//! the parse.

use std::fmt::Write as _;

/// `s` escaped for HTML text and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(s, &mut out);
    out
}

/// Appends `s` escaped (see [`escape`]) to `out`.
pub fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            '\u{7f}' => out.push('\u{2421}'),
            c => out.push(c),
        }
    }
}

/// A page (or a part of one) under construction. `raw` appends markup the
/// renderer wrote itself; `text` appends untrusted text, escaped.
#[derive(Debug, Default)]
pub struct Html {
    buf: String,
}

impl Html {
    pub fn new() -> Html {
        Html::default()
    }

    /// Appends markup written by the renderer (never data).
    pub fn raw(&mut self, markup: &str) -> &mut Html {
        self.buf.push_str(markup);
        self
    }

    /// Appends text, escaped.
    pub fn text(&mut self, s: &str) -> &mut Html {
        escape_into(s, &mut self.buf);
        self
    }

    /// `<tag attrs>text</tag>`, the text escaped; `attrs` is renderer markup.
    pub fn elem(&mut self, tag: &str, attrs: &str, text: &str) -> &mut Html {
        let _ = write!(self.buf, "<{tag}");
        if !attrs.is_empty() {
            let _ = write!(self.buf, " {attrs}");
        }
        self.buf.push('>');
        escape_into(text, &mut self.buf);
        let _ = write!(self.buf, "</{tag}>");
        self
    }

    /// Appends another fragment.
    pub fn append(&mut self, other: Html) -> &mut Html {
        self.buf.push_str(&other.buf);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

/// `name="value"` with the value escaped, for attributes built from data.
pub fn attr(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", escape(value))
}

/// A fragment identifier made only of `[a-z0-9-]`, derived from `s`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_data_becomes_text() {
        assert_eq!(
            escape(r#"</script><img src=x onerror="a('b')">&amp;"#),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;amp;"
        );
        assert_eq!(
            escape("tab\tnl\n\u{0}\u{1b}\u{7f}"),
            "tab\tnl\n\u{2400}\u{241b}\u{2421}"
        );
        assert_eq!(escape("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn builder_escapes_text_but_not_markup() {
        let mut h = Html::new();
        h.raw("<p>")
            .text("<b>")
            .raw("</p>")
            .elem("td", "class=\"n\"", "a&b");
        assert_eq!(
            h.into_string(),
            "<p>&lt;b&gt;</p><td class=\"n\">a&amp;b</td>"
        );
        assert_eq!(attr("title", "\"x\""), "title=\"&quot;x&quot;\"");
        assert_eq!(slug("decontam_HumanEval/ngram"), "decontam-humaneval-ngram");
    }
}
