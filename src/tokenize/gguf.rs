//! A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, equal (same ids) to what transformers builds
//! with `AutoTokenizer.from_pretrained(dir, gguf_file=…)`.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the pre-tokenizers named in [`PRE_TOKENIZERS`].
//! What is built, step by step:
//! - vocabulary: `tokenizer.ggml.tokens` in id order; a token that uses a character outside the byte-level alphabet
//!   is respelled byte by byte in that alphabet (as transformers does for files that store raw text);
//! - merges: `tokenizer.ggml.merges`, each `"left right"`;
//! - BPE without unknown token, dropout, prefix or suffix; byte-level decoder;
//! - pre-tokenizer: GPT-2's byte-level regex split (`gpt2`, `smollm`, `default`), or one of the named split regexes
//!   followed by a byte-level mapping without regex (the Llama 3 family, Qwen2, GPT-4o, Tekken);
//! - added tokens: every token typed CONTROL (3) whose spelling is in the byte alphabet becomes a special added token;
//!   every USER_DEFINED (4) token becomes a plain added token; the BOS/EOS/UNK/padding tokens are special too;
//! - post-processor: BOS before each sequence when `tokenizer.ggml.add_bos_token` is true, EOS after it when
//!   `tokenizer.ggml.add_eos_token` is true.
//!
//! Anything else (a SentencePiece `llama` vocabulary, an unknown pre-tokenizer) is an error naming the value, never a
//! silent wrong split.

use crate::tokenize::Tokenizer;
use crate::weights::Gguf;
use crate::{Error, Result};
use std::collections::HashSet;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::{SpecialToken, TemplateProcessing};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

/// llama.cpp's token types.
pub const TOKEN_TYPE_NORMAL: i32 = 1;
pub const TOKEN_TYPE_CONTROL: i32 = 3;
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

const LLAMA3_SPLIT: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);
const QWEN2_SPLIT: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);
const GPT4O_SPLIT: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);
const TEKKEN_SPLIT: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*",
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);

/// How a `tokenizer.ggml.pre` value splits text before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreSplit {
    /// GPT-2's byte-level regex (the `ByteLevel` pre-tokenizer with `use_regex`).
    Gpt2,
    /// A split regex, then the byte-level mapping without a regex.
    Regex(&'static str),
}

/// The `tokenizer.ggml.pre` values this loader supports and how each splits.
pub const PRE_TOKENIZERS: &[(&str, PreSplit)] = &[
    ("default", PreSplit::Gpt2),
    ("gpt2", PreSplit::Gpt2),
    ("smollm", PreSplit::Gpt2),
    ("llama-bpe", PreSplit::Regex(LLAMA3_SPLIT)),
    ("llama3", PreSplit::Regex(LLAMA3_SPLIT)),
    ("llama-v3", PreSplit::Regex(LLAMA3_SPLIT)),
    ("smaug-bpe", PreSplit::Regex(LLAMA3_SPLIT)),
    ("dbrx", PreSplit::Regex(LLAMA3_SPLIT)),
    ("falcon3", PreSplit::Regex(LLAMA3_SPLIT)),
    ("pixtral", PreSplit::Regex(LLAMA3_SPLIT)),
    ("qwen2", PreSplit::Regex(QWEN2_SPLIT)),
    ("deepseek-r1-qwen", PreSplit::Regex(QWEN2_SPLIT)),
    ("gpt-4o", PreSplit::Regex(GPT4O_SPLIT)),
    ("llama4", PreSplit::Regex(GPT4O_SPLIT)),
    ("tekken", PreSplit::Regex(TEKKEN_SPLIT)),
];

/// The `tokenizer.ggml.*` values a tokenizer is built from (read from a file with [`TokenizerSpec::from_gguf`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.model`.
    pub model: String,
    /// `tokenizer.ggml.pre` (absent = `default`).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (absent = all normal).
    pub token_types: Vec<i32>,
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
}

fn opt_u32(g: &Gguf, key: &str) -> Result<Option<u32>> {
    match g.get(key) {
        None => Ok(None),
        Some(_) => g.get_u32(key).map(Some),
    }
}

fn opt_bool(g: &Gguf, key: &str) -> Result<bool> {
    match g.get(key) {
        None => Ok(false),
        Some(_) => g.get_bool(key),
    }
}

