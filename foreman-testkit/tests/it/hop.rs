use foreman_testkit::Hop;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server that greets each connection with "hi" and then holds it open.
async fn greeter() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(b"hi").await;
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
            });
        }
    });
    addr
}

async fn greeting(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = [0u8; 2];
    match stream.read_exact(&mut buf).await {
        Ok(_) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_cut_hop_drops_its_connections_and_refuses_new_ones_until_restored() {
    let hop = Hop::start(greeter().await).await;
    let mut before = TcpStream::connect(hop.addr()).await.unwrap();
    assert_eq!(greeting(&mut before).await, b"hi");

    hop.cut();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        before.read_to_end(&mut rest),
    )
    .await;
    assert!(
        ended.is_ok(),
        "the old connection ends (the greeter holds it open)"
    );
    assert!(rest.is_empty());
    let mut during = TcpStream::connect(hop.addr()).await.unwrap();
    assert_eq!(greeting(&mut during).await, b"", "a new one is dropped");

    hop.restore();
    let mut after = TcpStream::connect(hop.addr()).await.unwrap();
    assert_eq!(greeting(&mut after).await, b"hi");
}
