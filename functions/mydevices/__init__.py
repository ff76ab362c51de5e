"""My Devices: per-device sessions for Firebase-backed apps."""
