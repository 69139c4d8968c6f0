//! The bus against the machine's NATS server (127.0.0.1:4222, JetStream on; `HERALD_TEST_NATS`
//! to use another), each test under a prefix of its own that it deletes afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use herald_bus::{BusSettings, Event, NatsBus, NodeInfo, Report};

fn settings(test: &str, node: &str) -> BusSettings {
    BusSettings {
        url: std::env::var("HERALD_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        prefix: format!("herald_t_{}_{test}", std::process::id()),
        node: node.into(),
    }
}

async fn next<T>(stream: &mut (impl futures_util::Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an item within 10 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn every_node_reads_every_event_in_one_order() {
    let a = NatsBus::connect(&settings("order", "a")).await.expect("NATS answers");
    let b = NatsBus::connect(&settings("order", "b")).await.expect("NATS answers");
    let start = a.last_sequence().await.unwrap();
    let mut read_a = a.events(start).await.unwrap();
    let mut read_b = b.events(start).await.unwrap();
    let mut published = Vec::new();
    for i in 0..20u64 {
        let (bus, node) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let event =
            Event::Dispatched { app: 1, seq: i + 1, push_id: format!("p{i}"), node: node.into() };
        published.push((bus.publish(&event).await.unwrap(), event));
    }
    assert!(published.windows(2).all(|w| w[0].0 < w[1].0), "sequences grow");
    assert_eq!(a.last_sequence().await.unwrap(), published.last().unwrap().0);
    for expected in &published {
        assert_eq!(&next(&mut read_a).await.unwrap(), expected);
        assert_eq!(&next(&mut read_b).await.unwrap(), expected);
    }
    // A node that starts later reads from where it says.
    let mut late = b.events(published[9].0).await.unwrap();
    assert_eq!(next(&mut late).await.unwrap(), published[10]);
    a.destroy().await.unwrap();
}

#[tokio::test]
async fn reports_reach_only_the_node_they_are_for() {
    let a = NatsBus::connect(&settings("reports", "a")).await.unwrap();
    let b = NatsBus::connect(&settings("reports", "b")).await.unwrap();
    let mut to_a = a.reports().await.unwrap();
    let mut to_b = b.reports().await.unwrap();
    let report = |node: &str| Report {
        app: 2,
        push_id: "p".into(),
        node: node.into(),
        recall: false,
        reached: vec![1, 2, 3],
        sent: BTreeMap::from([("android".to_string(), 3)]),
    };
    b.report("a", &report("b")).await.unwrap();
    a.report("b", &report("a")).await.unwrap();
    assert_eq!(next(&mut to_a).await.unwrap(), report("b"));
    assert_eq!(next(&mut to_b).await.unwrap(), report("a"));
    a.destroy().await.unwrap();
}

#[tokio::test]
async fn heartbeats_list_the_live_nodes() {
    let a = NatsBus::connect(&settings("nodes", "a")).await.unwrap();
    let b = NatsBus::connect(&settings("nodes", "b")).await.unwrap();
    let info = |node: &str| NodeInfo {
        node: node.into(),
        listen: "127.0.0.1:0".into(),
        started_at: Utc::now(),
        seen_at: Utc::now(),
        connections: 3,
        leases: vec![1],
        applied: 7,
        lag: 0,
    };
    a.heartbeat(&info("a")).await.unwrap();
    b.heartbeat(&info("b")).await.unwrap();
    let names: Vec<_> = a.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(names, ["a", "b"]);
    b.leave().await.unwrap();
    let names: Vec<_> = a.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(names, ["a"]);
    a.destroy().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let mut unreachable = settings("down", "a");
    unreachable.url = "nats://127.0.0.1:1".into();
    let err = match NatsBus::connect(&unreachable).await {
        Ok(_) => panic!("connected to nothing"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("cannot reach NATS at nats://127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn presence_is_asked_of_every_node() {
    let a = NatsBus::connect(&settings("presence", "a")).await.unwrap();
    let b = NatsBus::connect(&settings("presence", "b")).await.unwrap();
    // Node b has account 7 of app 3 online; node a has no one.
    for (bus, online) in [(a.clone(), vec![]), (b.clone(), vec![7u32])] {
        let mut questions = bus.presence_questions().await.unwrap();
        tokio::spawn(async move {
            while let Some(Ok((question, reply))) = questions.next().await {
                let here = question.app == 3 && online.contains(&question.account);
                bus.answer(reply, here).await.unwrap();
            }
        });
    }
    // Both subscriptions are known to the server once a request after them was answered.
    a.last_sequence().await.unwrap();
    b.last_sequence().await.unwrap();
    let wait = Duration::from_secs(30);
    let ask = |account| herald_bus::PresenceQuestion { app: 3, account };
    assert!(a.online_anywhere(ask(7), 2, wait).await.unwrap(), "online on the other node");
    let started = std::time::Instant::now();
    assert!(!a.online_anywhere(ask(8), 2, wait).await.unwrap());
    assert!(started.elapsed() < wait, "both nodes said no: no need to wait for more");
    a.destroy().await.unwrap();
}

#[tokio::test]
async fn an_event_from_a_newer_node_is_passed_over_with_its_sequence() {
    let settings = settings("undecodable", "a");
    let a = NatsBus::connect(&settings).await.unwrap();
    let start = a.last_sequence().await.unwrap();
    let mut read = a.events(start).await.unwrap();
    let client = async_nats::connect(&settings.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let subject = format!("{}.events.1", settings.prefix);
    js.publish(subject, r#"{"type":"from_the_future"}"#.into()).await.unwrap().await.unwrap();
    let event = Event::Cancelled { app: 1, push_id: "p".into() };
    let after = a.publish(&event).await.unwrap();
    match next(&mut read).await {
        Err(herald_bus::BusError::Undecodable { sequence, .. }) => assert_eq!(sequence, after - 1),
        other => panic!("not passed over: {other:?}"),
    }
    assert_eq!(next(&mut read).await.unwrap(), (after, event));
    a.destroy().await.unwrap();
}
