//! What a dump tells the terminal it wrote.

use std::path::{Path, PathBuf};

/// What a dump wrote, for the terminal: one line per file at the top of `out`, and one line per subfolder
/// (`wrote D/attention/ (270 files: layer00_head00.csv … layer29_head08.csv)`) instead of a line per file in it.
/// Paths are escaped for the terminal.
pub fn written_summary(out: &Path, files: &[PathBuf]) -> Vec<String> {
    let esc = |p: &Path| crate::tokenize::escape_text(&p.display().to_string());
    let mut lines = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let f = &files[i];
        let dir = f.parent().filter(|d| *d != out);
        let Some(dir) = dir else {
            lines.push(format!("wrote {}", esc(f)));
            i += 1;
            continue;
        };
        let run = files[i..]
            .iter()
            .take_while(|g| g.parent() == Some(dir))
            .count();
        if run == 1 {
            lines.push(format!("wrote {}", esc(f)));
        } else {
            let name = |p: &PathBuf| esc(Path::new(p.file_name().unwrap_or_default()));
            lines.push(format!(
                "wrote {}/ ({run} files: {} … {})",
                esc(dir),
                name(f),
                name(&files[i + run - 1])
            ));
        }
        i += run;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_summary_folds_a_folder_into_one_line() {
        let out = Path::new("d");
        let mut files = vec![out.join("tokens.json")];
        files.extend((0..3).map(|h| out.join("attention").join(format!("layer00_head0{h}.csv"))));
        files.push(out.join("meta.json"));
        assert_eq!(
            written_summary(out, &files),
            [
                "wrote d/tokens.json",
                "wrote d/attention/ (3 files: layer00_head00.csv … layer00_head02.csv)",
                "wrote d/meta.json"
            ]
        );
        // A lone file in a folder keeps its own line; control characters are escaped.
        let odd = vec![out.join("sub").join("a\x1b.csv")];
        let lines = written_summary(out, &odd);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\x1b'), "{lines:?}");
    }
}
