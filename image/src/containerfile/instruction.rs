//! One logical line → one [`Kind`]: the keyword (case-insensitive), its
//! flags and its arguments in exec or shell form.

use super::words::{json_array, key_values, split_words, WordsError};
use super::{Base, Command, CopyArgs, Kind, ParseError};

/// Dockerfile instructions vclab does not implement (an error says so,
/// rather than "unknown").
const UNSUPPORTED: &[&str] = &[
    "VOLUME",
    "SHELL",
    "HEALTHCHECK",
    "ONBUILD",
    "STOPSIGNAL",
    "MAINTAINER",
];

/// Parses the instruction `text` that starts on `line` of `file`.
pub fn parse_line(file: &str, line: usize, text: &str, escape: char) -> Result<Kind, ParseError> {
    let text = text.trim();
    let (word, args) = match text.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (text, ""),
    };
    let keyword = word.to_ascii_uppercase();
    let cx = Cx {
        file,
        line,
        escape,
        keyword: "",
    };
    let known = |k: &'static str| Cx { keyword: k, ..cx };
    match keyword.as_str() {
        "FROM" => known("FROM").from(args),
        "COPY" => known("COPY").copy(args).map(Kind::Copy),
        "ADD" => known("ADD").copy(args).map(Kind::Add),
        "RUN" => known("RUN").command(args).map(Kind::Run),
        "CMD" => known("CMD").command(args).map(Kind::Cmd),
        "ENTRYPOINT" => known("ENTRYPOINT").command(args).map(Kind::Entrypoint),
        "ENV" => known("ENV").pairs(args).map(Kind::Env),
        "LABEL" => known("LABEL").pairs(args).map(Kind::Label),
        "ARG" => known("ARG").arg(args),
        "WORKDIR" => known("WORKDIR").single(args).map(Kind::Workdir),
        "USER" => known("USER").single(args).map(Kind::User),
        "EXPOSE" => known("EXPOSE").expose(args),
        k if UNSUPPORTED.contains(&k) => Err(ParseError::Unsupported {
            file: file.to_string(),
            line,
            what: k.to_string(),
        }),
        _ => Err(ParseError::Unknown {
            file: file.to_string(),
            line,
            word: word.to_string(),
        }),
    }
}

/// Where we are, for error messages.
#[derive(Clone, Copy)]
struct Cx<'a> {
    file: &'a str,
    line: usize,
    escape: char,
    keyword: &'static str,
}

