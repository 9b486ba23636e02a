"""The booking backend: the service layer every channel books through.

Rule: every rule about slots, identities, quotas and suspensions lives in this package.
Channels and the engine reach it only through `service` functions (or the engine's
Backend port), never through the models directly.
"""
