//! Registry fan-out, replacement and backpressure.

use std::collections::BTreeSet;

use chrono::Utc;
use futures_util::FutureExt;
use proptest::prelude::*;

use super::*;

const APP: AppId = 7;

fn device(id: &str, platform: &str) -> DeviceInfo {
    DeviceInfo {
        device_id: id.into(),
        platform: platform.into(),
        package: "com.example".into(),
        vendor_token: None,
        app_version: None,
        locale: None,
        time_zone: None,
    }
}

fn push(seq: u64, note: &str) -> Push {
    Push {
        push_id: format!("p{seq}"),
        seq,
        sender: None,
        message: serde_json::json!({"n": seq}),
        notification: serde_json::json!({"title": note}).as_object().cloned(),
        sent_at: Utc::now(),
        expires_at: None,
    }
}

/// Frames waiting in a registration's queue, or the close reason.
fn drain(reg: &Registration) -> Result<Vec<(Option<u64>, String)>, CloseCode> {
    let mut batch = Vec::new();
    match reg.outbox().next(&mut batch).now_or_never() {
        None => return Ok(Vec::new()),
        Some(Err(code)) => return Err(code),
        Some(Ok(())) => {}
    }
    Ok(batch
        .into_iter()
        .map(|o| match o {
            Outbound::Push { seq, frame } => (Some(seq), frame.as_str().to_owned()),
            Outbound::Other(frame) => (None, frame.as_str().to_owned()),
        })
        .collect())
}

proptest! {
    #[test]
    fn fan_out_reaches_exactly_the_online_audience(
        online in proptest::collection::vec((0u32..300, 0usize..3), 0..120),
        audience in proptest::collection::btree_set(0u32..300, 0..200),
    ) {
        let registry = Arc::new(Registry::new(16));
        let platforms = ["ios", "android", "web"];
        let regs: Vec<(u32, Registration)> = online
            .iter()
            .enumerate()
            .map(|(i, &(account, p))| {
                (account, registry.register(APP, account, &device(&format!("d{i}"), platforms[p])))
            })
            .collect();
        let bitmap: RoaringBitmap = audience.iter().copied().collect();
        let delivery = registry.deliver(APP, &bitmap, &PushFrames::new(&push(1, "t")));

        let online_accounts: BTreeSet<u32> = online.iter().map(|&(a, _)| a).collect();
        let expected: BTreeSet<u32> = online_accounts.intersection(&audience).copied().collect();
        prop_assert_eq!(delivery.reached.iter().collect::<BTreeSet<u32>>(), expected);
        let mut received = 0;
        for (account, reg) in &regs {
            let frames = drain(reg).unwrap();
            let want = usize::from(audience.contains(account));
            prop_assert_eq!(frames.len(), want);
            received += frames.len() as u64;
        }
        prop_assert_eq!(delivery.total_sent(), received);
        prop_assert_eq!(registry.online_count(), online.len());
        drop(regs);
        prop_assert_eq!(registry.online_count(), 0);
        prop_assert!(registry.online_accounts(APP).is_empty());
    }
}

#[test]
fn platform_frames_and_filter() {
    let registry = Arc::new(Registry::new(16));
    let ios = registry.register(APP, 1, &device("a", "ios"));
    let android = registry.register(APP, 2, &device("b", "android"));
    let web = registry.register(APP, 3, &device("c", "web"));
    let audience: RoaringBitmap = [1, 2, 3].into_iter().collect();

    let frames = PushFrames::new(&push(5, "default")).with_platform("ios", &push(5, "for ios"));
    let delivery = registry.deliver(APP, &audience, &frames);
    assert_eq!(delivery.total_sent(), 3);
    assert_eq!(delivery.sent.get("ios"), Some(&1));
    assert!(drain(&ios).unwrap()[0].1.contains("for ios"));
    assert!(drain(&android).unwrap()[0].1.contains("default"));
    assert!(drain(&web).unwrap()[0].1.contains("default"));

    let frames = PushFrames::new(&push(6, "x")).only_platforms(["android", "web"]);
    let delivery = registry.deliver(APP, &audience, &frames);
    assert_eq!(delivery.reached.iter().collect::<Vec<_>>(), [2, 3]);
    assert!(drain(&ios).unwrap().is_empty());
    assert_eq!(drain(&android).unwrap()[0].0, Some(6));
    assert_eq!(drain(&web).unwrap().len(), 1);
}

#[test]
fn other_apps_are_not_reached() {
    let registry = Arc::new(Registry::new(16));
    let mine = registry.register(APP, 1, &device("a", "ios"));
    let theirs = registry.register(APP + 1, 1, &device("a", "ios"));
    let audience: RoaringBitmap = [1].into_iter().collect();
    registry.deliver(APP, &audience, &PushFrames::new(&push(1, "t")));
    assert_eq!(drain(&mine).unwrap().len(), 1);
    assert!(drain(&theirs).unwrap().is_empty());
    assert!(registry.is_online(APP + 1, 1));
}

#[test]
fn a_shutdown_closes_every_session_and_those_that_register_after_it() {
    let registry = Arc::new(Registry::new(16));
    let phone = registry.register(APP, 1, &device("phone", "ios"));
    let tablet = registry.register(APP + 1, 2, &device("tablet", "android"));
    let audience: RoaringBitmap = [1].into_iter().collect();
    registry.deliver(APP, &audience, &PushFrames::new(&push(1, "t")));
    registry.shut_down();
    assert_eq!(drain(&phone), Err(CloseCode::ShuttingDown), "queued frames go with it");
    assert_eq!(drain(&tablet), Err(CloseCode::ShuttingDown));
    let late = registry.register(APP, 3, &device("late", "web"));
    assert_eq!(drain(&late), Err(CloseCode::ShuttingDown));
}

