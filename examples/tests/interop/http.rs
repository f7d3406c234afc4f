//! The `http` (hyper) and `axum` examples on the stack, driven by the
//! kernel's HTTP clients from the peer namespace: `curl` (HTTP/1.1 with
//! keep-alive, and h2c with `--http2-prior-knowledge`), `ab` with and
//! without `-k`, `wrk` and `h2load`. Every request must be answered with a
//! 2xx and no client may report an error. A missing client prints `SKIP`
//! (and fails under `MTCP_REQUIRE_NETNS=1`).

use super::*;

const HTTP_PORT: u16 = 8090;
/// The clients these checks run, by command name (Debian packages `curl`,
/// `apache2-utils`, `wrk`, `nghttp2-client`).
const CLIENTS: [&str; 4] = ["curl", "ab", "wrk", "h2load"];
/// Wall-clock bound for one client run.
const CLIENT_TIMEOUT_S: &str = "90";

fn http_bin() -> &'static str {
    env!("CARGO_BIN_EXE_http")
}

fn axum_bin() -> &'static str {
    env!("CARGO_BIN_EXE_axum")
}

/// Runs `args` in `ns` under `timeout`, returning stdout and stderr.
fn client(ns: &str, args: &[&str], what: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", CLIENT_TIMEOUT_S])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{what}: {}: {e}", args.join(" ")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: `{}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// The number after `label` on the first line that contains it.
fn number_after(text: &str, label: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains(label))?;
    let rest = &line[line.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// curl: `GET path` over HTTP/1.1 twice on one connection (keep-alive:
/// the second transfer makes no new connect) and once over h2c; each
/// answer is `200` with `body`.
fn check_curl(ns: &str, base: &str, path: &str, body: &str, what: &str) {
    let url = format!("{base}{path}");
    let fmt = "\\n%{http_code} %{http_version} %{num_connects}\\n";
    let out = client(
        ns,
        &[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-w",
            fmt,
            &url,
            "-w",
            fmt,
            &url,
        ],
        what,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [body, "200 1.1 1", body, "200 1.1 0"],
        "{what}: curl HTTP/1.1 keep-alive {url}:\n{out}"
    );
    let out = client(
        ns,
        &[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--http2-prior-knowledge",
            "-w",
            fmt,
            &url,
        ],
        what,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [body, "200 2 1"], "{what}: curl h2c {url}:\n{out}");
}

/// ab, with and without keep-alive: all complete, none failed, none non-2xx.
fn check_ab(ns: &str, url: &str, what: &str) {
    for keep_alive in [false, true] {
        let mut args = vec!["ab", "-q", "-s", "20", "-n", "2000", "-c", "50"];
        if keep_alive {
            args.push("-k");
        }
        args.push(url);
        let out = client(ns, &args, what);
        let how = if keep_alive { "ab -k" } else { "ab" };
        assert_eq!(
            number_after(&out, "Complete requests:"),
            Some(2000),
            "{what}: {how}:\n{out}"
        );
        assert_eq!(
            number_after(&out, "Failed requests:"),
            Some(0),
            "{what}: {how}:\n{out}"
        );
        assert!(!out.contains("Non-2xx"), "{what}: {how}:\n{out}");
        if keep_alive {
            assert_eq!(
                number_after(&out, "Keep-Alive requests:"),
                Some(2000),
                "{what}: {how}: every request on a kept-alive connection:\n{out}"
            );
        }
        let rps = out
            .lines()
            .find(|l| l.starts_with("Requests per second:"))
            .unwrap_or("");
        eprintln!("{what}: {how}: 2000/2000 answered; {}", rps.trim());
    }
}

/// wrk for 3 s over 50 connections: some requests, no socket errors, no
/// non-2xx/3xx answers.
fn check_wrk(ns: &str, url: &str, what: &str) {
    let out = client(
        ns,
        &[
            "wrk",
            "-t",
            "2",
            "-c",
            "50",
            "-d",
            "3s",
            "--timeout",
            "10s",
            url,
        ],
        what,
    );
    let done = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(done > 0, "{what}: wrk answered nothing:\n{out}");
    assert!(!out.contains("Socket errors"), "{what}: wrk:\n{out}");
    assert!(!out.contains("Non-2xx"), "{what}: wrk:\n{out}");
    eprintln!("{what}: wrk: {done} requests in 3 s, no errors");
}

/// h2load over h2c: 2000 requests on 10 connections, 10 streams each, all
/// succeeded with 2xx.
fn check_h2load(ns: &str, url: &str, what: &str) {
    let out = client(
        ns,
        &["h2load", "-n", "2000", "-c", "10", "-m", "10", url],
        what,
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("{what}: h2load printed no summary:\n{out}"));
    assert!(
        line.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{what}: h2load: {line}\n{out}"
    );
    assert_eq!(
        number_after(&out, "status codes:"),
        Some(2000),
        "{what}: h2load: every answer 2xx:\n{out}"
    );
    assert!(
        out.contains("h2c"),
        "{what}: h2load did not speak h2c:\n{out}"
    );
    eprintln!("{what}: h2load: 2000/2000 succeeded over h2c");
}

fn missing_client() -> Option<&'static str> {
    CLIENTS.into_iter().find(|c| !have(c))
}

/// Starts `bin` on the stack with `cores` cores and runs every client
/// against it; `extra` are more (path, body) pairs curl checks.
fn http_clients(test: &str, backend: Backend, cores: usize, bin: &str, extra: &[(&str, &str)]) {
    let _g = serial();
    if let Some(c) = missing_client() {
        return skip_env(
            test,
            &format!("`{c}` is missing (apt-get install curl apache2-utils wrk nghttp2-client)"),
        );
    }
    let topo = match topology(backend, cores, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let server = Server::start(test, &topo, bin, &[format!("0.0.0.0:{HTTP_PORT}")], &[]);
    let ns = topo.peer_ns;
    let base = format!("http://{}:{HTTP_PORT}", topo.stack_ip);
    check_curl(ns, &base, "/", "Hello, world!", test);
    for (path, body) in extra {
        check_curl(ns, &base, path, body, test);
    }
    let url = format!("{base}/");
    check_ab(ns, &url, test);
    check_wrk(ns, &url, test);
    check_h2load(ns, &url, test);
    server.finish();
    eprintln!("{test}: passed in {:.2?}", t.elapsed());
}

#[test]
fn af_packet_http() {
    http_clients("af_packet_http", Backend::AfPacket, 1, http_bin(), &[]);
}

/// axum's router on two cores (`MTCP_CORES=2`: `main` and its listener on
/// each).
#[test]
fn af_packet_axum_two_cores() {
    http_clients(
        "af_packet_axum_two_cores",
        Backend::AfPacket,
        2,
        axum_bin(),
        &[
            ("/json", r#"{"ok":true,"runtime":"mtcp"}"#),
            ("/hello/kernel", "Hello, kernel!"),
        ],
    );
}

/// The same `http` checks over AF_XDP.
#[test]
fn xdp_http() {
    http_clients("xdp_http", Backend::Xdp, 1, http_bin(), &[]);
}
