"""The conversation engine: decides what to say next, and nothing else.

Rule: modules under engine/ import only the standard library and each other. No web
framework, database, provider SDK, Babel, clock or I/O; time and the backend arrive as
arguments. The public face, handle(state, inbound, backend, now), lives here once written.
"""
