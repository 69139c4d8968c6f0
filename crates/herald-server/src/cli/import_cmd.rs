//! `herald account import --file`: a file of accounts, with their tags, attributes and
//! devices, sent to `POST /v1/accounts/bulk` in large calls, with a progress bar (rate, ETA)
//! and every rejected line listed at the end by its line number in the file. A thread reads
//! and converts the next call while the server applies the current one; calls go one at a
//! time, so the file applies in its order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::app_cmd::show;
use super::{Client, ClientError, Connection};

#[derive(Debug, Args)]
pub struct ImportFile {
    /// NDJSON: one `{"account":"u1","tags":["vip"],"attributes":{"city":"sz"},"devices":[...]}`
    /// per line. CSV: a header `account,tags,<attribute>...`, tags separated by `;`, an empty
    /// cell sets nothing (devices only in NDJSON).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The file's format [default: from its extension, `.csv` or else NDJSON].
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Most lines per call.
    #[arg(long, default_value_t = 200_000)]
    pub lines_per_call: usize,
    /// Most bytes per call: at most the server's `max_import_body_bytes` (64 MiB by default).
    #[arg(long, default_value_t = 48 * 1024 * 1024)]
    pub bytes_per_call: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    Ndjson,
    Csv,
}

/// Lines of the file on their way in one call.
#[derive(Default)]
struct Call {
    /// NDJSON, one account per line.
    body: String,
    /// The file's line number of each body line.
    lines: Vec<usize>,
    /// Lines refused while reading (CSV records that do not fit the header).
    unreadable: Vec<(usize, String)>,
    /// Bytes of the file read so far.
    position: u64,
}

/// What the whole import did.
#[derive(Default)]
struct Totals {
    lines: usize,
    created: u64,
    existing: u64,
    devices: u64,
    rejected: Vec<(usize, String)>,
}

impl ImportFile {
    pub async fn run(self, conn: &Connection) -> Result<(), ClientError> {
        let Some(path) = self.file.as_deref() else { return Ok(()) };
        let unreadable = |source| ClientError::File { path: path.display().to_string(), source };
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        let reader = BufReader::new(File::open(path).map_err(unreadable)?);
        let format = self.format.unwrap_or_else(|| guess_format(path));
        let source = match format {
            FileFormat::Ndjson => Source::Ndjson { lines: reader.lines().enumerate(), bytes: 0 },
            FileFormat::Csv => Source::csv(reader)?,
        };
        let client = Client::new(conn.clone());
        let progress = progress_bar(size, conn.json);
        let (started, mut totals) = (Instant::now(), Totals::default());
        let limits = (self.lines_per_call.max(1), self.bytes_per_call.max(1));
        let (mut calls, reading) = read_ahead(source, limits);
        while let Some(call) = calls.recv().await {
            totals.lines += call.unreadable.len();
            totals.rejected.extend(call.unreadable);
            if !call.lines.is_empty() {
                let answer = client
                    .signed_body(
                        Method::POST,
                        "/v1/accounts/bulk",
                        call.body,
                        "application/x-ndjson",
                    )
                    .await?;
                totals.add(&answer, &call.lines);
            }
            progress.set_position(call.position.min(size));
            let rate = totals.lines as f64 / started.elapsed().as_secs_f64().max(0.001);
            progress.set_message(format!("{} lines, {rate:.0}/s", totals.lines));
        }
        reading.await.map_err(|err| ClientError::Usage(format!("reading the file: {err}")))??;
        progress.finish_and_clear();
        totals.rejected.sort();
        totals.show(conn, started.elapsed().as_secs_f64());
        match totals.rejected.len() {
            0 => Ok(()),
            n => Err(ClientError::Rejected(n)),
        }
    }
}

/// Reads calls on a thread of its own, one call ahead of the one being sent.
fn read_ahead(
    mut source: Source,
    (lines, bytes): (usize, usize),
) -> (tokio::sync::mpsc::Receiver<Call>, tokio::task::JoinHandle<Result<(), ClientError>>) {
    let (sender, calls) = tokio::sync::mpsc::channel(1);
    let reading = tokio::task::spawn_blocking(move || loop {
        let call = source.next_call(lines, bytes)?;
        let last = call.lines.is_empty() && call.unreadable.is_empty();
        if last || sender.blocking_send(call).is_err() {
            return Ok(());
        }
    });
    (calls, reading)
}

fn guess_format(path: &Path) -> FileFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => FileFormat::Csv,
        _ => FileFormat::Ndjson,
    }
}

