// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import Foundation

/// The same design as the Kotlin core (clients/kotlin): one refresh per expiry for every waiting call
/// (the actor keeps the refresh under way as a Task), DPoP proofs for a bound session, every 401 that
/// ends the session turned into one SignedOut after clearing what was stored (the device id stays).
public actor MyDevicesClient: SessionsAPI {
    public nonisolated let baseURL: String
    private let store: TokenStore
    private let deviceKey: DeviceKey?
    private let transport: HTTPTransport
    private let clock: @Sendable () -> Int
    private let refreshMargin: Int
    private var refreshing: Task<Void, Error>?
    private var listeners: [UUID: @Sendable (SignedOut) -> Void] = [:]
    private var loggingOut = false
    public private(set) var refreshCount = 0

    public init(baseURL: String, store: TokenStore = KeychainTokenStore(), deviceKey: DeviceKey? = nil,
                transport: HTTPTransport = URLSessionTransport(),
                clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }, refreshMargin: Int = 5) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.store = store
        self.deviceKey = deviceKey
        self.transport = transport
        self.clock = clock
        self.refreshMargin = refreshMargin
    }

    @discardableResult
    public func onSignedOut(_ listener: @escaping @Sendable (SignedOut) -> Void) -> UUID {
        let id = UUID()
        listeners[id] = listener
        return id
    }

    public func stored() -> StoredState {
        guard let data = store.load(), let state = try? JSONDecoder().decode(StoredState.self, from: data) else {
            return StoredState()
        }
        return state
    }

    private func update(_ change: (inout StoredState) -> Void) {
        var state = stored()
        change(&state)
        if let data = try? JSONEncoder().encode(state) { store.save(data) }
    }

    // MARK: HTTP

    private func send(_ method: String, _ path: String, body: [String: Any]? = nil, bearer: String? = nil,
                      dpop: Bool = false) async throws -> [String: Any] {
        let state = stored()
        var headers = ["Accept": "application/json"]
        if body != nil { headers["Content-Type"] = "application/json" }
        if let bearer { headers["Authorization"] = "Bearer \(bearer)" }
        if let device = state.deviceId { headers["X-Device-Id"] = device }
        if dpop, let key = deviceKey {
            headers["DPoP"] = try DPoP.proof(key: key, htm: method, htu: baseURL + path, iat: clock(), nonce: state.dpopNonce)
        }
        let request = HTTPRequest(method: method, url: URL(string: baseURL + path)!, headers: headers,
                                  body: try body.map { try JSONSerialization.data(withJSONObject: $0) })
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch {
            throw MyDevicesError(status: 0, rawCode: "network", message: "Can't reach the server. Check your connection.")
        }
        let fresh = response.headers["x-device-id"]
        let nonce = response.headers["dpop-nonce"]
        if fresh != nil || nonce != nil {
            update { state in
                state.deviceId = fresh ?? state.deviceId
                state.dpopNonce = nonce ?? state.dpopNonce
            }
        }
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        if (200..<300).contains(response.status) { return object }
        let error = object["error"] as? [String: Any] ?? [:]
        throw MyDevicesError(
            status: response.status, rawCode: error["code"] as? String ?? "http_\(response.status)",
            message: error["message"] as? String ?? "The server answered \(response.status).",
            retryAfter: response.headers["retry-after"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) },
            allowedAt: error["allowedAt"] as? String, reason: error["reason"] as? String,
            maxAge: (error["maxAge"] as? NSNumber)?.intValue)
    }

    private func call(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> [String: Any] {
        var state = stored()
        guard state.signedIn else { throw MyDevicesError.notSignedIn }
        if (state.accessTokenExpiresAt ?? 0) - refreshMargin <= clock() {
            try await renew(seen: state)
            state = stored()
        }
        do {
            return try await send(method, path, body: body, bearer: state.accessToken)
        } catch let error as MyDevicesError where error.code == .tokenExpired || error.code == .unauthenticated {
            try await renew(seen: state)
            do {
                return try await send(method, path, body: body, bearer: stored().accessToken)
            } catch let again as MyDevicesError {
                if again.endsSession { signOut(again.rawCode, again) }
                throw again
            }
        } catch let error as MyDevicesError {
            if error.endsSession { signOut(error.rawCode, error) }
            throw error
        }
    }

    /// One refresh for every caller that saw the same refresh token: a caller arriving while it runs
    /// waits for it; one arriving after it finds the token changed.
    private func renew(seen: StoredState) async throws {
        if let running = refreshing {
            try await running.value
            return
        }
        let now = stored()
        guard now.signedIn else { throw MyDevicesError.notSignedIn }
        guard now.refreshToken == seen.refreshToken else { return }
        let task = Task { try await self.refresh(now) }
        refreshing = task
        defer { refreshing = nil }
        try await task.value
    }

    private func refresh(_ state: StoredState) async throws {
        guard let token = state.refreshToken else {
            signOut("unauthenticated", nil)
            throw MyDevicesError(status: 401, rawCode: "unauthenticated", message: "No refresh token is stored.")
        }
        var lost = false
        var signedAgain = false
        while true {
            do {
                refreshCount += 1
                let issued = try await send("POST", "/v1/sessions/refresh", body: ["refreshToken": token],
                                            dpop: state.deviceBound == true)
                keep(issued)
                return
            } catch let error as MyDevicesError where error.code == .network && !lost {
                lost = true // the same token within the server's grace window gets the same answer
            } catch let error as MyDevicesError where error.code == .useDpopNonce && !signedAgain {
                signedAgain = true // send() kept the answer's DPoP-Nonce: sign again, at once
                _ = error
            } catch let error as MyDevicesError {
                if error.status == 401 { signOut(error.rawCode, error) }
                throw error
            }
        }
    }

    private func keep(_ issued: [String: Any]) {
        let session = issued["session"] as? [String: Any]
        update { state in
            state.sessionId = session?["sessionId"] as? String ?? state.sessionId
            state.deviceId = issued["deviceId"] as? String ?? state.deviceId
            state.accessToken = issued["accessToken"] as? String
            state.refreshToken = issued["refreshToken"] as? String
            state.accessTokenExpiresAt = (issued["accessTokenExpiresAt"] as? NSNumber)?.intValue
            state.deviceBound = session?["deviceBound"] as? Bool ?? state.deviceBound
        }
    }

    private func signOut(_ reason: String, _ error: MyDevicesError?, fromLogout: Bool = false) {
        let wasSignedIn = stored().signedIn
        update { state in state = StoredState(deviceId: state.deviceId) }
        if loggingOut && !fromLogout { return }
        if !wasSignedIn && !fromLogout { return }
        for listener in listeners.values { listener(SignedOut(reason: reason, error: error)) }
    }

    // MARK: the API

    /// Log in with a Firebase ID token, bound to the device key when there is one. `.reauthenticationRequired`:
    /// sign out of Firebase and ask for the password again.
    @discardableResult
    public func login(idToken: String, device: DeviceInfo, pushToken: String? = nil) async throws -> DeviceSession {
        var body: [String: Any] = ["device": device.json]
        if let pushToken { body["push"] = ["token": pushToken, "provider": "fcm"] }
        if let deviceKey { body["devicePublicKey"] = DPoP.jwk(deviceKey.publicKey) }
        let issued = try await send("POST", "/v1/sessions", body: body, bearer: idToken)
        update { state in state = StoredState(deviceId: state.deviceId, dpopNonce: state.dpopNonce) }
        keep(issued)
        return DeviceSession(issued["session"] as? [String: Any] ?? [:])
    }

    public func current() async throws -> DeviceSession { DeviceSession(try await call("GET", "/v1/sessions/current")) }

    public func listSessions() async throws -> SessionList { SessionList(try await call("GET", "/v1/sessions")) }

    public func closeSession(_ sessionId: String) async throws {
        let escaped = sessionId.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? sessionId
        _ = try await call("DELETE", "/v1/sessions/\(escaped)")
    }

    public func revokeOthers() async throws -> Int {
        (try await call("POST", "/v1/sessions/revoke-others")["revoked"] as? NSNumber)?.intValue ?? 0
    }

    /// Step-up: renew when this session's user last proved who they are, with the ID token of a new
    /// Firebase sign-in (`reauthenticate(with:)`, then `getIDTokenForcingRefresh(true)`). Opens no session.
    @discardableResult
    public func reauthenticate(idToken: String) async throws -> String? {
        try await call("POST", "/v1/sessions/current/reauthenticate", body: ["idToken": idToken])["authTime"] as? String
    }

    /// Run `action`; on 403 recent_sign_in_required ask `freshIdToken` (given `maxAge`) for a new Firebase
    /// sign-in's ID token, re-verify with it, and run `action` once more.
    public func withRecentSignIn<T>(_ action: () async throws -> T,
                                    freshIdToken: (Int?) async throws -> String) async throws -> T {
        do {
            return try await action()
        } catch let error as MyDevicesError where error.code == .recentSignInRequired {
            try await reauthenticate(idToken: try await freshIdToken(error.maxAge))
            return try await action()
        }
    }

    /// The user's auto-close choice for all their sessions, at once (nil: off). Widening it may answer
    /// 403 recent_sign_in_required.
    public func setAutoClose(_ afterDays: AutoClose?) async throws -> AutoCloseResult {
        let answer = try await call("PUT", "/v1/sessions/auto-close",
                                    body: ["afterDays": afterDays.map { $0.rawValue as Any } ?? NSNull()])
        return AutoCloseResult(autoCloseAfterDays: (answer["autoCloseAfterDays"] as? NSNumber)?.intValue,
                               closed: (answer["closed"] as? NSNumber)?.intValue ?? 0)
    }

    /// The user's copy of everything My Devices keeps about them (a data-access request). Needs a recent
    /// sign-in: wrap it in `withRecentSignIn` to re-verify on 403 recent_sign_in_required.
    public func exportAccount() async throws -> AccountExport {
        let answer = try await call("GET", "/v1/account/export")
        let documents = (answer["documents"] as? [[String: Any]] ?? []).map {
            ExportedDocument(path: $0["path"] as? String ?? "", data: $0["data"] as? [String: Any] ?? [:])
        }
        return AccountExport(uid: answer["uid"] as? String ?? "", exportedAt: answer["exportedAt"] as? String,
                             documents: documents, removedFields: answer["removedFields"] as? [String] ?? [])
    }

    public func updatePushToken(_ token: String) async throws {
        _ = try await call("PUT", "/v1/sessions/current/push-token", body: ["token": token, "provider": "fcm"])
    }

    /// The user's security activity of the last 30 days, newest first (`limit` 1-100 a page); pass the page's
    /// `nextCursor` as `cursor` for the next one (docs/activity.md). The cursor is percent-encoded as the
    /// JS and Kotlin clients encode it (everything but letters, digits and `-._~`).
    public func listActivity(limit: Int = 20, cursor: String? = nil) async throws -> ActivityPage {
        var query = "?limit=\(limit)"
        if let cursor {
            let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
            query += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: unreserved) ?? cursor)
        }
        return ActivityPage(try await call("GET", "/v1/activity\(query)"))
    }

    public func respond(toAlert actionToken: String, answer: AlertAnswer) async throws -> AlertResponse {
        let m = try await send("POST", "/v1/alerts/respond", body: ["actionToken": actionToken, "answer": answer.rawValue])
        return AlertResponse(answer: m["answer"] as? String ?? "", status: m["status"] as? String,
                             closedSessionIds: m["closedSessionIds"] as? [String] ?? [], advice: m["advice"] as? String)
    }

    public func logout() async throws {
        loggingOut = true
        defer {
            loggingOut = false
            signOut("logout", nil, fromLogout: true)
        }
        do {
            _ = try await call("POST", "/v1/sessions/logout")
        } catch let error as MyDevicesError where error.status == 401 {
            return
        }
    }

    /// `.forceLogout` only when it names this session (cleared, SignedOut "force_logout" sent first);
    /// `.newLoginAlert` when it is for this session; nil otherwise.
    public func handlePush(_ userInfo: [AnyHashable: Any]) -> PushEvent? {
        guard let event = PushEvent.parse(userInfo), let current = stored().sessionId else { return nil }
        switch event {
        case .forceLogout(let sessionId, _):
            guard sessionId == current else { return nil }
            signOut("force_logout", nil)
            return event
        case .newLoginAlert(let alert):
            return alert.sessionId == nil || alert.sessionId == current ? event : nil
        }
    }
}
