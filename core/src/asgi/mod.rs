//! ASGI state machines.
