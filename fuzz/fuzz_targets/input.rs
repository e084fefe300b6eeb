//! The input layout the op-driven targets share: the first byte `n` says
//! how many of the following bytes are control bytes (decoded with
//! `arbitrary` into operations); the rest is the wire, the bytes the peer
//! sends.

use arbitrary::Unstructured;

/// The control bytes, ready to decode, and the wire; None for no input.
pub fn split(data: &[u8]) -> Option<(Unstructured<'_>, &[u8])> {
    let (&n, rest) = data.split_first()?;
    let (control, wire) = rest.split_at(usize::from(n).min(rest.len()));
    Some((Unstructured::new(control), wire))
}
