//! The image builder's Containerfile parser: text → `containerfile::parse`, then Docker's word
//! expansion over every value the builder expands. It must never panic; a parsed file has
//! instructions on increasing 1-based lines within the text, and expansion of a word with no
//! `$`, quote or backslash gives the word back.

use vclab_image::containerfile::{expand, parse, Command, Kind};

/// The `containerfile` target's body.
pub fn containerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = vec![
        ("A".into(), "x".into()),
        ("EMPTY".into(), String::new()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    // Expansion of the raw text line by line, as a word.
    for line in text.lines().take(8) {
        check_expand(line, &vars);
    }
    let Ok(file) = parse("Containerfile", &text) else {
        return;
    };
    let lines = text.lines().count().max(1);
    let mut last = 0;
    for ins in &file.instructions {
        assert!(ins.line > last, "lines increase: {} after {last}", ins.line);
        assert!(ins.line <= lines, "line {} of {lines}", ins.line);
        last = ins.line;
        let words: Vec<&str> = match &ins.kind {
            Kind::Env(pairs) | Kind::Label(pairs) => {
                pairs.iter().map(|(_, v)| v.as_str()).collect()
            }
            Kind::Arg(args) => args.iter().filter_map(|(_, d)| d.as_deref()).collect(),
            Kind::Copy(c) | Kind::Add(c) => {
                assert!(!c.sources.is_empty(), "COPY/ADD has a source");
                c.sources
                    .iter()
                    .map(String::as_str)
                    .chain([c.dest.as_str()])
                    .collect()
            }
            Kind::Workdir(w) | Kind::User(w) => vec![w.as_str()],
            Kind::Expose(p) => p.iter().map(String::as_str).collect(),
            Kind::Run(Command::Shell(s)) => {
                assert!(!s.is_empty(), "RUN has a command");
                vec![]
            }
            _ => vec![],
        };
        for word in words {
            check_expand(word, &vars);
        }
    }
}

fn check_expand(word: &str, vars: &Vec<(String, String)>) {
    let result = expand(word, vars);
    if !word.contains(['$', '"', '\'', '\\']) {
        assert_eq!(
            result.as_deref(),
            Ok(word),
            "a plain word expands to itself"
        );
    }
}
