//! Offline backend emulator. INTERFACE OWNED BY THE EMULATOR WORKER — see docs/interfaces.md.
