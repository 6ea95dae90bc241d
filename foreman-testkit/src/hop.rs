//! A TCP hop between a client and a server that a test can cut, as a network outage
//! would: while it is cut its connections are dropped and new ones refused; restored, it
//! forwards again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarder on a free `127.0.0.1` port to one server address.
#[derive(Debug)]
pub struct Hop {
    addr: String,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Hop {
    /// Starts forwarding to `to` (`host:port`).
    ///
    /// # Panics
    ///
    /// When no local port can be had.
    pub async fn start(to: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a local address").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, cut) = watch::channel(0u64);
        let accepting = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let to = to.clone();
                let mut cut = cut.clone();
                // Only a cut after this connection was made ends it.
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cuts }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Drops every connection through the hop and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
