//! The model overview (`m`): every layer × head as a thumbnail heatmap, with a cursor; Enter opens a head.

use super::widgets::{Theme, half_block_picture, put, put_str};
use crate::analysis;
use crate::tui::app::{App, layout};
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Widget};

/// Draw the overview into the body of the screen.
pub fn render(app: &App, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let g = layout::overview_geom(app);
    let nl = app.n_layers();
    let nh = app.n_heads();
    let pass = match &app.data {
        Some(d) if d.lazy && app.long.done < app.long.total() => {
            format!(
                " · long input: thumbnails {} of {}",
                app.long.done,
                app.long.total()
            )
        }
        _ => String::new(),
    };
    let title = format!(
        " Model overview · {nl} layers × {nh} heads{pass} · arrows/hjkl move · Enter opens · m back "
    );
    let mut block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(true))
        .title(Line::styled(title, theme.title()));
    if g.layers < nl {
        let last = (app.ov_scroll + g.layers).min(nl).saturating_sub(1);
        block = block.title_bottom(
            Line::styled(
                format!(" layers {}–{last} of {nl} ", app.ov_scroll),
                theme.accent(),
            )
            .right_aligned(),
        );
    }
    block.render(g.block, buf);
    let Some(d) = &app.data else { return };
    let (ox, oy) = g.origin;
    // Head numbers on top.
    for h in 0..g.heads.min(nh) {
        let x = ox + h as u16 * g.step_w;
        let st = if h == app.sel.head {
            theme.selected()
        } else {
            theme.dim()
        };
        put(buf, x, oy - 2, g.pic_w.clamp(2, 4), &format!("h{h}"), st);
    }
    let hidden: Vec<bool> = app.key_hidden_mask();
    let (n, nk) = (d.trace.n_tokens(), hidden.len());
    for vl in 0..g.layers {
        let l = app.ov_scroll + vl;
        if l >= nl {
            break;
        }
        let y = oy + vl as u16 * g.step_h;
        let st = if l == app.sel.layer {
            theme.selected()
        } else {
            theme.dim()
        };
        put(buf, g.block.x + 1, y, 3, &format!("L{l}"), st);
        let a = d.att(l);
        if a.is_none() && !d.lazy {
            continue;
        }
        for h in 0..g.heads.min(nh) {
            let x = ox + h as u16 * g.step_w;
            // A long input's heads are block-mean thumbnails, drawn once the streaming pass has reached them.
            let (m, n, nk) = match a {
                Some(a) => {
                    let m = a.index_axis(ndarray::Axis(0), h);
                    let m = if app.grid.hide_special {
                        analysis::hide_and_renormalize(&m, &hidden)
                    } else {
                        m.to_owned()
                    };
                    (m, n, nk)
                }
                None => match app
                    .long
                    .thumbs
                    .get(l)
                    .and_then(|t| t.get(h))
                    .and_then(Option::as_ref)
                {
                    Some(t) => (t.clone(), t.nrows(), t.ncols()),
                    None => {
                        put(buf, x, y, g.pic_w, "…", theme.dim());
                        continue;
                    }
                },
            };
            let maxes: Vec<f32> = m
                .rows()
                .into_iter()
                .map(|r| r.iter().copied().fold(0.0, f32::max))
                .collect();
            let scale = app.grid.scale;
            let value = |r: usize, c: usize| scale.apply(m[[r, c]], maxes[r]);
            let area = ratatui::layout::Rect::new(x, y, g.pic_w, g.pic_h);
            let (by_r, by_c, pw, ph) = layout::zoom_blocks((n, nk), area, !theme.mono());
            let pic = ratatui::layout::Rect::new(x, y, pw.min(g.pic_w), ph.min(g.pic_h));
            half_block_picture(buf, pic, n, nk, (by_r, by_c), &value, &theme);
            // The head's kind, when one pattern dominates, in the gap under its thumbnail; ablated heads say so.
            let ablated = app.interp.ablation.heads.contains(&(l, h));
            let tag = if ablated {
                Some("✗ off")
            } else if !app.is_cross() && app.interp.induction_clear(l, h) {
                Some("induction")
            } else {
                d.stats
                    .get(l)
                    .and_then(|v| v.get(h))
                    .and_then(analysis::head_tag)
            };
            if let Some(tag) = tag {
                let short = match tag {
                    "previous-token" => "prev",
                    "induction" => "induct",
                    t => t,
                };
                let st = if ablated {
                    theme.error()
                } else if tag == "broad" {
                    theme.dim()
                } else {
                    theme.bar_alt()
                };
                put(buf, x, y + g.pic_h, g.pic_w.min(g.step_w - 1), short, st);
            }
            if (l, h) == (app.sel.layer, app.sel.head) {
                // Frame the selected thumbnail with corner marks.
                let corners = [
                    (x.wrapping_sub(1), y.wrapping_sub(1), "┌"),
                    (x + pic.width, y.wrapping_sub(1), "┐"),
                    (x.wrapping_sub(1), y + pic.height, "└"),
                    (x + pic.width, y + pic.height, "┘"),
                ];
                for (cx, cy, s) in corners {
                    if buf.area.contains(ratatui::layout::Position::new(cx, cy)) {
                        buf.set_string(cx, cy, s, theme.accent().add_modifier(Modifier::BOLD));
                    }
                }
            }
        }
    }
    // The selected head's summary.
    let (l, h) = (app.sel.layer, app.sel.head);
    if let Some(s) = d.stats.get(l).and_then(|v| v.get(h)) {
        let mut tag = analysis::head_tag(s)
            .map(|t| format!(" · {t} head"))
            .unwrap_or_default();
        // Induction compares a sequence with itself: it has no meaning between target and source.
        if let Some(v) = app.interp.induction(l, h).filter(|_| !app.is_cross()) {
            let clear = if v >= crate::analysis::scans::INDUCTION_CLEAR {
                " (clear)"
            } else {
                ""
            };
            tag.push_str(&format!(" · induction {v:.2}{clear}"));
        }
        let kv = match analysis::kv_sharing(&d.trace.kv_group, h) {
            Some((g, shared)) => {
                let shared: Vec<String> = shared.iter().map(|i| i.to_string()).collect();
                format!(" · KV head {g} (query heads {})", shared.join(", "))
            }
            None => String::new(),
        };
        let positional = if app.is_cross() {
            " · cross-attention: no sink/prev/self (rows and columns are different sentences)"
                .to_string()
        } else {
            format!(
                " · sink {:.2} · prev {:.2} · self {:.2}",
                s.sink, s.prev, s.self_
            )
        };
        let line1 = format!(
            "layer {l} · head {h}{tag}{kv} · entropy {:.2} ({:.0}%) · row max {:.2}{positional}",
            s.entropy,
            s.entropy_norm * 100.0,
            s.max_weight,
        );
        put_str(
            buf,
            g.info.x,
            g.info.y,
            g.info.width,
            &line1,
            theme.accent(),
        );
        if g.info.height > 1 {
            let tags: Vec<String> = d
                .pattern_counts
                .iter()
                .enumerate()
                .map(|(l, c)| format!("L{l}:{c}"))
                .collect();
            let line2 = if super::ablation::active(app) {
                format!(
                    "{} · {}",
                    super::ablation::header_note(app),
                    super::ablation::effect_line(app)
                )
            } else if app.is_cross() {
                "the positional tags (previous-token/sink/self) do not apply to cross-attention"
                    .to_string()
            } else if d.pattern_counts.iter().all(|c| *c == 0) {
                "no head is clearly previous-token, sink or self".to_string()
            } else {
                format!(
                    "heads with a clear pattern (previous-token/sink/self) per layer: {}",
                    tags.join(" ")
                )
            };
            put(
                buf,
                g.info.x,
                g.info.y + 1,
                g.info.width,
                &line2,
                theme.dim(),
            );
        }
    }
}
