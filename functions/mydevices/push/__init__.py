"""The push fan-out: from a change of a session document to the pushes a user's devices get.

One way through, a module a step:

1. `events`: the Firestore trigger classifies a change (a login that is news, a session closed)
   into at most one event and publishes it on the session-events topic, ordered per user;
2. `outbox`: an event Pub/Sub did not take waits there until a later trigger run publishes it;
3. `fanout`: the Pub/Sub function decides who gets which message (`force_logout` to the closed
   device, "Was that you?" to the others) with the words of `alert_copy`;
4. `fcm`: sends them and sorts each failure (dead token, retry, give up);
5. `claims`: one document per event id, so at-least-once delivery has each effect once.
"""
