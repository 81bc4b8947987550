//! `attn explain` as plain text: the computation of one weight, step by step.

use super::WeightComputation;
use std::fmt::Write as _;

fn vec_line(name: &str, v: &[f32], max: usize) -> String {
    let shown: Vec<String> = v.iter().take(max).map(|x| format!("{x:.4}")).collect();
    let more = if v.len() > max {
        format!(" … ({} dims)", v.len())
    } else {
        String::new()
    };
    format!("{name:<10}[{}]{more}\n", shown.join(", "))
}

/// The computation as text; `labels` are the tokens' display labels (already escaped).
pub fn render(c: &WeightComputation, labels: &[String], layer: usize) -> String {
    let lab = |i: usize| labels.get(i).map(String::as_str).unwrap_or("?");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "layer {layer} · head {} · query {} «{}» · key {} «{}»{}",
        c.head,
        c.query,
        lab(c.query),
        c.key,
        lab(c.key),
        c.kv_head
            .map(|g| format!(" · k, v from KV head {g}"))
            .unwrap_or_default()
    );
    const MAX: usize = 16;
    if let Some(r) = &c.rotary {
        s.push_str("rotary: before the rotation\n");
        s.push_str(&vec_line("q pre", &r.q_pre, MAX));
        s.push_str(&vec_line("k pre", &r.k_pre, MAX));
        s.push_str(&vec_line("θ query", &r.angles_q, MAX));
        s.push_str(&vec_line("θ key", &r.angles_k, MAX));
    }
    s.push_str(&vec_line("q", &c.q, MAX));
    s.push_str(&vec_line("k", &c.k, MAX));
    s.push_str(&vec_line("q⊙k", &c.qk, MAX));
    let top: Vec<String> = c
        .top_dims
        .iter()
        .map(|&d| format!("d{d} {:+.4}", c.qk[d]))
        .collect();
    let _ = writeln!(s, "largest |q⊙k|: {}", top.join(", "));
    let _ = writeln!(
        s,
        "score q·k = {:.6} · scale {:.6} = scaled {:.6}",
        c.score, c.scale, c.scaled
    );
    if c.masked {
        let _ = writeln!(
            s,
            "masked: key {} comes after query {} (decoder): −∞, weight 0",
            c.key, c.query
        );
    }
    let _ = writeln!(s, "softmax over the row (max {:.6}):", c.row_max);
    let _ = writeln!(s, "  key  token          scaled      exp(x−max)  weight");
    for (j, sc) in c.row_scaled.iter().enumerate() {
        let mark = if j == c.key { "▶" } else { " " };
        let scs = sc.map_or("-inf".to_string(), |v| format!("{v:.6}"));
        let _ = writeln!(
            s,
            "{mark}{j:>4}  {:<14} {scs:>10}  {:>10.6}  {:.6}",
            crate::show::fit(lab(j), 14),
            c.row_exp[j],
            c.row_weights[j]
        );
    }
    let _ = writeln!(
        s,
        "Σ exp = {:.6} · weight = {:.6} / {:.6} = {:.6}",
        c.exp_sum, c.exp, c.exp_sum, c.weight
    );
    s.push_str(&vec_line("v (key)", &c.v, MAX));
    s.push_str(&vec_line("α·v", &c.weighted_v, MAX));
    s.push_str(&vec_line("z", &c.z, MAX));
    if let (Some(o), Some(n)) = (&c.head_out, c.head_out_norm) {
        s.push_str(&vec_line("W_O z", o, MAX));
        let _ = writeln!(
            s,
            "‖W_O z‖ = {n:.6} (what the head adds to the residual stream)"
        );
    }
    s
}
