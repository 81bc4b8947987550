//! The `attn` binary: parse the command line and dispatch. The only place that touches the terminal's modes.

use anyhow::{Context, Result, bail};
use attn::cli::{Cli, ColorChoice, Command, DumpArgs, ExploreArgs, InfoArgs, ShowArgs};
use attn::model::{self, Model};
use attn::show::{self, Colors};
use attn::trace::{ForwardOptions, layer_attention};
use clap::Parser;
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
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

fn load(m: &attn::cli::ModelArgs) -> Result<Box<dyn Model>> {
    let spec = m.spec();
    model::load(&spec, &m.textbook()).with_context(|| format!("cannot load model `{spec}`"))
}

fn colors(choice: ColorChoice) -> Colors {
    let truecolor = std::env::var("COLORTERM").is_ok_and(|v| v.contains("truecolor") || v.contains("24bit"));
    let pick = if truecolor { Colors::TrueColor } else { Colors::Ansi256 };
    match choice {
        ColorChoice::Never => Colors::None,
        ColorChoice::Always => pick,
        ColorChoice::Auto => {
            if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) {
                pick
            } else {
                Colors::None
            }
        }
    }
}

fn explore(_a: ExploreArgs) -> Result<()> {
    bail!(
        "the interactive explorer is not built yet; use `attn show --text \"...\"` to print a head's attention, \
         `attn dump --text \"...\" --out DIR` to write every matrix, or `attn info` for the model"
    )
}

fn dump(a: DumpArgs) -> Result<()> {
    let m = load(&a.model)?;
    let info = m.info();
    let n_est = a.text.len() + a.text_b.as_ref().map_or(0, |b| b.len()) + 4;
    let opts = ForwardOptions::for_size(info.n_layers, info.n_heads, n_est, 512 << 20);
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
    let files = attn::export::dump(m.as_ref(), &trace, &a.out, a.format, a.force)?;
    println!(
        "{}: {} tokens, {} layers × {} heads, forward {:.1} ms",
        info.name,
        trace.n_tokens(),
        info.n_layers,
        info.n_heads,
        trace.elapsed.as_secs_f64() * 1e3
    );
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn show_cmd(a: ShowArgs) -> Result<()> {
    let m = load(&a.model)?;
    let info = m.info();
    if a.layer >= info.n_layers {
        bail!("--layer {} is out of range: {} has layers 0..={}", a.layer, info.name, info.n_layers - 1);
    }
    if a.head >= info.n_heads {
        bail!("--head {} is out of range: {} has heads 0..={}", a.head, info.name, info.n_heads - 1);
    }
    let opts = ForwardOptions {
        keep_attention: false,
        top_k: 5,
    };
    let trace = model::run(m.as_ref(), &a.text, a.text_b.as_deref(), &opts)?;
    let att = layer_attention(m.as_ref(), &trace, a.layer)?;
    let head = att.index_axis(ndarray::Axis(0), a.head);
    let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();
    println!(
        "{} · Layer {}/{} · Head {}/{} · {} tokens · forward {:.1} ms",
        info.name,
        a.layer,
        info.n_layers - 1,
        a.head,
        info.n_heads - 1,
        trace.n_tokens(),
        trace.elapsed.as_secs_f64() * 1e3
    );
    if !trace.kv_group.is_empty() {
        let g = trace.kv_group[a.head];
        let shared: Vec<String> = (0..info.n_heads)
            .filter(|h| trace.kv_group[*h] == g)
            .map(|h| h.to_string())
            .collect();
        println!("KV head {g}, shared by query heads {}", shared.join(", "));
    }
    println!();
    print!("{}", show::render_grid(&labels, &head, colors(a.color)));
    println!();
    println!("{}", show::render_head_stats(&head));
    if let Some(next) = &trace.next_tokens
        && let Some(last) = next.last()
    {
        let s: Vec<String> = last.iter().map(|t| format!("{:?} {:.3}", t.text, t.prob)).collect();
        println!("next token after the last position: {}", s.join(" · "));
    }
    println!();
    print!("{}", show::render_norm_table(&trace));
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    let m = load(&a.model)?;
    print!("{}", show::render_info(m.info()));
    Ok(())
}

fn models() -> Result<()> {
    let dir = model::models_dir();
    println!("textbook   built in: the original Transformer with random weights (always available)");
    for (name, file, what) in model::SHORT_NAMES {
        let p = dir.join(file);
        let state = if p.exists() { format!("{}", p.display()) } else { "not fetched (scripts/fetch-models)".into() };
        println!("{name:<10} {what}\n           {state}");
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            let known = model::SHORT_NAMES.iter().any(|(_, f, _)| dir.join(f) == p);
            let usable = p.join("config.json").exists() || p.extension().is_some_and(|x| x == "gguf");
            if !known && usable {
                println!("{:<10} {}", "(folder)", p.display());
            }
        }
    }
    println!("\nmodels directory: {} (set ATTN_MODELS_DIR to change)", dir.display());
    Ok(())
}
