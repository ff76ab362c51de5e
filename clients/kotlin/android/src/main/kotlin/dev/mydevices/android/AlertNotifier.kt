// NOT COMPILED HERE against Android: this machine has no Android SDK (see clients/kotlin/android/README.md);
// its calls into the core are type-checked against stand-ins of the Android APIs (tests/clients/android_stubs).
// What the notification says, its id, actions, URIs and expiry come from the tested core (AlertNotification).
package dev.mydevices.android

import android.Manifest
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import androidx.core.content.ContextCompat
import dev.mydevices.AlertNotification
import dev.mydevices.PushEvent

object AlertNotifier {
    /** The app's small icon (white on transparent); Android posts nothing without one. Set before use. */
    var smallIcon: Int = android.R.drawable.stat_sys_warning

    fun createChannel(context: Context) {
        if (Build.VERSION.SDK_INT < 26) return
        val channel = NotificationChannel(AlertNotification.CHANNEL_ID, text(context, "mydevices_channel", "Security alerts"),
            NotificationManager.IMPORTANCE_HIGH)
        context.getSystemService(NotificationManager::class.java).createNotificationChannel(channel)
    }

    fun show(context: Context, alert: PushEvent.NewLoginAlert) {
        val n = alert.notification
        val builder = NotificationCompat.Builder(context, n.channelId)
            .setSmallIcon(smallIcon)
            .setContentTitle(text(context, n.titleLocKey, n.title))
            .setContentText(body(context, n))
            .setStyle(NotificationCompat.BigTextStyle().bigText(body(context, n)))
            .setCategory(NotificationCompat.CATEGORY_STATUS)
            .setPriority(NotificationCompat.PRIORITY_HIGH)
            .setAutoCancel(true)
        n.timeoutAfterMillis(System.currentTimeMillis())?.let(builder::setTimeoutAfter)
        n.actions.forEachIndexed { index, action ->
            // One PendingIntent per alert and answer: the data URI differs (intents are compared by it), and
            // so does the request code, so a second alert's buttons never answer the first one.
            val intent = Intent(context, AlertAnswerReceiver::class.java)
                .setData(Uri.parse(action.uri))
                .putExtra(AlertAnswerReceiver.EXTRA_TOKEN, alert.actionToken)
                .putExtra(AlertAnswerReceiver.EXTRA_ANSWER, action.answer.name)
                .putExtra(AlertAnswerReceiver.EXTRA_TAG, n.tag)
                .putExtra(AlertAnswerReceiver.EXTRA_ID, n.id)
            val pending = PendingIntent.getBroadcast(context, n.id * 2 + index, intent,
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT)
            builder.addAction(0, text(context, action.titleKey, action.title), pending)
        }
        if (Build.VERSION.SDK_INT >= 33 &&
            ContextCompat.checkSelfPermission(context, Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) return // the app asks for the permission; the web page and GET /v1/alerts still show the alert
        NotificationManagerCompat.from(context).notify(n.tag, n.id, builder.build())
    }

    /** The app's translation of [key] if it ships one (res/values/strings.xml, translated in the res/values-XX folders), else the English text. */
    private fun text(context: Context, key: String, english: String, vararg args: String): String {
        val id = context.resources.getIdentifier(key, "string", context.packageName)
        return if (id == 0) english else context.getString(id, *args)
    }

    private fun body(context: Context, n: AlertNotification): String =
        n.bodyLocKey?.let { text(context, it, n.body, *n.bodyLocArgs.toTypedArray()) } ?: n.body
}
