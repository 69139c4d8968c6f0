//! Vendor channel throughput: offline devices with APNs and FCM tokens, and browsers with
//! Web Push subscriptions, spread over several apps, sent one push through the local test
//! servers (HTTP/2 over TLS on 127.0.0.1).
//!
//! ```text
//! cargo run --release -p herald-vendor --example vendor_bench -- \
//!     [--devices 100000] [--webpush-devices 20000] [--apps 4] [--connections 1] [--in-flight 256]
//! ```
//!
//! Web Push gets its own, smaller audience: every message is encrypted for its subscription
//! (two P-256 scalar multiplications in the sender) and decrypted by the test push service.
//!
//! The test servers run in the same process and share its two cores, so the numbers are a
//! floor for the sender alone. RSS is the whole process (sender and servers).

use std::sync::Arc;
use std::time::Instant;

use herald_core::account::{TokenKind, VendorToken};
use herald_core::push::Notification;
use herald_vendor::test_support::{
    ca_pem, ApnsTestServer, FcmTestServer, TestApnsKey, TestServiceAccount, WebPushTestServer,
};
use herald_vendor::{
    ApnsEnvironment, Outcome, PreparedPush, Vendor, VendorPush, VendorSender, VendorSettings,
    WebPushCredentials,
};

struct Args {
    devices: usize,
    webpush_devices: usize,
    apps: usize,
    connections: usize,
    in_flight: usize,
}

fn args() -> Args {
    let mut args =
        Args { devices: 100_000, webpush_devices: 20_000, apps: 4, connections: 1, in_flight: 256 };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--devices", Some(v)) => args.devices = v,
            ("--webpush-devices", Some(v)) => args.webpush_devices = v,
            ("--apps", Some(v)) => args.apps = v,
            ("--connections", Some(v)) => args.connections = v,
            ("--in-flight", Some(v)) => args.in_flight = v,
            (flag, _) => panic!("unknown or incomplete flag {flag}"),
        }
    }
    args
}

/// Current and peak resident set size in MiB, from /proc.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system, seconds) of the process's threads whose name starts with
/// `prefix`, from /proc (clock ticks of 1/100 s). The sender and the test servers run on
/// runtimes with differently named threads, so their costs can be told apart.
fn cpu_secs(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let mut total = 0.0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        if !name.starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        total += (ticks(11) + ticks(12)) / 100.0;
    }
    total
}

/// What one app is sent: device tokens, or browser subscriptions.
enum Audience {
    Devices(Vec<VendorToken>),
    Browsers(Vec<String>),
}

/// Sends `push` to every app's audience at once (one task per app, as the dispatcher does)
/// and returns (sent, seconds).
async fn run(
    sender: &Arc<VendorSender>,
    push: &Arc<PreparedPush>,
    per_app: Vec<Audience>,
) -> (usize, f64) {
    let start = Instant::now();
    let tasks: Vec<_> = per_app
        .into_iter()
        .enumerate()
        .map(|(app, audience)| {
            let (sender, push) = (sender.clone(), push.clone());
            tokio::spawn(async move {
                match audience {
                    Audience::Devices(tokens) => sender.send_many(app as i64, &push, &tokens).await,
                    Audience::Browsers(subscriptions) => {
                        sender.send_webpush_many(app as i64, &push, &subscriptions).await
                    }
                }
            })
        })
        .collect();
    let mut sent = 0;
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    for task in tasks {
        for outcome in task.await.expect("send task") {
            match outcome {
                Outcome::Sent { .. } => sent += 1,
                other => {
                    *failures.entry(other.reason().unwrap_or("?").to_owned()).or_default() += 1
                }
            }
        }
    }
    if !failures.is_empty() {
        eprintln!("failures: {failures:?}");
    }
    (sent, start.elapsed().as_secs_f64())
}

fn main() {
    let args = args();
    // The test servers get a runtime of their own, so that their CPU time is counted apart
    // from the sender's; both share the machine's two cores.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let (apns, fcm, webpush) = servers.block_on(async {
        let apns = ApnsTestServer::start().await.expect("APNs server");
        let fcm = FcmTestServer::start().await.expect("FCM server");
        let webpush = WebPushTestServer::start().await.expect("push server");
        (apns, fcm, webpush)
    });
    let sender_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-sender")
        .enable_all()
        .build()
        .expect("sender runtime");
    sender_runtime.block_on(bench(args, apns, fcm, webpush));
}

