// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import Foundation

/// Every error a call can end with: `code` is one of README's error table (or the client's own).
public struct MyDevicesError: Error, Equatable {
    public enum Code: String, CaseIterable, Sendable {
        case invalidRequest = "invalid_request", unsupportedKey = "unsupported_key", privateKeySent = "private_key_sent"
        case unauthenticated, invalidToken = "invalid_token", tokenExpired = "token_expired"
        /// `session_revoked` with `reason` "closed_by_support": the app's support closed the session.
        case sessionRevoked = "session_revoked", tokenReused = "token_reused"
        case reauthenticationRequired = "reauthentication_required", unknownDevice = "unknown_device"
        case deviceProofFailed = "device_proof_failed", useDpopNonce = "use_dpop_nonce"
        case invalidDpopProof = "invalid_dpop_proof", deviceBindingRequired = "device_binding_required"
        case boundCookieRequired = "bound_cookie_required", invalidDbscProof = "invalid_dbsc_proof"
        case appCheckFailed = "app_check_failed"
        /// The session passed its idle timeout or maximum age (`reason` "idle" / "max_age"): sign in again.
        case sessionExpired = "session_expired"
        case forbidden, sessionTooNew = "session_too_new", crossSiteRequest = "cross_site_request"
        /// Re-verify with a fresh Firebase sign-in (`reauthenticate(idToken:)`), then retry; `maxAge` seconds.
        case recentSignInRequired = "recent_sign_in_required"
        case unsupportedUid = "unsupported_uid", dbscChallenge = "dbsc_challenge"
        case notFound = "not_found", methodNotAllowed = "method_not_allowed"
        case cannotRevokeCurrent = "cannot_revoke_current", deviceLimitReached = "device_limit_reached"
        case alreadyAnswered = "already_answered", sessionClosed = "session_closed"
        case payloadTooLarge = "payload_too_large", unsupportedMediaType = "unsupported_media_type"
        case rateLimited = "rate_limited", unavailable, contention
        case network, notSignedIn = "not_signed_in", other
    }

    public let status: Int
    public let code: Code
    /// The code as the server sent it (also for `.other`).
    public let rawCode: String
    public let message: String
    public let retryAfter: Int?
    public let allowedAt: String?
    public let reason: String?
    /// 403 recent_sign_in_required: how recent (seconds) the sign-in must be.
    public let maxAge: Int?

    public init(status: Int, rawCode: String, message: String, retryAfter: Int? = nil, allowedAt: String? = nil,
                reason: String? = nil, maxAge: Int? = nil) {
        self.status = status
        self.rawCode = rawCode
        self.code = Code(rawValue: rawCode) ?? .other
        self.message = message
        self.retryAfter = retryAfter
        self.allowedAt = allowedAt
        self.reason = reason
        self.maxAge = maxAge
    }

    static let notSignedIn = MyDevicesError(status: 401, rawCode: "not_signed_in", message: "Sign in first.")

    /// A 401 after which the session is over here (not App Check's, nor a nonce to sign again with).
    var endsSession: Bool { status == 401 && code != .appCheckFailed && code != .useDpopNonce }
}
