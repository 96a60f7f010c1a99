//! A bundle's `linux.seccomp` (oci-spec's `LinuxSeccomp`): the same format
//! as Docker's profile without `includes`/`excludes`, so it is read through
//! its JSON form into a [`Profile`].

use super::{Error, Profile};

/// `linux.seccomp` as a [`Profile`] (`source_name` names it in messages).
pub fn profile(
    seccomp: &oci_spec::runtime::LinuxSeccomp,
    source_name: &str,
) -> Result<Profile, Error> {
    let parse = |reason: String| Error::Parse {
        source_name: source_name.to_string(),
        reason,
    };
    let text = serde_json::to_string(seccomp).map_err(|e| parse(e.to_string()))?;
    Profile::parse(&text, source_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::CapSet;
    use crate::seccomp::{syscalls, Action, ArgCmp, Op};

    #[test]
    fn oci_seccomp_maps() {
        let json = r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
              {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
              {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
               "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]}"#;
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(json).unwrap();
        let p = profile(&oci, "config.json").unwrap();
        let r = p.resolve("config.json", CapSet(0), (6, 1)).unwrap();
        assert_eq!(r.default, Action::Allow);
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[0].nr, syscalls::number("getpid").unwrap());
        assert_eq!(r.rules[0].action, Action::Errno(38));
        assert_eq!(r.rules[1].action, Action::KillProcess);
        assert_eq!(
            r.rules[1].args,
            [ArgCmp {
                index: 0,
                op: Op::MaskedEq(255),
                value: 8
            }]
        );
    }
}
