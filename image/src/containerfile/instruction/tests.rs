use super::super::{parse, Base, Command, Containerfile, CopyArgs, Kind, ParseError};

fn ok(text: &str) -> Containerfile {
    match parse("Containerfile", text) {
        Ok(c) => c,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn kinds(text: &str) -> Vec<(usize, Kind)> {
    ok(text)
        .instructions
        .into_iter()
        .map(|i| (i.line, i.kind))
        .collect()
}

fn err(text: &str) -> String {
    match parse("Containerfile", text) {
        Ok(c) => panic!("parsed, expected an error: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn second(text: &str) -> Kind {
    kinds(&format!("FROM scratch\n{text}\n")).remove(1).1
}

#[test]
fn from_bases() {
    assert_eq!(
        kinds("FROM scratch")[0].1,
        Kind::From {
            base: Base::Scratch,
            stage: None
        }
    );
    assert_eq!(
        kinds("from vclab/base AS b")[0].1,
        Kind::From {
            base: Base::VclabBase,
            stage: Some("b".into())
        }
    );
    assert_eq!(
        kinds("FROM oci:/tmp/x:v1")[0].1,
        Kind::From {
            base: Base::Oci {
                dir: "/tmp/x".into(),
                tag: Some("v1".into())
            },
            stage: None
        }
    );
    assert_eq!(
        kinds("FROM oci:./lay/out")[0].1,
        Kind::From {
            base: Base::Oci {
                dir: "./lay/out".into(),
                tag: None
            },
            stage: None
        }
    );
}

#[test]
fn from_other_images_are_refused_with_what_is_supported() {
    let e = err("FROM debian:12\n");
    assert!(e.starts_with("Containerfile:1: FROM \"debian:12\""), "{e}");
    assert!(
        e.contains("oci:DIR[:TAG]") && e.contains("vclab/base"),
        "{e}"
    );
    assert!(err("FROM oci:\n").contains("oci:DIR[:TAG]"));
    assert!(err("FROM\n").contains("FROM needs an image"));
}

#[test]
fn copy_and_add_with_chown() {
    assert_eq!(
        second("COPY --chown=1:2 a b /dst/"),
        Kind::Copy(CopyArgs {
            chown: Some("1:2".into()),
            sources: vec!["a".into(), "b".into()],
            dest: "/dst/".into()
        })
    );
    assert_eq!(
        second(r#"add ["my file", "/x y"]"#),
        Kind::Add(CopyArgs {
            chown: None,
            sources: vec!["my file".into()],
            dest: "/x y".into()
        })
    );
}

#[test]
fn copy_errors() {
    assert_eq!(
        err("FROM scratch\n\nCOPY onlyone\n"),
        "Containerfile:3: COPY needs a source and a destination"
    );
    assert!(err("FROM scratch\nCOPY --from=b a b\n")
        .starts_with("Containerfile:2: COPY --from (only --chown is) is not supported"));
    assert!(err("FROM scratch\nADD --chown= a b\n").contains("ADD --chown needs a value"));
    assert!(err("FROM scratch\nCOPY [\"a\", 'b']\n")
        .starts_with("Containerfile:2: COPY: malformed JSON array"));
}

#[test]
fn run_cmd_entrypoint_both_forms() {
    assert_eq!(
        second("RUN echo hi && ls"),
        Kind::Run(Command::Shell("echo hi && ls".into()))
    );
    assert_eq!(
        second(r#"CMD ["/bin/sh", "-c", "echo $HOME"]"#),
        Kind::Cmd(Command::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo $HOME".into()
        ]))
    );
    assert_eq!(
        second("ENTRYPOINT [\"/app\"]"),
        Kind::Entrypoint(Command::Exec(vec!["/app".into()]))
    );
    assert_eq!(second("CMD []"), Kind::Cmd(Command::Exec(vec![])));
}

#[test]
fn malformed_json_array_is_an_error_naming_the_line() {
    let e = err("FROM scratch\nCMD ['/bin/sh']\n");
    assert!(
        e.starts_with("Containerfile:2: CMD: malformed JSON array"),
        "{e}"
    );
    assert!(err("FROM scratch\nRUN\n").contains("RUN needs a command"));
    assert!(err("FROM scratch\nRUN --mount=type=cache x\n").contains("RUN --mount"));
}

#[test]
fn env_both_forms_and_label() {
    assert_eq!(
        second(r#"ENV A=1 B="two words" C=a\ b"#),
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), r#""two words""#.into()),
            ("C".into(), r"a\ b".into()),
        ])
    );
    assert_eq!(
        second("ENV PATH /usr/local/bin:/usr/bin"),
        Kind::Env(vec![("PATH".into(), "/usr/local/bin:/usr/bin".into())])
    );
    assert_eq!(
        second(r#"LABEL org.example.name="x" version=1"#),
        Kind::Label(vec![
            ("org.example.name".into(), r#""x""#.into()),
            ("version".into(), "1".into())
        ])
    );
    assert!(err("FROM scratch\nENV LONELY\n").contains("ENV: \"LONELY\" has no value"));
    assert!(err("FROM scratch\nENV A=\"x\n").contains("unterminated"));
}

#[test]
fn arg_workdir_user_expose() {
    assert_eq!(
        kinds("ARG V=1 W\nFROM scratch\n")[0].1,
        Kind::Arg(vec![("V".into(), Some("1".into())), ("W".into(), None)])
    );
    assert_eq!(second("WORKDIR /app/$X"), Kind::Workdir("/app/$X".into()));
    assert_eq!(second("USER 1000:1000"), Kind::User("1000:1000".into()));
    assert_eq!(
        second("EXPOSE 80 443/tcp"),
        Kind::Expose(vec!["80".into(), "443/tcp".into()])
    );
    assert!(err("FROM scratch\nARG bad-name\n").contains("not a variable name"));
    assert!(err("FROM scratch\nWORKDIR\n").contains("WORKDIR needs a value"));
    assert!(err("FROM scratch\nEXPOSE\n").contains("EXPOSE needs a port"));
}

#[test]
fn unknown_and_unsupported_instructions() {
    assert_eq!(
        err("FROM scratch\n\n\n\n\n\nFOO bar\n").split(" (").next(),
        Some("Containerfile:7: unknown instruction \"FOO\"")
    );
    assert!(
        err("FROM scratch\nvolume /data\n").starts_with("Containerfile:2: VOLUME is not supported")
    );
}

#[test]
fn order_rules() {
    assert!(err("RUN x\nFROM scratch\n").starts_with("Containerfile:1: RUN before the first FROM"));
    assert!(err("ARG A\n").contains("no FROM instruction"));
    assert!(err("FROM scratch\nFROM scratch\n").contains("first on line 1"));
    assert!(err("# escape=x\nFROM scratch\n").contains("escape directive"));
}

#[test]
fn keywords_are_case_insensitive() {
    let got = kinds("from scratch\nRun true\ncMd x\n");
    assert_eq!(got[1].1, Kind::Run(Command::Shell("true".into())));
    assert_eq!(got[2].1, Kind::Cmd(Command::Shell("x".into())));
}

/// A real-world style Dockerfile: multi-line RUN with `&&`, comments inside
/// the continuation, ENV with quotes, JSON CMD.
const FIXTURE_DEBIANISH: &str = r#"# syntax=docker/dockerfile:1
# A build of a small tool.
ARG VERSION=1.2.3
FROM oci:/var/lib/base:bookworm

LABEL maintainer="lab@example.org" \
      org.opencontainers.image.version="${VERSION}"
ENV LANG="C.UTF-8" \
    PATH="/opt/tool/bin:${PATH}"

RUN set -eux; \
    # fetch and unpack
    mkdir -p /opt/tool/bin \
    && echo "built ${VERSION}" > /opt/tool/VERSION \
\
    && chmod 0755 /opt/tool/bin

WORKDIR /opt/tool
COPY --chown=1000:1000 bin/ ./bin/
USER 1000
EXPOSE 8080/tcp
ENTRYPOINT ["/opt/tool/bin/tool"]
CMD ["--help"]
"#;

#[test]
fn fixture_debianish() {
    let got = kinds(FIXTURE_DEBIANISH);
    let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![3, 4, 6, 8, 11, 18, 19, 20, 21, 22, 23]);
    assert_eq!(
        got[3].1,
        Kind::Env(vec![
            ("LANG".into(), r#""C.UTF-8""#.into()),
            ("PATH".into(), r#""/opt/tool/bin:${PATH}""#.into()),
        ])
    );
    let Kind::Run(Command::Shell(run)) = &got[4].1 else {
        panic!("not a shell RUN: {:?}", got[4].1);
    };
    assert!(
        run.starts_with("set -eux;     mkdir -p /opt/tool/bin"),
        "{run}"
    );
    assert!(run.ends_with("&& chmod 0755 /opt/tool/bin"), "{run}");
    assert!(!run.contains("fetch and unpack"), "{run}");
    assert_eq!(got[10].1, Kind::Cmd(Command::Exec(vec!["--help".into()])));
}

/// A Windows-style file with the backtick escape.
const FIXTURE_BACKTICK: &str =
    "# escape=`\r\nFROM scratch\r\nRUN dir c:\\ `\r\n    && echo done\r\nCOPY a\\b c:\\dst\\\r\n";

#[test]
fn fixture_backtick_escape() {
    let c = ok(FIXTURE_BACKTICK);
    assert_eq!(c.escape, '`');
    assert_eq!(
        c.instructions[1].kind,
        Kind::Run(Command::Shell("dir c:\\     && echo done".into()))
    );
    assert_eq!(c.instructions[2].line, 5);
}

/// A typical service Dockerfile from vclab's own scratch images.
const FIXTURE_SCRATCH: &str = "FROM scratch\nADD rootfs.tar /\nCOPY vclab-workload /bin/\nENV RUST_LOG=info\nENTRYPOINT [\"/bin/vclab-workload\"]\nCMD [\"cpu\", \"--iterations\", \"10\"]\n";

#[test]
fn fixture_scratch() {
    let got = kinds(FIXTURE_SCRATCH);
    assert_eq!(got.len(), 6);
    assert_eq!(
        got[1].1,
        Kind::Add(CopyArgs {
            chown: None,
            sources: vec!["rootfs.tar".into()],
            dest: "/".into()
        })
    );
    assert_eq!(
        got[5].1,
        Kind::Cmd(Command::Exec(vec![
            "cpu".into(),
            "--iterations".into(),
            "10".into()
        ]))
    );
}

#[test]
fn parse_file_names_the_file_and_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, "FROM scratch\nBAD x\n").unwrap();
    let e = super::super::parse_file(&path).unwrap_err().to_string();
    assert!(
        e.starts_with("Dockerfile:2: unknown instruction \"BAD\""),
        "{e}"
    );
    let missing = dir.path().join("nope");
    let e = super::super::parse_file(&missing).unwrap_err();
    assert!(matches!(e, ParseError::Read { .. }));
    assert!(e.to_string().contains("nope"));
}
