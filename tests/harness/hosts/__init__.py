"""Podman test hosts and the test doubles they install from signed local apt repositories (see harness)."""