#[test]
fn a_new_connection_of_a_device_replaces_the_old() {
    let registry = Arc::new(Registry::new(16));
    let first = registry.register(APP, 1, &device("phone", "ios"));
    // The device is now bound to another account: the last bind wins.
    let second = registry.register(APP, 2, &device("phone", "ios"));
    assert_eq!(drain(&first), Err(CloseCode::Replaced));
    assert_eq!(registry.online_count(), 1);
    assert!(!registry.is_online(APP, 1));
    assert!(registry.is_online(APP, 2));
    // The old session ending must not remove the new one.
    drop(first);
    assert_eq!(registry.online_count(), 1);
    let audience: RoaringBitmap = [1, 2].into_iter().collect();
    let delivery = registry.deliver(APP, &audience, &PushFrames::new(&push(1, "t")));
    assert_eq!(delivery.reached.iter().collect::<Vec<_>>(), [2]);
    assert_eq!(drain(&second).unwrap().len(), 1);
    assert_eq!(registry.sessions(APP, 2)[0].device_id, "phone");
}

#[test]
fn two_devices_of_one_account_both_receive() {
    let registry = Arc::new(Registry::new(16));
    let phone = registry.register(APP, 1, &device("phone", "ios"));
    let tablet = registry.register(APP, 1, &device("tablet", "android"));
    let audience: RoaringBitmap = [1].into_iter().collect();
    let delivery = registry.deliver(APP, &audience, &PushFrames::new(&push(1, "t")));
    assert_eq!(delivery.total_sent(), 2);
    assert_eq!(drain(&phone).unwrap().len(), 1);
    assert_eq!(drain(&tablet).unwrap().len(), 1);
    drop(phone);
    assert!(registry.is_online(APP, 1));
    drop(tablet);
    assert!(!registry.is_online(APP, 1));
}

#[test]
fn a_full_queue_disconnects_only_that_client() {
    let registry = Arc::new(Registry::new(3));
    let slow = registry.register(APP, 1, &device("slow", "ios"));
    let fast = registry.register(APP, 2, &device("fast", "ios"));
    let audience: RoaringBitmap = [1, 2].into_iter().collect();
    let mut got = Vec::new();
    let mut too_slow = 0;
    for seq in 1..=10 {
        let delivery = registry.deliver(APP, &audience, &PushFrames::new(&push(seq, "t")));
        too_slow += delivery.too_slow;
        got.extend(drain(&fast).unwrap().into_iter().map(|(seq, _)| seq.unwrap()));
        // Memory stays bounded: the slow queue never holds more than its capacity.
        assert!(slow.outbox().len() <= 3);
    }
    assert_eq!(too_slow, 1);
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert_eq!(drain(&slow), Err(CloseCode::TooSlow));
    assert_eq!(slow.outbox().len(), 0);
}

#[test]
fn pushes_delivered_together_reach_each_audience_in_seq_order() {
    let registry = Arc::new(Registry::new(4));
    let regs: Vec<Registration> =
        (1..=3).map(|a| registry.register(APP, a, &device(&format!("d{a}"), "ios"))).collect();
    let first: RoaringBitmap = [1, 2].into_iter().collect();
    let second: RoaringBitmap = [2, 3, 9].into_iter().collect();
    let third: RoaringBitmap = [2].into_iter().collect();
    let frames: Vec<PushFrames> = (1..=3).map(|seq| PushFrames::new(&push(seq, "t"))).collect();
    let only_android = PushFrames::new(&push(4, "t")).only_platforms(["android"]);
    let deliveries = registry.deliver_all(
        APP,
        &[
            (&first, &frames[0]),
            (&second, &frames[1]),
            (&third, &frames[2]),
            (&second, &only_android),
        ],
    );
    let seqs = |reg: &Registration| -> Vec<u64> {
        drain(reg).unwrap().into_iter().map(|(seq, _)| seq.unwrap()).collect()
    };
    assert_eq!(seqs(&regs[0]), [1]);
    assert_eq!(seqs(&regs[1]), [1, 2, 3]);
    assert_eq!(seqs(&regs[2]), [2]);
    let sent: Vec<u64> = deliveries.iter().map(Delivery::total_sent).collect();
    assert_eq!(sent, [2, 2, 1, 0]);
    assert_eq!(deliveries[1].reached, [2, 3].into_iter().collect());

    // Frames that do not all fit close the connection, for every push among them.
    let full = registry.register(APP, 5, &device("full", "ios"));
    let audience: RoaringBitmap = [5].into_iter().collect();
    registry.deliver(APP, &audience, &frames[0]);
    let pairs: Vec<_> = frames.iter().map(|f| (&audience, f)).collect();
    let deliveries = registry.deliver_all(APP, &[pairs[0], pairs[1], pairs[2], pairs[1]]);
    assert!(deliveries.iter().all(|d| d.too_slow == 1 && d.total_sent() == 0));
    assert_eq!(drain(&full), Err(CloseCode::TooSlow));
}

#[test]
fn recall_and_eviction() {
    let registry = Arc::new(Registry::new(8));
    let reg = registry.register(APP, 4, &device("d", "web"));
    let frame = ServerFrame::Recall(crate::protocol::Recall { push_id: "p1".into(), seq: 1 });
    let audience: RoaringBitmap = [4].into_iter().collect();
    assert_eq!(registry.recall(APP, &audience, &Frame::encode(&frame)).total_sent(), 1);
    assert_eq!(drain(&reg).unwrap()[0].0, None);
    assert!(registry.disconnect_device(APP, "d"));
    assert!(!registry.disconnect_device(APP, "unknown"));
    assert_eq!(drain(&reg), Err(CloseCode::Evicted));
}
