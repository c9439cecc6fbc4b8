//! A tiny local HTTP server for the faults a real server will not produce
//! on demand: a malformed event, a 429, a stall, a cut stream, an error
//! inside a 200 stream. Each connection gets the next scripted answer; the
//! requests it read are kept for the test to look at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with one connection.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Write these bytes (a whole HTTP response) and close.
    Bytes(Vec<u8>),
    /// Write the bytes, then keep the connection open, silent, this long.
    Stall(Vec<u8>, Duration),
}

pub struct FakeServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    /// Answers connections in order with `answers`; `GET /v1/models` is
    /// always answered with one model ("fake") and `/props` with 404, so
    /// that whet's probe sees an OpenAI-compatible server.
    pub fn start(answers: Vec<Answer>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let request = read_request(&stream);
                let first_line = request.lines().next().unwrap_or_default().to_string();
                seen.lock().unwrap().push(request);
                let answer = if first_line.starts_with("GET /v1/models") {
                    Answer::Bytes(json_response(
                        200,
                        r#"{"object":"list","data":[{"id":"fake","object":"model","owned_by":"test"}]}"#,
                    ))
                } else if first_line.starts_with("GET ") {
                    Answer::Bytes(json_response(404, r#"{"error":{"message":"not here"}}"#))
                } else {
                    match answers.next() {
                        Some(answer) => answer,
                        None => return,
                    }
                };
                std::thread::spawn(move || serve(stream, answer));
            }
        });
        FakeServer { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

fn serve(mut stream: TcpStream, answer: Answer) {
    match answer {
        Answer::Bytes(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        Answer::Stall(bytes, how_long) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
            std::thread::sleep(how_long);
        }
    }
}

fn read_request(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

/// A whole response with a JSON body.
pub fn json_response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The head of a streamed (SSE) response, chunked, and its body's events
/// as chunks; `end` closes the chunked body properly.
pub fn sse_response(events: &[&str], end: bool) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for event in events {
        let piece = format!("{event}\n\n");
        out.extend(format!("{:x}\r\n{piece}\r\n", piece.len()).into_bytes());
    }
    if end {
        out.extend(b"0\r\n\r\n");
    }
    out
}

/// A chunk of a streamed chat reply carrying `text`.
pub fn delta(text: &str) -> String {
    format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}",
        serde_json::to_string(text).unwrap()
    )
}

/// The chunk that ends a reply.
pub fn finish(reason: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}")
}
