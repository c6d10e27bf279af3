//! Holds many live-feed connections to a running server and checks that every one of them
//! receives the changes made meanwhile: the load generator of the "1,000 SSE connections"
//! benchmark (run it as a second process next to `caseflow serve`).
//!
//! `sse_load ADDR TOKEN CONNECTIONS REPORTS REPORT_TOKEN [SERVER_PID]`: opens CONNECTIONS
//! feeds with TOKEN (an auditor's: it sees every change), reports REPORTS cases with
//! REPORT_TOKEN, waits until every connection has seen every report, and prints the time it
//! took, the slowest connection's delivery time and the server's resident memory.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn open_feed(addr: &str, token: &str) -> std::io::Result<BufReader<TcpStream>> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if !line.contains(" 200 ") {
        return Err(std::io::Error::other(format!("feed refused: {line}")));
    }
    Ok(reader)
}

/// Reads until `wanted` change events arrived; returns when the last one did.
async fn count_changes(
    mut reader: BufReader<TcpStream>,
    wanted: usize,
) -> std::io::Result<(Instant, BufReader<TcpStream>)> {
    let mut seen = 0;
    let mut line = String::new();
    while seen < wanted {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("the feed closed"));
        }
        if line.trim_end() == "event: change" {
            seen += 1;
        }
    }
    Ok((Instant::now(), reader))
}

async fn report(addr: &str, token: &str, i: usize) -> std::io::Result<()> {
    let body = format!(
        r#"{{"channel":"hotline","kind":"complaint","summary":"SSE 基准 {i}","locality":"loc-zhongshan","village":null,"subject":"x","focus_area":"living_environment","reporter":{{"type":"anonymous"}}}}"#
    );
    let key = uuid::Uuid::new_v4();
    let request = format!(
        "POST /api/v1/cases HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    if !status.contains(" 201 ") {
        return Err(std::io::Error::other(format!("report refused: {status}")));
    }
    Ok(())
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [
        _,
        addr,
        token,
        connections,
        reports,
        report_token,
        rest @ ..,
    ] = args.as_slice()
    else {
        return Err(
            "usage: sse_load ADDR TOKEN CONNECTIONS REPORTS REPORT_TOKEN [SERVER_PID]".into(),
        );
    };
    let connections: usize = connections.parse()?;
    let reports: usize = reports.parse()?;
    let pid = rest.first();
    let rss_before = pid.and_then(|p| rss_kib(p));
    let opened = Instant::now();
    let mut feeds = Vec::with_capacity(connections);
    for _ in 0..connections {
        feeds.push(open_feed(addr, token).await?);
    }
    println!(
        "{connections} feeds open in {:.2} s",
        opened.elapsed().as_secs_f64()
    );
    let rss_open = pid.and_then(|p| rss_kib(p));
    let waiting: Vec<_> = feeds
        .into_iter()
        .map(|f| tokio::spawn(count_changes(f, reports)))
        .collect();
    let started = Instant::now();
    for i in 0..reports {
        report(addr, report_token, i).await?;
    }
    let reported = started.elapsed();
    let mut last = started;
    let mut held = Vec::with_capacity(connections);
    for w in waiting {
        let (at, reader) = tokio::time::timeout(Duration::from_secs(120), w).await???;
        last = last.max(at);
        held.push(reader);
    }
    println!(
        "{reports} reports in {:.2} s; every one of {} feeds had all {reports} changes {:.0} ms after the first report",
        reported.as_secs_f64(),
        held.len(),
        (last - started).as_secs_f64() * 1000.0
    );
    if let (Some(a), Some(b)) = (rss_before, rss_open) {
        println!(
            "server RSS {} MiB before, {} MiB with the feeds open ({:.1} KiB per connection)",
            a / 1024,
            b / 1024,
            (b.saturating_sub(a)) as f64 / connections as f64
        );
    }
    Ok(())
}
