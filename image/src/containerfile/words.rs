//! Splitting an instruction's arguments: quote-aware words (quotes kept for
//! [`super::expand`]), `KEY=VALUE` pairs with Docker's legacy `KEY VALUE`
//! form, and the JSON-array exec form.

/// Why the arguments could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordsError {
    /// A quote opened and never closed.
    UnterminatedQuote(char),
    /// A `KEY=VALUE` list with a word that has no `=`.
    MissingEquals(String),
    /// A pair with an empty key.
    EmptyKey,
}

/// Splits `text` at unquoted blanks. Single and double quotes group, and
/// `escape` escapes the next character; both are kept in the words.
pub fn split_words(text: &str, escape: char) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == escape && q == '"' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                word.push(c);
                if c == escape {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(WordsError::UnterminatedQuote(q));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `KEY=VALUE ...` pairs (values as written, quotes kept), or Docker's
/// legacy `KEY VALUE` form (the rest of the line is the value) when the
/// first word has no `=`.
pub fn key_values(text: &str, escape: char) -> Result<Vec<(String, String)>, WordsError> {
    let words = split_words(text, escape)?;
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let key = first.clone();
        let rest = text.trim_start()[key.len()..].trim();
        if rest.is_empty() {
            return Err(WordsError::MissingEquals(key));
        }
        return Ok(vec![(key, rest.to_string())]);
    }
    let mut pairs = Vec::with_capacity(words.len());
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(WordsError::MissingEquals(word));
        };
        if key.is_empty() {
            return Err(WordsError::EmptyKey);
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// The exec form: `Some(Ok(words))` for a JSON array of strings,
/// `Some(Err(reason))` for text that looks like one (`[` ... `]`) and is not,
/// `None` for the shell form.
pub fn json_array(text: &str) -> Option<Result<Vec<String>, String>> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('[') && trimmed.ends_with(']')) {
        return None;
    }
    Some(serde_json::from_str::<Vec<String>>(trimmed).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_group_blanks() {
        let got = split_words(r#"a "b c" 'd e'  f\ g"#, '\\').unwrap();
        assert_eq!(got, vec!["a", r#""b c""#, "'d e'", r"f\ g"]);
    }

    #[test]
    fn escaped_quote_inside_double_quotes() {
        let got = split_words(r#""a \" b" c"#, '\\').unwrap();
        assert_eq!(got, vec![r#""a \" b""#, "c"]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            split_words("a \"b", '\\'),
            Err(WordsError::UnterminatedQuote('"'))
        );
    }

    #[test]
    fn pairs_and_legacy_form() {
        assert_eq!(
            key_values(r#"A=1 B="x y""#, '\\').unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), r#""x y""#.into())]
        );
        assert_eq!(
            key_values("PATH /usr/bin:/bin  and more", '\\').unwrap(),
            vec![("PATH".into(), "/usr/bin:/bin  and more".into())]
        );
        assert_eq!(
            key_values("A=1 B", '\\'),
            Err(WordsError::MissingEquals("B".into()))
        );
        assert_eq!(key_values("=1", '\\'), Err(WordsError::EmptyKey));
        assert_eq!(
            key_values("LONELY", '\\'),
            Err(WordsError::MissingEquals("LONELY".into()))
        );
    }

    #[test]
    fn json_array_forms() {
        assert_eq!(
            json_array(r#"["a", "b c"]"#),
            Some(Ok(vec!["a".to_string(), "b c".to_string()]))
        );
        assert!(matches!(json_array("['a']"), Some(Err(_))));
        assert!(matches!(json_array(r#"["a", 1]"#), Some(Err(_))));
        assert_eq!(json_array("echo [a]x"), None);
    }
}
