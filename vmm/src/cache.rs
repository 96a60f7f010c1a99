//! Looks up artifacts in the lab's cache manifest (DESIGN.md, "Artifact
//! cache"): `$VCLAB_CACHE`, else `$XDG_CACHE_HOME/vclab`, else `~/.cache/vclab`.

use std::path::{Path, PathBuf};

/// The cache directory the environment names.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VCLAB_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("vclab");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vclab")
}

/// The path of artifact `name` in the manifest text, if listed.
pub fn artifact_in(manifest: &str, name: &str) -> Option<PathBuf> {
    let v: serde_json::Value = serde_json::from_str(manifest).ok()?;
    v.get("artifacts")?
        .get(name)?
        .get("path")?
        .as_str()
        .map(PathBuf::from)
}

/// The path of artifact `name` in the cache at `cache`, if listed and present.
pub fn artifact(cache: &Path, name: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(cache.join("manifest.json")).ok()?;
    artifact_in(&text, name).filter(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lookup() {
        let m = r#"{"version":1,"artifacts":{"vmlinux":{"path":"/c/vmlinux","kind":"file","size":1,"sha256":"ab"}}}"#;
        assert_eq!(artifact_in(m, "vmlinux"), Some(PathBuf::from("/c/vmlinux")));
        assert_eq!(artifact_in(m, "bzimage"), None);
        assert_eq!(artifact_in("not json", "vmlinux"), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(artifact(dir.path(), "vmlinux"), None);
    }
}
