//! The `attn` binary: parse the command line and dispatch. The only place that touches the terminal's modes.

use anyhow::{Context, Result, bail};
use attn::cli::{
    AttributeArgs, Cli, ColorChoice, Command, DumpArgs, ExplainArgs, ExploreArgs, GenerateArgs,
    HeadsArgs, InfoArgs, ShowArgs, SweepArgs,
};
use attn::model::layer_attention;
use attn::model::{self, Model};
use attn::show::{self, Colors};
use attn::trace::ForwardOptions;
use clap::Parser;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => explore(cli.explore),
        Some(Command::Explore(a)) => explore(a),
        Some(Command::Dump(a)) => dump(a),
        Some(Command::Show(a)) => show_cmd(a),
        Some(Command::Heads(a)) => heads(a),
        Some(Command::Generate(a)) => generate(a),
        Some(Command::Sweep(a)) => sweep(a),
        Some(Command::Attribute(a)) => attribute(a),
        Some(Command::Info(a)) => info(a),
        Some(Command::Models) => models(),
        Some(Command::Explain(a)) => explain(a),
    };
    if let Err(e) = result {
        // Messages quote file names, tensor names and metadata: escape what could drive the terminal.
        eprintln!(
            "attn: error: {}",
            attn::tokenize::escape_lines(&format!("{e:#}"))
        );
        std::process::exit(1);
    }
}

/// A warning on stderr, escaped.
fn warn(msg: &str) {
    eprintln!("attn: warning: {}", attn::tokenize::escape_lines(msg));
}

/// Warn about NaN/Inf in a trace, or fail with `--strict`.
fn check_finite(trace: &attn::trace::Trace, strict: bool) -> Result<()> {
    if let Some(nf) = attn::analysis::first_non_finite(trace) {
        if strict {
            bail!("{nf} (--strict)");
        }
        warn(&format!(
            "{nf}; values shown from there on are not meaningful"
        ));
    }
    Ok(())
}

/// Refuse texts whose length alone is over the model's limit, then count tokens and plan the forward pass within the
/// memory budget.
fn plan_run(
    m: &dyn Model,
    input: (Option<&str>, Option<&str>, Option<&str>),
    attention: model::budget::AttentionUse,
    budget: u64,
    what: &str,
) -> Result<ForwardOptions> {
    let info = m.info();
    let (text, ids, text_b) = input;
    let n = match (text, ids) {
        (_, Some(ids)) => attn::tokenize::parse_ids(ids)?.len(),
        (Some(text), None) => {
            model::budget::check_text_bytes(info, text.len() + text_b.map_or(0, str::len))?;
            m.tokenizer().encode(text, text_b)?.ids.len()
        }
        (None, None) => bail!("give --text or --ids"),
    };
    let top_k = if info.causal { 5 } else { 0 };
    Ok(model::budget::plan(
        info, n, attention, top_k, budget, what,
    )?)
}

/// Print to stdout; a closed pipe (`attn show ... | head`) ends the program quietly instead of panicking.
fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r.context("cannot write to standard output"),
    }
}

fn load(m: &attn::cli::ModelArgs) -> Result<Box<dyn Model>> {
    let spec = m.spec();
    model::load(&spec, &m.textbook()).with_context(|| format!("cannot load model `{spec}`"))
}

fn colors(choice: ColorChoice) -> Colors {
    let truecolor =
        std::env::var("COLORTERM").is_ok_and(|v| v.contains("truecolor") || v.contains("24bit"));
    let pick = if truecolor {
        Colors::TrueColor
    } else {
        Colors::Ansi256
    };
    match choice {
        ColorChoice::Never => Colors::None,
        ColorChoice::Always => pick,
        ColorChoice::Auto => {
            if std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            {
                pick
            } else {
                Colors::None
            }
        }
    }
}

/// Load the explorer's model. With no `--model`, a default that fails to load falls back to the textbook model
/// (with a note in the status line) rather than refusing to start.
fn load_for_explorer(m: &attn::cli::ModelArgs) -> Result<(Box<dyn Model>, Option<String>)> {
    if m.model.is_some() {
        return Ok((load(m)?, None));
    }
    let spec = m.spec();
    match model::load(&spec, &m.textbook()) {
        Ok(x) => Ok((x, None)),
        Err(e) if spec != "textbook" => {
            let tb =
                model::load("textbook", &m.textbook()).context("cannot load the textbook model")?;
            Ok((
                tb,
                Some(format!(
                    "could not open the default model `{spec}` ({e}); using textbook (random weights)"
                )),
            ))
        }
        Err(e) => Err(e).context("cannot load the textbook model"),
    }
}

