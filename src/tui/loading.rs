//! The explorer's first screen while the model loads: its name and the seconds so far, redrawn until loading ends
//! (a large GGUF takes a few seconds), so the terminal never sits blank or shows a stale shell line.

use super::app::Palette;
use super::ui::widgets::Theme;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};
use std::time::{Duration, Instant};

/// Draw the loading screen for `what` (already escaped for the terminal), `elapsed` into loading.
pub fn render(buf: &mut Buffer, area: Rect, what: &str, elapsed: Duration, theme: &Theme) {
    let text = format!("Loading {what} … {:.1} s", elapsed.as_secs_f64());
    let w = (text.chars().count() as u16 + 4).min(area.width);
    let h = 3.min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    Paragraph::new(Line::styled(text, theme.accent()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .title(Line::styled(" attn ", theme.title())),
        )
        .render(r, buf);
}

/// Run `load` on another thread and redraw the loading screen every 100 ms until it returns; its result. A quick
/// load returns at once (no wait for the next redraw).
pub fn show_while<B: Backend, T: Send>(
    terminal: &mut Terminal<B>,
    what: &str,
    palette: Palette,
    load: impl FnOnce() -> T + Send,
) -> T {
    use std::sync::mpsc::{RecvTimeoutError, channel};
    let theme = Theme::new(palette);
    let start = Instant::now();
    std::thread::scope(|s| {
        let (tx, rx) = channel();
        let job = s.spawn(move || {
            let _ = tx.send(load());
        });
        loop {
            let _ = terminal.draw(|f| {
                let area = f.area();
                render(f.buffer_mut(), area, what, start.elapsed(), &theme)
            });
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(v) => return v,
                Err(RecvTimeoutError::Timeout) => {}
                // The loader panicked before sending: pass its panic on.
                Err(RecvTimeoutError::Disconnected) => match job.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the loader sends its result before it returns"),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    #[test]
    fn the_loading_screen_names_the_model_and_counts_seconds() {
        let mut terminal = Terminal::new(TestBackend::new(40, 7)).unwrap();
        let v = show_while(&mut terminal, "smollm2", Palette::Mono, || {
            std::thread::sleep(Duration::from_millis(250));
            7
        });
        assert_eq!(v, 7, "the loader's result comes back");
        let rows = crate::tui::ui::buffer_rows(terminal.backend().buffer());
        assert!(rows[2].trim().starts_with("╭ attn ─"), "{rows:?}");
        assert!(rows[3].contains("Loading smollm2 … 0."), "{rows:?}");
    }
}
