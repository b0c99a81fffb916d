//! Free TCP ports on 127.0.0.1, chosen by the kernel (bind port 0) so parallel tests never collide on a
//! fixed number. The port is released before the caller binds it, so a rare race is possible: servers
//! started here retry on a fresh port when their process exits at start.

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of a bound listener").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_bindable() {
        let p = free_port();
        assert_ne!(p, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("the port is free");
    }
}
