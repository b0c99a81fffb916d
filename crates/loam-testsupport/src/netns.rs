//! Processes on separate "machines": each host of a [`Net`] is a Linux network namespace with its own
//! address, joined to the others by veth pairs on a bridge that lives in a namespace of its own (the
//! *switch*). Nothing is routed to or from the machine the test runs on: traffic stays among the
//! namespaces the test made, and every host can use the same well-known ports (a worker on 28080 and 29998
//! on each of three hosts, as `alluxiofs` expects).
//!
//! Faults are nftables rules inside the hosts' namespaces (this kernel has no `netem` qdisc, so `tc netem`
//! is not available): [`Net::cut`] drops everything between two hosts in both directions (a partition),
//! [`Net::heal`] removes it, [`Net::loss`] drops a share of a host's incoming packets at random, and
//! [`Net::loss_between`] a share of the packets between two hosts only (one link, e.g. a worker's to etcd).
//! [`Net::sysctl`] sets a host's own network settings (each namespace has its own `net.ipv4.*`).
//!
//! Needs root (namespaces, veths) and the `ip` and `nft` commands (`iproute2`, `nftables`; installed by
//! `scripts/setup-test-deps.sh`). Names carry the process id and a counter, so tests running at once do
//! not meet; dropping the [`Net`] deletes its namespaces, which takes their veths and rules with them.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The subnet of every net: the namespaces of one net see no other, so nets may share it.
const SUBNET: [u8; 3] = [10, 77, 0];
/// The nftables table the fault rules live in.
const TABLE: &str = "loamfaults";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A set of hosts joined by one switch (see the module header).
pub struct Net {
    prefix: String,
    hosts: Vec<Host>,
}

/// One host: a namespace and its address.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name (`ip netns exec <ns> …`).
    pub ns: String,
    /// Its address on the switch.
    pub addr: Ipv4Addr,
}

