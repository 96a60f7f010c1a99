//! Real builds (root, the lab rootfs from scripts/guest-images.sh or
//! VCLAB_ROOTFS): RUN steps go through the real launcher. Reproducible
//! digests, cache hits, and the bad inputs that must leave the store as it
//! was.

use std::path::{Path, PathBuf};

use vclab_image::build::{self, Options, Outcome};
use vclab_image::store::{Reference, Store};

fn need_root_and_rootfs() {
    assert!(
        nix_is_root(),
        "tests/build.rs runs RUN steps in containers: run it as root"
    );
    if let Err(e) = build::base::rootfs_dir() {
        panic!("{e}");
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

const FILE: &str = "\
FROM vclab/base
ARG WHO=lab
ENV GREETING=hello-$WHO
WORKDIR /app
COPY files/ /app/
RUN echo \"$GREETING\" > /app/greeting && rm /app/drop-me && chmod 0750 /app/run.sh
CMD [\"/app/run.sh\"]
LABEL org.example.a=1 org.example.b=2 org.example.c=3
EXPOSE 8080 9090/udp
";

/// A context with a Containerfile and a few files.
fn context(dir: &Path, file: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("files/sub")).unwrap();
    std::fs::write(ctx.join("Containerfile"), file).unwrap();
    std::fs::write(ctx.join("files/run.sh"), "#!/bin/sh\ncat /app/greeting\n").unwrap();
    std::fs::write(ctx.join("files/drop-me"), "x").unwrap();
    std::fs::write(ctx.join("files/sub/data"), "data").unwrap();
    std::fs::write(dir.join("outside"), "not in the context").unwrap();
    ctx
}

fn options(ctx: &Path, store: &Path, tag: &str) -> Options {
    Options {
        containerfile: ctx.join("Containerfile"),
        context: ctx.to_path_buf(),
        reference: Reference::parse(tag).unwrap(),
        build_args: vec!["WHO=test".into()],
        layout: None,
        store: Store::at(store),
        epoch: 0,
    }
}

fn run(opts: &Options) -> (Result<Outcome, build::Error>, String) {
    let mut out = Vec::new();
    let r = build::build(opts, &mut out);
    (r, String::from_utf8_lossy(&out).into_owned())
}

fn leftovers(store: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in [store.join(".tmp"), store.join(".cache/tmp")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            v.extend(rd.flatten().map(|e| e.path()));
        }
    }
    v
}

#[test]
fn same_inputs_in_two_places_give_the_same_digest_and_a_rebuild_is_all_cache_hits() {
    need_root_and_rootfs();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cb) = (context(a.path(), FILE), context(b.path(), FILE));
    let oa = options(&ca, &a.path().join("store"), "repro:1");
    let ob = options(&cb, &b.path().join("store"), "repro:1");
    let (ra, _) = run(&oa);
    let (rb, _) = run(&ob);
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.manifest_digest, rb.manifest_digest,
        "two cold builds in two places"
    );
    assert!(ra.steps.iter().filter(|s| s.layer).all(|s| !s.cached));

    // The image reads back, with the config the file set.
    let (_, img) = oa.store.image(&oa.reference).unwrap();
    assert_eq!(img.descriptor.digest().to_string(), ra.manifest_digest);
    let c = img.config.config().clone().unwrap();
    assert_eq!(c.cmd().clone().unwrap(), ["/app/run.sh"]);
    assert_eq!(c.working_dir().as_deref(), Some("/app"));
    assert!(c
        .env()
        .clone()
        .unwrap()
        .contains(&"GREETING=hello-test".to_string()));
    assert_eq!(img.layers().len(), 4, "base, WORKDIR, COPY, RUN");

    // Second build of the unchanged context: every layer step a cache hit.
    let (again, text) = run(&oa);
    let again = again.unwrap();
    assert_eq!(again.manifest_digest, ra.manifest_digest);
    let layer_steps: Vec<_> = again.steps.iter().filter(|s| s.layer).collect();
    assert_eq!(layer_steps.len(), 4);
    assert!(layer_steps.iter().all(|s| s.cached), "{text}");
    for kw in ["FROM", "WORKDIR", "COPY", "RUN"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!(": {kw} ")) && l.ends_with("(cached)")),
            "no cached {kw} line in:\n{text}"
        );
    }

    // A changed file changes the COPY layer and the ones after it.
    std::fs::write(ca.join("files/sub/data"), "other").unwrap();
    let (changed, _) = run(&oa);
    let changed = changed.unwrap();
    assert_ne!(changed.manifest_digest, ra.manifest_digest);
    let cached: Vec<bool> = changed
        .steps
        .iter()
        .filter(|s| s.layer)
        .map(|s| s.cached)
        .collect();
    assert_eq!(cached, [true, true, false, false]);

    // The rootfs of the image for `container run --image`: whiteout applied.
    let p = vclab_image::rootfs::prepare(&oa.store, &oa.reference).unwrap();
    assert_eq!(
        std::fs::read_to_string(p.rootfs.join("app/greeting")).unwrap(),
        "hello-test\n"
    );
    assert!(
        !p.rootfs.join("app/drop-me").exists(),
        "the RUN's rm must hide the file"
    );
    assert!(p.rootfs.join("bin/busybox").is_file());
    assert!(leftovers(&a.path().join("store")).is_empty());
}

