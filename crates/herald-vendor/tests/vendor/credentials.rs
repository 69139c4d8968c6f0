//! Credentials: validation with precise errors, redacted read-back, sealing at rest.

use herald_vendor::jwt::KeyError;
use herald_vendor::test_support::{TestApnsKey, TestServiceAccount};
use herald_vendor::{
    ApnsEnvironment, CredentialsError, FcmCredentials, SecretBox, SecretError, VendorSettings,
};

fn apns_key() -> TestApnsKey {
    TestApnsKey::generate("KEY1234567", "TEAM123456")
}

#[test]
fn apns_credentials_are_checked_field_by_field() {
    let good = apns_key().credentials("com.example.app", ApnsEnvironment::Production);
    good.validate().unwrap();

    let mut c = good.clone();
    c.key_id = "KEY123".into();
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "key_id: must be 10 upper-case letters or digits, got \"KEY123\""
    );
    let mut c = good.clone();
    c.team_id = "team123456".into();
    assert_eq!(c.validate().unwrap_err().field_name(), "team_id");
    let mut c = good.clone();
    c.topic = String::new();
    assert_eq!(c.validate().unwrap_err().to_string(), "topic: is empty");

    let mut c = good.clone();
    c.key_p8 = "not a key".into();
    assert!(matches!(
        c.validate(),
        Err(CredentialsError::Key { field: "key_p8", source: KeyError::NotPem(_) })
    ));
    // A P-384 key is PKCS#8 too, but not what ES256 needs.
    let mut c = good.clone();
    c.key_p8 =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap().serialize_pem();
    let err = c.validate().unwrap_err();
    assert!(matches!(err, CredentialsError::Key { source: KeyError::Rejected(_), .. }), "{err:?}");
    assert!(err.to_string().starts_with("key_p8: the key was rejected: not a P-256 ECDSA key"));
    // The SEC1 form of an EC key is named as such.
    let mut c = good;
    c.key_p8 =
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n".into();
    let err = c.validate().unwrap_err();
    assert!(matches!(err, CredentialsError::Key { source: KeyError::WrongFormat { .. }, .. }));
    assert!(err.to_string().contains("BEGIN EC PRIVATE KEY"), "{err}");
}

#[test]
fn apns_credentials_read_back_without_the_key() {
    let key = apns_key();
    let c = key.credentials("com.example.app", ApnsEnvironment::Sandbox);
    let redacted = c.redacted().unwrap();
    let json = serde_json::to_string(&redacted).unwrap();
    assert!(!json.contains("PRIVATE KEY"), "{json}");
    assert_eq!(redacted.key_id, "KEY1234567");
    assert_eq!(redacted.environment, ApnsEnvironment::Sandbox);
    assert_eq!(redacted.key_fingerprint.len(), 16);
    assert_eq!(redacted.key_fingerprint, c.redacted().unwrap().key_fingerprint);
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));
}

#[test]
fn fcm_credentials_are_checked() {
    let account = TestServiceAccount::generate("demo-project", "sa@demo.iam.gserviceaccount.com");
    let good = account.credentials("https://oauth2.googleapis.com/token");
    good.validate().unwrap();
    let redacted = good.redacted().unwrap();
    assert_eq!(redacted.project_id, "demo-project");
    assert_eq!(redacted.client_email, "sa@demo.iam.gserviceaccount.com");
    assert!(!serde_json::to_string(&redacted).unwrap().contains("PRIVATE KEY"));
    assert!(!format!("{good:?}").contains("PRIVATE KEY"));

    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut file: serde_json::Value =
            serde_json::from_str(&account.json("https://oauth2.googleapis.com/token")).unwrap();
        edit(&mut file);
        FcmCredentials { service_account_json: file.to_string(), project_id: None }.validate()
    };
    let err = |e: Result<(), CredentialsError>| e.unwrap_err().to_string();
    assert!(err(with(&|f| f["type"] = "authorized_user".into())).contains("\"authorized_user\""));
    assert!(err(with(&|f| f["private_key"] = "nope".into()))
        .starts_with("service_account_json.private_key: not a PEM private key"));
    assert!(err(with(&|f| {
        f.as_object_mut().unwrap().remove("client_email");
    }))
    .contains("has no client_email"));
    assert!(err(with(&|f| f["token_uri"] = "http://insecure/token".into())).contains("https://"));
    assert_eq!(
        err(with(&|f| {
            f.as_object_mut().unwrap().remove("project_id");
        })),
        "project_id: is not set"
    );
    assert!(err(with(&|f| f["project_id"] = "a/b".into())).contains("may hold letters"));
    let not_json = FcmCredentials { service_account_json: "{".into(), project_id: None };
    assert!(not_json.validate().unwrap_err().to_string().contains("not a service-account file"));

    // The project to send through may differ from the service account's own.
    let other = FcmCredentials { project_id: Some("other-project".into()), ..good };
    assert_eq!(other.redacted().unwrap().project_id, "other-project");
}

