//! The binary's interpretability and encoder–decoder commands (`heads`, `generate`, `sweep`, `attribute`, and the
//! encoder–decoder paths of `dump` and `generate`), split from `main.rs` to keep each file short.

use super::*;

/// The model the flags name, of either kind (config.json read once); a one-stack model is checked against the
/// flags that apply only to some models.
pub(crate) fn load_either(m: &attn::cli::ModelArgs) -> Result<model::Loaded> {
    let spec = m.spec();
    let loaded = model::load_any(&spec, &m.textbook(), m.encoder_decoder_layers())
        .with_context(|| format!("cannot load model `{spec}`"))?;
    if let model::Loaded::Single(x) = &loaded {
        m.check_applies(x.info())?;
    }
    Ok(loaded)
}

/// `attn generate` for an encoder–decoder: greedy decoding of the source text.
pub(crate) fn generate_encdec(m: &model::encdec::EncoderDecoder, a: &GenerateArgs) -> Result<()> {
    if a.temperature != 0.0 || a.out.is_some() {
        bail!(
            "encoder–decoders decode greedily here: --temperature and --out apply to decoder-only models"
        );
    }
    let (ids, text) = m.translate(&a.text, a.max_new)?;
    if a.json {
        emit(&format!(
            "{}\n",
            serde_json::json!({"ids": ids, "text": text})
        ))
    } else {
        emit(&format!("{}\n", attn::tokenize::escape_label(&text)))
    }
}

/// Without `--target`, a dump decodes at most this many tokens greedily.
pub(crate) const DUMP_MAX_NEW: usize = 32;

/// `attn dump` for an encoder–decoder: the decoder input is the shifted target, else the greedy output.
pub(crate) fn dump_encdec(m: &model::encdec::EncoderDecoder, a: &DumpArgs) -> Result<()> {
    let Some(text) = a.input.text.as_deref() else {
        bail!(
            "an encoder–decoder dump needs --text (the source); --ids is for decoder-only and encoder models"
        );
    };
    if attn::export::Format::from(a.format) != attn::export::Format::Npy
        || a.qkv
        || a.run.ablate.is_some()
        || a.input.text_b.is_some()
    {
        bail!("encoder–decoder dumps write .npy only, without --qkv, --ablate or --text-b");
    }
    let src = m.encode_source(text)?;
    let tgt = match &a.target {
        Some(t) => m.decoder_input(t)?,
        None => {
            let mut ids = vec![m.decoder_start];
            ids.extend(m.greedy(&src, DUMP_MAX_NEW)?);
            ids.truncate(m.info.max_len);
            m.target_ids(&ids)
        }
    };
    let opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    let trace = m.forward(&src, &tgt, &opts)?;
    let files = attn::export::encdec::dump(m, &trace, text, a.target.as_deref(), &a.out, a.force)?;
    let mut out = format!(
        "{}: {} source tokens, {} decoder tokens\n",
        attn::tokenize::escape_text(&m.info.name),
        trace.source.n_tokens(),
        trace.target.n_tokens()
    );
    for line in attn::export::written_summary(&a.out, &files) {
        let _ = writeln!(out, "{line}");
    }
    emit(&out)
}

pub(crate) fn heads(a: HeadsArgs) -> Result<()> {
    use attn::analysis::scans;
    let m = load(&a.model)?;
    let info = m.info();
    // T = 50, shorter only for a model whose context cannot hold 2T tokens (the tiny test fixtures).
    let t = scans::PROBE_T.min(info.max_len / 2);
    if t < 2 {
        bail!(
            "{} takes at most {} tokens: too few for the induction probe",
            info.name,
            info.max_len
        );
    }
    let probe = scans::probe_ids(&m.tokenizer().ordinary_ids(), t, scans::PROBE_SEED);
    let opts = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    };
    let trace = model::run_ids(m.as_ref(), &probe, &opts)?;
    let on_probe = scans::scan_heads(m.as_ref(), &trace, Some(t))?;
    let on_text = match &a.text {
        Some(t) => {
            let tt = model::run(m.as_ref(), t, None, &opts)?;
            let ids: Vec<u32> = tt.tokens.iter().map(|t| t.id).collect();
            Some((ids, scans::scan_heads(m.as_ref(), &tt, None)?))
        }
        None => None,
    };
    if a.json {
        let mut doc = serde_json::json!({"probe": {"ids": probe}, "heads": on_probe});
        if let Some((ids, s)) = &on_text {
            doc["text"] = serde_json::json!({"ids": ids, "heads": s});
        }
        return emit(&format!("{}\n", serde_json::to_string(&doc)?));
    }
    emit(&show::render_head_scans(
        info,
        t,
        &on_probe,
        on_text.as_ref().map(|(_, s)| s.as_slice()),
    ))
}

