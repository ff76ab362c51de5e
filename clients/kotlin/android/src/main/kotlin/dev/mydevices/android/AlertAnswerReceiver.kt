// NOT COMPILED HERE against Android: this machine has no Android SDK (see clients/kotlin/android/README.md);
// its calls into the core are type-checked against stand-ins of the Android APIs (tests/clients/android_stubs).
package dev.mydevices.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import androidx.core.app.NotificationManagerCompat
import dev.mydevices.AlertAnswer
import dev.mydevices.MyDevicesException
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout

/** "No, close this session" / "Yes, it was me" from the notification, answered in the background.
 *  Declare it in the manifest with android:exported="false". */
class AlertAnswerReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val token = intent.getStringExtra(EXTRA_TOKEN) ?: return
        val answer = AlertAnswer.valueOf(intent.getStringExtra(EXTRA_ANSWER) ?: return)
        NotificationManagerCompat.from(context).cancel(intent.getStringExtra(EXTRA_TAG), intent.getIntExtra(EXTRA_ID, 0))
        val pending = goAsync() // about 10 s before Android may kill the process: the answer is one call
        MyDevices.scope.launch {
            try {
                withTimeout(9_000) { MyDevices.client.respondToAlert(token, answer) }
                onAnswered?.invoke(answer, null)
            } catch (e: MyDevicesException) {
                onAnswered?.invoke(answer, e) // AlreadyAnswered: another device answered first
            } catch (e: Exception) {
                onAnswered?.invoke(answer, null)
            } finally {
                pending.finish()
            }
        }
    }

    companion object {
        const val EXTRA_TOKEN = "dev.mydevices.actionToken"
        const val EXTRA_ANSWER = "dev.mydevices.answer"
        const val EXTRA_TAG = "dev.mydevices.tag"
        const val EXTRA_ID = "dev.mydevices.id"
        /** The app's hook: after "No", offer to change the password (the answer's advice). */
        var onAnswered: ((AlertAnswer, MyDevicesException?) -> Unit)? = null
    }
}