#[test]
fn fcm_credentials_accept_the_file_as_text_or_object() {
    let account = TestServiceAccount::generate("demo-project", "sa@demo.iam.gserviceaccount.com");
    let file: serde_json::Value =
        serde_json::from_str(&account.json("https://oauth2.googleapis.com/token")).unwrap();
    let as_object: FcmCredentials =
        serde_json::from_value(serde_json::json!({"service_account_json": file})).unwrap();
    as_object.validate().unwrap();
    let as_text: FcmCredentials =
        serde_json::from_value(serde_json::json!({"service_account_json": file.to_string()}))
            .unwrap();
    as_text.validate().unwrap();
    let unknown = serde_json::from_value::<FcmCredentials>(
        serde_json::json!({"service_account_json": "{}", "projectId": "x"}),
    );
    assert!(unknown.is_err());
}

#[test]
fn credentials_are_sealed_at_rest_and_need_the_right_key() {
    let key = SecretBox::generate_key();
    let settings = VendorSettings { credentials_key: Some(key), ..Default::default() };
    let sealer = settings.secret_box().unwrap().unwrap();
    let credentials = apns_key().credentials("com.example.app", ApnsEnvironment::Production);
    let sealed = sealer.seal_json("app/1/apns", &credentials);
    assert!(!sealed.contains("PRIVATE"));
    let opened: herald_vendor::ApnsCredentials = sealer.open_json("app/1/apns", &sealed).unwrap();
    assert_eq!(opened, credentials);

    let other = SecretBox::new(&SecretBox::generate_key(), &[]).unwrap();
    let err = other.open_json::<herald_vendor::ApnsCredentials>("app/1/apns", &sealed).unwrap_err();
    assert!(matches!(err, SecretError::WrongKey { .. }));
    assert_eq!(
        sealer.open_json::<herald_vendor::ApnsCredentials>("app/2/apns", &sealed).unwrap_err(),
        SecretError::Corrupted
    );
}

#[test]
fn settings_are_validated_and_the_key_is_not_shown() {
    let mut settings = VendorSettings::default();
    settings.validate().unwrap();
    settings.credentials_key = Some(SecretBox::generate_key());
    let shown = format!("{settings:?}");
    assert!(!shown.contains(settings.credentials_key.as_deref().unwrap()), "{shown}");

    settings.apns.production_url = "http://api.push.apple.com".into();
    assert_eq!(
        settings.validate().unwrap_err().to_string(),
        "invalid vendor setting apns.production_url: must be an https:// URL"
    );
    let bad_key = VendorSettings { credentials_key: Some("short".into()), ..Default::default() };
    assert!(bad_key.validate().is_err());
    let parsed: VendorSettings = serde_json::from_str(r#"{"max_in_flight": 64}"#).unwrap();
    assert_eq!(parsed.max_in_flight, 64);
    assert_eq!(parsed.apns.production_url, "https://api.push.apple.com");
}