async fn bench(args: Args, apns: ApnsTestServer, fcm: FcmTestServer, webpush: WebPushTestServer) {
    apns.set_recording(false);
    fcm.set_recording(false);
    webpush.set_recording(false);

    let mut settings = VendorSettings::default();
    settings.apns.production_url = apns.url();
    settings.fcm.base_url = fcm.url();
    settings.extra_root_pem = Some(ca_pem());
    settings.connections = args.connections;
    settings.max_in_flight = args.in_flight;
    let sender = Arc::new(VendorSender::new(settings).expect("settings"));
    let mut vapid_keys = Vec::new();
    for app in 0..args.apps {
        let key = TestApnsKey::generate(&format!("KEY{app:07}"), &format!("TEAM{app:06}"));
        apns.add_key(&key);
        let topic = format!("com.example.app{app}");
        sender
            .set_apns(app as i64, &key.credentials(&topic, ApnsEnvironment::Production))
            .expect("APNs");
        let account = TestServiceAccount::generate(
            &format!("project-{app}"),
            &format!("sa{app}@bench.example"),
        );
        fcm.add_account(&account);
        sender.set_fcm(app as i64, &account.credentials(&fcm.token_uri())).expect("FCM");
        let vapid = WebPushCredentials::generate("mailto:bench@example.com").expect("VAPID");
        sender.set_webpush(app as i64, &vapid).expect("Web Push");
        vapid_keys.push(vapid.public_key);
    }

    let notification = Notification {
        title: Some("Flash sale".into()),
        body: Some("Everything 50% off for the next hour".into()),
        ..Default::default()
    };
    let push = Arc::new(sender.prepare(&VendorPush::new("bench-push-1", notification, 86_400)));

    let browsers = |n: usize| -> Vec<Audience> {
        let mut per_app = vec![Vec::new(); args.apps];
        for i in 0..n {
            let app = i % args.apps;
            per_app[app].push(webpush.subscribe(&vapid_keys[app]).subscription_json());
        }
        per_app.into_iter().map(Audience::Browsers).collect()
    };
    let tokens = |kind: TokenKind, n: usize| -> Vec<Vec<VendorToken>> {
        let mut per_app = vec![Vec::new(); args.apps];
        for i in 0..n {
            let token = match kind {
                TokenKind::Apns => format!("{i:064x}"),
                TokenKind::Fcm => format!("fcm-registration-token-{i:0>140}"),
                TokenKind::WebPush => {
                    webpush.subscribe(&vapid_keys[i % args.apps]).subscription_json()
                }
            };
            per_app[i % args.apps].push(VendorToken { kind, token });
        }
        per_app
    };
    // Warm-up: connections, provider tokens, OAuth and VAPID tokens for every app.
    let warm: Vec<Audience> = (0..args.apps)
        .map(|_| {
            Audience::Devices(vec![
                tokens(TokenKind::Apns, 1)[0][0].clone(),
                tokens(TokenKind::Fcm, 1)[0][0].clone(),
            ])
        })
        .collect();
    run(&sender, &push, warm).await;
    run(&sender, &push, browsers(args.apps)).await;

    println!(
        "devices={} webpush-devices={} apps={} connections/app/vendor={} in-flight/app/vendor={}",
        args.devices, args.webpush_devices, args.apps, args.connections, args.in_flight
    );
    let (base_rss, _) = rss_mib();
    println!("RSS after set-up: {base_rss:.0} MiB");
    let half = args.devices / 2;
    for label in ["APNs only", "FCM only", "mixed 50/50", "Web Push"] {
        // Built per run and dropped after it, so RSS reflects one run's tokens.
        let devices = |per_app: Vec<Vec<VendorToken>>| -> Vec<Audience> {
            per_app.into_iter().map(Audience::Devices).collect()
        };
        let per_app = match label {
            "APNs only" => devices(tokens(TokenKind::Apns, args.devices)),
            "FCM only" => devices(tokens(TokenKind::Fcm, args.devices)),
            "Web Push" => browsers(args.webpush_devices),
            _ => devices(
                tokens(TokenKind::Apns, half)
                    .into_iter()
                    .zip(tokens(TokenKind::Fcm, args.devices - half))
                    .map(|(mut a, f)| {
                        a.extend(f);
                        a
                    })
                    .collect(),
            ),
        };
        let (sender_before, server_before) = (cpu_secs("bench-sender"), cpu_secs("bench-server"));
        let (sent, secs) = run(&sender, &push, per_app).await;
        let sender_cpu = cpu_secs("bench-sender") - sender_before;
        let server_cpu = cpu_secs("bench-server") - server_before;
        let (rss, peak) = rss_mib();
        let per_send = |cpu: f64| cpu * 1e6 / sent.max(1) as f64;
        println!(
            "{label:<12} sent {sent:>7} in {secs:>6.2} s = {:>6.0} sends/s | CPU per send: sender \
             {:>4.1} us, servers {:>4.1} us | RSS {rss:.0} MiB, peak {peak:.0} MiB",
            sent as f64 / secs,
            per_send(sender_cpu),
            per_send(server_cpu),
        );
    }
    println!(
        "server requests: APNs {} FCM {} Web Push {}",
        apns.request_count(),
        fcm.request_count(),
        webpush.request_count()
    );
}
