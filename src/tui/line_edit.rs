//! The sentence line: a one-line text editor that moves by grapheme (so combining marks and Hangul stay whole).

use unicode_segmentation::UnicodeSegmentation;

/// A one-line text field edited in place. `cursor` is a byte offset that always sits on a grapheme boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> Self {
        LineEdit {
            text: text.to_string(),
            cursor: text.len(),
        }
    }
    fn prev(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map(|(i, _)| i)
            .unwrap_or(0)
    }
    fn next(&self) -> usize {
        self.cursor
            + self.text[self.cursor..]
                .graphemes(true)
                .next()
                .map(str::len)
                .unwrap_or(0)
    }
    /// Insert text at the cursor; line breaks become spaces (the input is one line).
    pub fn insert(&mut self, s: &str) {
        let clean: String = s
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
        // Combining marks typed after a base join its grapheme: keep the cursor on a boundary.
        self.snap();
    }
    fn snap(&mut self) {
        if !self.text.is_char_boundary(self.cursor) || self.cursor > self.text.len() {
            self.cursor = self.text.len();
        }
        let mut pos = 0;
        for g in self.text.graphemes(true) {
            if pos + g.len() > self.cursor {
                break;
            }
            pos += g.len();
        }
        self.cursor = pos;
    }
    pub fn backspace(&mut self) {
        let p = self.prev();
        self.text.replace_range(p..self.cursor, "");
        self.cursor = p;
    }
    pub fn delete(&mut self) {
        let n = self.next();
        self.text.replace_range(self.cursor..n, "");
    }
    pub fn left(&mut self) {
        self.cursor = self.prev();
    }
    pub fn right(&mut self) {
        self.cursor = self.next();
    }
    pub fn home(&mut self) {
        self.cursor = 0;
    }
    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }
    /// Ctrl-U: delete from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }
    /// Ctrl-K: delete from the cursor to the end.
    pub fn kill_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }
    /// Ctrl-W: delete the word before the cursor.
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        let start = trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_edit_moves_by_grapheme() {
        let mut e = LineEdit::new("ae\u{301}한");
        e.left();
        assert_eq!(&e.text[e.cursor..], "한");
        e.left();
        assert_eq!(&e.text[e.cursor..], "e\u{301}한");
        e.delete();
        assert_eq!(e.text, "a한");
        e.end();
        e.insert("x\ny");
        assert_eq!(e.text, "a한x y");
        e.home();
        e.right();
        e.kill_to_end();
        assert_eq!(e.text, "a");
        let mut w = LineEdit::new("one two  ");
        w.delete_word();
        assert_eq!(w.text, "one ");
    }
}