/// Runs `ip` (or `nft`) with `args`; panics with its stderr if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Runs `nft` in namespace `ns` with the rules `script`; panics with nft's complaint if it refuses them.
pub fn nft(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run nft");
    use std::io::Write;
    child.stdin.take().expect("piped").write_all(script.as_bytes()).expect("write the rules");
    let out = child.wait_with_output().expect("nft");
    assert!(out.status.success(), "nft in {ns} failed on:\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
}

impl Net {
    /// A switch and `n` hosts (addresses `10.77.0.1` …), each with its loopback up and an empty fault table.
    pub fn new(n: usize) -> Self {
        assert!(n < 250, "at most 249 hosts");
        let prefix = format!("loam{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let mut net = Self { prefix, hosts: Vec::new() };
        let switch = net.switch();
        run("ip", &["netns", "add", &switch]);
        run("ip", &["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &switch, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{}h{i}", net.prefix);
            let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], i as u8 + 1);
            run("ip", &["netns", "add", &ns]);
            // Created in the switch, one end moved into the host: names are per namespace, so `eth0` everywhere.
            let port = format!("p{i}");
            run("ip", &["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            run("ip", &["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            run("ip", &["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            net.hosts.push(Host { ns: ns.clone(), addr });
            let table = format!(
                "table inet {TABLE} {{\n  chain input {{ type filter hook input priority 0; }}\n  chain output {{ type filter hook output priority 0; }}\n}}\n"
            );
            nft(&ns, &table);
        }
        net
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// `program` to run on host `i` (`ip netns exec <ns> program`, which execs it: its pid is the program's).
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[i].ns]).arg(program);
        c
    }

    /// Cuts hosts `a` and `b` apart: each drops every packet from and to the other (a partition that
    /// both sides see as silence, as a broken link is).
    pub fn cut(&self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let (ns, peer) = (&self.hosts[from].ns, self.hosts[to].addr);
            nft(
                ns,
                &format!(
                    "add rule inet {TABLE} input ip saddr {peer} drop comment \"cut\"\nadd rule inet {TABLE} output ip daddr {peer} drop comment \"cut\""
                ),
            );
        }
    }

    /// Removes every fault of hosts `a` and `b` (the cut between them, and any loss).
    pub fn heal(&self, a: usize, b: usize) {
        for i in [a, b] {
            nft(&self.hosts[i].ns, &format!("flush chain inet {TABLE} input\nflush chain inet {TABLE} output"));
        }
    }

    /// Host `i` drops `percent` % (1 to 100) of the packets it receives, at random.
    pub fn loss(&self, i: usize, percent: u32) {
        assert!((1..=100).contains(&percent), "a loss of {percent} %");
        let rule = match percent {
            100 => "drop".to_string(),
            p => format!("numgen random mod 100 < {p} drop"),
        };
        nft(&self.hosts[i].ns, &format!("add rule inet {TABLE} input {rule} comment \"loss\""));
    }

    /// Host `a` drops `percent` % (1 to 99) of the packets it receives from host `b` and of those it sends
    /// to `b`, at random: a lossy link between the two, every other link of theirs clean. Removed by
    /// [`Net::heal`].
    pub fn loss_between(&self, a: usize, b: usize, percent: u32) {
        assert!((1..100).contains(&percent), "a loss of {percent} % (a cut is `cut`)");
        let peer = self.hosts[b].addr;
        let drop = format!("numgen random mod 100 < {percent} drop comment \"loss\"");
        nft(
            &self.hosts[a].ns,
            &format!(
                "add rule inet {TABLE} input ip saddr {peer} {drop}\nadd rule inet {TABLE} output ip daddr {peer} {drop}"
            ),
        );
    }

    /// Sets the network setting `key` (e.g. `net.ipv4.tcp_syn_retries`) of host `i` to `value`: the
    /// host's own, as a machine's would be; the test machine's is untouched.
    pub fn sysctl(&self, i: usize, key: &str, value: &str) {
        let (ns, setting) = (&self.hosts[i].ns, format!("{key}={value}"));
        run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &setting]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.switch()]).output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether host `from` reaches a TCP listener on host `to` within a second (a `bash` /dev/tcp probe).
    fn reaches(net: &Net, from: usize, to: usize, port: u16) -> bool {
        let probe = format!("exec 3<>/dev/tcp/{}/{port}", net.host(to).addr);
        net.command(from, "timeout").args(["1", "bash", "-c", &probe]).status().is_ok_and(|s| s.success())
    }

    #[test]
    fn hosts_reach_each_other_until_cut_and_again_once_healed() {
        let net = Net::new(3);
        let listener = net.command(1, "python3").args(["-c", "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',28080))\ns.listen(64)\nwhile True:\n  c,_=s.accept()\n  c.close()"]).spawn().unwrap();
        let _listener = Killed(listener);
        let up = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            reaches(&net, 0, 1, 28080)
        });
        assert!(up, "host 0 reaches host 1's listener");
        assert!(reaches(&net, 2, 1, 28080), "and host 2 does");
        // Nothing else: a host has its loopback and its one link to the switch.
        let links = net.command(1, "ip").args(["-o", "link"]).output().unwrap();
        let names: Vec<String> = String::from_utf8_lossy(&links.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or("").to_string()))
            .collect();
        assert_eq!(names, ["lo", "eth0"]);
        net.cut(0, 1);
        assert!(!reaches(&net, 0, 1, 28080), "cut");
        assert!(reaches(&net, 2, 1, 28080), "a cut is between two hosts only");
        net.heal(0, 1);
        assert!(reaches(&net, 0, 1, 28080), "healed");
        net.loss(1, 100);
        assert!(!reaches(&net, 0, 1, 28080), "all packets lost");
        net.heal(0, 1);
        // 99 % each way on the link 1–0 only: a handshake gets through once in about 10^4 tries.
        net.loss_between(1, 0, 99);
        assert!(!reaches(&net, 0, 1, 28080), "the lossy link");
        assert!(reaches(&net, 2, 1, 28080), "another link of the same host is clean");
        net.heal(0, 1);
        assert!(reaches(&net, 0, 1, 28080), "healed");
    }

    #[test]
    fn a_sysctl_is_the_hosts_own() {
        let net = Net::new(2);
        let get = |i: usize| {
            let out = net.command(i, "sysctl").args(["-n", "net.ipv4.tcp_syn_retries"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let before = get(1);
        net.sysctl(0, "net.ipv4.tcp_syn_retries", "1");
        assert_eq!((get(0).as_str(), get(1)), ("1", before));
    }

    /// A child killed on drop.
    struct Killed(std::process::Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
