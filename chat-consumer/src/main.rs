//! `chat-consumer`: the CONNMIX chat backend (command line to come).

fn main() {}
