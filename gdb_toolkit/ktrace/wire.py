"""The worker's line encoding, kept free of heavy imports: the worker (a fresh interpreter at
every session's first ktrace) imports only this, json and the standard library it needs."""
import json

TYPES = ("armed", "event", "error", "end", "note", "bye", "flushed")


def encode(kind: str, **payload) -> str:
    if kind not in TYPES:
        raise ValueError(f"unknown message type {kind!r}")
    return json.dumps({"type": kind, **payload}, sort_keys=True)
