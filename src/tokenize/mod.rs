//! One tokenizer type over the `tokenizers` crate: from a tokenizer.json, from bytes, or the bundled
//! BERT-uncased WordPiece vocabulary the textbook model uses; [`gguf`] builds one from GGUF metadata.

pub mod gguf;
mod label;

pub use label::{
    display_label, escape_grapheme, escape_label, escape_lines, escape_text, tagged_label,
    tagged_labels, unsafe_char,
};

use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// The BERT-uncased WordPiece tokenizer.json (from all-MiniLM-L6-v2), embedded so the textbook model needs no files.
const BUNDLED_BERT_UNCASED: &[u8] =
    include_bytes!("../../fixtures/bert-base-uncased.tokenizer.json");

/// One token of the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    /// Vocabulary id.
    pub id: u32,
    /// The vocabulary string of the token (`[CLS]`, `##ing`, `Ġlove`).
    pub text: String,
    /// A label for display: readable, single line, control characters escaped.
    #[serde(skip)]
    pub label: String,
    /// Byte offsets into the input text (`start == end` for added special tokens).
    pub start: usize,
    pub end: usize,
    /// Special token ([CLS], [SEP], BOS, ...).
    #[serde(skip)]
    pub special: bool,
    /// Segment (token type) id: 0 for sentence A, 1 for sentence B.
    #[serde(skip)]
    pub type_id: u32,
}

/// The tokens' display labels made unambiguous (`the#0`, `the#4` where two read the same): what every list, grid
/// axis, CSV header and `tokens.json` shows.
pub fn token_labels(tokens: &[TokenInfo]) -> Vec<String> {
    let labels: Vec<String> = tokens.iter().map(|t| t.label.clone()).collect();
    tagged_labels(&labels)
}

/// How display labels are made from tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelStyle {
    /// The vocabulary string (`love`, `##ing`): WordPiece and similar.
    Vocab,
    /// The slice of the input the token covers (byte-level BPE, whose vocabulary strings are byte-mapped).
    Offsets,
}

/// The token ids and per-token information for one input.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub tokens: Vec<TokenInfo>,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    description: String,
    labels: LabelStyle,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("description", &self.description)
            .finish()
    }
}

impl Tokenizer {
    /// Wrap a built tokenizer: padding and truncation are switched off (a trace is always the whole input).
    pub fn new(mut inner: tokenizers::Tokenizer, description: impl Into<String>) -> Result<Self> {
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let labels = match inner.get_model() {
            tokenizers::models::ModelWrapper::BPE(_) => LabelStyle::Offsets,
            _ => LabelStyle::Vocab,
        };
        Ok(Tokenizer {
            inner,
            description: description.into(),
            labels,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::fsutil::read_capped(path, crate::fsutil::TOKENIZER_CAP)?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("{name}: cannot load: {e}")))?;
        let kind = model_kind(&inner);
        Self::new(inner, format!("{kind} from {name}"))
    }

    /// The bundled BERT-uncased WordPiece tokenizer (30522 tokens).
    pub fn bundled_bert_uncased() -> Self {
        let inner = tokenizers::Tokenizer::from_bytes(BUNDLED_BERT_UNCASED)
            .expect("the bundled tokenizer.json is valid (checked by tests)");
        Self::new(inner, "WordPiece, BERT uncased (bundled)").expect("no truncation to remove")
    }

    /// The bundled vocabulary as a decoder reads it: one BOS-like token (`[CLS]`) first and nothing at the end (no
    /// `[SEP]`: a decoder's input is a prefix to continue, not a closed sentence).
    pub fn bundled_bert_uncased_decoder() -> Self {
        use tokenizers::processors::template::TemplateProcessing;
        let mut inner = tokenizers::Tokenizer::from_bytes(BUNDLED_BERT_UNCASED)
            .expect("the bundled tokenizer.json is valid (checked by tests)");
        let bos = inner.token_to_id("[CLS]").unwrap_or(101);
        let post = TemplateProcessing::builder()
            .try_single("[CLS] $A")
            .and_then(|b| b.try_pair("[CLS] $A $B:1"))
            .map(|b| b.special_tokens(vec![("[CLS]", bos)]).build())
            .expect("static templates parse");
        let post = post.expect("static templates build");
        inner.with_post_processor(Some(post));
        Self::new(
            inner,
            "WordPiece, BERT uncased (bundled), [CLS] as BOS only",
        )
        .expect("no truncation to remove")
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// A readable form of one token id (decoded, so byte-level BPE shows real text).
    pub fn token_label(&self, id: u32) -> String {
        let s = self
            .inner
            .decode(&[id], false)
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.inner.id_to_token(id))
            .unwrap_or_else(|| format!("<{id}>"));
        escape_label(&s)
    }

