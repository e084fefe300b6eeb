//! How many CPUs this process may use, for `--workers auto`: what a
//! container's CPU limit (cgroup v2 `cpu.max`, as Kubernetes sets it) and
//! the affinity mask (`taskset`, cpusets) allow.

use std::path::{Path, PathBuf};

/// The CPUs this process may use: the tightest `cpu.max` quota on its
/// cgroup's path, rounded up, and never more than its affinity mask
/// allows. At least 1.
pub fn available() -> usize {
    let affinity = crate::sys::affinity_cpus().unwrap_or(1).max(1);
    let quota = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_v2_path(&text).map(str::to_owned))
        .and_then(|path| quota_on_path(Path::new("/sys/fs/cgroup"), &path));
    quota.map_or(affinity, |q| q.min(affinity)).max(1)
}

/// The cgroup v2 path in `/proc/self/cgroup` (the `0::/path` line).
pub(super) fn cgroup_v2_path(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

/// The CPUs a `cpu.max` file grants (`"$MAX $PERIOD"`), rounded up; None
/// when unlimited (`max`) or unreadable.
pub(super) fn cpu_max(text: &str) -> Option<usize> {
    let mut parts = text.split_whitespace();
    let max = parts.next()?;
    let period: u64 = parts.next().map_or(Some(100_000), |p| p.parse().ok())?;
    if max == "max" || period == 0 {
        return None;
    }
    let max: u64 = max.parse().ok()?;
    Some(
        usize::try_from(max.div_ceil(period))
            .unwrap_or(usize::MAX)
            .max(1),
    )
}

/// The tightest `cpu.max` from the cgroup at `path` up to the root under
/// `root` (a parent's limit bounds its children).
pub(super) fn quota_on_path(root: &Path, path: &str) -> Option<usize> {
    let mut dir: PathBuf = root.join(path.trim_start_matches('/'));
    let mut tightest: Option<usize> = None;
    loop {
        if let Some(q) = std::fs::read_to_string(dir.join("cpu.max"))
            .ok()
            .and_then(|t| cpu_max(&t))
        {
            tightest = Some(tightest.map_or(q, |t| t.min(q)));
        }
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            return tightest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_rounds_a_fractional_quota_up() {
        assert_eq!(cpu_max("max 100000\n"), None);
        assert_eq!(cpu_max("200000 100000\n"), Some(2));
        assert_eq!(cpu_max("150000 100000"), Some(2));
        assert_eq!(cpu_max("50000 100000"), Some(1));
        assert_eq!(cpu_max("1 100000"), Some(1));
        assert_eq!(cpu_max("400000"), Some(4));
        assert_eq!(cpu_max(""), None);
        assert_eq!(cpu_max("lots 100000"), None);
        assert_eq!(cpu_max("100000 0"), None);
    }

    #[test]
    fn the_v2_line_names_the_path() {
        let text = "12:cpu,cpuacct:/old\n0::/kubepods/pod1/ctr\n";
        assert_eq!(cgroup_v2_path(text), Some("/kubepods/pod1/ctr"));
        assert_eq!(cgroup_v2_path("1:name=systemd:/x\n"), None);
    }

    #[test]
    fn the_tightest_limit_on_the_path_wins() {
        let root = std::env::temp_dir().join(format!("cormorant-cpus-{}", std::process::id()));
        let leaf = root.join("pod/ctr");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(root.join("pod/cpu.max"), "150000 100000\n").unwrap();
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").unwrap();
        assert_eq!(quota_on_path(&root, "/pod/ctr"), Some(2));
        std::fs::write(leaf.join("cpu.max"), "50000 100000\n").unwrap();
        assert_eq!(quota_on_path(&root, "/pod/ctr"), Some(1));
        std::fs::write(root.join("pod/cpu.max"), "max 100000\n").unwrap();
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").unwrap();
        assert_eq!(quota_on_path(&root, "/pod/ctr"), None);
        assert_eq!(quota_on_path(&root, "/"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
