//! The embedding of one token, part by part: what enters block 0 (`hidden[0]`).
//!
//! token embedding (× scale, the paper's √d_model) + positional vector (sinusoidal / learned; none for rotary
//! models, whose positions enter inside attention) + segment embedding (BERT pairs) = sum → embedding norm.

use super::norm;
use ndarray::{Array1, ArrayView1};
use serde::Serialize;

/// How a step combines with what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The first vector.
    Start,
    /// The previous vector times a scalar.
    Scale,
    /// Added to the running sum.
    Plus,
    /// The running sum.
    Sum,
    /// A normalisation of the previous vector.
    Norm,
}

/// One vector of the explanation, with its L2 norm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub op: Op,
    /// `token embedding`, `× √d_model = 2.83`, `+ positional (sinusoidal)`, `= sum`, `LayerNorm`.
    pub label: String,
    pub values: Vec<f32>,
    pub norm: f32,
}

impl Part {
    fn new(op: Op, label: impl Into<String>, values: Vec<f32>) -> Self {
        Part {
            op,
            label: label.into(),
            norm: norm(&values),
            values,
        }
    }
}

/// The positional signal of one position, as the embedding sees it.
#[derive(Debug, Clone, Copy)]
pub enum PositionalInput<'a> {
    /// A vector added to the token embedding; `kind` is `sinusoidal` or `learned`.
    Added {
        kind: &'static str,
        vector: ArrayView1<'a, f32>,
    },
    /// Rotary: nothing is added here; q and k are rotated inside attention.
    Rotary,
    /// No positional information at all.
    None,
}

/// A normalisation of one vector (the embedding LayerNorm).
pub type NormFn<'a> = &'a dyn Fn(ArrayView1<f32>) -> Array1<f32>;

/// What the embedding of one token is made of.
pub struct EmbeddingInputs<'a> {
    pub token: usize,
    pub token_embedding: ArrayView1<'a, f32>,
    /// A factor on the token embedding (the paper's √d_model); `None`: 1.
    pub scale: Option<f32>,
    pub positional: PositionalInput<'a>,
    /// BERT: the segment (token type) embedding and the segment id.
    pub segment: Option<(usize, ArrayView1<'a, f32>)>,
    /// The embedding norm (`LayerNorm` in BERT), its name and the function.
    pub norm: Option<(&'a str, NormFn<'a>)>,
}

/// The parts of one token's embedding, in order, ending at the vector that enters block 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingParts {
    pub token: usize,
    pub parts: Vec<Part>,
    /// A sentence for the positional step when nothing is added (rotary: "rotary: inside attention").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positional_note: Option<String>,
}

impl EmbeddingParts {
    pub fn compute(inp: &EmbeddingInputs) -> Self {
        let mut parts = vec![Part::new(
            Op::Start,
            "token embedding",
            inp.token_embedding.to_vec(),
        )];
        let mut sum: Array1<f32> = inp.token_embedding.to_owned();
        if let Some(s) = inp.scale {
            sum.mapv_inplace(|x| x * s);
            parts.push(Part::new(
                Op::Scale,
                format!("× {s:.4} (scale)"),
                sum.to_vec(),
            ));
        }
        let mut added = 0;
        let mut positional_note = None;
        match inp.positional {
            PositionalInput::Added { kind, vector } => {
                sum += &vector;
                added += 1;
                parts.push(Part::new(
                    Op::Plus,
                    format!("+ positional ({kind})"),
                    vector.to_vec(),
                ));
            }
            PositionalInput::Rotary => {
                positional_note = Some(
                    "rotary: nothing is added here; q and k are rotated inside attention"
                        .to_string(),
                )
            }
            PositionalInput::None => {
                positional_note = Some("no positional information is added".to_string())
            }
        }
        if let Some((id, seg)) = inp.segment {
            sum += &seg;
            added += 1;
            parts.push(Part::new(Op::Plus, format!("+ segment {id}"), seg.to_vec()));
        }
        if added > 0 {
            parts.push(Part::new(Op::Sum, "= sum", sum.to_vec()));
        }
        if let Some((name, f)) = inp.norm {
            parts.push(Part::new(Op::Norm, name, f(sum.view()).to_vec()));
        }
        EmbeddingParts {
            token: inp.token,
            parts,
            positional_note,
        }
    }

    /// The vector that enters block 0 (`hidden[0]` of the token).
    pub fn output(&self) -> &[f32] {
        self.parts
            .last()
            .map(|p| p.values.as_slice())
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_textbook_sum_scaled_plus_sinusoidal() {
        // (1, 0, 0, 1) · √4 = (2, 0, 0, 2); position 0 of a sinusoidal table is (0, 1, 0, 1): sum (2, 1, 0, 3).
        let e = crate::explain::examples::textbook_embedding(0);
        let ops: Vec<Op> = e.parts.iter().map(|p| p.op).collect();
        assert_eq!(ops, [Op::Start, Op::Scale, Op::Plus, Op::Sum]);
        assert_eq!(e.parts[1].values, vec![2.0, 0.0, 0.0, 2.0]);
        assert_eq!(e.output(), &[2.0, 1.0, 0.0, 3.0]);
        assert!((e.parts[3].norm - 14f32.sqrt()).abs() < 1e-6);
        assert_eq!(e.parts[2].label, "+ positional (sinusoidal)");
        assert!(e.positional_note.is_none());
    }

    #[test]
    fn bert_adds_a_segment_and_normalises() {
        let tok = array![1.0f32, 2.0];
        let pos = array![1.0f32, 0.0];
        let seg = array![0.0f32, 1.0];
        let halve = |x: ArrayView1<f32>| x.mapv(|v| v / 2.0);
        let e = EmbeddingParts::compute(&EmbeddingInputs {
            token: 3,
            token_embedding: tok.view(),
            scale: None,
            positional: PositionalInput::Added {
                kind: "learned",
                vector: pos.view(),
            },
            segment: Some((1, seg.view())),
            norm: Some(("LayerNorm", &halve)),
        });
        let labels: Vec<&str> = e.parts.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "token embedding",
                "+ positional (learned)",
                "+ segment 1",
                "= sum",
                "LayerNorm"
            ]
        );
        assert_eq!(e.parts[3].values, vec![2.0, 3.0]);
        assert_eq!(e.output(), &[1.0, 1.5]);
    }

    #[test]
    fn rotary_models_add_nothing_and_say_so() {
        let e = crate::explain::examples::rotary_embedding(vec![3.0, 4.0]);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(e.parts[0].norm, 5.0);
        assert_eq!(e.output(), &[3.0, 4.0]);
        assert!(
            e.positional_note
                .as_deref()
                .unwrap()
                .contains("inside attention")
        );
    }
}
