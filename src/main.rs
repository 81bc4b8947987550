//! The `attn` binary: parse the command line and dispatch. The only place that touches the terminal's modes.

use anyhow::{Context, Result, bail};
use attn::cli::{
    AttributeArgs, Cli, Command, DumpArgs, ExplainArgs, ExploreArgs, GenerateArgs, HeadsArgs,
    InfoArgs, ShowArgs, SweepArgs,
};
use attn::model::head_attention;
use attn::model::{self, Model};
use attn::show;
use attn::trace::ForwardOptions;
use clap::Parser;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

mod commands;
use commands::{attribute, dump_encdec, generate, heads, load_either, sweep};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = cli.check() {
        eprintln!(
            "attn: error: {}",
            attn::tokenize::escape_lines(&e.to_string())
        );
        std::process::exit(2);
    }
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
/// The input of `show`/`dump`, tokenized once: the budget is planned on it and the same tokens run.
struct Input {
    enc: attn::tokenize::Encoded,
    /// The trace's text: the input text, or the ids' decoding.
    text: String,
    text_b: Option<String>,
}

fn encode_input(m: &dyn Model, a: &attn::cli::InputArgs) -> Result<Input> {
    attn::cli::check_text_b(m.info(), a.text_b.as_deref())?;
    match (&a.text, &a.ids) {
        (_, Some(ids)) => {
            if a.text_b.is_some() {
                bail!("--text-b needs --text; with --ids give every id of both segments");
            }
            let ids = attn::tokenize::parse_ids(ids)?;
            Ok(Input {
                enc: m.tokenizer().encode_ids(&ids)?,
                text: m.tokenizer().decode(&ids),
                text_b: None,
            })
        }
        (Some(text), None) => {
            let bytes = text.len() + a.text_b.as_ref().map_or(0, String::len);
            model::budget::check_text_bytes(m.info(), bytes)?;
            Ok(Input {
                enc: m.tokenizer().encode(text, a.text_b.as_deref())?,
                text: text.clone(),
                text_b: a.text_b.clone(),
            })
        }
        (None, None) => bail!("give --text or --ids"),
    }
}

/// The forward options for `input` within the budget, with what `hooks` capture counted.
fn plan_run(
    m: &dyn Model,
    input: &Input,
    attention: model::budget::AttentionUse,
    hooks: attn::trace::Hooks,
    budget: u64,
    what: &str,
) -> Result<ForwardOptions> {
    let info = m.info();
    let top_k = if info.causal { 5 } else { 0 };
    Ok(model::budget::plan_with(
        info,
        input.enc.ids.len(),
        attention,
        top_k,
        hooks,
        budget,
        what,
    )?)
}

/// Run the tokenized input.
fn run_input(m: &dyn Model, input: Input, opts: &ForwardOptions) -> Result<attn::trace::Trace> {
    let mut trace = model::run_encoded(m, input.enc, opts)?;
    trace.text = input.text;
    trace.text_b = input.text_b;
    Ok(trace)
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
    let model =
        model::load(&spec, &m.textbook()).with_context(|| format!("cannot load model `{spec}`"))?;
    m.check_applies(model.info())?;
    Ok(model)
}

