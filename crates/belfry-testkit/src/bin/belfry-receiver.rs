//! A recording HTTP receiver for trying belfry by hand and for benchmarks: listens on
//! 127.0.0.1 (port from the first argument, default a free one), prints its address, answers
//! `200 ok`, and prints each request's method, target and body on standard output.

use std::time::Duration;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let rx = belfry_testkit::Receiver::on(listener, Vec::new(), belfry_testkit::Reply::ok());
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{}", rx.addr());
        let mut seen = 0;
        loop {
            let reqs = rx.wait_for(seen + 1, Duration::from_secs(3600));
            for r in &reqs[seen..] {
                println!(
                    "{} {} {}",
                    r.method,
                    r.target,
                    String::from_utf8_lossy(&r.body)
                );
            }
            seen = reqs.len();
        }
    }
}
