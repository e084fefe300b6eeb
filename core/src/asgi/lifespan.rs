//! The ASGI lifespan protocol (spec 2.0): startup and shutdown of one app
//! instance.
//!
//! # Call order
//! 1. The frontend calls the application with a lifespan scope; its
//!    `receive()` asks [`Lifespan::poll_receive`], which yields
//!    `lifespan.startup` first.
//! 2. Each `send()` goes to [`Lifespan::handle_app`]; after it the frontend
//!    reads [`Lifespan::phase`] to know whether startup is done.
//! 3. To stop, the frontend calls [`Lifespan::handle_shutdown`]; `receive()`
//!    then yields `lifespan.shutdown`.
//! 4. If the application returns or raises, [`Lifespan::handle_app_exit`].

use crate::UsageError;

/// A message the application sent on the lifespan scope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifespanMessage {
    /// `lifespan.startup.complete`
    StartupComplete,
    /// `lifespan.startup.failed` with its `message`.
    StartupFailed(String),
    /// `lifespan.shutdown.complete`
    ShutdownComplete,
    /// `lifespan.shutdown.failed` with its `message`.
    ShutdownFailed(String),
}

/// What the lifespan `receive()` yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifespanReceive {
    /// `lifespan.startup`
    Startup,
    /// `lifespan.shutdown`
    Shutdown,
    /// Nothing yet: wait until the server shuts down.
    Pending,
}

/// Where the lifespan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifespanPhase {
    /// Startup was not yet acknowledged.
    Starting,
    /// Startup completed: the server may accept requests.
    Started,
    /// The application reported `lifespan.startup.failed`.
    StartupFailed(String),
    /// The application raised or returned before any lifespan message: it
    /// does not support lifespan (fatal only when lifespan is required).
    Unsupported,
    /// Shutdown was requested and not yet acknowledged.
    ShuttingDown,
    /// Shutdown completed (or the app returned after startup).
    ShutDown,
    /// The application reported `lifespan.shutdown.failed`, or failed
    /// after startup.
    ShutdownFailed(String),
}

/// The lifespan state machine.
#[derive(Debug)]
pub struct Lifespan {
    phase: LifespanPhase,
    startup_received: bool,
    shutdown_requested: bool,
    shutdown_received: bool,
    any_message: bool,
}

impl Default for Lifespan {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifespan {
    /// A lifespan about to start.
    pub fn new() -> Self {
        Self {
            phase: LifespanPhase::Starting,
            startup_received: false,
            shutdown_requested: false,
            shutdown_received: false,
            any_message: false,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &LifespanPhase {
        &self.phase
    }

    /// What `receive()` yields now.
    pub fn poll_receive(&mut self) -> LifespanReceive {
        if !self.startup_received {
            self.startup_received = true;
            return LifespanReceive::Startup;
        }
        if self.shutdown_requested && !self.shutdown_received {
            self.shutdown_received = true;
            return LifespanReceive::Shutdown;
        }
        LifespanReceive::Pending
    }

    /// The server wants to stop.
    pub fn handle_shutdown(&mut self) {
        self.shutdown_requested = true;
        if self.phase == LifespanPhase::Started {
            self.phase = LifespanPhase::ShuttingDown;
        }
    }

    /// Validates a message from the application's `send()`.
    pub fn handle_app(&mut self, msg: LifespanMessage) -> Result<(), UsageError> {
        self.any_message = true;
        match (&self.phase, msg) {
            (LifespanPhase::Starting, LifespanMessage::StartupComplete) => {
                self.phase = if self.shutdown_requested {
                    LifespanPhase::ShuttingDown
                } else {
                    LifespanPhase::Started
                };
                Ok(())
            }
            (LifespanPhase::Starting, LifespanMessage::StartupFailed(m)) => {
                self.phase = LifespanPhase::StartupFailed(m);
                Ok(())
            }
            (LifespanPhase::ShuttingDown, LifespanMessage::ShutdownComplete)
                if self.shutdown_received =>
            {
                self.phase = LifespanPhase::ShutDown;
                Ok(())
            }
            (LifespanPhase::ShuttingDown, LifespanMessage::ShutdownFailed(m))
                if self.shutdown_received =>
            {
                self.phase = LifespanPhase::ShutdownFailed(m);
                Ok(())
            }
            (_, msg) => Err(UsageError::InvalidState(match msg {
                LifespanMessage::StartupComplete | LifespanMessage::StartupFailed(_) => {
                    "lifespan startup message sent out of order"
                }
                LifespanMessage::ShutdownComplete | LifespanMessage::ShutdownFailed(_) => {
                    "lifespan shutdown message sent before 'lifespan.shutdown' was received"
                }
            })),
        }
    }

    /// The application returned (`error` None) or raised (`error` its text).
    pub fn handle_app_exit(&mut self, error: Option<String>) {
        self.phase = match (&self.phase, error) {
            (LifespanPhase::Starting, _) if !self.any_message => LifespanPhase::Unsupported,
            (LifespanPhase::Starting, Some(e)) => LifespanPhase::StartupFailed(e),
            (LifespanPhase::Starting, None) => {
                LifespanPhase::StartupFailed("the application returned during startup".into())
            }
            (LifespanPhase::Started | LifespanPhase::ShuttingDown, Some(e)) => {
                LifespanPhase::ShutdownFailed(e)
            }
            (LifespanPhase::Started | LifespanPhase::ShuttingDown, None) => LifespanPhase::ShutDown,
            (phase, _) => phase.clone(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_cycle() {
        let mut l = Lifespan::new();
        assert_eq!(l.poll_receive(), LifespanReceive::Startup);
        assert_eq!(l.poll_receive(), LifespanReceive::Pending);
        l.handle_app(LifespanMessage::StartupComplete).unwrap();
        assert_eq!(l.phase(), &LifespanPhase::Started);
        l.handle_shutdown();
        assert_eq!(l.poll_receive(), LifespanReceive::Shutdown);
        l.handle_app(LifespanMessage::ShutdownComplete).unwrap();
        assert_eq!(l.phase(), &LifespanPhase::ShutDown);
    }

    #[test]
    fn startup_failed_keeps_message() {
        let mut l = Lifespan::new();
        l.poll_receive();
        l.handle_app(LifespanMessage::StartupFailed("no db".into()))
            .unwrap();
        assert_eq!(l.phase(), &LifespanPhase::StartupFailed("no db".into()));
    }

    #[test]
    fn raising_before_any_message_is_unsupported() {
        let mut l = Lifespan::new();
        l.poll_receive();
        l.handle_app_exit(Some("KeyError".into()));
        assert_eq!(l.phase(), &LifespanPhase::Unsupported);
    }

    #[test]
    fn raising_after_startup_is_shutdown_failure() {
        let mut l = Lifespan::new();
        l.poll_receive();
        l.handle_app(LifespanMessage::StartupComplete).unwrap();
        l.handle_app_exit(Some("boom".into()));
        assert_eq!(l.phase(), &LifespanPhase::ShutdownFailed("boom".into()));
    }

    #[test]
    fn out_of_order_messages_are_usage_errors() {
        let mut l = Lifespan::new();
        l.poll_receive();
        assert!(l.handle_app(LifespanMessage::ShutdownComplete).is_err());
        l.handle_app(LifespanMessage::StartupComplete).unwrap();
        assert!(l.handle_app(LifespanMessage::StartupComplete).is_err());
        assert!(l.handle_app(LifespanMessage::ShutdownComplete).is_err());
    }
}
