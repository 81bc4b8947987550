//! The `attn` binary: parse the command line and dispatch. The only place that touches the terminal's modes.

use anyhow::{Context, Result, bail};
use attn::cli::{Cli, Command, DumpArgs, ExploreArgs, InfoArgs, ShowArgs};
use attn::model::layer_attention;
use attn::model::{self, Model};
use attn::show;
use attn::trace::ForwardOptions;
use clap::Parser;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = cli.check() {
        eprintln!("attn: error: {e}");
        std::process::exit(2);
    }
    let result = match cli.command {
        None => explore(cli.explore),
        Some(Command::Explore(a)) => explore(a),
        Some(Command::Dump(a)) => dump(a),
        Some(Command::Show(a)) => show_cmd(a),
        Some(Command::Info(a)) => info(a),
        Some(Command::Models) => models(),
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
    let model =
        model::load(&spec, &m.textbook()).with_context(|| format!("cannot load model `{spec}`"))?;
    m.check_applies(model.info())?;
    Ok(model)
}

/// Load the explorer's model. With no `--model`, a default that fails to load falls back to the textbook model
/// (with a note in the status line) rather than refusing to start.
fn load_for_explorer(m: &attn::cli::ModelArgs) -> Result<(Box<dyn Model>, Option<String>)> {
    if m.model.is_some() {
        return Ok((load(m)?, None));
    }
    let spec = m.spec();
    match model::load(&spec, &m.textbook()) {
        Ok(x) => {
            m.check_applies(x.info())?;
            Ok((x, None))
        }
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
    use attn::tui::{self, event};
    use crossterm::{event as cev, execute, terminal};
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the explorer needs a terminal; without one use `attn show --text \"...\"` or `attn dump --text \"...\" --out DIR`"
        );
    }
    // Loading a real model takes a moment (seconds for a large GGUF): say so until the explorer opens.
    let tty_err = std::io::stderr().is_terminal();
    if tty_err {
        eprint!("attn: loading {}…", a.model.spec());
    }
    let loaded = load_for_explorer(&a.model);
    if tty_err {
        eprint!("\r\x1b[K");
    }
    let (m, note) = loaded?;
    attn::cli::check_text_b(m.info(), a.text_b.as_deref())?;
    let model: std::sync::Arc<dyn Model> = std::sync::Arc::from(m);
    let color = a.color.palette(true);

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
        // Only the built-in sample is a placeholder; a sentence given with --text is the user's own.
        app.input.fresh = a.text.is_none();
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

fn dump(a: DumpArgs) -> Result<()> {
    let m = load(&a.model)?;
    attn::cli::check_text_b(m.info(), a.text_b.as_deref())?;
    let info = m.info();
    let n_est = a.text.len() + a.text_b.as_ref().map_or(0, |b| b.len()) + 4;
    let opts = ForwardOptions::for_size(info.n_layers, info.n_heads, n_est, 512 << 20);
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

fn show_cmd(a: ShowArgs) -> Result<()> {
    let m = load(&a.model)?;
    attn::cli::check_text_b(m.info(), a.text_b.as_deref())?;
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
    let opts = ForwardOptions {
        keep_attention: false,
        top_k: 5,
        ..Default::default()
    };
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
    let att = layer_attention(m.as_ref(), &trace, a.layer)?;
    let head = att.index_axis(ndarray::Axis(0), a.head);
    let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();
    let _ = writeln!(
        out,
        "{} · {} · {} tokens · forward {:.1} ms",
        info.name,
        show::position_text(a.layer, info.n_layers, Some(a.head), info.n_heads),
        trace.n_tokens(),
        trace.elapsed.as_secs_f64() * 1e3
    );
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
            .map(|t| format!("{:?} {:.3}", t.text, t.prob))
            .collect();
        let _ = writeln!(out, "next token after the last position: {}", s.join(" · "));
    }
    let _ = writeln!(out);
    out.push_str(&show::render_norm_table(&trace));
    emit(&out)
}

fn info(a: InfoArgs) -> Result<()> {
    let m = load(&a.model)?;
    emit(&show::render_info(m.info()))
}

fn models() -> Result<()> {
    let dir = model::models_dir();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "textbook   built in: the original Transformer with random weights (always available)"
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
