//! WSGI (PEP 3333) as plain data and one small state machine, so every
//! frontend maps a request to an environ and a `start_response` call to
//! response messages by the same rules.
//!
//! * [`Environ`] — a request's CGI variables, from its [`HttpScope`].
//! * [`Response`] — `start_response`, the body iterable and `write()`,
//!   turned into the [`AppMessage`]s an [`HttpStream`] takes.
//!
//! [`HttpScope`]: crate::asgi::HttpScope
//! [`AppMessage`]: crate::asgi::AppMessage
//! [`HttpStream`]: crate::asgi::HttpStream

mod environ;
mod response;

pub use environ::{CgiName, Environ, cgi_name};
pub use response::{Response, StartError, ToSend, parse_status};