fn progress_bar(bytes: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(bytes);
    let style = ProgressStyle::with_template(
        "{wide_bar} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// The file, read as NDJSON lines or CSV records.
enum Source {
    Ndjson { lines: std::iter::Enumerate<std::io::Lines<BufReader<File>>>, bytes: u64 },
    Csv { records: csv::Reader<BufReader<File>>, header: Vec<String> },
}

impl Source {
    fn csv(reader: BufReader<File>) -> Result<Self, ClientError> {
        let mut records = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header: Vec<String> = records
            .headers()
            .map_err(|err| ClientError::Usage(format!("CSV header: {err}")))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        if header.first().map(String::as_str) != Some("account") {
            let usage =
                "the CSV header must start with `account` (then `tags` and attribute names)";
            return Err(ClientError::Usage(usage.into()));
        }
        Ok(Source::Csv { records, header })
    }

    /// The next lines, up to `max` of them and about `max_bytes`; a line that cannot be read
    /// is counted as rejected here.
    fn next_call(&mut self, max: usize, max_bytes: usize) -> Result<Call, ClientError> {
        let mut call = Call::default();
        while call.lines.len() < max && call.body.len() < max_bytes {
            let Some((line, text)) = self.next_line(&mut call.unreadable)? else { break };
            call.body.push_str(&text);
            call.body.push('\n');
            call.lines.push(line);
        }
        call.position = self.bytes_read();
        Ok(call)
    }

    fn next_line(
        &mut self,
        unreadable: &mut Vec<(usize, String)>,
    ) -> Result<Option<(usize, String)>, ClientError> {
        loop {
            match self {
                Source::Ndjson { lines, bytes } => {
                    let Some((index, text)) = lines.next() else { return Ok(None) };
                    let text = text
                        .map_err(|err| ClientError::Usage(format!("line {}: {err}", index + 1)))?;
                    *bytes += text.len() as u64 + 1;
                    if !text.trim().is_empty() {
                        return Ok(Some((index + 1, text)));
                    }
                }
                Source::Csv { records, header } => {
                    let mut record = csv::StringRecord::new();
                    let read = records.read_record(&mut record);
                    let line = record.position().map_or(0, |p| p.line() as usize);
                    match read {
                        Ok(false) => return Ok(None),
                        Ok(true) => match csv_line(header, &record) {
                            Ok(json) => return Ok(Some((line, json))),
                            Err(reason) => unreadable.push((line, reason)),
                        },
                        Err(err) => unreadable.push((line, format!("CSV: {err}"))),
                    }
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        match self {
            Source::Ndjson { bytes, .. } => *bytes,
            Source::Csv { records, .. } => records.position().byte(),
        }
    }
}

/// One CSV record as the NDJSON line of the bulk API.
fn csv_line(header: &[String], record: &csv::StringRecord) -> Result<String, String> {
    if record.len() > header.len() {
        return Err(format!("{} cells, the header has {}", record.len(), header.len()));
    }
    let mut attributes = Map::new();
    let mut line = json!({ "account": record.get(0).unwrap_or_default().trim() });
    for (name, cell) in header.iter().zip(record.iter()).skip(1) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        if name == "tags" {
            let tags: Vec<&str> =
                cell.split(';').map(str::trim).filter(|t| !t.is_empty()).collect();
            line["tags"] = json!(tags);
        } else {
            attributes.insert(name.clone(), Value::String(cell.to_owned()));
        }
    }
    if !attributes.is_empty() {
        line["attributes"] = Value::Object(attributes);
    }
    Ok(line.to_string())
}

impl Totals {
    /// Adds a call's answer; its line numbers count from 1 within the call's body.
    fn add(&mut self, answer: &Value, lines: &[usize]) {
        self.lines += lines.len();
        self.created += answer["created"].as_u64().unwrap_or_default();
        self.existing += answer["existing"].as_u64().unwrap_or_default();
        self.devices += answer["devices"].as_u64().unwrap_or_default();
        for rejected in answer["rejected"].as_array().into_iter().flatten() {
            let at = rejected["line"].as_u64().and_then(|n| usize::try_from(n).ok());
            let line = at.and_then(|n| lines.get(n.wrapping_sub(1))).copied().unwrap_or_default();
            let reason = rejected["reason"].as_str().unwrap_or_default().to_owned();
            self.rejected.push((line, reason));
        }
    }

    fn show(&self, conn: &Connection, seconds: f64) {
        let rejected: Vec<Value> = self
            .rejected
            .iter()
            .map(|(line, reason)| json!({"line": line, "reason": reason}))
            .collect();
        let summary = json!({
            "lines": self.lines,
            "created": self.created,
            "existing": self.existing,
            "devices": self.devices,
            "rejected": rejected,
            "seconds": (seconds * 10.0).round() / 10.0,
        });
        show(conn, &summary, |_| {
            for (line, reason) in &self.rejected {
                println!("line {line}: {reason}");
            }
            let rate = self.lines as f64 / seconds.max(0.001);
            println!(
                "{} lines in {seconds:.1} s ({rate:.0}/s): {} accounts created, {} updated, {} devices bound, {} lines rejected",
                self.lines,
                self.created,
                self.existing,
                self.devices,
                self.rejected.len()
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_record_becomes_a_bulk_line() {
        let header: Vec<String> =
            ["account", "tags", "city"].iter().map(|h| h.to_string()).collect();
        let record = csv::StringRecord::from(vec!["u1", "vip; new ;", "sz"]);
        let line: Value = serde_json::from_str(&csv_line(&header, &record).unwrap()).unwrap();
        assert_eq!(
            line,
            json!({"account": "u1", "tags": ["vip", "new"], "attributes": {"city": "sz"}})
        );
        let bare = csv::StringRecord::from(vec!["u2", "", ""]);
        assert_eq!(csv_line(&header, &bare).unwrap(), r#"{"account":"u2"}"#);
        let wide = csv::StringRecord::from(vec!["u3", "", "", "extra"]);
        assert!(csv_line(&header, &wide).is_err());
    }

    #[test]
    fn rejected_lines_are_told_by_their_place_in_the_file() {
        let mut totals = Totals::default();
        let answer =
            json!({"created": 2, "existing": 1, "rejected": [{"line": 2, "reason": "bad"}]});
        totals.add(&answer, &[10, 12, 13]);
        assert_eq!(totals.rejected, vec![(12, "bad".to_owned())]);
        assert_eq!((totals.lines, totals.created, totals.existing), (3, 2, 1));
    }
}
