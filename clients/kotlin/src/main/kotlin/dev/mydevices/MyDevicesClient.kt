package dev.mydevices

import java.io.IOException
import java.net.URLEncoder
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/**
 * The My Devices client for one app install (README "HTTP API"): login with a Firebase ID token,
 * tokens attached to every call, one refresh per expiry however many coroutines wait, DPoP proofs for a
 * device-bound session, every 401 that ends the session turned into one [SignedOut] after clearing what
 * was stored (the device id stays), push data turned into typed events.
 *
 * @param deviceKey the device's key: sessions are bound to it (the default the README recommends);
 *   null logs in unbound.
 * @param clock Unix seconds (token expiry and DPoP `iat`); tests move it.
 * @param refreshMarginSeconds refresh this long before the access token expires rather than after a 401.
 */
class MyDevicesClient(
    baseUrl: String,
    private val store: TokenStore = MemoryTokenStore(),
    private val deviceKey: DeviceKey? = null,
    private val transport: HttpTransport = UrlConnectionTransport(),
    private val clock: () -> Long = { System.currentTimeMillis() / 1000 },
    private val refreshMarginSeconds: Long = 5,
) : SessionsApi {
    val baseUrl: String = baseUrl.trimEnd('/')
    private val refreshLock = Mutex()
    private val stateLock = Any()
    private val listeners = CopyOnWriteArrayList<(SignedOut) -> Unit>()
    @Volatile private var loggingOut = false

    /** Calls [listener] once per sign-out, after what was stored is cleared. Returns the unsubscribe. */
    fun onSignedOut(listener: (SignedOut) -> Unit): () -> Unit {
        listeners.add(listener)
        return { listeners.remove(listener) }
    }

    /** What is stored (never null: signed out is a state without a session id). */
    fun stored(): StoredState = synchronized(stateLock) { StoredState.fromJson(store.load()) }

    private fun update(change: (StoredState) -> StoredState): StoredState = synchronized(stateLock) {
        change(StoredState.fromJson(store.load())).also { store.save(it.toJson()) }
    }

    // --- HTTP ------------------------------------------------------------------------------------

    private suspend fun send(
        method: String,
        path: String,
        body: Map<String, Any?>? = null,
        bearer: String? = null,
        dpop: Boolean = false,
    ): Map<String, Any?> {
        val state = stored()
        val headers = linkedMapOf("Accept" to "application/json")
        if (body != null) headers["Content-Type"] = "application/json"
        if (bearer != null) headers["Authorization"] = "Bearer $bearer"
        state.deviceId?.let { headers["X-Device-Id"] = it }
        if (dpop) {
            val key = deviceKey ?: throw IllegalStateException("a device-bound session needs the DeviceKey it was bound with")
            headers["DPoP"] = Dpop.proof(key, method, baseUrl + path, clock(), state.dpopNonce)
        }
        val response = try {
            transport.send(HttpRequest(method, baseUrl + path, headers, body?.let(Json::stringify)))
        } catch (e: IOException) {
            throw MyDevicesException.Network(ErrorAnswer(0, "network", "Can't reach the server. Check your connection."), e)
        }
        val freshDevice = response.header("X-Device-Id")
        val nonce = response.header("DPoP-Nonce")
        if ((freshDevice != null && freshDevice != state.deviceId) || (nonce != null && nonce != state.dpopNonce)) {
            update { it.copy(deviceId = freshDevice ?: it.deviceId, dpopNonce = nonce ?: it.dpopNonce) }
        }
        val parsed = try { Json.parse(response.body) } catch (e: Json.ParseException) { null }
        @Suppress("UNCHECKED_CAST")
        val obj = parsed as? Map<String, Any?> ?: emptyMap()
        if (response.status in 200..299) return obj
        val error = obj.obj("error") ?: emptyMap()
        throw MyDevicesException.of(ErrorAnswer(
            status = response.status,
            code = error.str("code") ?: "http_${response.status}",
            message = error.str("message") ?: "The server answered ${response.status}.",
            retryAfter = response.header("Retry-After")?.trim()?.toLongOrNull(),
            details = error - "code" - "message",
        ))
    }

    /** A 401 after which this session is over here. Not app_check_failed (App Check judged the app,
     *  not the session) nor use_dpop_nonce (answered by signing again). */
    private fun endsSession(e: MyDevicesException) =
        e.status == 401 && e !is MyDevicesException.AppCheckFailed && e !is MyDevicesException.UseDpopNonce

    /** A call with our credentials: refreshed first when the token is about to expire, refreshed and
     *  sent once more after a 401 a refresh cures, and signed out after a 401 that ends the session. */
    private suspend fun call(method: String, path: String, body: Map<String, Any?>? = null): Map<String, Any?> {
        var state = stored()
        if (!state.signedIn) throw MyDevicesException.notSignedIn()
        if ((state.accessTokenExpiresAt ?: 0) - refreshMarginSeconds <= clock()) {
            renew(state)
            state = stored()
        }
        try {
            return send(method, path, body, bearer = state.accessToken)
        } catch (e: MyDevicesException) {
            if (e is MyDevicesException.TokenExpired || e is MyDevicesException.Unauthenticated) {
                renew(state)
                try {
                    return send(method, path, body, bearer = stored().accessToken)
                } catch (again: MyDevicesException) {
                    if (endsSession(again)) signOut(again.code, again)
                    throw again
                }
            }
            if (endsSession(e)) signOut(e.code, e)
            throw e
        }
    }

    /** One refresh for every caller that saw the token in [seen]: the first one through the lock
     *  refreshes, the others find the refresh token changed and go on with the new access token. */
    private suspend fun renew(seen: StoredState) = refreshLock.withLock {
        val now = stored()
        if (!now.signedIn) throw MyDevicesException.notSignedIn()
        if (now.refreshToken == seen.refreshToken) refresh(now)
    }

    /** Counts refreshes sent (tests, metrics). */
    @Volatile var refreshCount: Int = 0
        private set

    private suspend fun refresh(state: StoredState) {
        val token = state.refreshToken
        if (token == null) {
            signOut("unauthenticated", null)
            throw MyDevicesException.of(ErrorAnswer(401, "unauthenticated", "No refresh token is stored."))
        }
        var lost = false
        var signedAgain = false
        while (true) {
            try {
                refreshCount++
                val issued = send("POST", "/v1/sessions/refresh", mapOf("refreshToken" to token), dpop = state.deviceBound)
                keep(issued)
                return
            } catch (e: MyDevicesException.Network) {
                // The answer may be lost after the server rotated: the same token within the grace window
                // gets the same answer (README "Refresh token"). Once.
                if (lost) throw e
                lost = true
            } catch (e: MyDevicesException.UseDpopNonce) {
                // The answer carried a fresh DPoP-Nonce (send() stored it): sign again, at once, once.
                if (signedAgain) { signOut(e.code, e); throw e }
                signedAgain = true
            } catch (e: MyDevicesException) {
                if (e.status == 401) signOut(e.code, e)
                throw e
            }
        }
    }

    private fun keep(issued: Map<String, Any?>) {
        val session = issued.obj("session")
        update {
            it.copy(
                sessionId = session?.str("sessionId") ?: it.sessionId,
                deviceId = issued.str("deviceId") ?: it.deviceId,
                accessToken = issued.str("accessToken"),
                refreshToken = issued.str("refreshToken"),
                accessTokenExpiresAt = issued.long("accessTokenExpiresAt"),
                deviceBound = session?.bool("deviceBound") ?: it.deviceBound,
            )
        }
    }

    private fun signOut(reason: String, error: MyDevicesException?, fromLogout: Boolean = false) {
        var wasSignedIn = false
        update { wasSignedIn = it.signedIn; StoredState(deviceId = it.deviceId) }
        if (loggingOut && !fromLogout) return // logout() tells the app once, as "logout"
        if (!wasSignedIn && !fromLogout) return
        val event = SignedOut(reason, error)
        for (listener in listeners) listener(event)
    }

    // --- the API ---------------------------------------------------------------------------------

    /** Log in on this device with a Firebase ID token; bound to [deviceKey] when there is one. A second
     *  login on the same device replaces its session. 401 reauthentication_required: sign out of
     *  Firebase and ask for the password again. */
    suspend fun login(
        idToken: String,
        device: DeviceInfo,
        push: PushRegistration? = null,
        firebaseCustomToken: Boolean? = null,
    ): LoginResult {
        require(idToken.isNotEmpty()) { "login needs a Firebase ID token" }
        val body = linkedMapOf<String, Any?>("device" to device.toJson())
        push?.let { body["push"] = it.toJson() }
        firebaseCustomToken?.let { body["firebaseCustomToken"] = it }
        deviceKey?.let { body["devicePublicKey"] = Dpop.jwk(it.publicKey) }
        val issued = send("POST", "/v1/sessions", body, bearer = idToken)
        update { StoredState(deviceId = it.deviceId, dpopNonce = it.dpopNonce) }
        keep(issued)
        val session = DeviceSession.of(issued.obj("session") ?: emptyMap())
        return LoginResult(session, issued.str("firebaseCustomToken"))
    }

    suspend fun current(): DeviceSession = DeviceSession.of(call("GET", "/v1/sessions/current"))

    override suspend fun listSessions(): SessionList = SessionList.of(call("GET", "/v1/sessions"))

    override suspend fun closeSession(sessionId: String) {
        call("DELETE", "/v1/sessions/" + URLEncoder.encode(sessionId, "UTF-8"))
    }

    override suspend fun revokeOthers(): Int = (call("POST", "/v1/sessions/revoke-others").long("revoked") ?: 0).toInt()

    /** Step-up: renew when this session's user last proved who they are, with the ID token of a new
     *  Firebase sign-in (`reauthenticate(credential)`, then `getIdToken(true)`); opens no session and moves
     *  no deadline. Returns the session's `authTime` (ISO 8601). */
    suspend fun reauthenticate(idToken: String): String? {
        require(idToken.isNotEmpty()) { "reauthenticate needs a Firebase ID token" }
        return call("POST", "/v1/sessions/current/reauthenticate", mapOf("idToken" to idToken)).str("authTime")
    }

    /** Run [action]; on 403 recent_sign_in_required ask [freshIdToken] (given `maxAge`, seconds) for a new
     *  Firebase sign-in's ID token, [reauthenticate] with it, and run [action] once more. */
    suspend fun <T> withRecentSignIn(action: suspend () -> T, freshIdToken: suspend (maxAge: Long?) -> String): T =
        try {
            action()
        } catch (e: MyDevicesException.RecentSignInRequired) {
            reauthenticate(freshIdToken(e.maxAge))
            action()
        }

    /** The user's auto-close choice for all their sessions, at once (null: off). Widening it may answer
     *  403 recent_sign_in_required; a session too new to close others gets session_too_new. */
    suspend fun setAutoClose(afterDays: AutoClose?): AutoCloseResult {
        val answer = call("PUT", "/v1/sessions/auto-close", mapOf("afterDays" to afterDays?.days?.toLong()))
        return AutoCloseResult(answer.long("autoCloseAfterDays")?.toInt(), (answer.long("closed") ?: 0).toInt())
    }

    /** The user's copy of everything My Devices keeps about them (a data-access request). Needs a recent
     *  sign-in: wrap it in [withRecentSignIn] to re-verify on 403 recent_sign_in_required. */
    suspend fun exportAccount(): AccountExport {
        val answer = call("GET", "/v1/account/export")
        val documents = (answer["documents"] as? List<*>).orEmpty().filterIsInstance<Map<*, *>>().map { doc ->
            val fields = (doc["data"] as? Map<*, *>).orEmpty().entries.associate { (k, v) -> k.toString() to v }
            ExportedDocument(doc["path"].toString(), fields)
        }
        return AccountExport(answer.str("uid") ?: "", answer.str("exportedAt"), documents,
                             (answer["removedFields"] as? List<*>).orEmpty().filterIsInstance<String>())
    }

    suspend fun updatePushToken(token: String, provider: String = "fcm") {
        call("PUT", "/v1/sessions/current/push-token", PushRegistration(token, provider).toJson())
    }

    /** The user's security activity of the last 30 days, newest first ([limit] 1-100 a page); pass the page's
     *  `nextCursor` as [cursor] for the next one (docs/activity.md). */
    suspend fun listActivity(limit: Int = 20, cursor: String? = null): ActivityPage {
        val query = buildString {
            append("?limit=").append(limit)
            cursor?.let { append("&cursor=").append(URLEncoder.encode(it, "UTF-8")) }
        }
        return ActivityPage.of(call("GET", "/v1/activity$query"))
    }

    /** Answer a "Was that you?" alert with its action token. NO closes the new session and whatever its
     *  device opened since; offer to change the password after it (`advice`). */
    suspend fun respondToAlert(actionToken: String, answer: AlertAnswer): AlertResponse =
        AlertResponse.of(send("POST", "/v1/alerts/respond", mapOf("actionToken" to actionToken, "answer" to answer.wire)))

    /** End this session; what was stored is cleared whatever the server says, and the app told once. */
    suspend fun logout() {
        loggingOut = true
        try {
            call("POST", "/v1/sessions/logout")
        } catch (e: MyDevicesException) {
            if (e.status != 401) throw e
        } finally {
            loggingOut = false
            signOut("logout", null, fromLogout = true)
        }
    }

    /**
     * A push's data: [PushEvent.ForceLogout] only when it names this device's session (what was stored
     * is cleared and [SignedOut] "force_logout" sent first); [PushEvent.NewLoginAlert] when it is for
     * this session. Null for anything else (not ours, or about an older session of this device).
     */
    fun handlePush(data: Map<String, String>): PushEvent? {
        val event = PushEvent.parse(data) ?: return null
        val current = stored().sessionId ?: return null
        return when (event) {
            is PushEvent.ForceLogout -> if (event.sessionId == current) event.also { signOut("force_logout", null) } else null
            is PushEvent.NewLoginAlert -> if (event.sessionId == null || event.sessionId == current) event else null
        }
    }
}

/** What the sessions screen needs (the client, or a fake in tests). */
interface SessionsApi {
    suspend fun listSessions(): SessionList
    suspend fun closeSession(sessionId: String)
    suspend fun revokeOthers(): Int
}
