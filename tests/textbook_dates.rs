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

mod common;

use attn::model::encdec::EncoderDecoder;
use attn::model::textbook_dates;
use attn::trace::ForwardOptions;
use common::{Npy, max_abs_diff, repo};
use ndarray::{Array3, ArrayD, Axis, stack};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gold(case: &str, what: &str) -> Npy {
    Npy::read(
        &repo()
            .join("fixtures/golden/textbook-dates")
            .join(format!("{case}_{what}.npy")),
    )
}

fn ids(npy: &Npy) -> Vec<u32> {
    npy.i64().into_iter().map(|v| v as u32).collect()
}

fn stack3(parts: Vec<Array3<f32>>) -> ArrayD<f32> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    stack(Axis(0), &views).unwrap().into_dyn()
}

fn stack2(parts: &[ndarray::Array2<f32>]) -> ArrayD<f32> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    stack(Axis(0), &views).unwrap().into_dyn()
}

const CASES: [(&str, &str, &str); 3] = [
    ("nov22", "22 November 2026", "2026년 11월 22일"),
    ("feb29", "February 29, 2000", "2000년 2월 29일"),
    ("may1", "May 1, 1999", "1999년 5월 1일"),
];

#[test]
fn parity_with_the_pytorch_training_model() {
    let m = textbook_dates::load().unwrap();
    let opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    for (case, source, target) in CASES {
        let src = m.encode_source(source).unwrap();
        let tgt = m.decoder_input(target).unwrap();
        assert_eq!(src.ids, ids(&gold(case, "src_ids")), "{case}: source ids");
        assert_eq!(
            tgt.ids,
            ids(&gold(case, "tgt_in_ids")),
            "{case}: decoder input"
        );
        let t = m.forward(&src, &tgt, &opts).unwrap();
        let enc_attn = stack3(
            t.source
                .layers
                .iter()
                .map(|l| l.attention.clone().unwrap())
                .collect(),
        );
        let dec_attn = stack3(
            t.target
                .layers
                .iter()
                .map(|l| l.attention.clone().unwrap())
                .collect(),
        );
        let cross = stack3(
            t.target
                .layers
                .iter()
                .map(|l| l.cross_attention.clone().unwrap())
                .collect(),
        );
        let checks = [
            ("encoder_attention", enc_attn, 1e-5),
            ("decoder_attention", dec_attn, 1e-5),
            ("cross_attention", cross, 1e-5),
            ("logits", t.logits.clone().into_dyn(), 1e-5),
            ("encoder_hidden", stack2(&t.source.hidden), 1e-4),
            ("decoder_hidden", stack2(&t.target.hidden), 1e-4),
        ];
        for (what, ours, tol) in checks {
            let diff = max_abs_diff(&ours, &gold(case, what).f32());
            assert!(diff <= tol, "{case} {what}: max |Δ| {diff} > {tol}");
        }
        let greedy = m.greedy(&src, 20).unwrap();
        assert_eq!(greedy, ids(&gold(case, "greedy_ids")), "{case}: greedy ids");
    }
}

#[test]
fn year_tokens_read_the_end_of_the_source() {
    // "22 November 2026": source tokens 2 2 november 2 0 2 6 </s>; the decoder's first four queries produce the year.
    let m = textbook_dates::load().unwrap();
    let opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    let t = m
        .forward(
            &m.encode_source("22 November 2026").unwrap(),
            &m.decoder_input("2026년 11월 22일").unwrap(),
            &opts,
        )
        .unwrap();
    let cross = t.target.layers[1].cross_attention.as_ref().unwrap();
    let mean = cross.mean_axis(Axis(0)).unwrap();
    for q in 0..4 {
        let row = mean.row(q);
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        assert_eq!(
            best,
            3 + q,
            "query {q} should read year digit {q} (source position {})",
            3 + q
        );
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

fn accuracy(m: &EncoderDecoder, n: usize, seed: u64) -> (usize, Vec<String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ok = 0;
    let mut wrong = vec![];
    for _ in 0..n {
        let year = rng.random_range(1900..=2099u32);
        let month = rng.random_range(1..=12u32);
        let day = rng.random_range(1..=days_in(year, month));
        let name = MONTHS[month as usize - 1];
        let source = if rng.random_bool(0.5) {
            format!("{name} {day}, {year}")
        } else {
            format!("{day} {name} {year}")
        };
        let want = format!("{year}년 {month}월 {day}일");
        let (_, got) = m.translate(&source, 20).unwrap();
        if got == want {
            ok += 1;
        } else {
            wrong.push(format!("{source} → {got} (want {want})"));
        }
    }
    (ok, wrong)
}

#[test]
fn greedy_exact_match_on_500_fresh_random_dates() {
    let m = textbook_dates::load().unwrap();
    let (ok, wrong) = accuracy(&m, 500, 0x5eed_da7e);
    eprintln!("textbook-dates: {ok}/500 exact; wrong: {wrong:?}");
    assert!(ok >= 490, "{ok}/500 < 98 %: {wrong:?}");
}

#[test]
fn leap_days_and_both_source_forms() {
    let m = textbook_dates::load().unwrap();
    for (src, want) in [
        ("February 29, 2024", "2024년 2월 29일"),
        ("29 February 1904", "1904년 2월 29일"),
        ("December 31, 1900", "1900년 12월 31일"),
        ("1 January 2099", "2099년 1월 1일"),
    ] {
        assert_eq!(m.translate(src, 20).unwrap().1, want, "{src}");
    }
}
