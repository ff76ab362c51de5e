package dev.mydevices

/** What an error answer said: `{"error": {"code", "message", ...}}` with its status and Retry-After. */
class ErrorAnswer(
    val status: Int,
    val code: String,
    val message: String,
    val retryAfter: Long? = null,
    val details: Map<String, Any?> = emptyMap(),
)

/**
 * Every error a call can end with: one subclass per code of README's error table (the class name is
 * the code in CamelCase), plus [Network], [NotSignedIn] and [Other] (a code this version does not know).
 * `when (e) { is SessionTooNew -> e.allowedAt ... }` is exhaustive over the sealed type.
 */
sealed class MyDevicesException(answer: ErrorAnswer) : Exception(answer.message) {
    val status: Int = answer.status
    val code: String = answer.code
    /** Seconds to wait (429, 503), from Retry-After. */
    val retryAfter: Long? = answer.retryAfter
    /** The error object's other fields. */
    val details: Map<String, Any?> = answer.details
    /** 403 session_too_new: when this session may close others (ISO 8601). */
    val allowedAt: String? get() = details.str("allowedAt")
    /** session_revoked: account_disabled, account_deleted, credentials_revoked, closed_by_support (the app's
     *  support closed it); invalid_dpop_proof: stale...;
     *  session_expired: idle or max_age. */
    val reason: String? get() = details.str("reason")
    /** 403 recent_sign_in_required: how recent (seconds) the sign-in must be. */
    val maxAge: Long? get() = (details["maxAge"] as? Number)?.toLong()

    // 400
    class InvalidRequest(a: ErrorAnswer) : MyDevicesException(a)
    class UnsupportedKey(a: ErrorAnswer) : MyDevicesException(a)
    class PrivateKeySent(a: ErrorAnswer) : MyDevicesException(a)
    // 401
    class Unauthenticated(a: ErrorAnswer) : MyDevicesException(a)
    class InvalidToken(a: ErrorAnswer) : MyDevicesException(a)
    class TokenExpired(a: ErrorAnswer) : MyDevicesException(a)
    class SessionRevoked(a: ErrorAnswer) : MyDevicesException(a)
    class TokenReused(a: ErrorAnswer) : MyDevicesException(a)
    /** Login after a closure: sign out of Firebase and ask for the password (a fresh sign-in). */
    class ReauthenticationRequired(a: ErrorAnswer) : MyDevicesException(a)
    class UnknownDevice(a: ErrorAnswer) : MyDevicesException(a)
    class DeviceProofFailed(a: ErrorAnswer) : MyDevicesException(a)
    class UseDpopNonce(a: ErrorAnswer) : MyDevicesException(a)
    class InvalidDpopProof(a: ErrorAnswer) : MyDevicesException(a)
    class DeviceBindingRequired(a: ErrorAnswer) : MyDevicesException(a)
    class BoundCookieRequired(a: ErrorAnswer) : MyDevicesException(a)
    class InvalidDbscProof(a: ErrorAnswer) : MyDevicesException(a)
    class AppCheckFailed(a: ErrorAnswer) : MyDevicesException(a)
    /** The session passed its idle timeout or maximum age ([reason] `idle` / `max_age`): sign in again. */
    class SessionExpired(a: ErrorAnswer) : MyDevicesException(a)
    // 403
    /** Not this caller's to do (re-verification with another user's ID token). */
    class Forbidden(a: ErrorAnswer) : MyDevicesException(a)
    class SessionTooNew(a: ErrorAnswer) : MyDevicesException(a)
    /** Re-verify with a fresh Firebase sign-in ([MyDevicesClient.reauthenticate]) and retry; [maxAge] seconds. */
    class RecentSignInRequired(a: ErrorAnswer) : MyDevicesException(a)
    class CrossSiteRequest(a: ErrorAnswer) : MyDevicesException(a)
    class UnsupportedUid(a: ErrorAnswer) : MyDevicesException(a)
    class DbscChallenge(a: ErrorAnswer) : MyDevicesException(a)
    // 404, 405
    class NotFound(a: ErrorAnswer) : MyDevicesException(a)
    class MethodNotAllowed(a: ErrorAnswer) : MyDevicesException(a)
    // 409
    class CannotRevokeCurrent(a: ErrorAnswer) : MyDevicesException(a)
    class DeviceLimitReached(a: ErrorAnswer) : MyDevicesException(a)
    class AlreadyAnswered(a: ErrorAnswer) : MyDevicesException(a)
    class SessionClosed(a: ErrorAnswer) : MyDevicesException(a)
    // 413, 415, 429, 503
    class PayloadTooLarge(a: ErrorAnswer) : MyDevicesException(a)
    class UnsupportedMediaType(a: ErrorAnswer) : MyDevicesException(a)
    class RateLimited(a: ErrorAnswer) : MyDevicesException(a)
    class Unavailable(a: ErrorAnswer) : MyDevicesException(a)
    class Contention(a: ErrorAnswer) : MyDevicesException(a)
    // the client's own
    /** The server could not be reached, or its answer was lost (status 0). */
    class Network(a: ErrorAnswer, override val cause: Throwable? = null) : MyDevicesException(a)
    /** A call that needs a session, made with none stored. */
    class NotSignedIn(a: ErrorAnswer) : MyDevicesException(a)
    /** A code this version does not know (a newer server, a proxy's 502). */
    class Other(a: ErrorAnswer) : MyDevicesException(a)

