//! Load generator for bench/mqtt.sh: publishes COUNT distinct hooks (QoS 1)
//! to a broker on loopback, then waits until every desk's /api/status
//! counts them all, and prints events/s end to end (broker -> desks ->
//! counted, stored and republished by each desk).
//!
//!     mqttload BROKER_PORT TOPIC COUNT DESK_ADDR...

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn total(addr: SocketAddr) -> u64 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let _ = s
        .write_all(b"GET /api/status HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: mqttload BROKER_PORT TOPIC COUNT DESK_ADDR...");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("BROKER_PORT");
    let topic = args[2].clone();
    let count: u64 = args[3].parse().expect("COUNT");
    let desks: Vec<SocketAddr> = args[4..]
        .iter()
        .map(|a| a.parse().expect("DESK_ADDR like 127.0.0.1:8080"))
        .collect();
    assert!(
        desks.iter().all(|d| d.ip().is_loopback()),
        "load tests only target loopback"
    );
    let mut o = MqttOptions::new(
        format!("mqttload-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(100);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let base: Vec<u64> = futures_totals(&desks).await;
    let started = Instant::now();
    let publisher = tokio::spawn(async move {
        for i in 0..count {
            let msg = format!(
                r#"{{"id":"load-{}-{i}","route":"red","jail":"sshd","ip":"10.{}.{}.{}"}}"#,
                std::process::id(),
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            );
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, msg)
                .await
                .expect("queue");
        }
        client
    });
    let mut acked = 0u64;
    let mut sent = 0u64;
    while acked < count {
        match el.poll().await.expect("broker connection") {
            Event::Incoming(Packet::PubAck(_)) => acked += 1,
            Event::Outgoing(Outgoing::Publish(_)) => sent += 1,
            _ => {}
        }
    }
    let published = started.elapsed();
    let _client = publisher.await.unwrap();
    eprintln!("published {sent} (acked {acked}) in {published:?}");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = futures_totals(&desks).await;
        if now.iter().zip(&base).all(|(n, b)| n - b >= count) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "desks counted {now:?} of {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = started.elapsed();
    println!("hooks: {count}, desks: {}", desks.len());
    println!(
        "broker_acked_per_s: {:.0}",
        count as f64 / published.as_secs_f64()
    );
    println!(
        "counted_by_every_desk_per_s: {:.0}  ({:.2}s for all)",
        count as f64 / all.as_secs_f64(),
        all.as_secs_f64()
    );
}

async fn futures_totals(desks: &[SocketAddr]) -> Vec<u64> {
    let mut out = Vec::new();
    for d in desks {
        out.push(total(*d).await);
    }
    out
}
