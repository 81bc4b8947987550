//! The `attn` binary: parse the command line and dispatch. The only place that touches the terminal's modes.

use anyhow::{Context, Result, bail};
use attn::cli::{
    Cli, ColorChoice, Command, DumpArgs, ExploreArgs, GenerateArgs, InfoArgs, ShowArgs,
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
        Some(Command::Info(a)) => info(a),
        Some(Command::Models) => models(),
        Some(Command::Generate(a)) => generate(a),
    };
    if let Err(e) = result {
        eprintln!("attn: error: {e:#}");
        std::process::exit(1);
    }
}

/// Print to stdout; a closed pipe (`attn show ... | head`) ends the program quietly instead of panicking.
fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => Ok(r?),
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

/// Put the terminal back: raw mode off, alternate screen left, mouse and paste modes off, cursor shown.
fn restore_terminal() {
    use crossterm::{cursor, event, execute, terminal};
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        event::DisableMouseCapture,
        event::DisableBracketedPaste,
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

fn explore(a: ExploreArgs) -> Result<()> {
    use attn::tui::{self, app::ColorMode, event};
    use crossterm::{event as cev, execute, terminal};
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
        restore_terminal();
        previous(info);
    }));

    let (tx, rx) = std::sync::mpsc::channel();
    // SIGTERM / SIGHUP: ask the loop to quit (it restores the terminal); if it has not within 2 s, restore here.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _ = sig_tx.send(event::Event::Quit);
            std::thread::sleep(std::time::Duration::from_secs(2));
            restore_terminal();
            std::process::exit(128 + sig);
        }
    });

    terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
    if let Err(e) = execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cev::EnableMouseCapture,
        cev::EnableBracketedPaste
    ) {
        restore_terminal();
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
            app.hint = Some(n);
        }
        let dump_root = a
            .dump_dir
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("attn-dumps"));
        app.dump_root = dump_root.clone();
        let env = tui::Env {
            model: model.clone(),
            worker: tui::worker::Worker::spawn(model.clone(), tx.clone()),
            dump_root,
        };
        event::spawn_input_thread(tx.clone());
        let mut source = event::ChannelSource { rx };
        tui::run(&mut terminal, &mut app, &mut source, &env)?;
        Ok(())
    })();
    restore_terminal();
    result
}

/// The encoder–decoder the model flags name, if they name one.
fn load_encdec(m: &attn::cli::ModelArgs) -> Result<Option<model::encdec::EncoderDecoder>> {
    let spec = m.spec();
    model::load_encoder_decoder(&spec, &m.textbook(), m.encoder_decoder_layers())
        .with_context(|| format!("cannot load model `{spec}`"))
}

fn generate(a: GenerateArgs) -> Result<()> {
    let Some(m) = load_encdec(&a.model)? else {
        bail!(
            "`attn generate` needs an encoder–decoder (`--model textbook-dates`, or `--model textbook \
             --encoder-decoder`); `{}` is not one",
            a.model.spec()
        );
    };
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
    if a.format != attn::export::Format::Npy
        || a.qkv
        || a.run.ablate.is_some()
        || a.text_b.is_some()
    {
        bail!("encoder–decoder dumps write .npy only, without --qkv, --ablate or --text-b");
    }
    let src = m.encode_source(&a.text)?;
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
    let files =
        attn::export::encdec::dump(m, &trace, &a.text, a.target.as_deref(), &a.out, a.force)?;
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
    if let Some(m) = load_encdec(&a.model)? {
        return dump_encdec(&m, &a);
    }
    if a.target.is_some() {
        bail!("--target is for encoder–decoder models (e.g. --model textbook-dates)");
    }
    let m = load(&a.model)?;
    let info = m.info();
    let n_est = a.text.len() + a.text_b.as_ref().map_or(0, |b| b.len()) + 4;
    let mut opts = ForwardOptions::for_size(info.n_layers, info.n_heads, n_est, 512 << 20);
    apply_run_args(&mut opts, &a.run, info)?;
    if a.qkv {
        for p in attn::export::QKV_POINTS {
            opts.hooks.capture_all(p, info.n_layers);
        }
    }
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
    let files = attn::export::dump(m.as_ref(), &trace, &a.out, a.format, a.force)?;
    let mut out = format!(
        "{}: {} tokens, {} layers × {} heads, forward {:.1} ms\n",
        info.name,
        trace.n_tokens(),
        info.n_layers,
        info.n_heads,
        trace.elapsed.as_secs_f64() * 1e3
    );
    for f in files {
        let _ = writeln!(out, "wrote {}", f.display());
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

fn show_cmd(a: ShowArgs) -> Result<()> {
    let m = load(&a.model)?;
    let info = m.info();
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
    let mut opts = ForwardOptions {
        keep_attention: false,
        top_k: 5,
        ..Default::default()
    };
    apply_run_args(&mut opts, &a.run, info)?;
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
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
            .map(|t| format!("{:?} {:.3}", t.text, t.prob))
            .collect();
        let _ = writeln!(out, "next token after the last position: {}", s.join(" · "));
    }
    let _ = writeln!(out);
    out.push_str(&show::render_norm_table(&trace));
    emit(&out)
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