    /// Tokenize `text` (and an optional second segment `text_b`, token type 1), adding special tokens as the
    /// tokenizer's post-processor says. Empty or whitespace-only text is an error.
    pub fn encode(&self, text: &str, text_b: Option<&str>) -> Result<Encoded> {
        if text.trim().is_empty() {
            return Err(Error::Input(
                "the text is empty: type a sentence (e.g. --text \"The cat sat on the mat\")"
                    .into(),
            ));
        }
        if let Some(b) = text_b
            && b.trim().is_empty()
        {
            return Err(Error::Input(
                "the second sentence (--text-b) is empty".into(),
            ));
        }
        let enc = match text_b {
            None => self.inner.encode(text, true),
            Some(b) => self.inner.encode((text, b), true),
        }
        .map_err(|e| Error::Tokenizer(format!("cannot tokenize the input: {e}")))?;
        let ids = enc.get_ids().to_vec();
        let type_ids = enc.get_type_ids().to_vec();
        let special = enc.get_special_tokens_mask();
        let seq_ids: Vec<Option<usize>> =
            (0..ids.len()).map(|i| enc.get_sequence_ids()[i]).collect();
        let mut tokens = Vec::with_capacity(ids.len());
        for (i, (&id, tok)) in ids.iter().zip(enc.get_tokens()).enumerate() {
            let (start, end) = enc.get_offsets()[i];
            let source = match seq_ids[i] {
                Some(1) => text_b.unwrap_or(""),
                _ => text,
            };
            let is_special = special.get(i).copied().unwrap_or(0) == 1;
            let label = if is_special {
                escape_label(tok)
            } else {
                match self.labels {
                    LabelStyle::Vocab => escape_label(tok),
                    LabelStyle::Offsets => match source.get(start..end) {
                        Some(s) if !s.is_empty() => escape_label(s),
                        _ => self.token_label(id),
                    },
                }
            };
            tokens.push(TokenInfo {
                id,
                text: tok.clone(),
                label,
                start,
                end,
                special: is_special,
                type_id: type_ids.get(i).copied().unwrap_or(0),
            });
        }
        Ok(Encoded {
            ids,
            type_ids,
            tokens,
        })
    }
}

impl Tokenizer {
    /// Exactly these ids, nothing added (`attn dump --ids`): each must be in the vocabulary. Labels are the decoded
    /// tokens; byte offsets are 0 (there is no text).
    pub fn encode_ids(&self, ids: &[u32]) -> Result<Encoded> {
        if ids.is_empty() {
            return Err(Error::Input(
                "--ids is empty: give token ids like 12,345,678".into(),
            ));
        }
        let size = self.vocab_size();
        let added = self.inner.get_added_tokens_decoder();
        let mut tokens = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let text = self.inner.id_to_token(id).filter(|_| (id as usize) < size).ok_or_else(|| {
                Error::Input(format!(
                    "token id {id} (position {i} of --ids) is not in the vocabulary (ids 0..{size})"
                ))
            })?;
            tokens.push(TokenInfo {
                id,
                label: self.token_label(id),
                text,
                start: 0,
                end: 0,
                special: added.get(&id).is_some_and(|a| a.special),
                type_id: 0,
            });
        }
        Ok(Encoded {
            ids: ids.to_vec(),
            type_ids: vec![0; ids.len()],
            tokens,
        })
    }

    /// The ordinary vocabulary: every id with a token that is not an added (special or user-defined) token.
    pub fn ordinary_ids(&self) -> Vec<u32> {
        let added = self.inner.get_added_tokens_decoder();
        (0..self.vocab_size() as u32)
            .filter(|id| !added.contains_key(id) && self.inner.id_to_token(*id).is_some())
            .collect()
    }

    /// The text of `ids` (special tokens kept), for display and meta.json.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }
}

/// Parse `12,345,678` (spaces allowed) into token ids.
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>().map_err(|_| {
                Error::Input(format!(
                    "--ids: `{}` is not a token id (expected numbers like 12,345,678)",
                    escape_label(t)
                ))
            })
        })
        .collect()
}

