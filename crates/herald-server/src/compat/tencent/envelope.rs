//! The answer envelope of every `/v4` call: always HTTP 200, success or not.
//!
//! # Format
//!
//! ```json
//! {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","TaskId":"p_..."}
//! {"ActionStatus":"FAIL","ErrorCode":90005,"ErrorInfo":"MsgRandom missing or not ..."}
//! ```

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::TencentError;
use crate::error::ApiErrorKind;

/// Fields a command answers with besides the envelope.
pub type Fields = Map<String, Value>;

/// What a command answered: its extra fields, or why it was refused.
pub struct Reply(pub Result<Fields, TencentError>);

impl Reply {
    /// The body of the answer.
    pub fn body(self) -> Value {
        match self.0 {
            Ok(fields) => {
                let mut body = envelope("OK", 0, String::new());
                body.extend(fields);
                Value::Object(body)
            }
            Err(err) => {
                if let TencentError::Api(ApiErrorKind::Internal(detail)) = &err {
                    // The detail stays in the logs; the back end learns it was not its fault.
                    tracing::error!(%detail, "internal error in the tencent layer");
                }
                Value::Object(envelope("FAIL", err.code(), err.to_string()))
            }
        }
    }
}

fn envelope(status: &str, code: u32, info: String) -> Fields {
    let mut body = Map::new();
    body.insert("ActionStatus".into(), json!(status));
    body.insert("ErrorCode".into(), json!(code));
    body.insert("ErrorInfo".into(), json!(info));
    body
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        // SDKs read the outcome from the body; a non-200 status would make some of them drop it.
        (StatusCode::OK, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_carries_the_fields() {
        let mut fields = Fields::new();
        fields.insert("TaskId".into(), json!("p_1"));
        assert_eq!(
            Reply(Ok(fields)).body(),
            json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "TaskId": "p_1"})
        );
    }

    #[test]
    fn failure_has_code_and_info_only() {
        assert_eq!(
            Reply(Err(TencentError::MsgRandom)).body(),
            json!({"ActionStatus": "FAIL", "ErrorCode": 90005,
                "ErrorInfo": "MsgRandom missing or not a 32-bit unsigned integer"})
        );
    }
}