    companion object {
        fun of(a: ErrorAnswer): MyDevicesException = when (a.code) {
            "invalid_request" -> InvalidRequest(a)
            "unsupported_key" -> UnsupportedKey(a)
            "private_key_sent" -> PrivateKeySent(a)
            "unauthenticated" -> Unauthenticated(a)
            "invalid_token" -> InvalidToken(a)
            "token_expired" -> TokenExpired(a)
            "session_revoked" -> SessionRevoked(a)
            "token_reused" -> TokenReused(a)
            "reauthentication_required" -> ReauthenticationRequired(a)
            "unknown_device" -> UnknownDevice(a)
            "device_proof_failed" -> DeviceProofFailed(a)
            "use_dpop_nonce" -> UseDpopNonce(a)
            "invalid_dpop_proof" -> InvalidDpopProof(a)
            "device_binding_required" -> DeviceBindingRequired(a)
            "bound_cookie_required" -> BoundCookieRequired(a)
            "invalid_dbsc_proof" -> InvalidDbscProof(a)
            "app_check_failed" -> AppCheckFailed(a)
            "session_expired" -> SessionExpired(a)
            "forbidden" -> Forbidden(a)
            "session_too_new" -> SessionTooNew(a)
            "recent_sign_in_required" -> RecentSignInRequired(a)
            "cross_site_request" -> CrossSiteRequest(a)
            "unsupported_uid" -> UnsupportedUid(a)
            "dbsc_challenge" -> DbscChallenge(a)
            "not_found" -> NotFound(a)
            "method_not_allowed" -> MethodNotAllowed(a)
            "cannot_revoke_current" -> CannotRevokeCurrent(a)
            "device_limit_reached" -> DeviceLimitReached(a)
            "already_answered" -> AlreadyAnswered(a)
            "session_closed" -> SessionClosed(a)
            "payload_too_large" -> PayloadTooLarge(a)
            "unsupported_media_type" -> UnsupportedMediaType(a)
            "rate_limited" -> RateLimited(a)
            "unavailable" -> Unavailable(a)
            "contention" -> Contention(a)
            "network" -> Network(a)
            "not_signed_in" -> NotSignedIn(a)
            else -> Other(a)
        }

        internal fun notSignedIn() = NotSignedIn(ErrorAnswer(401, "not_signed_in", "Sign in first."))
    }
}
