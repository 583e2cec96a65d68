"""Ray Serve adapters: one deployment per model tier, the gateway as ingress, `build_app`."""
