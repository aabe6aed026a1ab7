//! The machine a run was measured on, printed and written into the report.

use serde::Serialize;

/// CPU, cores and kernel.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo.
    pub cpu: String,
    /// Cores this process may use.
    pub cores: usize,
    /// Kernel name and release.
    pub kernel: String,
    /// net.core.wmem_max: the cap on SO_SNDBUF for unprivileged processes.
    pub wmem_max: Option<u64>,
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let uname = rustix::system::uname();
        let kernel = format!(
            "{} {}",
            uname.sysname().to_string_lossy(),
            uname.release().to_string_lossy()
        );
        let wmem_max = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|t| t.trim().parse().ok());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            wmem_max,
        }
    }
}
