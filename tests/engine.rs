//! The block engine's hooks: captures agree with what the trace records and with each other, interventions change
//! exactly what they should, resuming from a cached layer equals a full run, and capturing nothing costs nothing.

use attn::hooks::{Edit, HookPoint, Hooks, Intervention};
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use ndarray::{Array2, Axis};

fn textbook(causal: bool) -> Box<dyn Model> {
    model::load(
        "textbook",
        &TextbookConfig {
            layers: 3,
            heads: 4,
            d_model: 32,
            d_ff: 64,
            causal,
            ..Default::default()
        },
    )
    .unwrap()
}

fn capture_all(m: &dyn Model, points: &[HookPoint]) -> ForwardOptions {
    let mut hooks = Hooks::default();
    for p in points {
        hooks.capture_all(*p, m.info().n_layers);
    }
    ForwardOptions {
        hooks,
        ..Default::default()
    }
}

#[test]
fn captures_are_consistent_with_the_trace() {
    for causal in [false, true] {
        let m = textbook(causal);
        let opts = capture_all(
            m.as_ref(),
            &[
                HookPoint::ResidPre,
                HookPoint::AttnQ,
                HookPoint::AttnK,
                HookPoint::AttnV,
                HookPoint::AttnScores,
                HookPoint::AttnPattern,
                HookPoint::AttnZ,
                HookPoint::ResidMid,
                HookPoint::MlpPost,
                HookPoint::ResidPost,
            ],
        );
        let t = model::run(m.as_ref(), "the cat sat on the mat", None, &opts).unwrap();
        let c = &t.captures;
        let (n, hd) = (t.n_tokens(), 8);
        for l in 0..3 {
            // Hidden states and the mid stream are what the trace records.
            assert_eq!(c.view2(HookPoint::ResidPre, l).unwrap(), t.hidden[l]);
            assert_eq!(c.view2(HookPoint::ResidPost, l).unwrap(), t.hidden[l + 1]);
            assert_eq!(c.view2(HookPoint::ResidMid, l).unwrap(), t.layers[l].mid);
            assert_eq!(c.mlp_post(l).unwrap().dim(), (n, 64));
            let pattern = c.pattern(l).unwrap();
            assert_eq!(Some(&pattern.to_owned()), t.layers[l].attention.as_ref());
            let (q, k, v, z, scores) = (
                c.q(l).unwrap(),
                c.k(l).unwrap(),
                c.v(l).unwrap(),
                c.z(l).unwrap(),
                c.scores(l).unwrap(),
            );
            assert_eq!(q.dim(), (4, n, hd));
            for h in 0..4 {
                // scores = q·kᵀ / √d_head, masked; z = pattern · v.
                let want = q.index_axis(Axis(0), h).dot(&k.index_axis(Axis(0), h).t())
                    / (hd as f32).sqrt();
                let want_z = pattern
                    .index_axis(Axis(0), h)
                    .dot(&v.index_axis(Axis(0), h));
                for i in 0..n {
                    for j in 0..n {
                        let got = scores[[h, i, j]];
                        if causal && j > i {
                            assert_eq!(got, f32::NEG_INFINITY);
                            assert_eq!(pattern[[h, i, j]], 0.0);
                        } else {
                            assert!(
                                (got - want[[i, j]]).abs() < 1e-4,
                                "{got} vs {}",
                                want[[i, j]]
                            );
                        }
                    }
                }
                let diff = (&z.index_axis(Axis(0), h) - &want_z)
                    .mapv(f32::abs)
                    .fold(0f32, |a, b| a.max(*b));
                assert!(diff < 1e-5, "z differs by {diff}");
            }
        }
    }
}

#[test]
fn no_hooks_capture_nothing_and_change_nothing() {
    let m = textbook(true);
    let plain = model::run(m.as_ref(), "one two three", None, &Default::default()).unwrap();
    assert!(plain.captures.is_empty());
    assert!(plain.interventions.is_empty());
    let hooked = model::run(
        m.as_ref(),
        "one two three",
        None,
        &capture_all(m.as_ref(), &[HookPoint::AttnScores, HookPoint::AttnZ]),
    )
    .unwrap();
    // The staged path (scores captured) gives the same numbers as the fused one.
    assert_eq!(plain.hidden, hooked.hidden);
    for l in 0..3 {
        assert_eq!(plain.layers[l].attention, hooked.layers[l].attention);
    }
    assert_eq!(hooked.captures.len(), 6);
}

