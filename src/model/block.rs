//! The Transformer block described as data, and the one loop that runs it for every architecture.
//!
//! A [`Stack`] is a list of [`Block`]s plus what they share: where the norms sit ([`Placement`]), the shape of the
//! attention ([`AttnSpec`]) and, for decoders of an encoder–decoder, of the cross-attention. A block is:
//!
//! ```text
//! pre-LN  (GPT-2, Llama, T5):   mid  = x + Attn(LN₁(x))             post = mid + MLP(LN₂(mid))
//! post-LN (paper, BERT, BART):  mid  = LN₁(x + Attn(x))             post = LN₂(mid + MLP(mid))
//! decoder with cross-attention: after mid, mid' = mid + Cross(LN_c(mid), memory)   (post-LN: LN_c(mid + Cross(mid)))
//! ```
//!
//! Every step passes its tensor through the hook points of [`crate::hooks`] (capture, edit); with no hooks the loop
//! does no extra work.

use super::attention::{self, CROSS_POINTS, SELF_POINTS, Site};
pub use super::attention::{AttnSpec, AttnWeights};
pub use super::linear::Linear;
use crate::hooks::{Captures, HookPoint, Hooks};
use crate::numeric::ops::{self, Activation};
use crate::tokenize::TokenInfo;
use crate::trace::{ForwardOptions, LayerTrace, Positional, Trace};
use crate::weights::source::Vb;
use crate::{Error, Result};
use ndarray::{Array1, Array2, Array3, ArrayView2, CowArray, Ix2};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `(x − mean) / √(var + eps) · γ + β`.
    LayerNorm,
    /// `x / √(mean(x²) + eps) · γ`.
    RmsNorm,
}

#[derive(Debug, Clone)]
pub struct Norm {
    pub kind: NormKind,
    pub weight: Array1<f32>,
    pub bias: Option<Array1<f32>>,
    pub eps: f32,
}

impl Norm {
    /// LayerNorm `name.weight`/`name.bias` (or the old `gamma`/`beta` spellings) of width `n`.
    pub fn layer_norm(vb: &Vb, name: &str, n: usize, eps: f32) -> Result<Self> {
        let (w, b) =
            if !vb.contains(&format!("{name}.weight")) && vb.contains(&format!("{name}.gamma")) {
                ("gamma", "beta")
            } else {
                ("weight", "bias")
            };
        Ok(Norm {
            kind: NormKind::LayerNorm,
            weight: vb.vector(&format!("{name}.{w}"), n)?,
            bias: Some(vb.vector(&format!("{name}.{b}"), n)?),
            eps,
        })
    }
    /// RMSNorm `name` (a weight vector of width `n`; `name` is the full tensor name).
    pub fn rms_norm(vb: &Vb, name: &str, n: usize, eps: f32) -> Result<Self> {
        Ok(Norm {
            kind: NormKind::RmsNorm,
            weight: vb.vector(name, n)?,
            bias: None,
            eps,
        })
    }
    /// LayerNorm with γ = 1, β = 0.
    pub fn identity_layer_norm(n: usize, eps: f32) -> Self {
        Norm {
            kind: NormKind::LayerNorm,
            weight: Array1::ones(n),
            bias: Some(Array1::zeros(n)),
            eps,
        }
    }
    pub fn apply(&self, x: &ArrayView2<f32>) -> Array2<f32> {
        match self.kind {
            NormKind::LayerNorm => {
                let zeros;
                let b = match &self.bias {
                    Some(b) => b,
                    None => {
                        zeros = Array1::zeros(self.weight.len());
                        &zeros
                    }
                };
                ops::layer_norm(x, &self.weight, b, self.eps)
            }
            NormKind::RmsNorm => ops::rms_norm(x, &self.weight, self.eps),
        }
    }
}

/// Where the norms of a block sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Before each sub-layer, inside the residual branch (GPT-2, Llama, T5).
    Pre,
    /// After each residual add (the paper, BERT, BART, Marian).
    Post,
}

