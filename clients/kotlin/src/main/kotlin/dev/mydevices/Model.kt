package dev.mydevices

/** What the app says about this device at login (README: `device`). */
data class DeviceInfo(
    val name: String,
    val platform: String = "android",
    val model: String? = null,
    val osVersion: String? = null,
    val appVersion: String? = null,
) {
    internal fun toJson(): Map<String, Any?> = buildMap {
        put("name", name)
        put("platform", platform)
        model?.let { put("model", it) }
        osVersion?.let { put("osVersion", it) }
        appVersion?.let { put("appVersion", it) }
    }
}

/** The app's FCM registration token. */
data class PushRegistration(val token: String, val provider: String = "fcm") {
    internal fun toJson(): Map<String, Any?> = mapOf("token" to token, "provider" to provider)
}

/** A row of the session list (README: DeviceSession, plus canClose in the list). */
data class DeviceSession(
    val sessionId: String,
    val deviceName: String?,
    val deviceType: String?,
    val model: String?,
    val osVersion: String?,
    val appVersion: String?,
    val location: String?,
    val lastActiveAt: String?,
    val createdAt: String?,
    val isCurrentDevice: Boolean,
    val deviceBound: Boolean,
    /** In the list only: whether this session may close that one now. */
    val canClose: Boolean?,
) {
    companion object {
        internal fun of(m: Map<String, Any?>) = DeviceSession(
            sessionId = m.str("sessionId") ?: throw Json.ParseException("a session without sessionId"),
            deviceName = m.str("deviceName"), deviceType = m.str("deviceType"), model = m.str("model"),
            osVersion = m.str("osVersion"), appVersion = m.str("appVersion"), location = m.str("location"),
            lastActiveAt = m.str("lastActiveAt"), createdAt = m.str("createdAt"),
            isCurrentDevice = m.bool("isCurrentDevice") ?: false, deviceBound = m.bool("deviceBound") ?: false,
            canClose = m.bool("canClose"),
        )
    }
}

/** GET /v1/sessions: current device first. `closeOthersAllowedAt`: when a fresh session may start closing others.
 *  `autoCloseAfterDays`: the user's auto-close choice (7, 30, 90 or 180 days without activity; null: off). */
data class SessionList(
    val sessions: List<DeviceSession>,
    val closeOthersAllowedAt: String?,
    val autoCloseAfterDays: Int? = null,
) {
    companion object {
        @Suppress("UNCHECKED_CAST")
        internal fun of(m: Map<String, Any?>) = SessionList(
            (m.list("sessions") ?: emptyList()).map { DeviceSession.of(it as Map<String, Any?>) },
            m.str("closeOthersAllowedAt"),
            m.long("autoCloseAfterDays")?.toInt(),
        )
    }
}

/** "Close my sessions after 1 week / 1 month / 3 months / 6 months without activity" ([MyDevicesClient.setAutoClose]). */
enum class AutoClose(val days: Int) {
    WEEK(7), MONTH(30), THREE_MONTHS(90), SIX_MONTHS(180);

    companion object {
        fun of(days: Int?): AutoClose? = entries.firstOrNull { it.days == days }
    }
}

/** PUT /v1/sessions/auto-close: the choice now in force, and how many idle sessions it closed at once. */
data class AutoCloseResult(val autoCloseAfterDays: Int?, val closed: Int)

/** GET /v1/account/export: everything My Devices keeps about the user, secret fields left out
 *  (`removedFields` names them). Each document is its Firestore path and its fields as JSON values. */
data class AccountExport(val uid: String, val exportedAt: String?, val documents: List<ExportedDocument>,
                         val removedFields: List<String>)

data class ExportedDocument(val path: String, val data: Map<String, Any?>)

data class LoginResult(val session: DeviceSession, val firebaseCustomToken: String?)

enum class AlertAnswer(val wire: String) { YES("yes"), NO("no") }

/** POST /v1/alerts/respond. After "no": what it closed, and `advice` "change_password" (offer it). */
data class AlertResponse(
    val answer: String,
    val sessionId: String?,
    val status: String?,
    val closedSessionIds: List<String>,
    val advice: String?,
) {
    companion object {
        internal fun of(m: Map<String, Any?>) = AlertResponse(
            m.str("answer") ?: "", m.str("sessionId"), m.str("status"),
            (m.list("closedSessionIds") ?: emptyList()).filterIsInstance<String>(), m.str("advice"),
        )
    }
}

/** Why this device is signed out: an API code (session_revoked, token_reused...), force_logout or logout. */
data class SignedOut(val reason: String, val error: MyDevicesException? = null)

/** Who closed a session, in the security activity: `kind` user, alert_answer, support, account, copied_token,
 *  expiry, same_device or logout (docs/activity.md); `text` is the server's words ("Closed by support: <note>"). */
data class ClosedBy(
    val kind: String?,
    val sessionId: String?,
    val deviceName: String?,
    val note: String?,
    val text: String,
) {
    companion object {
        internal fun of(m: Map<String, Any?>) = ClosedBy(
            m.str("kind"), m.str("sessionId"), m.str("deviceName"), m.str("note"), m.str("text") ?: "Closed",
        )
    }
}

/** One entry of the user's security activity (GET /v1/activity). `kind`: signed_in, closed, copied_token or
 *  alert_answered. Show [text] as plain text: the device names and notes in it are other people's words. */
data class ActivityEntry(
    val id: String,
    val kind: String,
    val at: String?,
    val sessionId: String?,
    val deviceName: String?,
    val platform: String?,
    val isCurrentDevice: Boolean,
    val text: String,
    val location: String? = null,
    val alerted: Boolean? = null,
    val reason: String? = null,
    val closedBy: ClosedBy? = null,
    val liveSessionId: String? = null,
    val answer: String? = null,
) {
    companion object {
        internal fun of(m: Map<String, Any?>) = ActivityEntry(
            id = m.str("id") ?: throw Json.ParseException("an activity entry without id"),
            kind = m.str("kind") ?: "", at = m.str("at"), sessionId = m.str("sessionId"),
            deviceName = m.str("deviceName"), platform = m.str("platform"),
            isCurrentDevice = m.bool("isCurrentDevice") ?: false, text = m.str("text") ?: "",
            location = m.str("location"), alerted = m.bool("alerted"), reason = m.str("reason"),
            closedBy = m.obj("closedBy")?.let(ClosedBy::of), liveSessionId = m.str("liveSessionId"),
            answer = m.str("answer"),
        )
    }
}

/** A page of the security activity, newest first; pass [nextCursor] back for the next (null: the last page). */
data class ActivityPage(val activity: List<ActivityEntry>, val nextCursor: String?) {
    companion object {
        @Suppress("UNCHECKED_CAST")
        internal fun of(m: Map<String, Any?>) = ActivityPage(
            (m.list("activity") ?: emptyList()).map { ActivityEntry.of(it as Map<String, Any?>) },
            m.str("nextCursor"),
        )
    }
}
