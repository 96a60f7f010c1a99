//! Docker's word expansion: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`,
//! quotes removed (`'...'` literal, `"..."` with substitution) and `\`
//! escapes. Unset variables expand to nothing, as in Docker.

use std::collections::{BTreeMap, HashMap};

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${` with no closing `}`.
    #[error("unterminated \"${{\" in {word:?}: close it with \"}}\"")]
    Unterminated {
        /// The word being expanded.
        word: String,
    },
    /// `${}` or a name with characters a variable cannot have.
    #[error("bad substitution \"${{{inner}}}\" in {word:?}: write ${{NAME}}, ${{NAME:-default}} or ${{NAME:+alt}}")]
    BadSubstitution {
        /// The word being expanded.
        word: String,
        /// What stood between the braces.
        inner: String,
    },
    /// A quote opened and never closed.
    #[error("unterminated {quote} quote in {word:?}")]
    UnterminatedQuote {
        /// The word being expanded.
        word: String,
        /// The quote character.
        quote: char,
    },
    /// `${NAME:?message}` with `NAME` unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The word's message (Docker's default when empty).
        message: String,
    },
}

/// Variables in scope for [`expand`] (ARG and ENV values).
pub trait Vars {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<&str>;
}

impl Vars for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The last pair with that name wins (later ENV overrides earlier).
impl Vars for [(String, String)] {
    fn var(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Vars for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<&str> {
        self.as_slice().var(name)
    }
}

/// Expands `word` with `vars`, as Docker does for ENV, ARG, COPY/ADD,
/// WORKDIR, USER, LABEL and EXPOSE: substitutions, quote removal and `\`
/// escapes (inside double quotes `\` escapes only `$ " \` and a backtick).
pub fn expand<V: Vars + ?Sized>(word: &str, vars: &V) -> Result<String, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => out.push(c),
            (None, '\'') | (None, '"') => quote = Some(c),
            (None, '\\') => {
                i += 1;
                if let Some(next) = chars.get(i) {
                    out.push(*next);
                }
            }
            (Some(_), '\\') => match chars.get(i + 1) {
                Some(next @ ('$' | '"' | '\\' | '`')) => {
                    out.push(*next);
                    i += 1;
                }
                _ => out.push('\\'),
            },
            (_, '$') => {
                i = substitute(word, &chars, i, vars, &mut out)?;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if let Some(quote) = quote {
        return Err(ExpandError::UnterminatedQuote {
            word: word.to_string(),
            quote,
        });
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the `$` at `chars[start]` into `out`; returns the index after it.
fn substitute<V: Vars + ?Sized>(
    word: &str,
    chars: &[char],
    start: usize,
    vars: &V,
    out: &mut String,
) -> Result<usize, ExpandError> {
    let next = start + 1;
    match chars.get(next) {
        Some('{') => {
            let close = matching_brace(chars, next).ok_or_else(|| ExpandError::Unterminated {
                word: word.to_string(),
            })?;
            let inner: String = chars[next + 1..close].iter().collect();
            out.push_str(&braced(word, &inner, vars)?);
            Ok(close + 1)
        }
        Some(c) if is_name_char(*c) => {
            let end = chars[next..]
                .iter()
                .position(|c| !is_name_char(*c))
                .map_or(chars.len(), |p| next + p);
            let name: String = chars[next..end].iter().collect();
            out.push_str(vars.var(&name).unwrap_or(""));
            Ok(end)
        }
        _ => {
            out.push('$');
            Ok(next)
        }
    }
}

/// The index of the `}` closing the `{` at `open`, counting nested `${`.
fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `${inner}`.
fn braced<V: Vars + ?Sized>(word: &str, inner: &str, vars: &V) -> Result<String, ExpandError> {
    let bad = || ExpandError::BadSubstitution {
        word: word.to_string(),
        inner: inner.to_string(),
    };
    let name_end = inner
        .find(|c: char| !is_name_char(c))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_end);
    if name.is_empty() {
        return Err(bad());
    }
    let value = vars.var(name);
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // With a colon, an empty value counts as unset.
    let set = value.is_some_and(|v| !colon || !v.is_empty());
    let mut ops = rest.chars();
    let op = ops.next();
    let arg = ops.as_str();
    let arg = || expand(arg, vars);
    match op {
        None if !colon => Ok(value.unwrap_or("").to_string()),
        Some('-') => match set {
            true => Ok(value.unwrap_or("").to_string()),
            false => arg(),
        },
        Some('+') => match set {
            true => arg(),
            false => Ok(String::new()),
        },
        Some('?') => match set {
            true => Ok(value.unwrap_or("").to_string()),
            false => {
                let message = arg()?;
                Err(ExpandError::Required {
                    name: name.to_string(),
                    message: if message.is_empty() {
                        "parameter not set or null".to_string()
                    } else {
                        message
                    },
                })
            }
        },
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("A".into(), "one".into()),
            ("EMPTY".into(), String::new()),
            ("P".into(), "/usr/bin".into()),
            ("A".into(), "two".into()),
        ]
    }

    fn ex(word: &str) -> Result<String, ExpandError> {
        expand(word, &vars())
    }

    #[test]
    fn plain_and_braced_names() {
        assert_eq!(ex("$A").unwrap(), "two");
        assert_eq!(ex("${A}x").unwrap(), "twox");
        assert_eq!(ex("$Ax").unwrap(), "");
        assert_eq!(ex("$P:/bin").unwrap(), "/usr/bin:/bin");
        assert_eq!(ex("$UNSET-").unwrap(), "-");
        assert_eq!(ex("cost $").unwrap(), "cost $");
        assert_eq!(ex("a$-b").unwrap(), "a$-b");
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(ex("${UNSET:-d}").unwrap(), "d");
        assert_eq!(ex("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(ex("${EMPTY-d}").unwrap(), "");
        assert_eq!(ex("${UNSET-d}").unwrap(), "d");
        assert_eq!(ex("${A:-d}").unwrap(), "two");
        assert_eq!(ex("${A:+alt}").unwrap(), "alt");
        assert_eq!(ex("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(ex("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(ex("${UNSET:+alt}").unwrap(), "");
        assert_eq!(ex("${UNSET:-$P}").unwrap(), "/usr/bin");
        assert_eq!(ex("${UNSET:-${A}-x}y").unwrap(), "two-xy");
        assert_eq!(ex("${A:+${UNSET:-in}}").unwrap(), "in");
        assert_eq!(ex(r"${UNSET:-a\}b}").unwrap(), "a}b");
    }

    #[test]
    fn required_variable() {
        assert_eq!(
            ex("${UNSET:?set it}"),
            Err(ExpandError::Required {
                name: "UNSET".into(),
                message: "set it".into()
            })
        );
        assert_eq!(ex("${A:?x}").unwrap(), "two");
    }

    #[test]
    fn escapes_and_quotes() {
        assert_eq!(ex(r"\$A").unwrap(), "$A");
        assert_eq!(ex(r"'$A'").unwrap(), "$A");
        assert_eq!(ex(r#""$A b""#).unwrap(), "two b");
        assert_eq!(ex(r#""\$A \n""#).unwrap(), r"$A \n");
        assert_eq!(ex(r"a\ b").unwrap(), "a b");
        assert_eq!(ex(r#"x"y"z"#).unwrap(), "xyz");
    }

    #[test]
    fn errors_name_the_word() {
        let err = ex("${A").unwrap_err();
        assert!(err.to_string().contains("${A"), "{err}");
        assert!(matches!(
            ex("${}"),
            Err(ExpandError::BadSubstitution { .. })
        ));
        assert!(matches!(
            ex("${A%x}"),
            Err(ExpandError::BadSubstitution { .. })
        ));
        assert!(matches!(
            ex("'open"),
            Err(ExpandError::UnterminatedQuote { quote: '\'', .. })
        ));
    }

    #[test]
    fn hashmap_and_btreemap_vars() {
        let h: HashMap<String, String> = [("X".to_string(), "1".to_string())].into();
        let b: BTreeMap<String, String> = [("X".to_string(), "2".to_string())].into();
        assert_eq!(expand("$X", &h).unwrap(), "1");
        assert_eq!(expand("$X", &b).unwrap(), "2");
    }
}
