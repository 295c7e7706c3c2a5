//! Facts about this host that runs are recorded with, and used to tell whether the process
//! watching a run is still there.

/// This host's name.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The kernel's boot id: a process id from an earlier boot says nothing about this one.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether a process with this id exists (owned by anyone).
pub fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists, and belongs to someone else.
        Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(!process_alive(0), "pid 0 is not a process");
    }

    #[test]
    fn the_boot_id_is_read_and_stable_within_a_boot() {
        // Linux always has one; without it, a reboot could not be told apart.
        let id = boot_id().expect("the kernel's boot id");
        assert_eq!(id.len(), 36, "{id:?}");
        assert_eq!(id.matches('-').count(), 4, "{id:?}");
        assert_eq!(boot_id().as_deref(), Some(id.as_str()));
    }
}
