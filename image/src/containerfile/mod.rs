//! A Containerfile/Dockerfile parsed into typed [`Instruction`]s, each with
//! its 1-based line number.
//!
//! Steps: the `# escape=` directive ([`lines::escape_directive`]) → logical
//! lines (continuations joined, comments and blank lines dropped,
//! [`lines::logical_lines`]) → one [`Kind`] per line ([`instruction`]).
//! Values are kept as written; the builder applies [`expand()`] with the ARG
//! and ENV values in scope. Our own small parser: the `dockerfile-parser`
//! crate (pest, last release 2022) and `parse-dockerfile` (a span tree)
//! would still need this typed layer and Docker's expansion.

pub mod expand;
pub mod instruction;
pub mod lines;
pub mod words;

use std::path::Path;

pub use expand::{expand, ExpandError, Vars};

/// The instructions `vclab image build` supports (for error messages).
pub const SUPPORTED: &str =
    "FROM, COPY, ADD, RUN, ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE";

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// The file name used in messages (e.g. `Containerfile`).
    pub file: String,
    /// The escape character (`\`, or `` ` `` from `# escape=`).
    pub escape: char,
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line number of the instruction's first line.
    pub line: usize,
    /// What it says.
    pub kind: Kind,
}

/// The base of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: no layers.
    Scratch,
    /// `FROM oci:DIR[:TAG]`: an OCI image layout on disk.
    Oci {
        /// The layout directory, as written.
        dir: String,
        /// The tag (`None`: `latest` or the layout's only image).
        tag: Option<String>,
    },
    /// `FROM vclab/base`: the lab's busybox + workload rootfs.
    VclabBase,
}

/// A command: exec form (JSON array) or shell form (run by `/bin/sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["prog", "arg"]`.
    Exec(Vec<String>),
    /// `prog arg`, as written.
    Shell(String),
}

/// `COPY`/`ADD` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// `--chown=USER[:GROUP]`, as written.
    pub chown: Option<String>,
    /// Sources in the context, as written (one or more).
    pub sources: Vec<String>,
    /// The destination in the image, as written.
    pub dest: String,
}

/// What an instruction says. Values are as written (quotes kept where
/// [`expand()`] removes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `FROM base [AS name]`.
    From {
        /// The base image.
        base: Base,
        /// The stage name after `AS`.
        stage: Option<String>,
    },
    /// `COPY [--chown=..] src... dest`.
    Copy(CopyArgs),
    /// `ADD [--chown=..] src... dest` (local files and tar archives).
    Add(CopyArgs),
    /// `RUN command`.
    Run(Command),
    /// `CMD command`.
    Cmd(Command),
    /// `ENTRYPOINT command`.
    Entrypoint(Command),
    /// `ENV K=V ...` or `ENV K V`.
    Env(Vec<(String, String)>),
    /// `ARG NAME[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `WORKDIR dir`.
    Workdir(String),
    /// `USER user[:group]`.
    User(String),
    /// `LABEL K=V ...`.
    Label(Vec<(String, String)>),
    /// `EXPOSE port[/proto] ...`.
    Expose(Vec<String>),
}

impl Kind {
    /// The instruction's keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
        }
    }
}

/// Why a Containerfile could not be parsed. Every message names the file
/// and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file could not be read.
    #[error("{path}: cannot read the Containerfile: {source}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A keyword that is no Dockerfile instruction.
    #[error("{file}:{line}: unknown instruction \"{word}\" (supported: {SUPPORTED})")]
    Unknown {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The keyword as written.
        word: String,
    },
    /// A Dockerfile instruction or flag vclab does not implement.
    #[error(
        "{file}:{line}: {what} is not supported by vclab image build (supported: {SUPPORTED})"
    )]
    Unsupported {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The instruction or flag.
        what: String,
    },
    /// An instruction with arguments it cannot take.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong, starting with the instruction.
        message: String,
    },
    /// Text that looks like an exec-form JSON array and is not one.
    #[error("{file}:{line}: {instruction}: malformed JSON array ({reason}): write [\"prog\", \"arg\"] with double quotes, or use the shell form")]
    Json {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The instruction.
        instruction: &'static str,
        /// serde_json's reason.
        reason: String,
    },
    /// `FROM` of an image kind vclab cannot read.
    #[error("{file}:{line}: FROM \"{image}\" is not supported: use scratch, oci:DIR[:TAG] (an OCI image layout) or vclab/base")]
    UnsupportedBase {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The image as written.
        image: String,
    },
    /// An instruction other than ARG before the first FROM.
    #[error("{file}:{line}: {instruction} before the first FROM: only ARG may come before FROM")]
    BeforeFrom {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The instruction.
        instruction: &'static str,
    },
    /// A second FROM (multi-stage builds are not supported).
    #[error("{file}:{line}: a second FROM (first on line {first}): multi-stage builds are not supported")]
    SecondFrom {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The line of the first FROM.
        first: usize,
    },
    /// No FROM at all.
    #[error(
        "{file}: no FROM instruction: start the Containerfile with FROM (ARG may come before it)"
    )]
    NoFrom {
        /// The file name.
        file: String,
    },
    /// A `# escape=` directive with another character.
    #[error("{file}:{line}: escape directive \"{value}\": the escape character must be \\ or `")]
    BadEscape {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The value given.
        value: String,
    },
}

/// Reads and parses the Containerfile at `path`; messages name it by its
/// file name.
pub fn parse_file(path: &Path) -> Result<Containerfile, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|source| ParseError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    parse(&name, &text)
}

/// Parses `text`; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Result<Containerfile, ParseError> {
    let escape = lines::escape_directive(text).map_err(|(line, value)| ParseError::BadEscape {
        file: file.to_string(),
        line,
        value,
    })?;
    let mut instructions = Vec::new();
    let mut from_line: Option<usize> = None;
    for logical in lines::logical_lines(text, escape) {
        let kind = instruction::parse_line(file, logical.line, &logical.text, escape)?;
        match (&kind, from_line) {
            (Kind::From { .. }, Some(first)) => {
                return Err(ParseError::SecondFrom {
                    file: file.to_string(),
                    line: logical.line,
                    first,
                })
            }
            (Kind::From { .. }, None) => from_line = Some(logical.line),
            (Kind::Arg(_), _) | (_, Some(_)) => {}
            (other, None) => {
                return Err(ParseError::BeforeFrom {
                    file: file.to_string(),
                    line: logical.line,
                    instruction: other.keyword(),
                })
            }
        }
        instructions.push(Instruction {
            line: logical.line,
            kind,
        });
    }
    if from_line.is_none() {
        return Err(ParseError::NoFrom {
            file: file.to_string(),
        });
    }
    Ok(Containerfile {
        file: file.to_string(),
        escape,
        instructions,
    })
}