fn model_kind(t: &tokenizers::Tokenizer) -> &'static str {
    match t.get_model() {
        tokenizers::models::ModelWrapper::BPE(_) => "BPE",
        tokenizers::models::ModelWrapper::WordPiece(_) => "WordPiece",
        tokenizers::models::ModelWrapper::Unigram(_) => "Unigram",
        tokenizers::models::ModelWrapper::WordLevel(_) => "WordLevel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoder_variant_starts_with_one_bos_and_ends_open() {
        let t = Tokenizer::bundled_bert_uncased_decoder();
        let e = t.encode("I love AI", None).unwrap();
        let labels: Vec<&str> = e.tokens.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["[CLS]", "i", "love", "ai"]);
        assert!(e.tokens[0].special && !e.tokens[3].special);
    }

    #[test]
    fn bundled_tokenizer_adds_cls_and_sep() {
        let t = Tokenizer::bundled_bert_uncased();
        assert_eq!(t.vocab_size(), 30522);
        let e = t.encode("I love AI", None).unwrap();
        let texts: Vec<&str> = e.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["[CLS]", "i", "love", "ai", "[SEP]"]);
        assert_eq!(e.ids, [101, 1045, 2293, 9932, 102]);
        assert!(e.tokens[0].special && e.tokens[4].special && !e.tokens[1].special);
        assert_eq!((e.tokens[2].start, e.tokens[2].end), (2, 6));
    }

    #[test]
    fn long_text_is_not_truncated_by_the_bundled_config() {
        // The bundled tokenizer.json asks for truncation at 128 and padding to 128; both are switched off.
        let t = Tokenizer::bundled_bert_uncased();
        let text = "word ".repeat(300);
        assert_eq!(t.encode(&text, None).unwrap().ids.len(), 302);
        assert_eq!(t.encode("hi", None).unwrap().ids.len(), 3);
    }

    #[test]
    fn pairs_get_segment_ids() {
        let t = Tokenizer::bundled_bert_uncased();
        let e = t.encode("a cat", Some("a dog")).unwrap();
        assert_eq!(e.type_ids, [0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(e.tokens[5].text, "dog");
    }

    #[test]
    fn empty_text_is_an_error_and_any_unicode_tokenizes() {
        let t = Tokenizer::bundled_bert_uncased();
        assert!(matches!(t.encode("", None), Err(Error::Input(_))));
        assert!(matches!(t.encode(" \t\n ", None), Err(Error::Input(_))));
        for s in [
            "안녕하세요 세계",
            "🤖🎉 emoji",
            "a\u{7}b\u{1b}[31m",
            "e\u{301}",
            "가",
            "中文字",
        ] {
            let e = t.encode(s, None).unwrap();
            assert!(e.ids.len() >= 3, "{s}");
            for tok in &e.tokens {
                assert!(
                    !tok.label.chars().any(|c| c.is_control()),
                    "{:?}",
                    tok.label
                );
            }
        }
    }

    #[test]
    fn ids_are_fed_exactly_and_checked() {
        let t = Tokenizer::bundled_bert_uncased();
        let e = t.encode_ids(&[1045, 2293]).unwrap();
        assert_eq!(e.ids, [1045, 2293]);
        assert_eq!(e.tokens[1].text, "love");
        assert!(!e.tokens[0].special);
        let err = t.encode_ids(&[1045, 30522]).unwrap_err().to_string();
        assert!(err.contains("30522") && err.contains("position 1"), "{err}");
        assert!(t.encode_ids(&[]).is_err());
        assert_eq!(parse_ids(" 12, 345,678").unwrap(), [12, 345, 678]);
        assert!(parse_ids("12,x").unwrap_err().to_string().contains("`x`"));
        let ord = t.ordinary_ids();
        assert!(
            !ord.contains(&101) && ord.contains(&1045),
            "[CLS] is special"
        );
    }

    #[test]
    fn escape_label_hides_control_characters() {
        assert_eq!(escape_label("a\u{1b}[2J"), "a\\u{1b}[2J");
        assert_eq!(escape_label(" hi\n"), "␣hi\\n");
        assert_eq!(
            escape_text(" Evil\u{1b}]0;t\u{7}"),
            " Evil\\u{1b}]0;t\\u{7}"
        );
        assert_eq!(escape_lines("a\u{1b}[2J\nb"), "a\\u{1b}[2J\nb");
    }
}