fn explore(a: ExploreArgs) -> Result<()> {
    use attn::tui::{self, app::ColorMode, event};
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the explorer needs a terminal; without one use `attn show --text \"...\"` or `attn dump --text \"...\" --out DIR`"
        );
    }
    let (m, note) = load_for_explorer(&a.model)?;
    let model: std::sync::Arc<dyn Model> = std::sync::Arc::from(m);
    let truecolor =
        std::env::var("COLORTERM").is_ok_and(|v| v.contains("truecolor") || v.contains("24bit"));
    let rich = if truecolor {
        ColorMode::TrueColor
    } else {
        ColorMode::Ansi256
    };
    let color = match a.color {
        ColorChoice::Never => ColorMode::Mono,
        ColorChoice::Always => rich,
        ColorChoice::Auto if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) => {
            ColorMode::Mono
        }
        ColorChoice::Auto => rich,
    };

    // Restore the terminal before any panic message is printed.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tui::restore_terminal();
        previous(info);
    }));

    let (tx, rx) = std::sync::mpsc::channel();
    tui::spawn_signal_thread(tx.clone()).context("cannot install signal handlers")?;
    if let Err(e) = tui::enter_terminal() {
        tui::restore_terminal();
        return Err(e).context("cannot set up the terminal");
    }
    let result = (|| -> Result<()> {
        let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
        let mut terminal = ratatui::Terminal::new(backend)?;
        let size = terminal.size()?;
        let text = a.text.as_deref().unwrap_or(tui::DEFAULT_TEXT);
        let mut app = tui::new_app(
            model.info(),
            text,
            a.text_b.as_deref(),
            color,
            (size.width, size.height),
        );
        if let Some(n) = note {
            app.hint = Some(attn::tokenize::escape_text(&n));
        }
        let dump_root = attn::export::dump_root(a.dump_dir.as_deref());
        app.dump_root = dump_root.clone();
        let env = tui::Env {
            model: model.clone(),
            worker: tui::worker::Worker::spawn_with_budget(
                model.clone(),
                tx.clone(),
                a.budget.mem_budget,
            ),
            dump_root,
        };
        event::spawn_input_thread(tx.clone());
        let mut source = event::ChannelSource { rx };
        tui::run(&mut terminal, &mut app, &mut source, &env)?;
        Ok(())
    })();
    tui::restore_terminal();
    result?;
    // A quit asked by SIGTERM/SIGHUP/SIGINT/SIGQUIT exits with 128 + the signal's number.
    if let Some(sig) = tui::quit_signal() {
        std::process::exit(128 + sig);
    }
    Ok(())
}