/// The feed-forward sub-layer.
#[derive(Debug)]
pub enum Mlp {
    /// `down(act(up(x)))`.
    Plain {
        up: Linear,
        act: Activation,
        down: Linear,
    },
    /// `down(act(gate(x)) · up(x))` (SwiGLU with SiLU, gated GELU).
    Gated {
        gate: Linear,
        up: Linear,
        act: Activation,
        down: Linear,
    },
}

/// A cross-attention sub-layer: its norm and its projections (keys and values read the encoder output).
#[derive(Debug)]
pub struct Cross {
    pub norm: Norm,
    pub attn: AttnWeights,
}

/// One block's weights. With [`Placement::Pre`] `ln_attn`/`ln_mlp` come before their sub-layers, with
/// [`Placement::Post`] after the residual adds.
#[derive(Debug)]
pub struct Block {
    pub ln_attn: Norm,
    pub attn: AttnWeights,
    pub cross: Option<Cross>,
    pub ln_mlp: Norm,
    pub mlp: Mlp,
}

/// A stack of blocks and what they share.
#[derive(Debug)]
pub struct Stack {
    pub placement: Placement,
    pub attn: AttnSpec,
    /// The cross-attention's shape, for decoders that read an encoder.
    pub cross: Option<AttnSpec>,
    pub blocks: Vec<Block>,
}

/// What the loop needs besides the stream: rotary tables, the encoder output for cross-attention, position offsets,
/// score biases.
#[derive(Default)]
pub struct Env<'a> {
    /// `(cos, sin)` for every position (rotary models).
    pub rope: Option<(&'a Array2<f32>, &'a Array2<f32>)>,
    /// The encoder output `[m, d]` that cross-attention reads.
    pub memory: Option<&'a Array2<f32>>,
    /// Absolute position of the first row of the stream.
    pub q_offset: usize,
    /// Self-attention score bias `[heads, n, n]`, the same for every layer (T5).
    pub self_bias: Option<&'a Array3<f32>>,
    /// Incremental decoding: the earlier positions' keys and values (`q_offset` must equal their count).
    pub past: Option<&'a KvCache>,
    /// Return every block's keys and values (past included) in [`StackRun::kv`].
    pub keep_kv: bool,
}

/// Each block's self-attention keys (rotated) and values `[positions, kv_heads·head_dim]`, for incremental decoding.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub k: Vec<Array2<f32>>,
    pub v: Vec<Array2<f32>>,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.k.first().map_or(0, |k| k.nrows())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The first `n` positions (all of them when fewer are cached).
    pub fn truncated(&self, n: usize) -> KvCache {
        let first = |a: &Vec<Array2<f32>>| -> Vec<Array2<f32>> {
            a.iter()
                .map(|x| x.slice(ndarray::s![..n.min(x.nrows()), ..]).to_owned())
                .collect()
        };
        KvCache {
            k: first(&self.k),
            v: first(&self.v),
        }
    }
}

/// What running (part of) a stack produced.
pub struct StackRun {
    /// The stream entering each block run, then the stream leaving the last (`blocks run + 1` entries).
    pub hidden: Vec<Array2<f32>>,
    pub layers: Vec<LayerTrace>,
    pub captures: Captures,
    /// With [`Env::keep_kv`]: every block's keys and values.
    pub kv: Option<KvCache>,
}

impl StackRun {
    /// The trace of this run over `tokens`, timed from `start`.
    pub fn into_trace(
        self,
        tokens: Vec<TokenInfo>,
        positional: Positional,
        start: Instant,
    ) -> Trace {
        let mut trace = Trace::new(
            tokens,
            self.hidden,
            self.layers,
            positional,
            start.elapsed(),
        );
        trace.captures = self.captures;
        trace
    }
}

/// The input of a sub-layer: `norm(x)` in pre-LN blocks, `x` itself (borrowed) in post-LN blocks.
fn sublayer_input<'x>(pre: bool, norm: &Norm, x: &'x Array2<f32>) -> CowArray<'x, f32, Ix2> {
    if pre {
        CowArray::from(norm.apply(&x.view()))
    } else {
        CowArray::from(x.view())
    }
}

/// A residual add, then the norm in post-LN blocks.
fn add_residual(pre: bool, norm: &Norm, x: &Array2<f32>, update: &Array2<f32>) -> Array2<f32> {
    if pre {
        x + update
    } else {
        norm.apply(&(x + update).view())
    }
}

