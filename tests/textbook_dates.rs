//! The trained `textbook-dates` encoder–decoder: its tokenizers load in the Rust `tokenizers` crate and agree with
//! the Python `tokenizers` library that built them (ids from scripts/textbook_dates/train.py).

use attn::tokenize::Tokenizer;
use std::path::Path;

fn fixture(name: &str) -> Tokenizer {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/textbook-dates")
        .join(name);
    Tokenizer::from_file(&p).expect("the committed tokenizer loads")
}

#[test]
fn source_tokenizer_splits_digits_and_appends_eos() {
    let tok = fixture("source_tokenizer.json");
    let e = tok.encode("November 22, 2026", None).unwrap();
    assert_eq!(e.ids, vec![25, 6, 6, 14, 6, 4, 6, 10, 2]);
    let e = tok.encode("22 November 2026", None).unwrap();
    assert_eq!(e.ids, vec![6, 6, 25, 6, 4, 6, 10, 2]);
    let texts: Vec<&str> = e.tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, ["2", "2", "november", "2", "0", "2", "6", "</s>"]);
}

#[test]
fn target_tokenizer_is_character_level_and_decodes_back() {
    let tok = fixture("target_tokenizer.json");
    let e = tok.encode("2026년 11월 22일", None).unwrap();
    assert_eq!(e.ids, vec![6, 4, 6, 10, 14, 17, 5, 5, 15, 17, 6, 6, 16, 2]);
    let text = tok.inner().decode(&e.ids, true).unwrap();
    assert_eq!(text, "2026년 11월 22일");
}
