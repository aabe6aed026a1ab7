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
    /// net.core.wmem_max: the cap the kernel puts on every `SO_SNDBUF` (only `SO_SNDBUFFORCE`,
    /// which needs `CAP_NET_ADMIN` and which nothing here uses, passes it).
    pub wmem_max: Option<u64>,
    /// net.core.rmem_max: the same cap on every `SO_RCVBUF`.
    pub rmem_max: Option<u64>,
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
        let sysctl = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
        };
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            wmem_max: sysctl("wmem_max"),
            rmem_max: sysctl("rmem_max"),
        }
    }

    /// Whether the kernel gives Unix sockets smaller buffers than `asked` bytes: then the
    /// framework's and the raw echo's large payloads run with those (on many distributions
    /// both caps are 212992 bytes), and the report says how to raise them.
    pub fn caps_socket_buffers(&self, asked: usize) -> bool {
        let asked = asked as u64;
        [self.wmem_max, self.rmem_max]
            .iter()
            .any(|cap| cap.is_some_and(|cap| cap < asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_caps(wmem_max: Option<u64>, rmem_max: Option<u64>) -> Machine {
        Machine {
            cpu: String::new(),
            cores: 1,
            kernel: String::new(),
            wmem_max,
            rmem_max,
        }
    }

    #[test]
    fn either_cap_below_the_size_asked_caps_the_socket_buffers() {
        let mib = 1 << 20;
        assert!(!with_caps(Some(4 * mib), Some(4 * mib)).caps_socket_buffers(1 << 20));
        assert!(with_caps(Some(212_992), Some(4 * mib)).caps_socket_buffers(1 << 20));
        assert!(with_caps(Some(4 * mib), Some(212_992)).caps_socket_buffers(1 << 20));
        assert!(
            !with_caps(None, None).caps_socket_buffers(1 << 20),
            "unknown: no claim"
        );
    }
}