pub(crate) fn generate(a: GenerateArgs) -> Result<()> {
    use attn::model::generate::{self as generation, Sampling};
    let m = match load_either(&a.model)? {
        model::Loaded::EncoderDecoder(m) => return generate_encdec(&m, &a),
        model::Loaded::Single(m) => m,
    };
    let prompt = m.tokenizer().encode(&a.text, None)?.ids;
    let sampling = Sampling {
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.sample_seed,
    };
    // One branch per kind of model; encoder–decoders add theirs here.
    let g = match (m.info().causal, m.info().arch) {
        (true, _) => generation::generate(m.as_ref(), &prompt, a.max_new, &sampling, true)?,
        (false, _) => bail!(
            "{} is an encoder: `attn generate` needs a decoder or an encoder–decoder (textbook-dates)",
            m.info().name
        ),
    };
    if let Some(dir) = &a.out {
        let all: Vec<u32> = g.prompt.iter().chain(&g.new_ids).copied().collect();
        let trace = model::run_ids(m.as_ref(), &all, &ForwardOptions::default())?;
        attn::export::dump(
            m.as_ref(),
            &trace,
            dir,
            &attn::export::DumpOptions::new(attn::export::Format::Npy, false),
        )?;
    }
    if a.json {
        let doc = serde_json::json!({"ids": g.new_ids, "text": g.text});
        return emit(&format!("{doc}\n"));
    }
    let mean = g.step_ms.iter().sum::<f64>() / g.step_ms.len().max(1) as f64;
    emit(&format!(
        "{}{}\n({} new tokens; prompt {:.1} ms, {:.1} ms per token with the KV cache, attention recorded)\n",
        attn::tokenize::escape_label(&a.text),
        attn::tokenize::escape_label(&g.text),
        g.new_ids.len(),
        g.prompt_ms,
        mean
    ))
}

pub(crate) fn sweep(a: SweepArgs) -> Result<()> {
    let m = load(&a.model)?;
    let opts = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    };
    let clean = model::run(m.as_ref(), &a.text, None, &opts)?;
    let tty = std::io::stderr().is_terminal();
    let progress = |d: usize, t: usize| {
        if tty && (d.is_multiple_of(10) || d == t) {
            eprint!("\rablating head {d}/{t}");
        }
    };
    let start = std::time::Instant::now();
    let s = attn::analysis::ablation::sweep(m.as_ref(), &clean, a.position, a.mean, &progress)?;
    if tty {
        eprintln!();
    }
    if a.json {
        return emit(&format!("{}\n", serde_json::to_string(&s)?));
    }
    emit(&show::render_sweep(&s, m.tokenizer(), start.elapsed()))
}

pub(crate) fn attribute(a: AttributeArgs) -> Result<()> {
    let m = load(&a.model)?;
    let token = match &a.token {
        Some(t) => Some(m.tokenizer().inner().token_to_id(t).with_context(|| {
            format!(
                "--token `{}` is not one token of the vocabulary",
                attn::tokenize::escape_label(t)
            )
        })?),
        None => None,
    };
    let at = attn::analysis::attribution::attribute(m.as_ref(), &a.text, a.position, token)?;
    if a.json {
        let doc = serde_json::json!({"token": at.text, "id": at.token, "position": at.position,
            "logit": at.logit, "components": at.components});
        return emit(&format!("{doc}\n"));
    }
    emit(&show::render_attribution(&at))
}
