"""The user's security activity: the last 30 days of sign-ins, closures (and by whom), copied-token
incidents and alert answers, as the user reads them (GET /v1/activity, the page's "Recent security
activity", the client libraries) from `users/{uid}/activity`.

Recorded off the request path by the app events' relay (record.py), read by flows/activity.py,
put into words by words.py. docs/activity.md says what an app gets and what it must do."""
