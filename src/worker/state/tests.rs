//! Unit tests of the worker's monitor handle: held events go out in order just before the next
//! request, nothing is sent while they are held, and the hold is bounded.

use super::*;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use std::os::fd::AsFd;

fn protocol(line: &str) -> Event {
    Event::Protocol {
        input: true,
        line: line.as_bytes().to_vec(),
    }
}

/// The worker's client on one end of a SEQPACKET pair, the "monitor" on the other.
fn client_and_monitor() -> (MonitorClient, OwnedFd) {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .unwrap();
    (MonitorClient::new(sys::async_fd(ours).unwrap()), theirs)
}

fn next_request(monitor: &OwnedFd) -> Request {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (len, _) = sys::recv_message(monitor.as_fd(), &mut buf).unwrap();
    Request::decode(&buf[..len]).unwrap()
}

#[test]
fn held_events_go_out_in_order_just_before_the_next_request() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, monitor) = client_and_monitor();
        let monitor = sys::async_fd(monitor).unwrap();
        client.hold(protocol("STOR a"));
        client.hold(protocol("RETR a"));
        // Nothing is sent while the events are only held.
        let mut probe = [0u8; 8];
        assert!(
            nix::sys::socket::recv(
                std::os::fd::AsRawFd::as_raw_fd(monitor.get_ref()),
                &mut probe,
                nix::sys::socket::MsgFlags::MSG_DONTWAIT
            )
            .is_err()
        );
        let answer = async {
            let mut seen = Vec::new();
            while seen.len() < 3 {
                let mut ready = monitor.readable().await.unwrap();
                ready.clear_ready();
                let mut buf = vec![0u8; MAX_MESSAGE];
                while let Ok((len, _)) = sys::recv_message(monitor.get_ref().as_fd(), &mut buf) {
                    seen.push(Request::decode(&buf[..len]).unwrap());
                }
            }
            sys::send_message(monitor.get_ref().as_fd(), &Reply::NotBound.encode(), None).unwrap();
            seen
        };
        let both = async { tokio::join!(client.ask(&Request::PassiveSpare), answer) };
        let (asked, seen) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("the request and its events within 10 s");
        assert!(matches!(asked.unwrap(), (Reply::NotBound, None)));
        let expected = vec![
            Request::Event(protocol("STOR a")),
            Request::Event(protocol("RETR a")),
            Request::PassiveSpare,
        ];
        assert_eq!(format!("{seen:?}"), format!("{expected:?}"));
        // A flush with nothing held sends nothing; with one held, that one.
        client.flush().await.unwrap();
        client.hold(protocol("QUIT"));
        client.flush().await.unwrap();
        let got = next_request(monitor.get_ref());
        assert_eq!(
            format!("{got:?}"),
            format!("{:?}", Request::Event(protocol("QUIT")))
        );
    });
}

#[test]
fn at_most_event_queue_events_are_held() {
    let (client, _monitor) = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { client_and_monitor() })
    };
    for i in 0..EVENT_QUEUE + 10 {
        client.hold(protocol(&format!("NOOP {i}")));
    }
    assert_eq!(client.held.lock().unwrap().len(), EVENT_QUEUE);
}
