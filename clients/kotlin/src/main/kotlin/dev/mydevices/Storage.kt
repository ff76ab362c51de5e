package dev.mydevices

/**
 * Where the client keeps its state: one small JSON document (the tokens, the device id, the session
 * id, the last DPoP nonce). The refresh token is a credential: on Android keep it encrypted with a
 * Keystore key (clients/kotlin/android/KeystoreTokenStore.kt), on the JVM wherever the app keeps secrets.
 * Calls may come from any thread; the client serialises its own writes.
 */
interface TokenStore {
    fun load(): String?
    fun save(value: String)
}

/** In memory only (tests, short-lived programs). */
class MemoryTokenStore(private var value: String? = null) : TokenStore {
    @Synchronized override fun load(): String? = value
    @Synchronized override fun save(value: String) { this.value = value }
}

/** The stored state. Signed out = no sessionId; the deviceId stays (it names this device: a re-login replaces its session). */
data class StoredState(
    val deviceId: String? = null,
    val sessionId: String? = null,
    val accessToken: String? = null,
    val refreshToken: String? = null,
    val accessTokenExpiresAt: Long? = null,
    val deviceBound: Boolean = false,
    val dpopNonce: String? = null,
) {
    val signedIn: Boolean get() = sessionId != null

    fun toJson(): String = Json.stringify(buildMap {
        deviceId?.let { put("deviceId", it) }
        sessionId?.let { put("sessionId", it) }
        accessToken?.let { put("accessToken", it) }
        refreshToken?.let { put("refreshToken", it) }
        accessTokenExpiresAt?.let { put("accessTokenExpiresAt", it) }
        if (deviceBound) put("deviceBound", true)
        dpopNonce?.let { put("dpopNonce", it) }
    })

    companion object {
        fun fromJson(text: String?): StoredState {
            val m = try { text?.let { Json.parseObject(it) } } catch (e: Json.ParseException) { null } ?: return StoredState()
            return StoredState(m.str("deviceId"), m.str("sessionId"), m.str("accessToken"), m.str("refreshToken"),
                m.long("accessTokenExpiresAt"), m.bool("deviceBound") ?: false, m.str("dpopNonce"))
        }
    }
}