impl TokenizerSpec {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let model = g.get_str("tokenizer.ggml.model")?.to_string();
        let pre = match g.get("tokenizer.ggml.pre") {
            None => None,
            Some(_) => Some(g.get_str("tokenizer.ggml.pre")?.to_string()),
        };
        let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
        let token_types = match g.get("tokenizer.ggml.token_type") {
            None => vec![],
            Some(_) => g.get_i32_array("tokenizer.ggml.token_type")?,
        };
        let merges = match g.get("tokenizer.ggml.merges") {
            None => vec![],
            Some(_) => g.get_str_array("tokenizer.ggml.merges")?,
        };
        Ok(TokenizerSpec {
            model,
            pre,
            tokens,
            token_types,
            merges,
            bos: opt_u32(g, "tokenizer.ggml.bos_token_id")?,
            eos: opt_u32(g, "tokenizer.ggml.eos_token_id")?,
            unk: opt_u32(g, "tokenizer.ggml.unknown_token_id")?,
            pad: opt_u32(g, "tokenizer.ggml.padding_token_id")?,
            add_bos: opt_bool(g, "tokenizer.ggml.add_bos_token")?,
            add_eos: opt_bool(g, "tokenizer.ggml.add_eos_token")?,
        })
    }
}

/// Build the tokenizer a GGUF file describes.
pub fn from_gguf(g: &Gguf) -> Result<Tokenizer> {
    build(&TokenizerSpec::from_gguf(g)?, g.file_name())
}

/// Build a tokenizer from `tokenizer.ggml.*` values; `file` names the source in errors.
pub fn build(spec: &TokenizerSpec, file: &str) -> Result<Tokenizer> {
    let ferr = |m: String| Error::format(file, m);
    if spec.model != "gpt2" {
        let hint = if spec.model == "llama" {
            " (a SentencePiece vocabulary, as in Llama 2 / Mistral files)"
        } else {
            ""
        };
        return Err(ferr(format!(
            "tokenizer.ggml.model = `{}`{hint} is not supported; only `gpt2` (byte-level BPE) is",
            spec.model
        )));
    }
    let pre_name = spec.pre.as_deref().unwrap_or("default");
    let split = PRE_TOKENIZERS
        .iter()
        .find(|(n, _)| *n == pre_name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let names: Vec<&str> = PRE_TOKENIZERS.iter().map(|(n, _)| *n).collect();
            ferr(format!(
                "tokenizer.ggml.pre = `{pre_name}` is not supported (supported: {})",
                names.join(", ")
            ))
        })?;
    let n = spec.tokens.len();
    if n == 0 {
        return Err(ferr("tokenizer.ggml.tokens is empty".into()));
    }
    let n_u32 =
        u32::try_from(n).map_err(|_| ferr(format!("tokenizer.ggml.tokens has {n} entries")))?;
    if !spec.token_types.is_empty() && spec.token_types.len() != n {
        return Err(ferr(format!(
            "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {n}",
            spec.token_types.len()
        )));
    }
    for (key, id) in [
        ("bos_token_id", spec.bos),
        ("eos_token_id", spec.eos),
        ("unknown_token_id", spec.unk),
        ("padding_token_id", spec.pad),
    ] {
        if let Some(id) = id
            && id >= n_u32
        {
            return Err(ferr(format!(
                "tokenizer.ggml.{key} = {id} is outside the vocabulary of {n} tokens"
            )));
        }
    }

    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let respell = |t: &str| -> String {
        if t.chars().all(|c| alphabet.contains(&c)) {
            t.to_string()
        } else {
            byte_level_spelling(t)
        }
    };
    let vocab: tokenizers::models::bpe::Vocab = spec
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (respell(t), i as u32))
        .collect();
    let mut merges = Vec::with_capacity(spec.merges.len());
    for (i, m) in spec.merges.iter().enumerate() {
        let mut parts = m.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                merges.push((a.to_string(), b.to_string()))
            }
            _ => {
                return Err(ferr(format!(
                    "tokenizer.ggml.merges[{i}] = {m:?} is not two tokens separated by one space"
                )));
            }
        }
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| ferr(format!("tokenizer.ggml.merges: {e}")))?;

    let mut tk = tokenizers::Tokenizer::new(bpe);
    let pre: PreTokenizerWrapper = match split {
        PreSplit::Gpt2 => ByteLevel::new(false, true, true).into(),
        PreSplit::Regex(re) => {
            let split = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| {
                ferr(format!(
                    "tokenizer.ggml.pre = `{pre_name}`: bad split regex: {e}"
                ))
            })?;
            PreSequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into()
        }
    };
    tk.with_pre_tokenizer(Some(pre));
    tk.with_decoder(Some(ByteLevelDecoder::default()));

    // Added tokens, as transformers registers them.
    let ty = |i: usize| {
        spec.token_types
            .get(i)
            .copied()
            .unwrap_or(TOKEN_TYPE_NORMAL)
    };
    let mut special: Vec<AddedToken> = spec
        .tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| ty(*i) == TOKEN_TYPE_CONTROL && t.chars().all(|c| alphabet.contains(&c)))
        .map(|(_, t)| AddedToken::from(t.clone(), true).normalized(false))
        .collect();
    for id in [spec.bos, spec.eos, spec.unk, spec.pad]
        .into_iter()
        .flatten()
    {
        let t = respell(&spec.tokens[id as usize]);
        if !special.iter().any(|a| a.content == t) {
            special.push(AddedToken::from(t, true).normalized(false));
        }
    }
    tk.add_special_tokens(special)
        .map_err(|e| ferr(format!("special tokens: {e}")))?;
    let base_vocab = tk.get_vocab(false);
    let user: Vec<AddedToken> = spec
        .tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| ty(*i) == TOKEN_TYPE_USER_DEFINED && base_vocab.contains_key(t.as_str()))
        .map(|(_, t)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    if !user.is_empty() {
        tk.add_tokens(user)
            .map_err(|e| ferr(format!("user-defined tokens: {e}")))?;
    }

    tk.with_post_processor(Some(post_processor(spec, file)?));
    let desc = format!(
        "byte-level BPE from GGUF metadata ({n} tokens, {} merges, pre-tokenizer `{pre_name}`{})",
        spec.merges.len(),
        if spec.add_bos { ", adds BOS" } else { "" }
    );
    Tokenizer::new(tk, desc)
}