/// Load the explorer's model. With no `--model` (and no textbook flags), `textbook-dates` opens when no real model
/// was fetched; a default that fails to load falls back to the textbook model (with a note in the status line)
/// rather than refusing to start.
fn load_for_explorer(m: &attn::cli::ModelArgs) -> Result<(attn::tui::Loaded, Option<String>)> {
    use attn::tui::Loaded;
    let mut args = m.clone();
    // With nothing fetched and no textbook flags, the trained textbook-dates model opens first.
    let default_dates =
        args.model.is_none() && args.textbook_flags().is_empty() && args.spec() == "textbook";
    if default_dates {
        args.model = Some("textbook-dates".into());
    }
    let into = |l: model::Loaded| match l {
        model::Loaded::EncoderDecoder(ed) => Loaded::EncDec(std::sync::Arc::from(ed)),
        model::Loaded::Single(x) => Loaded::Model(x.into()),
    };
    match commands::load_either(&args) {
        Ok(l) => Ok((into(l), None)),
        // A default model that fails to load falls back to the textbook model, with a note in the status line.
        Err(e) if m.model.is_none() && !default_dates => {
            let tb =
                model::load("textbook", &m.textbook()).context("cannot load the textbook model")?;
            Ok((
                Loaded::Model(tb.into()),
                Some(format!(
                    "could not open the default model `{}` ({e:#}); using textbook (random weights)",
                    args.spec()
                )),
            ))
        }
        Err(e) => Err(e),
    }
}

