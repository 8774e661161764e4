"""Test harness shared by every domain's tests (see docs/testing.md)."""
