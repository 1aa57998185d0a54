//! The process's open-file limit. Every client connection, backend connection and stored file
//! is a descriptor; a soft limit below what `max_connections` allows (systemd's and many
//! containers' 1,024) would make new connections fail long before that limit, and a backend
//! connection that cannot be opened for want of a descriptor says nothing of the backend.

/// Raises the soft open-file limit to the hard one, as a server that may hold
/// `max_connections` clients and as many backend connections as requests in flight needs, and
/// says so where even the hard limit is below that. Returns the limit now in force (`None`:
/// unlimited, or unreadable).
pub fn raise(max_connections: usize, max_concurrent_requests: usize) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let now = getrlimit(Resource::Nofile);
    let mut limit = now.current;
    if now.current != now.maximum {
        let raised = rustix::process::Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = now.maximum,
            Err(e) => tracing::warn!(soft = ?now.current, hard = ?now.maximum,
                "the open-file limit could not be raised: {e}"),
        }
    }
    // (Clients, a backend connection per request in flight, and some for the listeners, the
    // admin's places, the store's files and the log.)
    let needed = (max_connections + max_concurrent_requests + 256) as u64;
    if let Some(limit) = limit.filter(|l| *l < needed) {
        tracing::warn!(
            open_files = limit,
            needed,
            "the open-file limit is below what server.max_connections and \
             max_concurrent_requests may need: past it new connections are refused (raise the \
             limit — LimitNOFILE, ulimit -n — or lower max_connections)"
        );
    }
    limit
}

/// Whether a failure to open a connection is this process's own (no descriptor, memory or
/// local port left — ports held in TIME_WAIT by connections not pooled again, after a flood),
/// not the backend's: a request's says nothing of whether the backend can be reached. (The
/// active probe counts EADDRNOTAVAIL all the same, [`out_of_resources`]: it is also what an
/// address the host cannot use answers — an IPv6 backend where IPv6 is off.)
pub fn is_local(e: &std::io::Error) -> bool {
    out_of_resources(e) || e.raw_os_error() == Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
}

/// Whether a connection could not be opened for want of a descriptor or memory.
pub fn out_of_resources(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let here = [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM];
    here.iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// [`is_local`] for a connection that failed to open (its cause).
pub fn failed_here(e: &pingora::Error) -> bool {
    e.root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(is_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_to_the_hard_one() {
        use rustix::process::{getrlimit, Resource};
        let hard = getrlimit(Resource::Nofile).maximum;
        let now = raise(16, 16);
        assert_eq!(now, hard);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
    }

    #[test]
    fn running_out_of_descriptors_is_the_process_s_own_failure() {
        let raw =
            |errno: rustix::io::Errno| std::io::Error::from_raw_os_error(errno.raw_os_error());
        assert!(is_local(&raw(rustix::io::Errno::MFILE)));
        assert!(is_local(&raw(rustix::io::Errno::NFILE)));
        assert!(is_local(&raw(rustix::io::Errno::ADDRNOTAVAIL)));
        assert!(!out_of_resources(&raw(rustix::io::Errno::ADDRNOTAVAIL)));
        assert!(!is_local(&raw(rustix::io::Errno::CONNREFUSED)));
        assert!(!is_local(&raw(rustix::io::Errno::TIMEDOUT)));
        assert!(!is_local(&std::io::Error::other("x")));
        let opening = |errno| {
            let cause = raw(errno);
            pingora::Error::because(pingora::ErrorType::ConnectRefused, "connect failed", cause)
        };
        assert!(failed_here(&opening(rustix::io::Errno::MFILE)));
        assert!(!failed_here(&opening(rustix::io::Errno::CONNREFUSED)));
    }
}
