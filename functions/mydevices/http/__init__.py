"""The HTTP edge: everything that knows about HTTP, and nothing that decides about sessions.

A request flows one way. `routing.dispatch` finds the route and builds an `ApiRequest`
(`request.py`: the device id verified once, cookies, tokens, the DBSC headers and the DPoP input as
plain values); `cors.py` answers preflights and refuses cross-site cookie requests; the route (in
`functions/main.py`) calls one flow with plain values and returns an `ApiResponse`, which
`render.py` writes, with the one wire table that gives every `Code` its HTTP status and its
callable status. `callables.py` is the Firebase callable protocol and `require_session.py` the
decorator for an app's own functions, on the same pieces.
"""
