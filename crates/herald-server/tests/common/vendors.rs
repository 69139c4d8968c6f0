//! Local APNs and FCM servers speaking the real protocols, and the `[vendor]` settings that
//! point herald at them.

use herald_vendor::test_support::{
    ca_pem, ApnsTestServer, FcmTestServer, TestApnsKey, TestServiceAccount,
};

/// An APNs and an FCM server, each knowing one set of credentials.
pub struct VendorFakes {
    pub apns: ApnsTestServer,
    pub fcm: FcmTestServer,
    pub apns_key: TestApnsKey,
    pub fcm_account: TestServiceAccount,
}

impl VendorFakes {
    pub async fn start() -> Self {
        let apns = ApnsTestServer::start().await.unwrap();
        let fcm = FcmTestServer::start().await.unwrap();
        let apns_key = TestApnsKey::generate("KEYID12345", "TEAMID1234");
        apns.add_key(&apns_key);
        let fcm_account =
            TestServiceAccount::generate("proj-1", "push@proj-1.iam.gserviceaccount.com");
        fcm.add_account(&fcm_account);
        Self { apns, fcm, apns_key, fcm_account }
    }

    /// The `[vendor]`, `[vendor.apns]` and `[vendor.fcm]` tables for these servers; `extra`
    /// goes into `[vendor]`.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "[vendor]\nextra_root_pem = {pem:?}\n{extra}[vendor.apns]\nproduction_url = {url:?}\n\
             sandbox_url = {url:?}\n[vendor.fcm]\nbase_url = {fcm_url:?}\ntoken_uri = {token:?}\n",
            pem = ca_pem(),
            url = self.apns.url(),
            fcm_url = self.fcm.url(),
            token = self.fcm.token_uri(),
        )
    }
}
