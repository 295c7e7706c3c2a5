use std::path::{Component, Path, PathBuf};

/// A job name that belfry refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job name {name:?}: {why}")]
pub struct NameError {
    name: String,
    why: &'static str,
}

/// Checks a job name given by a person: 1 to 200 characters, no control characters, no
/// leading or trailing spaces.
pub fn validate_job_name(name: &str) -> Result<(), NameError> {
    let err = |why| {
        Err(NameError {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name.chars().count() > 200 {
        return err("it is longer than 200 characters");
    }
    if name.chars().any(char::is_control) {
        return err("it contains control characters");
    }
    if name.trim() != name {
        return err("it starts or ends with white space");
    }
    Ok(())
}

/// Derives a stable job name from a command line, as the status-file decorator derived its
/// file name from the script path.
///
/// - A program given with a path (`./backup.sh`, `/usr/local/bin/backup.sh`) is made absolute
///   against `cwd` (lexically, without touching the file system), its leading `/` dropped and
///   the other `/` turned into `.`: `usr.local.bin.backup.sh`.
/// - A bare program name (`pg_dump`) is used as it is.
/// - With arguments, a short hash of them is appended (`pg_dump-1f0e3c5a`), so that the same
///   program with other arguments is another job. Arguments are hashed, never spelled out,
///   because they may hold secrets and the name is printed and stored everywhere.
pub fn derive_job_name(argv: &[String], cwd: &Path) -> String {
    let Some(program) = argv.first() else {
        return "unnamed".to_owned();
    };
    let base = if program.contains('/') {
        let mut abs = PathBuf::new();
        for c in cwd.join(program).components() {
            match c {
                Component::ParentDir => {
                    abs.pop();
                }
                Component::CurDir => {}
                other => abs.push(other),
            }
        }
        let s = abs.to_string_lossy();
        s.trim_start_matches('/').replace('/', ".")
    } else {
        program.clone()
    };
    let base = if base.is_empty() {
        "root".to_owned()
    } else {
        base
    };
    let args = &argv[1..];
    if args.is_empty() {
        return base;
    }
    format!("{base}-{:08x}", stable_hash(args))
}

/// FNV-1a, 32 bits, over the parts separated by NUL: stable across Rust versions and
/// platforms, which `std`'s hasher does not promise. Used wherever a name is derived from
/// something that must not be spelled out (arguments, URLs).
pub fn stable_hash<S: AsRef<str>>(args: &[S]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            h ^= 0;
            h = h.wrapping_mul(0x0100_0193);
        }
        for b in a.as_ref().bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_become_dotted_names_like_the_decorator_made() {
        let cwd = Path::new("/home/ada/work");
        assert_eq!(
            derive_job_name(&argv(&["/usr/local/bin/backup.sh"]), cwd),
            "usr.local.bin.backup.sh"
        );
        assert_eq!(
            derive_job_name(&argv(&["./scripts/../do_this.py"]), cwd),
            "home.ada.work.do_this.py"
        );
        assert_eq!(derive_job_name(&argv(&["pg_dump"]), cwd), "pg_dump");
    }

    #[test]
    fn arguments_are_hashed_stably_and_never_spelled_out() {
        let cwd = Path::new("/");
        let a = derive_job_name(&argv(&["curl", "-u", "admin:hunter2"]), cwd);
        let b = derive_job_name(&argv(&["curl", "-u", "admin:hunter2"]), cwd);
        let c = derive_job_name(&argv(&["curl", "-u", "admin:hunter3"]), cwd);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!a.contains("hunter2"));
        // The argument boundary counts: ["ab"] and ["a", "b"] are different jobs.
        assert_ne!(
            derive_job_name(&argv(&["x", "ab"]), cwd),
            derive_job_name(&argv(&["x", "a", "b"]), cwd)
        );
        // Pinned, so that a change of algorithm cannot silently rename everyone's jobs.
        assert_eq!(
            derive_job_name(&argv(&["sleep", "1"]), cwd),
            "sleep-340ca71c"
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_job_name("nightly-backup").is_ok());
        assert!(validate_job_name("").is_err());
        assert!(validate_job_name(" x").is_err());
        assert!(validate_job_name("a\nb").is_err());
        assert!(validate_job_name(&"x".repeat(201)).is_err());
    }
}
