//! Python ASGI apps in the sandbox: an app built into a WebAssembly
//! component with componentize-py runs under wasmtime, and the host plays
//! the server: it answers `receive()`, checks every `send()` with
//! `cormorant_core::asgi`, and records what the app did.

mod component;
mod exchange;
mod message;
mod pyrepr;
mod runtime;
pub mod scenario;

pub use component::BuildSpec;
pub use exchange::{Exchange, Failure, Request, Violation, WsClient, WsMessage};
pub use runtime::{AppSandbox, Limits};

mod bindings {
    wasmtime::component::bindgen!({
        path: "guest/wit",
        world: "sandbox",
    });
}