fn explore(a: ExploreArgs) -> Result<()> {
    use attn::tui::{self, event};
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the explorer needs a terminal; without one use `attn show --text \"...\"` or `attn dump --text \"...\" --out DIR`"
        );
    }
    let color = a.color.palette(true);

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
        // Loading a real model takes a moment (seconds for a large GGUF): the explorer says so while it loads.
        let what = attn::tokenize::escape_text(&a.model.spec());
        let (model, note) =
            tui::loading::show_while(&mut terminal, &what, color, || load_for_explorer(&a.model))?;
        let encdec = matches!(model, attn::tui::Loaded::EncDec(_));
        if !encdec {
            attn::cli::check_text_b(model.info(), a.text_b.as_deref())?;
        }
        let size = terminal.size()?;
        let text = a.text.as_deref().unwrap_or(tui::default_text(model.info()));
        let mut app = tui::new_app(
            model.info(),
            text,
            a.text_b.as_deref(),
            color,
            (size.width, size.height),
        );
        if encdec {
            app.enable_encdec();
        }
        if let Some(n) = note {
            app.hint = Some(attn::tokenize::escape_text(&n));
        }
        // Only the built-in sample is a placeholder; a sentence given with --text is the user's own.
        app.input.fresh = a.text.is_none();
        let dump_root = attn::export::dump_root(a.dump_dir.as_deref());
        app.dump_root = dump_root.clone();
        let env = tui::Env {
            worker: model.worker(tx.clone(), a.budget.mem_budget),
            model,
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

fn dump(a: DumpArgs) -> Result<()> {
    clean_up_dumps_on_signals()?;
    let m = match load_either(&a.model)? {
        model::Loaded::EncoderDecoder(m) => return dump_encdec(&m, &a),
        model::Loaded::Single(m) => m,
    };
    if a.target.is_some() {
        bail!("--target is for encoder–decoder models (e.g. --model textbook-dates)");
    }
    let info = m.info();
    let show_progress = !a.quiet && std::io::stderr().is_terminal();
    let input = encode_input(m.as_ref(), &a.input)?;
    let mut hooks = attn::trace::Hooks::default();
    if a.qkv {
        for p in attn::export::QKV_POINTS {
            hooks.capture_all(p, info.n_layers);
        }
    }
    if a.mlp {
        hooks.capture_all(attn::trace::HookPoint::MlpPost, info.n_layers);
    }
    let pick = |sel: &Option<String>, count, flag| {
        sel.as_deref()
            .map(|s| attn::export::parse_selection(s, count, flag))
            .transpose()
    };
    let layers = pick(&a.attn_layers, info.n_layers, "--attn-layers")?;
    let heads = pick(&a.attn_heads, info.n_heads, "--attn-heads")?;
    // A selection is computed head by head from the residual stream: nothing else is kept.
    let attention = if layers.is_some() || heads.is_some() {
        model::budget::AttentionUse::Recompute
    } else {
        model::budget::AttentionUse::KeepIfFits
    };
    let mut opts = plan_run(
        m.as_ref(),
        &input,
        attention,
        hooks,
        a.budget.mem_budget,
        "attn dump",
    )?;
    if show_progress {
        opts.progress = Some(attn::trace::Progress(std::sync::Arc::new(
            progress_printer("forward"),
        )));
    }
    apply_run_args(&mut opts, &a.run, info)?;
    if a.value_weighted {
        attn::explain::run::value_weighted_hooks(&mut opts, info.n_layers);
    }
    let mut trace = run_input(m.as_ref(), input, &opts)?;
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
        layers: layers.as_deref(),
        heads: heads.as_deref(),
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
    for line in attn::export::written_summary(&a.out, &files) {
        let _ = writeln!(out, "{line}");
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
    attn::cli::check_text_b(m.info(), a.text_b.as_deref())?;
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
    let input = encode_input(m.as_ref(), &a.input)?;
    let mut opts = plan_run(
        m.as_ref(),
        &input,
        model::budget::AttentionUse::Recompute,
        Default::default(),
        a.budget.mem_budget,
        "attn show",
    )?;
    apply_run_args(&mut opts, &a.run, info)?;
    let trace = run_input(m.as_ref(), input, &opts)?;
    check_finite(&trace, a.strict)?;
    // The one head shown, alone: at 8k tokens a head is 256 MiB, a whole layer several GiB.
    let att = head_attention(m.as_ref(), &trace, a.layer, a.head)?;
    let head = att.view();
    let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();
    let _ = writeln!(
        out,
        "{} · {} · {} tokens · forward {:.1} ms",
        info.name,
        show::position_text(a.layer, info.n_layers, Some(a.head), info.n_heads),
        trace.n_tokens(),
        trace.elapsed.as_secs_f64() * 1e3
    );
    for line in &trace.interventions {
        let _ = writeln!(out, "intervention: {line}");
    }
    if let Some((g, shared)) = attn::analysis::kv_sharing(&trace.kv_group, a.head) {
        let shared: Vec<String> = shared.iter().map(|h| h.to_string()).collect();
        let _ = writeln!(
            out,
            "KV head {g}, shared by query heads {}",
            shared.join(", ")
        );
    }
    let _ = writeln!(out);
    let n = labels.len();
    // On a terminal the grid fits its width (pan with --cols); piped, every column unless --cols says otherwise.
    let width = std::io::stdout()
        .is_terminal()
        .then(|| crossterm::terminal::size().ok().map(|(w, _)| w as usize))
        .flatten();
    let cols = a
        .cols
        .clone()
        .unwrap_or_else(|| 0..width.map_or(n, |w| show::grid_cols_fitting(n, w)));
    let rows = a.rows.clone().unwrap_or(0..n);
    let (cols, rows) = (
        cols.start.min(n)..cols.end.min(n),
        rows.start.min(n)..rows.end.min(n),
    );
    out.push_str(&show::render_grid_window(
        &labels,
        &head,
        a.color.palette(std::io::stdout().is_terminal()),
        rows.clone(),
        cols.clone(),
    ));
    if cols.len() < n || rows.len() < n {
        let _ = writeln!(
            out,
            "(query rows {}–{} and key columns {}–{} of 0–{} shown; --rows A..B / --cols A..B pan)",
            rows.start,
            rows.end.saturating_sub(1),
            cols.start,
            cols.end.saturating_sub(1),
            n.saturating_sub(1)
        );
    }
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

fn info(a: InfoArgs) -> Result<()> {
    match load_either(&a.model)? {
        model::Loaded::EncoderDecoder(m) => emit(&show::render_encdec_info(&m)),
        model::Loaded::Single(m) => emit(&show::render_info(m.info())),
    }
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
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let known = model::SHORT_NAMES.iter().any(|(_, f, _)| dir.join(f) == p);
            if let (false, Some(what)) = (known, model::load::describe_entry(&p)) {
                let path = attn::tokenize::escape_text(&p.display().to_string());
                let _ = writeln!(out, "{:<10} {what}\n           {path}", "(yours)");
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