impl Cx<'_> {
    fn invalid(&self, message: impl Into<String>) -> ParseError {
        ParseError::Invalid {
            file: self.file.to_string(),
            line: self.line,
            message: message.into(),
        }
    }

    fn words_error(&self, e: WordsError) -> ParseError {
        let k = self.keyword;
        self.invalid(match e {
            WordsError::UnterminatedQuote(q) => format!("{k}: unterminated {q} quote"),
            WordsError::MissingEquals(w) => {
                format!("{k}: \"{w}\" has no value: write {k} KEY=VALUE")
            }
            WordsError::EmptyKey => format!("{k}: a pair has an empty key: write {k} KEY=VALUE"),
        })
    }

    fn words(&self, args: &str) -> Result<Vec<String>, ParseError> {
        split_words(args, self.escape).map_err(|e| self.words_error(e))
    }

    fn exec_or_words(&self, args: &str) -> Result<Vec<String>, ParseError> {
        match json_array(args) {
            Some(Ok(words)) => Ok(words),
            Some(Err(reason)) => Err(self.json(reason)),
            None => self.words(args),
        }
    }

    fn json(&self, reason: String) -> ParseError {
        ParseError::Json {
            file: self.file.to_string(),
            line: self.line,
            instruction: self.keyword,
            reason,
        }
    }

    fn from(&self, args: &str) -> Result<Kind, ParseError> {
        let words = self.words(args)?;
        let (image, stage) = match words.as_slice() {
            [image] => (image, None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => (image, Some(name.clone())),
            [] => {
                return Err(
                    self.invalid("FROM needs an image: scratch, oci:DIR[:TAG] or vclab/base")
                )
            }
            _ => {
                return Err(self.invalid(format!(
                    "FROM takes an image and an optional \"AS name\", not {args:?}"
                )))
            }
        };
        if let Some(flag) = image.strip_prefix("--") {
            return Err(ParseError::Unsupported {
                file: self.file.to_string(),
                line: self.line,
                what: format!("FROM --{flag}"),
            });
        }
        let base = if image == "scratch" {
            Base::Scratch
        } else if image == "vclab/base" {
            Base::VclabBase
        } else if let Some(rest) = image.strip_prefix("oci:") {
            oci_ref(rest)
                .ok_or_else(|| self.invalid("FROM oci: needs a directory: oci:DIR[:TAG]"))?
        } else {
            return Err(ParseError::UnsupportedBase {
                file: self.file.to_string(),
                line: self.line,
                image: image.clone(),
            });
        };
        Ok(Kind::From { base, stage })
    }

    fn copy(&self, args: &str) -> Result<CopyArgs, ParseError> {
        let k = self.keyword;
        let mut rest = args;
        let mut chown = None;
        while let Some(flagged) = rest.strip_prefix("--") {
            let (flag, after) = flagged
                .split_once(char::is_whitespace)
                .unwrap_or((flagged, ""));
            rest = after.trim_start();
            if let Some(value) = flag.strip_prefix("chown=").filter(|v| !v.is_empty()) {
                chown = Some(value.to_string());
            } else if flag == "chown" || flag == "chown=" {
                return Err(
                    self.invalid(format!("{k} --chown needs a value: --chown=USER[:GROUP]"))
                );
            } else {
                let name = flag.split('=').next().unwrap_or(flag);
                return Err(ParseError::Unsupported {
                    file: self.file.to_string(),
                    line: self.line,
                    what: format!("{k} --{name} (only --chown is)"),
                });
            }
        }
        let mut words = self.exec_or_words(rest)?;
        if words.len() < 2 {
            return Err(self.invalid(format!("{k} needs a source and a destination")));
        }
        let dest = words.pop().unwrap_or_default();
        Ok(CopyArgs {
            chown,
            sources: words,
            dest,
        })
    }

    fn command(&self, args: &str) -> Result<Command, ParseError> {
        let k = self.keyword;
        if k == "RUN" {
            if let Some(flag) = args.strip_prefix("--") {
                let name = flag.split(['=', ' ', '\t']).next().unwrap_or(flag);
                return Err(ParseError::Unsupported {
                    file: self.file.to_string(),
                    line: self.line,
                    what: format!("RUN --{name}"),
                });
            }
        }
        let command = match json_array(args) {
            Some(Ok(words)) => Command::Exec(words),
            Some(Err(reason)) => return Err(self.json(reason)),
            None => Command::Shell(args.to_string()),
        };
        let empty = match &command {
            Command::Exec(w) => w.is_empty() && k == "RUN",
            Command::Shell(s) => s.is_empty(),
        };
        if empty {
            return Err(self.invalid(format!("{k} needs a command")));
        }
        Ok(command)
    }

    fn pairs(&self, args: &str) -> Result<Vec<(String, String)>, ParseError> {
        let k = self.keyword;
        let pairs = key_values(args, self.escape).map_err(|e| self.words_error(e))?;
        if pairs.is_empty() {
            return Err(self.invalid(format!("{k} needs at least one KEY=VALUE")));
        }
        Ok(pairs)
    }

    fn arg(&self, args: &str) -> Result<Kind, ParseError> {
        let words = self.words(args)?;
        if words.is_empty() {
            return Err(self.invalid("ARG needs a name: ARG NAME[=default]"));
        }
        let mut out = Vec::with_capacity(words.len());
        for word in words {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(format!(
                    "ARG: {name:?} is not a variable name (letters, digits, _)"
                )));
            }
            out.push((name, default));
        }
        Ok(Kind::Arg(out))
    }

    fn single(&self, args: &str) -> Result<String, ParseError> {
        let k = self.keyword;
        if args.is_empty() {
            return Err(self.invalid(format!("{k} needs a value")));
        }
        if let Some(Ok(words)) = json_array(args) {
            if let [one] = words.as_slice() {
                return Ok(one.clone());
            }
        }
        Ok(args.to_string())
    }

    fn expose(&self, args: &str) -> Result<Kind, ParseError> {
        let words = self.words(args)?;
        if words.is_empty() {
            return Err(self.invalid("EXPOSE needs a port: EXPOSE 80[/tcp]"));
        }
        Ok(Kind::Expose(words))
    }
}

/// `DIR[:TAG]` after `oci:`: the tag is what follows the last `:` when it
/// has no `/` (`oci:/a/b:v1`, `oci:./dir`).
fn oci_ref(rest: &str) -> Option<Base> {
    let (dir, tag) = match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => (dir, Some(tag)),
        _ => (rest, None),
    };
    if dir.is_empty() || tag == Some("") {
        return None;
    }
    Some(Base::Oci {
        dir: dir.to_string(),
        tag: tag.map(str::to_string),
    })
}

#[cfg(test)]
mod tests;
