"""Reference and test support: what parity checks and tools compare against."""
