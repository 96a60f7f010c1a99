//! Resolved rules → classic BPF, with seccompiler (in the launcher, before
//! the clone: the child only installs the result).
//!
//! A seccompiler filter has one action on a match and one on a mismatch, so
//! a profile with several actions becomes a stack of filters; the kernel
//! runs every filter of a process and takes the strictest answer:
//! - the main filter: the default action for any call no rule names, Allow
//!   for a call one of its rules matches (whatever that rule's action);
//!   left out when the default is Allow;
//! - one filter per other action X: X for a call one of X's rules matches,
//!   Allow otherwise.
//!
//! So a call gets X where an X rule matches, Allow where only Allow rules
//! match, and the default where none does. When rules of two actions other
//! than Allow match the same call, the stricter action wins.
//!
//! seccompiler emits one linear chain of comparisons per filter, and on
//! `seccomp(2)` the kernel runs the filter for every system call number to
//! find the ones it can always allow (its action cache): a 1,572-instruction
//! chain (Docker's profile) took about 6 ms to install on the lab host
//! (nested kvm_pvm), more than a whole crun start. So a filter with more
//! than [`CHUNK`] calls is split by call number into filters of at most
//! [`CHUNK`] calls, each behind a four-instruction guard that allows the
//! numbers outside its range (another filter of the set decides those).
//! The set answers as the single filter would; each number walks one short
//! chain.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{Action, ArgCmp, Error, Filter, Op, Resolved};

/// The x32 ABI bit of a system call number (`__X32_SYSCALL_BIT`).
const X32_BIT: i64 = 0x4000_0000;

/// The most calls one filter of a split set handles.
pub const CHUNK: usize = 48;

/// Classic BPF opcodes (linux/bpf_common.h): `ld [k]` (word, absolute),
/// `jge #k`, `ret #k`.
const LD_W_ABS: u16 = 0x20;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
/// `SECCOMP_RET_ALLOW`.
const RET_ALLOW: u32 = 0x7fff_0000;

/// The rules of one filter: per call, `None` when a rule matches always,
/// else the alternatives (each a list of conditions, all of which hold).
type Chains = BTreeMap<i64, Option<Vec<Vec<ArgCmp>>>>;

fn add(chains: &mut Chains, nr: i64, args: &[ArgCmp]) {
    let entry = chains.entry(nr).or_insert_with(|| Some(Vec::new()));
    if args.is_empty() {
        *entry = None;
    } else if let Some(alts) = entry {
        alts.push(args.to_vec());
    }
}

fn sc_action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(e),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Trace(v) => SeccompAction::Trace(v),
        Action::Log => SeccompAction::Log,
    }
}

fn condition(c: &ArgCmp) -> Result<SeccompCondition, seccompiler::BackendError> {
    let op = match c.op {
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Gt => SeccompCmpOp::Gt,
        Op::Ge => SeccompCmpOp::Ge,
        Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, c.value)
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

/// The guard in front of a split filter for the numbers `lo..hi` (`hi`
/// `None`: no upper end): other numbers get Allow, these go on to `body`.
fn guarded(lo: u32, hi: Option<u32>, body: BpfProgram) -> BpfProgram {
    // seccomp_data.nr is at offset 0.
    let mut p = vec![insn(LD_W_ABS, 0, 0, 0)];
    match (lo, hi) {
        (0, Some(hi)) => {
            p.push(insn(JGE_K, 0, 1, hi)); // nr >= hi: allow; else the body
            p.push(insn(RET_K, 0, 0, RET_ALLOW));
        }
        (lo, None) => {
            p.push(insn(JGE_K, 1, 0, lo)); // nr >= lo: the body; else allow
            p.push(insn(RET_K, 0, 0, RET_ALLOW));
        }
        (lo, Some(hi)) => {
            p.push(insn(JGE_K, 1, 0, hi)); // nr >= hi: allow
            p.push(insn(JGE_K, 1, 0, lo)); // nr >= lo: the body; else allow
            p.push(insn(RET_K, 0, 0, RET_ALLOW));
        }
    }
    p.extend(body);
    p
}

/// The programs for one filter: one, or with more than `chunk` calls one
/// guarded program per `chunk` calls (by ascending number).
fn programs(
    chains: Chains,
    mismatch: Action,
    on_match: Action,
    chunk: usize,
) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    if chains.len() <= chunk {
        return Ok(vec![program(chains, mismatch, on_match)?]);
    }
    let entries: Vec<_> = chains.into_iter().collect();
    let starts: Vec<u32> = entries
        .chunks(chunk)
        .map(|c| u32::try_from(c[0].0).unwrap_or(u32::MAX))
        .collect();
    let mut out = Vec::with_capacity(starts.len());
    for (i, part) in entries.chunks(chunk).enumerate() {
        let lo = if i == 0 { 0 } else { starts[i] };
        let hi = starts.get(i + 1).copied();
        let body = program(part.iter().cloned().collect(), mismatch, on_match)?;
        out.push(guarded(lo, hi, body));
    }
    Ok(out)
}

