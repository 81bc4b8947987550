//! Display labels: the one place where text from a tokenizer or the user is made safe and measurable for a
//! terminal (control and bidi characters escaped, a leading space shown as `␣`, lone Hangul jamo made visible).
//! `attn show`, the explorer and the exporters all use these.

/// Characters that must never reach a terminal as they are: controls and the Unicode format/bidi controls that
/// could reorder or hide text.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// One grapheme of typed text as shown: escaped when it holds an unsafe character (then `true`).
pub fn escape_grapheme(g: &str) -> (String, bool) {
    if !g.chars().any(unsafe_char) {
        return (g.to_string(), false);
    }
    let mut s = String::new();
    for c in g.chars() {
        if unsafe_char(c) {
            push_escaped(&mut s, c);
        } else {
            s.push(c);
        }
    }
    (s, true)
}

/// Make a token safe and readable on one terminal line: control characters and line breaks are escaped,
/// a leading space is shown as `␣`, lone conjoining jamo become their visible forms ([`display_label`]).
pub fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if i == 0 => out.push('␣'),
            c if unsafe_char(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    display_label(&out)
}

/// Make any string that came from a file (a model name, metadata, a tensor name, a path, an error) safe to print
/// on a terminal: control characters (ESC, BEL, line breaks...) and the Unicode format/bidi controls that could
/// reorder or hide text are written as escapes (`\n`, `\u{1b}`). Unlike [`escape_label`] a leading space stays.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if unsafe_char(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape_text`] line by line: a multi-line message keeps its line breaks, everything else is escaped.
pub fn escape_lines(s: &str) -> String {
    s.split('\n')
        .map(escape_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The visible compatibility form of a lone conjoining Hangul vowel or final consonant (U+1160–U+11FF), which
/// terminals draw with zero width when no syllable precedes it.
fn compat_jamo(c: char) -> Option<char> {
    const FINALS: [u32; 27] = [
        0x3131, 0x3132, 0x3133, 0x3134, 0x3135, 0x3136, 0x3137, 0x3139, 0x313A, 0x313B, 0x313C,
        0x313D, 0x313E, 0x313F, 0x3140, 0x3141, 0x3142, 0x3144, 0x3145, 0x3146, 0x3147, 0x3148,
        0x314A, 0x314B, 0x314C, 0x314D, 0x314E,
    ];
    const INITIALS: [u32; 19] = [
        0x3131, 0x3132, 0x3134, 0x3137, 0x3138, 0x3139, 0x3141, 0x3142, 0x3143, 0x3145, 0x3146,
        0x3147, 0x3148, 0x3149, 0x314A, 0x314B, 0x314C, 0x314D, 0x314E,
    ];
    let u = c as u32;
    match u {
        0x1100..=0x1112 => INITIALS
            .get((u - 0x1100) as usize)
            .and_then(|&v| char::from_u32(v)),
        0x1161..=0x1175 => char::from_u32(u - 0x1161 + 0x314F),
        0x11A8..=0x11C2 => FINALS
            .get((u - 0x11A8) as usize)
            .and_then(|&v| char::from_u32(v)),
        _ => None,
    }
}

/// A token label made safe to lay out: lone conjoining jamo (the uncased BERT tokenizer splits Hangul into them)
/// become their visible compatibility forms, so the label takes the columns it is measured to take.
pub fn display_label(label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    let jamo = |c: Option<&char>| c.is_some_and(|c| (0x1100..=0x11FF).contains(&(*c as u32)));
    let mut out = String::with_capacity(label.len());
    for (i, c) in chars.iter().enumerate() {
        // A jamo that joins a neighbour into a syllable stays; a lone one becomes its visible form.
        let joined = (i > 0 && jamo(chars.get(i - 1))) || jamo(chars.get(i + 1));
        let mapped = if joined { None } else { compat_jamo(*c) };
        out.push(mapped.unwrap_or(*c));
    }
    out
}

/// Labels made unambiguous: a label that occurs more than once gets its position (`the#0`, `the#4`). Linear in the
/// number of labels (the explorer draws them every frame).
pub fn tagged_labels(labels: &[String]) -> Vec<String> {
    let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in labels {
        *count.entry(l).or_default() += 1;
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| tag(l, i, count[l.as_str()]))
        .collect()
}

/// `labels[i]` as [`tagged_labels`] gives it, without building the others.
pub fn tagged_label(
    labels: impl Iterator<Item = impl AsRef<str>> + Clone,
    i: usize,
) -> Option<String> {
    let l = labels.clone().nth(i)?;
    let l = l.as_ref();
    let n = labels.filter(|o| o.as_ref() == l).count();
    Some(tag(l, i, n))
}

fn tag(label: &str, i: usize, occurrences: usize) -> String {
    if occurrences > 1 {
        format!("{label}#{i}")
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_jamo_become_visible_forms() {
        assert_eq!(display_label("##\u{1161}"), "##ㅏ");
        assert_eq!(display_label("\u{110B}"), "ㅇ");
        assert_eq!(display_label("##\u{11AB}"), "##ㄴ");
        // A conjoining sequence (a syllable spelled in jamo) stays as it is; so do composed syllables.
        assert_eq!(display_label("\u{110B}\u{1161}"), "\u{110B}\u{1161}");
        assert_eq!(display_label("안녕"), "안녕");
        assert_eq!(escape_label("##\u{1161}"), "##ㅏ");
    }

    #[test]
    fn repeated_labels_get_their_position() {
        let l: Vec<String> = ["the", "cat", "the"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(tagged_labels(&l), ["the#0", "cat", "the#2"]);
        assert_eq!(tagged_label(l.iter(), 2).as_deref(), Some("the#2"));
        assert_eq!(tagged_label(l.iter(), 1).as_deref(), Some("cat"));
        assert_eq!(tagged_label(l.iter(), 3), None);
    }

    #[test]
    fn typed_graphemes_are_escaped_like_labels() {
        assert_eq!(escape_grapheme("a"), ("a".to_string(), false));
        assert_eq!(escape_grapheme("\u{1b}"), ("\\u{1b}".to_string(), true));
        assert_eq!(escape_grapheme("\t"), ("\\t".to_string(), true));
        assert_eq!(escape_label("\u{202e}x"), "\\u{202e}x");
    }
}