/// SIGINT, SIGTERM, SIGHUP during a dump: remove the staging area (and the lock) of the dump in flight, then exit with
/// 128 + the signal's number.
fn clean_up_dumps_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            attn::export::staged::abort_all();
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// A progress printer on stderr (only when stderr is a terminal and `--quiet` was not given).
fn progress_printer(label: &'static str) -> impl Fn(usize, usize) + Send + Sync + 'static {
    let start = std::time::Instant::now();
    move |done, total| {
        let line = attn::export::progress_line(label, done, total, start.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        if done >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// The encoder–decoder the model flags name, if they name one.
fn load_encdec(m: &attn::cli::ModelArgs) -> Result<Option<model::encdec::EncoderDecoder>> {
    let spec = m.spec();
    model::load_encoder_decoder(&spec, &m.textbook(), m.encoder_decoder_layers())
        .with_context(|| format!("cannot load model `{spec}`"))
}

/// `attn generate` for an encoder–decoder: greedy decoding of the source text.
fn generate_encdec(m: &model::encdec::EncoderDecoder, a: &GenerateArgs) -> Result<()> {
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
const DUMP_MAX_NEW: usize = 32;

/// `attn dump` for an encoder–decoder: the decoder input is the shifted target, else the greedy output.
fn dump_encdec(m: &model::encdec::EncoderDecoder, a: &DumpArgs) -> Result<()> {
    let Some(text) = a.text.as_deref() else {
        bail!(
            "an encoder–decoder dump needs --text (the source); --ids is for decoder-only and encoder models"
        );
    };
    if attn::export::Format::from(a.format) != attn::export::Format::Npy
        || a.qkv
        || a.run.ablate.is_some()
        || a.text_b.is_some()
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
        m.info.name,
        trace.source.n_tokens(),
        trace.target.n_tokens()
    );
    for f in files {
        let _ = writeln!(out, "wrote {}", f.display());
    }
    emit(&out)
}

fn dump(a: DumpArgs) -> Result<()> {
    clean_up_dumps_on_signals()?;
    if let Some(m) = load_encdec(&a.model)? {
        return dump_encdec(&m, &a);
    }
    if a.target.is_some() {
        bail!("--target is for encoder–decoder models (e.g. --model textbook-dates)");
    }
    let m = load(&a.model)?;
    let info = m.info();
    let show_progress = !a.quiet && std::io::stderr().is_terminal();
    let mut opts = plan_run(
        m.as_ref(),
        (a.text.as_deref(), a.ids.as_deref(), a.text_b.as_deref()),
        model::budget::AttentionUse::KeepIfFits,
        a.budget.mem_budget,
        "attn dump",
    )?;
    if show_progress {
        opts.progress = Some(attn::trace::Progress(std::sync::Arc::new(
            progress_printer("forward"),
        )));
    }
    apply_run_args(&mut opts, &a.run, info)?;
    if a.qkv {
        for p in attn::export::QKV_POINTS {
            opts.hooks.capture_all(p, info.n_layers);
        }
    }
    if a.mlp {
        opts.hooks
            .capture_all(attn::trace::HookPoint::MlpPost, info.n_layers);
    }
    if a.value_weighted {
        attn::explain::run::value_weighted_hooks(&mut opts, info.n_layers);
    }
    let mut trace = run_input(m.as_ref(), &a.text, &a.ids, &a.text_b, &opts)?;
    check_finite(&trace, a.strict)?;
    if a.rollout && !a.force && a.out.join("rollout.npy").exists() {
        bail!(
            "{}: already exists (use --force to replace it)",
            a.out.join("rollout.npy").display()
        );
    }
    let extra = if a.value_weighted {
        vec![(
            "value_weighted.npy".to_string(),
            attn::explain::run::value_weighted_all(m.as_ref(), &mut trace, a.qkv)?,
        )]
    } else {
        vec![]
    };
    let writing = progress_printer("writing attention");
    let dump_opts = attn::export::DumpOptions {
        format: a.format.into(),
        force: a.force,
        progress: show_progress.then_some(&writing as &(dyn Fn(usize, usize) + Sync)),
    };
    let mut files = attn::export::dump_with(m.as_ref(), &trace, &a.out, &dump_opts, &extra)?;
    if a.rollout {
        files.extend(attn::export::dump_rollout(
            m.as_ref(),
            &trace,
            &a.out,
            a.force,
        )?);
    }
    let mut out = format!(
        "{}: {} tokens, {} layers × {} heads, forward {:.1} ms\n",
        attn::tokenize::escape_text(&info.name),
        trace.n_tokens(),
        info.n_layers,
        info.n_heads,
        trace.elapsed.as_secs_f64() * 1e3
    );
    for f in files {
        let _ = writeln!(
            out,
            "wrote {}",
            attn::tokenize::escape_text(&f.display().to_string())
        );
    }
    emit(&out)
}

/// Interventions from the command line (`--ablate`), checked against the model.
fn apply_run_args(
    opts: &mut ForwardOptions,
    run: &attn::cli::RunArgs,
    info: &model::ModelInfo,
) -> Result<()> {
    if let Some(list) = &run.ablate {
        let heads = attn::hooks::parse_heads(list).context("--ablate")?;
        opts.hooks
            .ablate(&heads, info.n_layers, info.n_heads, false)
            .context("--ablate")?;
    }
    Ok(())
}

fn explain(a: ExplainArgs) -> Result<()> {
    let m = load(&a.model)?;
    let info = m.info();
    if a.layer >= info.n_layers || a.head >= info.n_heads {
        bail!(
            "--layer {} --head {} out of range: {} has layers 0..={} and heads 0..={}",
            a.layer,
            a.head,
            info.name,
            info.n_layers.saturating_sub(1),
            info.n_heads.saturating_sub(1)
        );
    }
    let opts = attn::explain::run::capture_layer(a.layer);
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
    let w_o = attn::explain::run::w_o(m.as_ref(), a.layer)?;
    let c = attn::explain::run::weight(m.as_ref(), &trace, &w_o, a.layer, a.head, a.query, a.key)
        .context("explain")?;
    if a.json {
        let mut v = serde_json::to_value(&c)?;
        v["layer"] = a.layer.into();
        v["model"] = info.spec.clone().into();
        v["tokens"] = trace
            .tokens
            .iter()
            .map(|t| t.label.clone())
            .collect::<Vec<_>>()
            .into();
        emit(&format!("{v}\n"))
    } else {
        let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();
        emit(&attn::explain::text::render(&c, &labels, a.layer))
    }
}

fn show_cmd(a: ShowArgs) -> Result<()> {
    let m = load(&a.model)?;
    let info = &show::escaped_info(m.info());
    let mut out = String::new();
    if a.layer >= info.n_layers {
        bail!(
            "--layer {} is out of range: {} has layers 0..={}",
            a.layer,
            info.name,
            info.n_layers - 1
        );
    }
    if a.head >= info.n_heads {
        bail!(
            "--head {} is out of range: {} has heads 0..={}",
            a.head,
            info.name,
            info.n_heads - 1
        );
    }
    let mut opts = plan_run(
        m.as_ref(),
        (a.text.as_deref(), a.ids.as_deref(), a.text_b.as_deref()),
        model::budget::AttentionUse::Recompute,
        a.budget.mem_budget,
        "attn show",
    )?;
    apply_run_args(&mut opts, &a.run, info)?;
    let trace = run_input(m.as_ref(), &a.text, &a.ids, &a.text_b, &opts)?;
    check_finite(&trace, a.strict)?;
    let att = layer_attention(m.as_ref(), &trace, a.layer)?;

    let head = att.index_axis(ndarray::Axis(0), a.head);
    let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();
    let _ = writeln!(
        out,
        "{} · Layer {}/{} · Head {}/{} · {} tokens · forward {:.1} ms",
        info.name,
        a.layer,
        info.n_layers - 1,
        a.head,
        info.n_heads - 1,
        trace.n_tokens(),
        trace.elapsed.as_secs_f64() * 1e3
    );
    for line in &trace.interventions {
        let _ = writeln!(out, "intervention: {line}");
    }
    if !trace.kv_group.is_empty() {
        let g = trace.kv_group[a.head];
        let shared: Vec<String> = (0..info.n_heads)
            .filter(|h| trace.kv_group[*h] == g)
            .map(|h| h.to_string())
            .collect();
        let _ = writeln!(
            out,
            "KV head {g}, shared by query heads {}",
            shared.join(", ")
        );
    }
    let _ = writeln!(out);
    out.push_str(&show::render_grid(&labels, &head, colors(a.color)));
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", show::render_head_stats(&head));
    if let Some(next) = &trace.next_tokens
        && let Some(last) = next.last()
    {
        let s: Vec<String> = last
            .iter()
            .map(|t| format!("\"{}\" {:.3}", attn::tokenize::escape_text(&t.text), t.prob))
            .collect();
        let _ = writeln!(out, "next token after the last position: {}", s.join(" · "));
    }
    let _ = writeln!(out);
    out.push_str(&show::render_norm_table(&trace));
    emit(&out)
}

/// Run `--text` (with `--text-b`) or exactly the `--ids`.
fn run_input(
    m: &dyn Model,
    text: &Option<String>,
    ids: &Option<String>,
    text_b: &Option<String>,
    opts: &ForwardOptions,
) -> Result<attn::trace::Trace> {
    match (text, ids) {
        (_, Some(ids)) => {
            if text_b.is_some() {
                bail!("--text-b needs --text; with --ids give every id of both segments");
            }
            let ids = attn::tokenize::parse_ids(ids)?;
            Ok(model::run_ids(m, &ids, opts)?)
        }
        (Some(t), None) => Ok(model::run(m, t, text_b.as_deref(), opts)?),
        (None, None) => bail!("give --text or --ids"),
    }
}

fn heads(a: HeadsArgs) -> Result<()> {
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

fn generate(a: GenerateArgs) -> Result<()> {
    use attn::model::generate::{self as generation, Sampling};
    if let Some(m) = load_encdec(&a.model)? {
        return generate_encdec(&m, &a);
    }
    let m = load(&a.model)?;
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

fn sweep(a: SweepArgs) -> Result<()> {
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

fn attribute(a: AttributeArgs) -> Result<()> {
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

fn info(a: InfoArgs) -> Result<()> {
    if let Some(m) = load_encdec(&a.model)? {
        return emit(&show::render_info(&m.info));
    }
    let m = load(&a.model)?;
    emit(&show::render_info(m.info()))
}

fn models() -> Result<()> {
    let dir = model::models_dir();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "textbook   built in: the original Transformer with random weights (always available; \
         --encoder-decoder for the paper's encoder–decoder)"
    );
    let _ = writeln!(
        out,
        "textbook-dates\n           built in: the textbook encoder–decoder trained on English → Korean dates \
         (attn generate / attn dump --target)"
    );
    for (name, file, what) in model::SHORT_NAMES {
        let p = dir.join(file);
        let state = if p.exists() {
            format!("{}", p.display())
        } else {
            "not fetched (scripts/fetch-models)".into()
        };
        let _ = writeln!(out, "{name:<10} {what}\n           {state}");
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            let known = model::SHORT_NAMES.iter().any(|(_, f, _)| dir.join(f) == p);
            let usable =
                p.join("config.json").exists() || p.extension().is_some_and(|x| x == "gguf");
            if !known && usable {
                let _ = writeln!(out, "{:<10} {}", "(folder)", p.display());
            }
        }
    }
    let _ = writeln!(
        out,
        "\nmodels directory: {} (set ATTN_MODELS_DIR to change)",
        dir.display()
    );
    emit(&out)
}