#[test]
fn a_failing_run_names_step_and_exit_code_and_commits_nothing() {
    need_root_and_rootfs();
    let d = tempfile::tempdir().unwrap();
    let ctx = context(
        d.path(),
        "FROM vclab/base\nCOPY files/ /app/\nRUN echo partial > /app/p && exit 3\n",
    );
    let store = d.path().join("store");
    let (r, _) = run(&options(&ctx, &store, "broken"));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("Containerfile:3"), "{e}");
    assert!(e.contains("STEP 3/3"), "{e}");
    assert!(e.contains("exited with 3"), "{e}");
    let s = Store::at(&store);
    assert!(s.list().unwrap().is_empty(), "nothing in the store");
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
    // Only the two good layers are cached.
    let layers = std::fs::read_dir(store.join(".cache/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 2);
}

#[test]
fn sources_outside_the_context_and_missing_files_are_refused_with_the_line() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    for (file, needle) in [
        (
            "FROM scratch\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        (
            "FROM scratch\n\nCOPY /etc/passwd /x\n",
            "outside the build context",
        ),
        (
            "FROM scratch\nADD files/nope /x\n",
            "not found in the build context",
        ),
    ] {
        let ctx = context(d.path(), file);
        let (r, _) = run(&options(&ctx, &store, "refused"));
        let e = r.unwrap_err().to_string();
        let line = file
            .lines()
            .position(|l| l.starts_with("COPY") || l.starts_with("ADD"))
            .unwrap()
            + 1;
        assert!(e.contains(&format!("Containerfile:{line}")), "{e}");
        assert!(e.contains(needle), "{e}");
        assert!(Store::at(&store).list().unwrap().is_empty());
    }
    assert!(leftovers(&store).is_empty());
}

#[test]
fn from_a_missing_or_corrupt_layout_is_refused_and_a_good_one_is_a_base() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let missing = d.path().join("no-such-layout");
    let ctx = context(d.path(), &format!("FROM oci:{}\n", missing.display()));
    let (r, _) = run(&options(&ctx, &store, "x"));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("no-such-layout"), "{e}");
    assert!(e.contains("not an OCI image layout"), "{e}");

    // A scratch image with one COPY, written to a layout, then used as a base.
    let lay = d.path().join("base-layout");
    let ctx = context(
        d.path(),
        "FROM scratch\nCOPY files/ /app/\nCMD [\"/app/run.sh\"]\n",
    );
    let mut o = options(&ctx, &store, "base:1");
    o.layout = Some(lay.clone());
    let base = run(&o).0.unwrap();
    let ctx = context(
        d.path(),
        &format!("FROM oci:{}:1\nENV X=1\n", lay.display()),
    );
    let child = run(&options(&ctx, &store, "child")).0.unwrap();
    assert_ne!(child.manifest_digest, base.manifest_digest);
    let (_, img) = Store::at(&store)
        .image(&Reference::parse("child").unwrap())
        .unwrap();
    let c = img.config.config().clone().unwrap();
    assert_eq!(
        c.cmd().clone().unwrap(),
        ["/app/run.sh"],
        "the base's CMD carries over"
    );
    assert_eq!(img.layers().len(), 1);

    // A corrupt blob in the base layout: the digest check names it.
    let (_, bimg) = Store::at(&store)
        .image(&Reference::parse("base:1").unwrap())
        .unwrap();
    let hex = bimg.layers()[0].digest().digest().to_string();
    let blob = lay.join("blobs/sha256").join(&hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, bytes).unwrap();
    let ctx = context(
        d.path(),
        &format!("FROM oci:{}:1\nENV Y=2\n", lay.display()),
    );
    let e = run(&options(&ctx, &store, "child2"))
        .0
        .unwrap_err()
        .to_string();
    assert!(e.contains(&hex), "{e}");
    assert!(Store::at(&store)
        .image(&Reference::parse("child2").unwrap())
        .is_err());
}
