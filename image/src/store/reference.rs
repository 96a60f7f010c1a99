//! `NAME[:TAG]`: an image's name in the store and its tag.

use std::fmt;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is empty or has characters the store does not take.
    #[error("image name {0:?} is not valid: use lower-case letters, digits, '.', '_', '-' and '/' (not first, no '..'), e.g. hello or lab/hello:1")]
    Name(String),
    /// The tag is empty or has characters the store does not take.
    #[error("image tag {0:?} is not valid: use 1-128 letters, digits, '.', '_', '-' (not first), e.g. latest")]
    Tag(String),
}

/// The tag used when none is given (Docker's).
pub const DEFAULT_TAG: &str = "latest";

/// An image reference, `NAME[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The name (one layout in the store).
    pub name: String,
    /// The tag inside that layout.
    pub tag: String,
}

impl Reference {
    /// Parses `NAME[:TAG]` (the tag defaults to `latest`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (name, tag) = match text.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t),
            _ => (text, DEFAULT_TAG),
        };
        check_name(name)?;
        check_tag(tag)?;
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The directory name of this image's layout in the store: the name
    /// with each '/' spelled '+'.
    pub fn dir_name(&self) -> String {
        self.name.replace('/', "+")
    }
}

/// The image name a store directory holds (the inverse of [`Reference::dir_name`]).
pub fn name_of_dir(dir: &str) -> Option<String> {
    let name = dir.replace('+', "/");
    check_name(&name).ok().map(|()| name)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let bad = || Error::Name(name.to_string());
    if name.is_empty() || name.len() > 255 {
        return Err(bad());
    }
    for part in name.split('/') {
        let ok_chars = part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        let first_ok = part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok_chars || !first_ok {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), Error> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Tag(tag.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        let r = Reference::parse("hello").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("hello", "latest"));
        let r = Reference::parse("lab/hello:v1.2").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("lab/hello", "v1.2"));
        assert_eq!(r.dir_name(), "lab+hello");
        assert_eq!(name_of_dir("lab+hello").as_deref(), Some("lab/hello"));
        assert_eq!(r.to_string(), "lab/hello:v1.2");
        for bad in [
            "", "Hello", "../x", "a/../b", ".x", "a:", "a:-x", "a b", "a//b", "/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(name_of_dir(".tmp").is_none());
    }
}
