//! How client subcommands print: aligned `key: value` lines for people, JSON for scripts.

use serde_json::Value;

/// Prints `value` as pretty JSON.
pub fn json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Prints the named fields of an object as aligned lines.
pub fn fields(value: &Value, names: &[&str]) {
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for name in names {
        println!("{name:width$}  {}", scalar(&value[*name]));
    }
}

/// Prints rows of objects as a table with the given columns.
pub fn table(rows: &[Value], columns: &[&str]) {
    let cells: Vec<Vec<String>> =
        rows.iter().map(|row| columns.iter().map(|c| scalar(&row[*c])).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> =
            values.iter().zip(&widths).map(|(v, w)| format!("{v:w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
