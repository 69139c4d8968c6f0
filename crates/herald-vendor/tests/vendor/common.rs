//! A sender wired to local APNs and FCM test servers, all on one manual clock.

use std::sync::Arc;
use std::time::Duration;

use herald_core::account::{TokenKind, VendorToken};
use herald_core::app::AppId;
use herald_core::push::Notification;
use herald_vendor::test_support::{
    ca_pem, ApnsTestServer, FcmTestServer, ManualClock, TestApnsKey, TestServiceAccount,
};
use herald_vendor::{ApnsEnvironment, Vendor, VendorPush, VendorSender, VendorSettings};

pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub apns: ApnsTestServer,
    pub fcm: FcmTestServer,
    pub sender: VendorSender,
}

/// Test settings: the servers' URLs and CA, no breaker unless a test wants one.
pub async fn harness(tweak: impl FnOnce(&mut VendorSettings)) -> Harness {
    let clock = ManualClock::new();
    let apns = ApnsTestServer::start_with_clock(clock.clone()).await.expect("APNs test server");
    let fcm = FcmTestServer::start_with_clock(clock.clone()).await.expect("FCM test server");
    let mut settings = VendorSettings::default();
    settings.apns.production_url = apns.url();
    settings.apns.sandbox_url = apns.url();
    settings.fcm.base_url = fcm.url();
    settings.extra_root_pem = Some(ca_pem());
    settings.breaker.failures = 0;
    tweak(&mut settings);
    let sender = VendorSender::with_clock(settings, clock.clone()).expect("settings");
    Harness { clock, apns, fcm, sender }
}

impl Harness {
    /// Gives `app` a fresh APNs key known to the server.
    pub fn apns_app(&self, app: AppId, key_id: &str, team_id: &str, topic: &str) -> TestApnsKey {
        let key = TestApnsKey::generate(key_id, team_id);
        self.apns.add_key(&key);
        self.sender
            .set_apns(app, &key.credentials(topic, ApnsEnvironment::Production))
            .expect("APNs credentials");
        key
    }

    /// Gives `app` a service account known to the server.
    pub fn fcm_app(&self, app: AppId, project: &str, email: &str) -> TestServiceAccount {
        let account = TestServiceAccount::generate(project, email);
        self.fcm.add_account(&account);
        self.sender
            .set_fcm(app, &account.credentials(&self.fcm.token_uri()))
            .expect("FCM credentials");
        account
    }
}

pub fn apns_token(n: u32) -> VendorToken {
    VendorToken { kind: TokenKind::Apns, token: format!("{n:064x}") }
}

pub fn fcm_token(n: u32) -> VendorToken {
    VendorToken { kind: TokenKind::Fcm, token: format!("fcm-token-{n}") }
}

pub fn simple_push(id: &str) -> VendorPush {
    let notification = Notification {
        title: Some("Hello".into()),
        body: Some("World".into()),
        ..Default::default()
    };
    VendorPush::new(id, notification, 3600)
}

pub const MINUTE: Duration = Duration::from_secs(60);
