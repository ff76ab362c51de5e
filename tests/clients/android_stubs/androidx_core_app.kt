@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.core.app

import android.app.Notification
import android.app.PendingIntent
import android.content.Context

object NotificationCompat {
    const val CATEGORY_STATUS = "status"
    const val PRIORITY_HIGH = 1
    abstract class Style
    class BigTextStyle : Style() { fun bigText(text: CharSequence): BigTextStyle = this }
    class Builder(context: Context, channelId: String) {
        fun setSmallIcon(icon: Int): Builder = this
        fun setContentTitle(text: CharSequence): Builder = this
        fun setContentText(text: CharSequence): Builder = this
        fun setStyle(style: Style): Builder = this
        fun setCategory(category: String): Builder = this
        fun setPriority(priority: Int): Builder = this
        fun setAutoCancel(on: Boolean): Builder = this
        fun setTimeoutAfter(millis: Long): Builder = this
        fun addAction(icon: Int, title: CharSequence, intent: PendingIntent): Builder = this
        fun build(): Notification = Notification()
    }
}
class NotificationManagerCompat {
    fun notify(tag: String?, id: Int, notification: Notification) {}
    fun cancel(tag: String?, id: Int) {}
    companion object { fun from(context: Context): NotificationManagerCompat = NotificationManagerCompat() }
}