/// `[BOS] $A [EOS]` (and `[BOS] $B [EOS]` for a pair) with BOS/EOS as the file asks.
fn post_processor(spec: &TokenizerSpec, file: &str) -> Result<TemplateProcessing> {
    let ferr = |m: String| Error::format(file, m);
    let add_bos = spec.add_bos && spec.bos.is_some();
    let add_eos = spec.add_eos && spec.eos.is_some();
    let mut tokens = vec![];
    // The template names special tokens by key; the key maps to the real id and content below, so token contents
    // with spaces or colons cannot break the template syntax.
    for (key, add, id) in [("BOS", add_bos, spec.bos), ("EOS", add_eos, spec.eos)] {
        if let (true, Some(id)) = (add, id) {
            tokens.push(
                SpecialToken::new(key.into(), vec![id], vec![spec.tokens[id as usize].clone()])
                    .map_err(|e| ferr(format!("{key} token: {e}")))?,
            );
        }
    }
    let piece = |seq: &str, type_id: u32| {
        let mut v = vec![];
        if add_bos {
            v.push(format!("BOS:{type_id}"));
        }
        v.push(format!("{seq}:{type_id}"));
        if add_eos {
            v.push(format!("EOS:{type_id}"));
        }
        v
    };
    let single = piece("$A", 0);
    let mut pair = piece("$A", 0);
    pair.extend(piece("$B", 1));
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| ferr(format!("post-processor template: {e}")))?
        .special_tokens(tokens)
        .build()
        .map_err(|e| ferr(format!("post-processor: {e}")))
}

/// A string's UTF-8 bytes written in GPT-2's byte-level alphabet.
fn byte_level_spelling(s: &str) -> String {
    s.bytes().map(byte_char).collect()
}

