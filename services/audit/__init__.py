"""The audit service: stores every decision from audit.decisions and serves IG searches."""
