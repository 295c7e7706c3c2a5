//! Where belfry keeps its state.

use std::path::PathBuf;

/// The state directory was not given and cannot be guessed.
#[derive(Debug, thiserror::Error)]
#[error("cannot tell where to keep belfry's state: set BELFRY_HOME (or XDG_STATE_HOME, or HOME)")]
pub struct NoHome;

/// `$BELFRY_HOME`, else `$XDG_STATE_HOME/belfry`, else `~/.local/state/belfry`.
pub fn home_dir() -> Result<PathBuf, NoHome> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    resolve(var("BELFRY_HOME"), var("XDG_STATE_HOME"), var("HOME"))
}

fn resolve(
    belfry_home: Option<PathBuf>,
    xdg_state: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf, NoHome> {
    if let Some(h) = belfry_home {
        return Ok(h);
    }
    if let Some(x) = xdg_state {
        return Ok(x.join("belfry"));
    }
    home.map(|h| h.join(".local/state/belfry")).ok_or(NoHome)
}

/// The store's file inside a home directory.
pub fn store_path(home: &std::path::Path) -> PathBuf {
    home.join("belfry.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn belfry_home_then_xdg_then_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            resolve(p("/b"), p("/x"), p("/h")).unwrap(),
            PathBuf::from("/b")
        );
        assert_eq!(
            resolve(None, p("/x"), p("/h")).unwrap(),
            PathBuf::from("/x/belfry")
        );
        assert_eq!(
            resolve(None, None, p("/h")).unwrap(),
            PathBuf::from("/h/.local/state/belfry")
        );
        assert!(resolve(None, None, None).is_err());
    }
}