/// Capture and/or edit a `[n, x]` tensor at a hook point.
fn hook2(
    hooks: &Hooks,
    point: HookPoint,
    l: usize,
    x: &mut Array2<f32>,
    caps: &mut Captures,
) -> Result<()> {
    if hooks.edited(point, l) {
        hooks.apply(point, l, &mut x.view_mut().into_dyn())?;
    }
    if hooks.captures(point, l) {
        caps.insert(point, l, x.clone().into_dyn());
    }
    Ok(())
}

impl Mlp {
    fn forward(
        &self,
        x: &ArrayView2<f32>,
        hooks: &Hooks,
        l: usize,
        caps: &mut Captures,
    ) -> Result<Array2<f32>> {
        let post = match self {
            Mlp::Plain { up, act, .. } => {
                let mut pre = up.forward(x);
                hook2(hooks, HookPoint::MlpPre, l, &mut pre, caps)?;
                act.apply_in_place(&mut pre);
                pre
            }
            Mlp::Gated { gate, up, act, .. } => {
                let mut g = gate.forward(x);
                hook2(hooks, HookPoint::MlpPre, l, &mut g, caps)?;
                let mut u = up.forward(x);
                hook2(hooks, HookPoint::MlpPreLinear, l, &mut u, caps)?;
                act.apply_in_place(&mut g);
                g *= &u;
                g
            }
        };
        let mut post = post;
        hook2(hooks, HookPoint::MlpPost, l, &mut post, caps)?;
        let down = match self {
            Mlp::Plain { down, .. } | Mlp::Gated { down, .. } => down,
        };
        Ok(down.forward(&post.view()))
    }
}

impl Stack {
    fn site<'a>(&self, l: usize, hooks: &'a Hooks, env: &Env<'a>, cross: bool) -> Site<'a> {
        Site {
            layer: l,
            hooks,
            points: if cross { CROSS_POINTS } else { SELF_POINTS },
            rope: if cross { None } else { env.rope },
            q_offset: if cross { 0 } else { env.q_offset },
            score_bias: if cross { None } else { env.self_bias },
            past: match (cross, env.past) {
                (false, Some(c)) => c.k.get(l).zip(c.v.get(l)),
                _ => None,
            },
            keep_pattern: true,
        }
    }

    /// Run blocks `from..` on `x` (the stream entering block `from`).
    pub fn run(
        &self,
        mut x: Array2<f32>,
        from: usize,
        opts: &ForwardOptions,
        env: &Env,
    ) -> Result<StackRun> {
        let hooks = &opts.hooks;
        let total = self.blocks.len();
        let mut caps = Captures::default();
        let mut hidden = Vec::with_capacity(total + 1 - from.min(total));
        let mut layers = Vec::with_capacity(total - from.min(total));
        let mut kv = env.keep_kv.then(KvCache::default);
        let end = opts.stop_after.map_or(total, |s| (s + 1).min(total));
        for (l, b) in self.blocks.iter().enumerate().take(end).skip(from) {
            hook2(hooks, HookPoint::ResidPre, l, &mut x, &mut caps)?;
            hidden.push(x.clone());
            let mut site = self.site(l, hooks, env, false);
            site.keep_pattern = opts.keep_attention;
            let pre = self.placement == Placement::Pre;
            let a_in = sublayer_input(pre, &b.ln_attn, &x);
            let att = attention::attend(
                &self.attn,
                &b.attn,
                &a_in.view(),
                &a_in.view(),
                &site,
                &mut caps,
            )?;
            drop(a_in);
            if let Some(c) = kv.as_mut() {
                c.k.push(att.k);
                c.v.push(att.v);
            }
            let mut attn_out = att.out;
            hook2(hooks, HookPoint::AttnOut, l, &mut attn_out, &mut caps)?;
            let mut mid = add_residual(pre, &b.ln_attn, &x, &attn_out);
            hook2(hooks, HookPoint::ResidMid, l, &mut mid, &mut caps)?;
            let (trace_mid, cross_pattern) = match (&b.cross, &self.cross) {
                (Some(c), Some(spec)) => {
                    let memory = env.memory.ok_or_else(|| {
                        Error::Input(
                            "a decoder block with cross-attention needs the encoder output".into(),
                        )
                    })?;
                    let csite = self.site(l, hooks, env, true);
                    let normed;
                    let c_in = if pre {
                        normed = c.norm.apply(&mid.view());
                        normed.view()
                    } else {
                        mid.view()
                    };
                    let catt =
                        attention::attend(spec, &c.attn, &c_in, &memory.view(), &csite, &mut caps)?;
                    let mut cout = catt.out;
                    hook2(hooks, HookPoint::CrossOut, l, &mut cout, &mut caps)?;
                    let mut after = add_residual(pre, &c.norm, &mid, &cout);
                    hook2(hooks, HookPoint::ResidCross, l, &mut after, &mut caps)?;
                    let before = std::mem::replace(&mut mid, after);
                    (before, Some(catt.pattern))
                }
                _ => (mid.clone(), None),
            };
            let m_in = sublayer_input(pre, &b.ln_mlp, &mid);
            let mut mlp_out = b.mlp.forward(&m_in.view(), hooks, l, &mut caps)?;
            drop(m_in);
            hook2(hooks, HookPoint::MlpOut, l, &mut mlp_out, &mut caps)?;
            x = add_residual(pre, &b.ln_mlp, &mid, &mlp_out);
            hook2(hooks, HookPoint::ResidPost, l, &mut x, &mut caps)?;
            let mut lt = LayerTrace::record(
                att.pattern,
                opts.keep_attention,
                trace_mid,
                &attn_out,
                &mlp_out,
            );
            if opts.keep_attention {
                lt.cross_attention = cross_pattern;
            }
            layers.push(lt);
            opts.report(l + 1, total);
        }
        hidden.push(x);
        Ok(StackRun {
            hidden,
            layers,
            captures: caps,
            kv,
        })
    }