#[test]
fn zero_ablation_zeroes_z_and_changes_only_downstream() {
    let m = textbook(false);
    let clean = model::run(
        m.as_ref(),
        "attention is all you need",
        None,
        &Default::default(),
    )
    .unwrap();
    let mut opts = capture_all(m.as_ref(), &[HookPoint::AttnZ]);
    opts.hooks.edits.push(Intervention::zero_heads(1, vec![2]));
    let ablated = model::run(m.as_ref(), "attention is all you need", None, &opts).unwrap();
    let z = ablated.captures.z(1).unwrap();
    assert_eq!(
        z.index_axis(Axis(0), 2)
            .iter()
            .map(|v| v.abs())
            .sum::<f32>(),
        0.0
    );
    assert!(z.index_axis(Axis(0), 1).iter().any(|v| *v != 0.0));
    assert_eq!(ablated.hidden[1], clean.hidden[1]);
    assert_ne!(ablated.hidden[2], clean.hidden[2]);
    assert_eq!(
        ablated.interventions,
        vec!["zero heads [2] of attn.z at layer 1".to_string()]
    );
    // Attention in the ablated layer itself is unchanged (the edit is after the pattern).
    assert_eq!(ablated.layers[1].attention, clean.layers[1].attention);

    // The same through an arbitrary edit function.
    let mut opts = ForwardOptions::default();
    opts.hooks.edits.push(Intervention {
        layer: 1,
        point: HookPoint::AttnZ,
        edit: Edit::Apply(std::sync::Arc::new(|t| {
            t.index_axis_mut(Axis(0), 2).fill(0.0)
        })),
    });
    let again = model::run(m.as_ref(), "attention is all you need", None, &opts).unwrap();
    assert_eq!(again.hidden, ablated.hidden);
}

#[test]
fn resume_from_a_cached_layer_equals_a_full_run() {
    let m = textbook(true);
    let text = "the quick brown fox jumps";
    let clean = model::run(m.as_ref(), text, None, &Default::default()).unwrap();
    let same = m.resume(&clean, 2, &Default::default()).unwrap();
    assert_eq!(same.hidden, clean.hidden);
    let mut opts = ForwardOptions::default();
    opts.hooks
        .edits
        .push(Intervention::mean_heads(2, vec![0, 3]));
    let full = model::run(m.as_ref(), text, None, &opts).unwrap();
    let resumed = m.resume(&clean, 2, &opts).unwrap();
    assert_eq!(full.hidden, resumed.hidden);
    assert_eq!(resumed.n_layers(), 3);
    assert_ne!(resumed.hidden[3], clean.hidden[3]);
    assert!(m.resume(&clean, 9, &opts).is_err());
}

#[test]
fn patching_a_residual_stream_replaces_it() {
    let m = textbook(false);
    let a = model::run(m.as_ref(), "red apples", None, &Default::default()).unwrap();
    let b = model::run(m.as_ref(), "big dog", None, &Default::default()).unwrap();
    assert_eq!(a.n_tokens(), b.n_tokens());
    let mut opts = ForwardOptions::default();
    opts.hooks.edits.push(Intervention {
        layer: 1,
        point: HookPoint::ResidPre,
        edit: Edit::Replace(b.hidden[1].clone().into_dyn()),
    });
    let patched = m.resume(&a, 1, &opts).unwrap();
    assert_eq!(patched.hidden[1], b.hidden[1]);
    assert_eq!(patched.hidden[3], b.hidden[3]);
    // A wrong shape is an error, not a panic.
    let mut opts = ForwardOptions::default();
    opts.hooks.edits.push(Intervention {
        layer: 0,
        point: HookPoint::ResidPre,
        edit: Edit::Replace(Array2::<f32>::zeros((2, 2)).into_dyn()),
    });
    let err = model::run(m.as_ref(), "red apples", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape"), "{err}");
}