/// GPT-2's byte → printable character map: printable Latin-1 bytes stand for themselves, the other 68 bytes map to
/// U+0100 onwards in byte order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return b as char;
    }
    let rank = (0..b).filter(|x| !printable(*x)).count() as u32;
    char::from_u32(256 + rank).unwrap_or('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TokenizerSpec {
        let mut tokens: Vec<String> = (0u8..=255).map(|b| byte_char(b).to_string()).collect();
        tokens.extend(["Ġh", "Ġhi", "<|bos|>", "<|eos|>", "<t>"].map(String::from));
        let mut token_types = vec![1; tokens.len()];
        let n = tokens.len();
        token_types[n - 3] = 3;
        token_types[n - 2] = 3;
        token_types[n - 1] = 4;
        TokenizerSpec {
            model: "gpt2".into(),
            pre: Some("smollm".into()),
            tokens,
            token_types,
            merges: vec!["Ġ h".into(), "Ġh i".into()],
            bos: Some(n as u32 - 3),
            eos: Some(n as u32 - 2),
            unk: None,
            pad: None,
            add_bos: true,
            add_eos: false,
        }
    }

    #[test]
    fn byte_alphabet_matches_the_tokenizers_crate() {
        let alphabet = ByteLevel::alphabet();
        let mine: HashSet<char> = (0u8..=255).map(byte_char).collect();
        assert_eq!(mine, alphabet.into_iter().collect::<HashSet<char>>());
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(b'a'), 'a');
    }

    #[test]
    fn builds_bpe_with_bos_specials_and_user_tokens() {
        let s = spec();
        let t = build(&s, "test").unwrap();
        let e = t.encode("x hi<t><|eos|>", None).unwrap();
        let bos = s.bos.unwrap();
        let want = vec![bos, b'x' as u32, 257, 260, bos + 1];
        assert_eq!(e.ids, want);
        assert!(e.tokens[0].special && !e.tokens[1].special);
        // Without add_bos nothing is added.
        let t = build(
            &TokenizerSpec {
                add_bos: false,
                ..s.clone()
            },
            "test",
        )
        .unwrap();
        assert_eq!(
            t.encode("hi", None).unwrap().ids,
            vec![b'h' as u32, b'i' as u32]
        );
        // add_eos appends EOS.
        let t = build(&TokenizerSpec { add_eos: true, ..s }, "test").unwrap();
        let ids = t.encode("hi", None).unwrap().ids;
        assert_eq!(ids.first(), Some(&bos));
        assert_eq!(ids.last(), Some(&(bos + 1)));
    }

    #[test]
    fn unsupported_model_or_pre_is_an_error_naming_it() {
        let err = build(
            &TokenizerSpec {
                model: "llama".into(),
                ..spec()
            },
            "f.gguf",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("f.gguf") && err.contains("`llama`") && err.contains("SentencePiece"),
            "{err}"
        );
        let err = build(
            &TokenizerSpec {
                pre: Some("chatglm-bpe".into()),
                ..spec()
            },
            "f.gguf",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("tokenizer.ggml.pre = `chatglm-bpe` is not supported"),
            "{err}"
        );
    }

    #[test]
    fn inconsistent_metadata_is_an_error() {
        let s = spec();
        let n = s.tokens.len() as u32;
        let err = |spec: TokenizerSpec| build(&spec, "f").unwrap_err().to_string();
        let cases = [
            (
                TokenizerSpec {
                    bos: Some(n),
                    ..s.clone()
                },
                "bos_token_id",
            ),
            (
                TokenizerSpec {
                    merges: vec!["a b c".into()],
                    ..s.clone()
                },
                "merges[0]",
            ),
            (
                TokenizerSpec {
                    token_types: vec![1],
                    ..s.clone()
                },
                "token_type has 1 entries",
            ),
            (
                TokenizerSpec {
                    tokens: vec![],
                    token_types: vec![],
                    ..s.clone()
                },
                "empty",
            ),
        ];
        for (spec, want) in cases {
            let e = err(spec);
            assert!(e.contains(want), "{e} lacks {want}");
        }
        assert!(err(TokenizerSpec { bos: Some(n), ..s }).contains("outside"));
    }

    #[test]
    fn every_split_regex_compiles() {
        for (name, split) in PRE_TOKENIZERS {
            let t = build(
                &TokenizerSpec {
                    pre: Some(name.to_string()),
                    ..spec()
                },
                "f",
            );
            assert!(t.is_ok(), "{name} {split:?}: {:?}", t.err());
        }
    }
}
