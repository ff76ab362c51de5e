@file:Suppress("unused", "UNUSED_PARAMETER")
package android.app

import android.content.Context
import android.content.Intent

class Notification
class NotificationChannel(id: String, name: CharSequence, importance: Int)
class NotificationManager {
    fun createNotificationChannel(channel: NotificationChannel) {}
    companion object { const val IMPORTANCE_HIGH = 4 }
}
class PendingIntent {
    companion object {
        const val FLAG_IMMUTABLE = 67108864
        const val FLAG_UPDATE_CURRENT = 134217728
        fun getBroadcast(context: Context, requestCode: Int, intent: Intent, flags: Int): PendingIntent = PendingIntent()
    }
}
