//! Direct logit attribution (`C`, decoders): how much each component wrote into the logit of the top prediction at
//! the cursor's position — a layers × (heads, MLP, output-projection bias) heatmap, the embeddings and biases
//! below it, the largest components listed, and the check that they sum to the logit.

use super::sweep::{Heatmap, boxed, signed};
use super::widgets::{Theme, put};
use crate::analysis::attribution::Attribution;
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

/// Where a component goes: `(layer, column)` in the heatmap (heads, then `MLP`, then `bias`), or `None` for the
/// components outside the layers (embeddings, final biases).
pub fn cell_of(name: &str, n_heads: usize) -> Option<(usize, usize)> {
    let rest = name.strip_prefix('L')?;
    let (l, what) = rest.split_once('.')?;
    let l: usize = l.parse().ok()?;
    match what {
        "MLP" => Some((l, n_heads)),
        "attn_bias" => Some((l, n_heads + 1)),
        h => Some((l, h.strip_prefix('H')?.parse().ok()?)),
    }
}

/// A grid `[layers][heads + 2]` of the components (`None` where the model has none, e.g. no bias).
pub fn grid(a: &Attribution, layers: usize, n_heads: usize) -> Vec<Vec<Option<f32>>> {
    let mut g = vec![vec![None; n_heads + 2]; layers];
    for c in &a.components {
        if let Some((l, col)) = cell_of(&c.name, n_heads)
            && let Some(slot) = g.get_mut(l).and_then(|r| r.get_mut(col))
        {
            *slot = Some(c.value);
        }
    }
    g
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let (text, style) = match app.interp.dla.as_ref().map(|d| &d.result) {
        Some(Some(Ok(a))) => return render_result(app, a, area, buf),
        Some(Some(Err(e))) => (format!("attribution failed: {e}"), theme.error()),
        _ => (
            "computing (one forward pass, z and MLP outputs captured)…".to_string(),
            theme.dim(),
        ),
    };
    let inner = boxed(app, " Direct logit attribution ".into(), area, buf);
    put(buf, inner.x, inner.y, inner.width, &text, style);
}

fn render_result(app: &App, a: &Attribution, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let title = format!(
        " Direct logit attribution · {} after {} (pos {}) · logit {:.3} = Σ components {:.3} ",
        a.text,
        app.token_label(a.position),
        a.position,
        a.logit,
        a.total()
    );
    let inner = boxed(app, title, area, buf);
    let nh = app.n_heads();
    let g = grid(a, app.n_layers(), nh);
    let has_bias = g.iter().any(|r| r.get(nh + 1).is_some_and(|v| v.is_some()));
    let mut cols: Vec<String> = (0..nh).map(|h| format!("h{h}")).collect();
    cols.push("MLP".into());
    if has_bias {
        cols.push("bias".into());
    }
    let value = |l: usize, c: usize| g.get(l).and_then(|r| r.get(c).copied().flatten());
    let sel_col = if app.sel.mean { nh } else { app.sel.head };
    let map = Heatmap {
        cols,
        layers: app.n_layers(),
        value: &value,
        selected: (app.sel.layer, sel_col),
    };
    let outside: Vec<String> = a
        .components
        .iter()
        .filter(|c| cell_of(&c.name, nh).is_none())
        .map(|c| format!("{} {}", c.name, signed(c.value).trim_start()))
        .collect();
    let mw = map.width().min(inner.width);
    let mh = inner.height.saturating_sub(1);
    map.render(app, Rect::new(inner.x, inner.y, mw, mh), buf);
    put(
        buf,
        inner.x,
        inner.y + mh,
        inner.width,
        &format!("outside the layers: {}", outside.join(" · ")),
        theme.accent(),
    );
    let x = inner.x + mw + 2;
    let w = (inner.x + inner.width).saturating_sub(x);
    if w < 20 {
        return;
    }
    put(buf, x, inner.y, w, "largest components", theme.title());
    let mut ranked: Vec<_> = a.components.iter().collect();
    ranked.sort_by(|p, q| q.value.abs().total_cmp(&p.value.abs()));
    for (i, c) in ranked
        .iter()
        .take(mh.saturating_sub(1) as usize)
        .enumerate()
    {
        let st = if c.value < 0.0 {
            theme.negative()
        } else {
            theme.positive()
        };
        put(
            buf,
            x,
            inner.y + 1 + i as u16,
            w,
            &format!("{:<16}{}", c.name, signed(c.value)),
            st,
        );
    }
}
