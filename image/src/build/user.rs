//! `USER`, `--chown` and an image's `User`: `NAME|UID[:GROUP|GID]` to
//! numeric ids, names looked up in the image's own `/etc/passwd` and
//! `/etc/group` (never the host's).

use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user name is not in the image's /etc/passwd.
    #[error("user {name:?} is not in the image's /etc/passwd: give a numeric UID or add the user in a RUN step")]
    User {
        /// The name.
        name: String,
    },
    /// A group name is not in the image's /etc/group.
    #[error("group {name:?} is not in the image's /etc/group: give a numeric GID or add the group in a RUN step")]
    Group {
        /// The name.
        name: String,
    },
}

/// Resolves `spec` against the layer directories `dirs` (topmost first: the
/// first that holds the file wins). A UID alone gets the user's group from
/// passwd, else the same number.
pub fn resolve(dirs: &[PathBuf], spec: &str) -> Result<(u32, u32), Error> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_first(dirs, "etc/passwd");
    let entry = |pred: &dyn Fn(&[&str]) -> bool| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && pred(&f)).then(|| (f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
        })
    };
    let (uid, user_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, entry(&|f| f[2] == user).and_then(|(_, g)| g)),
        Err(_) => match entry(&|f| f[0] == user) {
            Some((Some(uid), g)) => (uid, g),
            _ => {
                return Err(Error::User {
                    name: user.to_string(),
                })
            }
        },
    };
    let gid = match group {
        None => user_gid.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_first(dirs, "etc/group")
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| Error::Group {
                    name: g.to_string(),
                })?,
        },
    };
    Ok((uid, gid))
}

fn read_first(dirs: &[PathBuf], rel: &str) -> String {
    dirs.iter()
        .map(|d| Path::new(d).join(rel))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let d = std::env::temp_dir().join(format!("vclab-user-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let dirs = [PathBuf::from("/nonexistent"), d.clone()];
        assert_eq!(resolve(&dirs, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve(&dirs, "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve(&dirs, "1234").unwrap(), (1234, 1234));
        assert_eq!(resolve(&dirs, "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve(&dirs, "7:8").unwrap(), (7, 8));
        assert!(matches!(resolve(&dirs, "nobody"), Err(Error::User { .. })));
        assert!(matches!(
            resolve(&dirs, "app:wheel"),
            Err(Error::Group { .. })
        ));
        std::fs::remove_dir_all(d).unwrap();
    }
}
