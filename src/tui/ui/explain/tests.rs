use super::*;
use crate::tui::app::Palette;

use crate::tui::ui::buffer_rows as rows;

/// The hand-checked example of `explain::tests`: query 1 of a decoder, key 2 masked.
fn example(key: Option<usize>, rotary: bool) -> WeightComputation {
    crate::explain::examples::weight(key, rotary)
}

/// A row without its borders and trailing blanks.
fn t(row: &str) -> &str {
    row.trim_start_matches('│').trim_end_matches('│').trim_end()
}

fn labels() -> Vec<String> {
    ["I", "love", "AI"].map(String::from).to_vec()
}

/// The weight view of `c` drawn in `w × h` with the tokens `labels` and `scroll`.
fn draw_weight(
    c: &WeightComputation,
    (w, h): (u16, u16),
    labels: &[String],
    scroll: (usize, usize),
) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
    let area = buf.area;
    render_weight(
        &mut buf,
        area,
        c,
        Labels::same(labels),
        scroll,
        &Theme::new(Palette::Mono),
    );
    buf
}

#[test]
fn every_number_of_a_small_head() {
    let c = example(None, false);
    let buf = draw_weight(&c, (72, 19), &labels(), (0, 0));
    assert_eq!(
        rows(&buf),
        [
            "╭ How weight (1, 1) is computed · hjkl cell · J/K scroll · o: what the ╮",
            "│query 1 «love» · key 1 «love» · head 3 · k and v from KV head 1       │",
            "│dim           0      1                                                │",
            "│q         1.000  2.000                                                │",
            "│k         0.000  1.000                                                │",
            "│q⊙k       0.000  2.000                                                │",
            "│largest |q⊙k|: d1 +2.000 · d0 +0.000                                  │",
            "│q·k = Σ q⊙k = 2.0000  × scale 0.5000 (1/√d_head) = scaled 1.0000      │",
            "│mask: key 1 is visible to query 1                                     │",
            "│softmax over the row of query 1: exp(x − max), max = 1.0000           │",
            "│key              scaled  exp(x−max)   weight                          │",
            "│0 «I»             0.500      0.6065     .378  ███████▌                │",
            "│1 «love»          1.000      1.0000     .622  ████████████▌           │",
            "│2 «AI»               −∞      0.0000     .000                          │",
            "│Σ exp = 1.6065 · weight = 1.0000 / 1.6065 = 0.6225                    │",
            "│                                                                      │",
            "│                                                                      │",
            "│                                                                      │",
            "╰──────────────────────────────────────────────────────────────────────╯",
        ]
    );
    // The explained key's row is highlighted.
    assert!(buf[(1, 12)].modifier.contains(Modifier::REVERSED));
    assert!(!buf[(1, 11)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn a_masked_cell_says_why_and_a_rotary_head_shows_the_rotation() {
    let c = example(Some(2), true);
    let buf = draw_weight(&c, (90, 26), &labels(), (0, 0));
    let r = rows(&buf);
    assert_eq!(
        t(&r[2]),
        "rotary: q and k below are rotated by their positions; before the rotation:"
    );
    assert_eq!(t(&r[4]), "q pre     2.000  1.000");
    assert_eq!(t(&r[8]), "θ query   1.000");
    assert_eq!(t(&r[9]), "θ key     0.500");
    assert!(
        r[16].contains(
            "masked: key 2 comes after query 1 (a decoder reads only the past): −∞ → weight 0"
        ),
        "{r:#?}"
    );
    assert!(r[15].contains("q·k = Σ q⊙k = 3.0000"));
    assert!(
        r.iter()
            .any(|s| s.contains("weight = 0.0000 / 1.6065 = 0.0000")),
        "{r:#?}"
    );
}

#[test]
fn what_the_head_writes_through_w_o() {
    let c = example(None, false);
    let norms = [1.0f32, 2.0, 0.5, c.head_out_norm.unwrap()];
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 22));
    let area = buf.area;
    render_writes(
        &mut buf,
        area,
        &c,
        Labels::same(&labels()),
        Some(&norms),
        (0, 0),
        &Theme::new(Palette::Mono),
    );
    let r = rows(&buf);
    assert_eq!(
        r[0],
        "╭ What head 3 writes · t: through W_O on ──────────────────╮"
    );
    assert_eq!(
        r[1],
        "│head 3 · query 1 «love»: z = Σ_j α_ij · v_j               │"
    );
    assert_eq!(
        r[3],
        "│v0        2.000  0.000                                    │"
    );
    assert_eq!(
        r[4],
        "│×.378     0.755  0.000                                    │"
    );
    assert_eq!(
        r[8], "│×.000     0.000  0.000                                    │",
        "the masked key adds nothing"
    );
    assert_eq!(
        r[10],
        "│z         0.755  2.490                                    │"
    );
    assert_eq!(
        r[11],
        "│‖z‖ = 2.6018                                              │"
    );
    assert_eq!(
        r[14],
        "│W_O z     0.755  2.490  3.245                             │"
    );
    assert_eq!(
        r[19],
        "│h3  ██████████████████████████████ 4.159                  │"
    );
    assert!(
        buf[(1, 19)].modifier.contains(Modifier::REVERSED),
        "this head is marked"
    );
}

#[test]
fn a_wide_head_becomes_bars_with_its_top_dimensions() {
    let d = 64;
    let q = ndarray::Array1::from_shape_fn(d, |i| if i == 5 { 2.0 } else { 0.1 });
    let k = ndarray::Array2::from_shape_fn((2, d), |(_, i)| if i == 5 { -1.0 } else { 0.1 });
    let v = ndarray::Array2::<f32>::ones((2, d));
    let c = crate::explain::examples::plain_head(q.view(), k.view(), v.view(), 0.125, None);
    let buf = draw_weight(&c, (40, 14), &[], (0, 0));
    let r = rows(&buf);
    assert_eq!(r[2], "│dims 0–29 of 64 · bars: ± up to 2.000 │");
    assert_eq!(r[3], "│q            █                        │");
    assert_eq!(r[5], "│k                                     │");
    assert_eq!(
        r[6], "│             ▄                        │",
        "k_5 = −1: half of its lower half"
    );
    assert!(buf[(14, 6)].modifier.contains(Modifier::REVERSED));
    assert!(
        r[9].starts_with("│largest |q⊙k|: d5 -2.000 · d0 +0.010"),
        "{r:#?}"
    );
    // Panning shows the last dimensions.
    let buf = draw_weight(&c, (40, 14), &[], (0, 100));
    assert_eq!(rows(&buf)[2], "│dims 34–63 of 64 · bars: ± up to 2.000│");
}

#[test]
fn a_relative_bias_is_shown_and_cross_keys_are_labelled_with_the_source() {
    let q = ndarray::array![1.0f32];
    let k = ndarray::array![[1.0f32], [1.0]];
    let v = ndarray::array![[1.0f32], [3.0]];
    let bias = ndarray::array![0.0f32, 2.0f32.ln()];
    let c =
        crate::explain::examples::plain_head(q.view(), k.view(), v.view(), 1.0, Some(bias.view()));
    let (target, source) = (
        vec!["a".to_string()],
        vec!["x".to_string(), "y".to_string()],
    );
    let mut buf = Buffer::empty(Rect::new(0, 0, 100, 16));
    let area = buf.area;
    let both = Labels {
        query: &target,
        key: &source,
    };
    render_weight(&mut buf, area, &c, both, (0, 0), &Theme::new(Palette::Mono));
    let r = rows(&buf);
    assert!(r[1].contains("query 0 «a» · key 1 «y» · head 0"), "{r:#?}");
    assert!(
        r.iter().any(|s| s.contains(
            "q·k = Σ q⊙k = 1.0000  (no 1/√d scale)  + position bias 0.6931 = scaled 1.6931"
        )),
        "{r:#?}"
    );
    assert!(r.iter().any(|s| s.contains("1 «y»")), "{r:#?}");
}
