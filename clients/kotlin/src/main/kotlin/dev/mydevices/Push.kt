package dev.mydevices

import java.security.MessageDigest

/** What a push's data (Android RemoteMessage.data, iOS userInfo) means (docs/push-messages.md). */
sealed class PushEvent {
    /** This device's session was closed from elsewhere: the client has already cleared what it stored. */
    data class ForceLogout(val sessionId: String, val reason: String) : PushEvent()

    /** "Was that you?": show [notification]; answer with [MyDevicesClient.respondToAlert]. */
    data class NewLoginAlert(
        val sessionId: String?,
        val newSessionId: String,
        val actionToken: String,
        val title: String,
        val text: String,
        val locKey: String?,
        val locArgs: List<String>,
        val deviceName: String?,
        val location: String?,
        /** Unix seconds: the action token's expiry (drop the notification then). */
        val expiresAt: Long?,
    ) : PushEvent() {
        val notification: AlertNotification get() = AlertNotification.of(this)
    }

    companion object {
        /** The typed event in a push's data, or null when it is not one of ours (or cannot be acted on). */
        fun parse(data: Map<String, String>): PushEvent? {
            val action = data["action"]
            if (action == "force_logout") {
                val sid = data["sessionId"]?.takeIf { it.isNotEmpty() } ?: return null
                return ForceLogout(sid, data["reason"] ?: "unknown")
            }
            if (action != "new_login_alert") return null
            val token = data["actionToken"]?.takeIf { it.isNotEmpty() } ?: return null
            val newSid = data["newSessionId"]?.takeIf { it.isNotEmpty() } ?: return null
            val args = try {
                (Json.parse(data["body_loc_args"] ?: "[]") as? List<*>)?.takeIf { l -> l.all { it is String } }
            } catch (e: Json.ParseException) { null }
            val expires = data["expiresAt"]?.takeIf { it.isNotEmpty() && it.all(Char::isDigit) }?.toLongOrNull()
            return NewLoginAlert(
                sessionId = data["sessionId"]?.takeIf { it.isNotEmpty() }, newSessionId = newSid, actionToken = token,
                title = data["title"] ?: "New sign-in", text = data["body"] ?: "", locKey = data["body_loc_key"],
                locArgs = args?.map { it as String } ?: emptyList(),
                deviceName = data["deviceName"]?.takeIf { it.isNotEmpty() },
                location = data["location"]?.takeIf { it.isNotEmpty() },
                expiresAt = expires?.takeIf { it > 0 },
            )
        }
    }
}

/** One answer button of the alert. `uri` makes each alert's intents distinct (Android compares intents by it). */
data class AlertAction(
    val answer: AlertAnswer,
    val identifier: String,
    val titleKey: String,
    val title: String,
    val destructive: Boolean,
    val authenticationRequired: Boolean,
    val uri: String,
)

/**
 * The notification an alert should produce, decided here so that the Android glue only draws it:
 * localization keys with the English fallback, both answers, the expiry, and an id unique per alert
 * (the first four bytes of SHA-256 of newSessionId; `tag` is the APNs collapse id).
 */
data class AlertNotification(
    val tag: String,
    val id: Int,
    val channelId: String,
    val category: String,
    val title: String,
    val titleLocKey: String,
    val body: String,
    val bodyLocKey: String?,
    val bodyLocArgs: List<String>,
    val expiresAt: Long?,
    val actions: List<AlertAction>,
) {
    /** Milliseconds until the alert can no longer be answered (Android's setTimeoutAfter), or null. */
    fun timeoutAfterMillis(nowMillis: Long): Long? = expiresAt?.let { maxOf(0L, it * 1000 - nowMillis) }

    companion object {
        const val CHANNEL_ID = "mydevices_security"
        const val CATEGORY = "MYDEVICES_NEW_LOGIN"

        fun idFor(newSessionId: String): Int {
            val d = MessageDigest.getInstance("SHA-256").digest(newSessionId.toByteArray())
            val n = ((d[0].toInt() and 0xff) shl 24) or ((d[1].toInt() and 0xff) shl 16) or
                ((d[2].toInt() and 0xff) shl 8) or (d[3].toInt() and 0xff)
            return n and 0x7fffffff
        }

        fun of(alert: PushEvent.NewLoginAlert): AlertNotification {
            val sid = alert.newSessionId
            return AlertNotification(
                tag = "new-login-$sid", id = idFor(sid), channelId = CHANNEL_ID, category = CATEGORY,
                title = alert.title, titleLocKey = "mydevices_new_login_title", body = alert.text,
                bodyLocKey = alert.locKey, bodyLocArgs = alert.locArgs, expiresAt = alert.expiresAt,
                actions = listOf(
                    AlertAction(AlertAnswer.NO, "MYDEVICES_NO", "mydevices_no", "No, close this session",
                        destructive = true, authenticationRequired = false, uri = "mydevices://alert/$sid/no"),
                    AlertAction(AlertAnswer.YES, "MYDEVICES_YES", "mydevices_yes", "Yes, it was me",
                        destructive = false, authenticationRequired = true, uri = "mydevices://alert/$sid/yes"),
                ),
            )
        }
    }
}