    /// The self-attention keys and values of every block, recomputed from the streams entering them (`hidden[l]`
    /// `[n, d]`, a clean run's): the cache a run of those positions would have kept.
    pub fn kv_of(&self, hidden: &[Array2<f32>], env: &Env) -> Result<KvCache> {
        let mut c = KvCache::default();
        for (l, b) in self.blocks.iter().enumerate() {
            let x = hidden.get(l).ok_or_else(|| {
                Error::Input(format!("no stream entering block {l} to take keys from"))
            })?;
            let a_in = sublayer_input(self.placement == Placement::Pre, &b.ln_attn, x);
            let (k, v) = attention::keys_values(&self.attn, &b.attn, &a_in.view(), env.rope, 0);
            c.k.push(k);
            c.v.push(v);
        }
        Ok(c)
    }

    /// The attention pattern `[heads, n, n]` of block `layer` recomputed from the stream entering it.
    pub fn pattern(
        &self,
        layer: usize,
        resid_in: &Array2<f32>,
        width: usize,
        env: &Env,
    ) -> Result<Array3<f32>> {
        let b = super::checked_block(&self.blocks, layer, resid_in, width)?;
        let hooks = Hooks::default();
        let site = self.site(layer, &hooks, env, false);
        let a_in = sublayer_input(self.placement == Placement::Pre, &b.ln_attn, resid_in);
        let mut caps = Captures::default();
        Ok(attention::attend(
            &self.attn,
            &b.attn,
            &a_in.view(),
            &a_in.view(),
            &site,
            &mut caps,
        )?
        .pattern)
    }

    /// The attention `[n, n]` of each head in `heads` of block `layer`, recomputed from the stream entering it, one
    /// head's matrix at a time (what a long input can afford).
    pub fn head_patterns(
        &self,
        layer: usize,
        resid_in: &Array2<f32>,
        width: usize,
        env: &Env,
        heads: &[usize],
    ) -> Result<Vec<Array2<f32>>> {
        let b = super::checked_block(&self.blocks, layer, resid_in, width)?;
        let hooks = Hooks::default();
        let site = self.site(layer, &hooks, env, false);
        let a_in = sublayer_input(self.placement == Placement::Pre, &b.ln_attn, resid_in);
        attention::head_patterns(&self.attn, &b.attn, &a_in.view(), &site, heads)
    }
}