fn program(
    chains: Chains,
    mismatch: Action,
    on_match: Action,
) -> Result<BpfProgram, seccompiler::BackendError> {
    let mut rules = BTreeMap::new();
    for (nr, alts) in chains {
        let list = match alts {
            None => Vec::new(),
            Some(alts) => alts
                .iter()
                .map(|conds| {
                    let c = conds.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
                    SeccompRule::new(c)
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        rules.insert(nr, list);
    }
    let filter = SeccompFilter::new(
        rules,
        sc_action(mismatch),
        sc_action(on_match),
        TargetArch::x86_64,
    )?;
    filter.try_into()
}

/// Compiles resolved rules into the filter stack (`source_name` names the
/// profile in messages).
pub fn compile(r: &Resolved, source_name: &str) -> Result<Filter, Error> {
    compile_split(r, source_name, CHUNK)
}

/// [`compile`] with at most `chunk` calls per program.
fn compile_split(r: &Resolved, source_name: &str, chunk: usize) -> Result<Filter, Error> {
    let mut main = Chains::new();
    let mut others: BTreeMap<Action, Chains> = BTreeMap::new();
    for rule in r.rules.iter().filter(|rule| rule.action != r.default) {
        if r.default != Action::Allow {
            add(&mut main, rule.nr, &rule.args);
        }
        if rule.action != Action::Allow {
            let chains = others.entry(rule.action).or_default();
            add(chains, rule.nr, &rule.args);
            // An allow-by-default profile must not let the x32 twin of a
            // call it refuses through.
            if r.default == Action::Allow {
                add(chains, rule.nr | X32_BIT, &rule.args);
            }
        }
    }
    let fail = |e: seccompiler::BackendError| Error::Compile {
        source_name: source_name.to_string(),
        reason: e.to_string(),
    };
    let mut out = Vec::with_capacity(1 + others.len());
    if r.default != Action::Allow {
        out.extend(programs(main, r.default, Action::Allow, chunk).map_err(fail)?);
    }
    for (action, chains) in others {
        out.extend(programs(chains, Action::Allow, action, chunk).map_err(fail)?);
    }
    Ok(Filter {
        programs: out,
        flags: r.flags,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::caps::CapSet;
    use crate::seccomp::{default, syscalls, Rule};

    /// `AUDIT_ARCH_X86_64`.
    const ARCH: u32 = 0xC000_003E;

    /// Runs one classic-BPF program (the instructions seccompiler emits) on
    /// `seccomp_data` { nr, arch, ip, args }.
    fn run(prog: &BpfProgram, nr: i64, arch: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                0 => nr as u32,
                4 => arch,
                8 | 12 => 0,
                o if (16..64).contains(&o) => {
                    let a = args[((o - 16) / 8) as usize];
                    if o % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                o => panic!("load at {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &prog[pc];
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => acc = word(i.k),            // ld [k]
                0x54 => acc &= i.k,                 // and #k
                0x05 => pc += i.k as usize,         // ja
                0x15 => pc += jump(acc == i.k),     // jeq
                0x25 => pc += jump(acc > i.k),      // jgt
                0x35 => pc += jump(acc >= i.k),     // jge
                0x45 => pc += jump(acc & i.k != 0), // jset
                0x06 => return i.k,                 // ret
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    /// What the kernel returns for a call: every program runs, the
    /// strictest action wins (the latest installed on a tie).
    pub(crate) fn verdict(f: &Filter, nr: i64, args: [u64; 6]) -> u32 {
        let strictness = |r: u32| (r & 0xffff_0000) as i32;
        let mut best = 0x7fff_0000;
        for p in f.programs.iter().rev() {
            let r = run(p, nr, ARCH, args);
            if strictness(r) < strictness(best) {
                best = r;
            }
        }
        best
    }

    const ALLOW: u32 = 0x7fff_0000;
    const fn errno(e: u32) -> u32 {
        0x0005_0000 | e
    }

    fn nr(n: &str) -> i64 {
        syscalls::number(n).unwrap()
    }

    #[test]
    fn default_profile_blocks_what_docker_blocks() {
        let f = compile(&default::resolve(CapSet::docker_default()), "t").unwrap();
        let main = f.programs.len() - 1;
        assert!(main > 1, "the main filter is split: {f:?}");
        let v = |n: &str, a0: u64| verdict(&f, nr(n), [a0, 0, 0, 0, 0, 0]);
        for allowed in ["getpid", "read", "execve", "exit_group", "chroot", "ptrace"] {
            assert_eq!(v(allowed, 0), ALLOW, "{allowed}");
        }
        for blocked in [
            "keyctl",
            "mount",
            "unshare",
            "setns",
            "reboot",
            "swapon",
            "init_module",
        ] {
            assert_eq!(v(blocked, 0), errno(1), "{blocked}");
        }
        assert_eq!(v("clone3", 0), errno(38));
        assert_eq!(v("clone", libc::SIGCHLD as u64), ALLOW);
        assert_eq!(v("clone", libc::CLONE_NEWUSER as u64), errno(1));
        assert_eq!(v("socket", libc::AF_INET as u64), ALLOW);
        assert_eq!(v("socket", 40), errno(1));
        assert_eq!(v("personality", 0xffff_ffff), ALLOW);
        assert_eq!(v("personality", 0x40_0000), errno(1));
        // An x32 call and a call of another ABI.
        assert_eq!(verdict(&f, nr("getpid") | X32_BIT, [0; 6]), errno(1));
        assert_eq!(
            run(&f.programs[0], nr("getpid"), 0x4000_0003, [0; 6]),
            0x8000_0000
        );
    }

    #[test]
    fn sys_admin_opens_the_namespace_calls() {
        let caps = CapSet(CapSet::docker_default().0 | 1 << 21);
        let f = compile(&default::resolve(caps), "t").unwrap();
        assert!(f.programs.len() > 1);
        let v = |n: &str, a0: u64| verdict(&f, nr(n), [a0, 0, 0, 0, 0, 0]);
        assert_eq!(v("clone", libc::CLONE_NEWUSER as u64), ALLOW);
        assert_eq!(v("clone3", 0), ALLOW);
        assert_eq!(v("mount", 0), ALLOW);
    }

    #[test]
    fn blocklist_profile() {
        let r = Resolved {
            default: Action::Allow,
            rules: vec![
                Rule {
                    nr: nr("getpid"),
                    action: Action::Errno(38),
                    args: vec![],
                },
                Rule {
                    nr: nr("kill"),
                    action: Action::KillProcess,
                    args: vec![ArgCmp {
                        index: 1,
                        op: Op::Eq,
                        value: 9,
                    }],
                },
            ],
            flags: 0,
        };
        let f = compile(&r, "t").unwrap();
        assert_eq!(f.programs.len(), 2);
        assert_eq!(verdict(&f, nr("getpid"), [0; 6]), errno(38));
        assert_eq!(verdict(&f, nr("getpid") | X32_BIT, [0; 6]), errno(38));
        assert_eq!(verdict(&f, nr("getppid"), [0; 6]), ALLOW);
        assert_eq!(verdict(&f, nr("kill"), [1, 9, 0, 0, 0, 0]), 0x8000_0000);
        assert_eq!(verdict(&f, nr("kill"), [1, 15, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn split_filters_answer_as_one() {
        let mut profiles = vec![
            default::resolve(CapSet::docker_default()),
            default::resolve(CapSet(u64::MAX >> 23)),
        ];
        // A blocklist long enough to be split, with argument conditions.
        profiles.push(Resolved {
            default: Action::Allow,
            rules: (0..120)
                .map(|n| Rule {
                    nr: n * 3,
                    action: if n % 2 == 0 {
                        Action::Errno(38)
                    } else {
                        Action::KillProcess
                    },
                    args: if n % 5 == 0 {
                        vec![ArgCmp {
                            index: 0,
                            op: Op::Eq,
                            value: 7,
                        }]
                    } else {
                        vec![]
                    },
                })
                .collect(),
            flags: 0,
        });
        for r in &profiles {
            let whole = compile_split(r, "t", usize::MAX).unwrap();
            let split = compile_split(r, "t", 16).unwrap();
            assert!(split.programs.len() > whole.programs.len());
            for n in (0..520).chain([X32_BIT, X32_BIT | 39, X32_BIT | 56, 0xffff_ffff]) {
                for args in [
                    [0; 6],
                    [7, 0, 0, 0, 0, 0],
                    [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
                ] {
                    assert_eq!(
                        verdict(&whole, n, args),
                        verdict(&split, n, args),
                        "nr {n} {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn fits_the_kernel_limit() {
        let f = compile(&default::resolve(CapSet(u64::MAX >> 23)), "t").unwrap();
        assert!(f.programs.iter().all(|p| p.len() < 4096), "{f:?}");
    }
}
