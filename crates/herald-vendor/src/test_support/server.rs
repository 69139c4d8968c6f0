//! The HTTP/2-over-TLS listener both test servers run on: 127.0.0.1, port 0, stopped on drop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::tls::server_config;

/// A request with its body read.
pub(crate) type Req = Request<Bytes>;
pub(crate) type Resp = Response<Full<Bytes>>;
pub(crate) type Handler =
    Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// A running listener; dropping it closes the listener and every connection.
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    pub(crate) async fn start(handler: Handler) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(server_config());
        let task = tokio::spawn(async move {
            // Connections live in the set so that aborting the accept loop ends them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let reset = Arc::new(Notify::new());
                    let resetting = reset.clone();
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (handler, reset) = (handler.clone(), reset.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body =
                                body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let resp = handler(Request::from_parts(parts, body)).await;
                            if resp.extensions().get::<ResetConnection>().is_some() {
                                reset.notify_one();
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let serving = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(1000)
                        .serve_connection(TokioIo::new(tls), service);
                    // Dropping the connection closes the socket under every stream on it,
                    // with no HTTP/2 goodbye: what a crashing endpoint or a middlebox does.
                    tokio::select! {
                        _ = serving => {}
                        () = resetting.notified() => {}
                    }
                });
                // Reap finished connections so the set does not grow over a long benchmark.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self { addr, task })
    }

    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

/// Marks a response that is never sent: the listener closes the connection instead.
#[derive(Clone, Copy)]
struct ResetConnection;

/// Closes the connection the request came on, without an answer.
pub(crate) fn reset_connection() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    resp.extensions_mut().insert(ResetConnection);
    resp
}

/// A response with a JSON body and extra headers.
pub(crate) fn json_response(status: u16, body: String, headers: &[(&str, String)]) -> Resp {
    let mut builder = Response::builder().status(status);
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
