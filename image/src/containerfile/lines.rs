//! Physical lines → logical instruction lines: parser directives
//! (`# escape=`), comments, blank lines and line continuations, as Docker
//! reads them.

/// One instruction's text, its continuations joined, with the 1-based
/// number of the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the line the instruction starts on.
    pub line: usize,
    /// The instruction text, continuations joined (the escape character and
    /// the line break removed, as Docker does).
    pub text: String,
}

/// The escape character a `# escape=` directive at the top chooses (`\` or
/// `` ` ``; `\` without one). Directives are the `# key=value` comments
/// before anything else; another value is an error with its line.
pub fn escape_directive(text: &str) -> Result<char, (usize, String)> {
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        let Some(comment) = trimmed.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            return match value.trim() {
                "\\" => Ok('\\'),
                "`" => Ok('`'),
                other => Err((index + 1, other.to_string())),
            };
        }
    }
    Ok('\\')
}

/// Splits `text` into logical lines. Comment lines (first non-blank
/// character `#`) and blank lines are dropped, also inside a continuation;
/// a line ending in `escape` (trailing blanks allowed) continues on the
/// next line.
pub fn logical_lines(text: &str, escape: char) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = raw.trim_end();
        let (body, continues) = match body.strip_suffix(escape) {
            Some(rest) if !ends_escaped(rest, escape) => (rest, true),
            _ => (body, false),
        };
        let entry = current.get_or_insert_with(|| LogicalLine {
            line: index + 1,
            text: String::new(),
        });
        entry.text.push_str(body);
        if !continues {
            if let Some(done) = current.take() {
                out.push(done);
            }
        }
    }
    if let Some(done) = current.take() {
        out.push(done);
    }
    out
}

/// Whether `rest` ends in an odd number of escape characters, so the one
/// after it is itself escaped (`\\` at the end of a line is a literal).
fn ends_escaped(rest: &str, escape: char) -> bool {
    rest.chars().rev().take_while(|c| *c == escape).count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(usize, String)> {
        logical_lines(input, '\\')
            .into_iter()
            .map(|l| (l.line, l.text))
            .collect()
    }

    #[test]
    fn continuation_joins_lines_and_keeps_first_line_number() {
        let got = texts("FROM scratch\n\nRUN a \\\n    && b\nCMD c\n");
        assert_eq!(
            got,
            vec![
                (1, "FROM scratch".to_string()),
                (3, "RUN a     && b".to_string()),
                (5, "CMD c".to_string()),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_inside_a_continuation_are_dropped() {
        let got = texts("RUN a \\\n# a comment\n\n  && b\n");
        assert_eq!(got, vec![(1, "RUN a   && b".to_string())]);
    }

    #[test]
    fn trailing_blanks_after_backslash_still_continue() {
        let got = texts("RUN a \\   \n b\n");
        assert_eq!(got, vec![(1, "RUN a  b".to_string())]);
    }

    #[test]
    fn doubled_escape_at_end_is_literal() {
        let got = texts("RUN echo a\\\\\nCMD b\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, "RUN echo a\\\\");
    }

    #[test]
    fn continuation_at_end_of_file_ends_the_instruction() {
        assert_eq!(texts("RUN a \\"), vec![(1, "RUN a ".to_string())]);
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            texts("FROM scratch\r\nRUN a \\\r\n b\r\n"),
            vec![(1, "FROM scratch".to_string()), (2, "RUN a  b".to_string())]
        );
    }

    #[test]
    fn escape_directive_backtick() {
        let text = "# escape=`\nFROM scratch\nRUN a `\n b\n";
        let escape = escape_directive(text).unwrap();
        assert_eq!(escape, '`');
        let got = logical_lines(text, escape);
        assert_eq!(got[1].text, "RUN a  b");
    }

    #[test]
    fn escape_directive_only_at_the_top() {
        assert_eq!(escape_directive("FROM scratch\n# escape=`\n"), Ok('\\'));
        assert_eq!(escape_directive("# syntax=x\n# escape=`\n"), Ok('`'));
        assert_eq!(escape_directive("# escape=x\n"), Err((1, "x".into())));
    }
}
